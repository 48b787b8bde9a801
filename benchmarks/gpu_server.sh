#!/usr/bin/env bash
# GPU check of the local model server (issue 5), for a lent H100/H200 with no network.
# Builds a model with Qwen2.5-7B-Instruct's architecture and random bf16 weights directly on
# the GPU, and measures server tokens/s at 1, 16, 64 and 256 concurrent requests against
# one-at-a-time generate (timed on 8 requests) and an ideal padded batch, plus the share of the
# memory-bandwidth roofline (weight bytes x decode steps / time vs the measured copy bandwidth).
#
# Needs: python3 with torch and transformers (the device image has them) and msgspec, carried
# as a wheel in .whl/ (see the device README): `pip download --no-deps --only-binary=:all:
# --python-version 3.12 --implementation cp --platform manylinux_2_17_x86_64 -d .whl msgspec`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c "import msgspec" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/msgspec-*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
out=${OUT:-benchmarks/results}
mkdir -p "$out"
PYTHONUNBUFFERED=1 python3 benchmarks/local_server.py --random-qwen7b --device cuda --dtype bfloat16 \
  --n 1,16,64,256 --new-tokens 64 --sequential-sample 8 --json "$out/gpu_server.json"
