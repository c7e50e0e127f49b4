"""`python -m snncc`: the command line without an installed `snncc` script (e.g. on a GPU
machine where snncc's source tree is on PYTHONPATH)."""

from snncc.cli.main import entry

entry()
