# Two entry points (see README): `make example` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXAMPLE_OUT ?= build/em_unet.snncc

.PHONY: example test lint lint-imports install

$(BIN)/.installed: pyproject.toml tests/plugins/example/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[test]" -e tests/plugins/example
	touch $@

install: $(BIN)/.installed

# Compile the shipped EM U-Net for Loihi with the plain user command, then segment one
# held-out slice (512×512, overlap-tiled) in nengo-loihi's integer dynamics and compare it
# with the ANN: accuracy, energy per slice against the shipped baselines, and a picture.
example: install
	$(BIN)/snncc compile examples/em_unet/unet.onnx --target loihi -o $(EXAMPLE_OUT) --force
	$(BIN)/snncc eval $(EXAMPLE_OUT) --data examples/em_unet/data --indices 20 --mode loihi \
		--timesteps 75 --margin 12 --plots $(EXAMPLE_OUT)/plots

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .

# The import contract (pyproject.toml [tool.importlinter]) on a built copy of the package:
# the editable install maps passes/ and targets/ into snncc, which import-linter cannot see.
lint-imports: install
	rm -rf build/lint
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
		--target build/lint .
	rm -rf build/lib
	cd build/lint && PYTHONPATH=. $(CURDIR)/$(BIN)/lint-imports --config $(CURDIR)/pyproject.toml
