#!/usr/bin/env bash
# The benchmark suite on a GPU machine, plus a 32x32x3 Glow, Jet and TarFlow at batch 256
# in float32 and mixed_bfloat16 with the GPU's peak memory. Results: benchmarks/results/*.json.
# Usage: bash benchmarks/gpu.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import tensorflow as tf; print('GPUs:', tf.config.list_physical_devices('GPU'))"
nvidia-smi --query-gpu=name,memory.total --format=csv || true
python -m benchmarks "$@"
python -m benchmarks.glow_gpu "$@"
# The convolution forms on this GPU: cuDNN's (the default there) against the matrix products.
python -m benchmarks.glow_gpu --convolutions native "$@"
python -m benchmarks.glow_gpu --convolutions matrix "$@"
python -m benchmarks.jet_gpu "$@"
python -m benchmarks.tarflow_gpu "$@"
python -m benchmarks.memory --gpu "$@"
