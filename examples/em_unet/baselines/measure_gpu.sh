#!/usr/bin/env bash
# The GPU baseline of the shipped U-Net (docs/energy.md, "Measured baselines"). Run it from
# the repository root on a machine with an NVIDIA GPU and python with torch (CUDA), onnx,
# onnxruntime and nvidia-ml-py; snncc need not be installed: its source tree goes on
# PYTHONPATH, and so does build/gpu-deps, where snncc's pure-Python dependencies can wait
# for a machine without them or without internet (made on any machine with
# `pip install --no-deps --target build/gpu-deps lark networkx tqdm`).
# Writes examples/em_unet/baselines/gpu-<device name>.json; extra arguments go to
# `snncc baseline` (e.g. --repeats 7).
set -euo pipefail
name=$( (nvidia-smi --query-gpu=name --format=csv,noheader -i 0 2>/dev/null || true) \
       | head -1 | tr '[:upper:] ' '[:lower:]-' | tr -cd 'a-z0-9-')
export PYTHONPATH="$PWD:$PWD/build/gpu-deps${PYTHONPATH:+:$PYTHONPATH}"
python3 -m snncc baseline examples/em_unet/unet.onnx --device cuda \
    -o "examples/em_unet/baselines/gpu-${name:-nvidia}.json" "$@"
