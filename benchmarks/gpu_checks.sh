#!/usr/bin/env bash
# The CUDA checks and timings of BENCHMARKS.md §7, as one script for a lent GPU machine (~5 min on an H100):
#   bash benchmarks/gpu_checks.sh                  # on the GPU machine, from the repository root
#   DEVICE=cpu QUICK=1 bash benchmarks/gpu_checks.sh   # a smoke run of the same commands on a CPU
#   STEPS="test_cuda bench_eval_tiny" bash benchmarks/gpu_checks.sh   # only some steps
# Outputs go to $OUT (default /tmp/negdiff-gpu), one file per step. Wheels in .whl/ (polars, which the GPU
# image lacks) are installed first when present.
set -uo pipefail
OUT=${OUT:-/tmp/negdiff-gpu}
DEVICE=${DEVICE:-cuda}
Q=${QUICK:+--quick}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
PY=${PY:-python3}
# STEPS="test_cuda bench_dump_tiny" runs only those steps
want() { [ -z "${STEPS:-}" ] || [[ " $STEPS " == *" $1 "* ]]; }
step() { want "$1" || return 0; local name=$1; shift; echo "=== $name: $*"; local t0=$SECONDS; timeout "${STEP_TIMEOUT:-240}" "$@" 2>&1 | tee "$OUT/$name.txt"; echo "=== $name: exit ${PIPESTATUS[0]} in $((SECONDS - t0)) s"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$OUT/gpu.txt"
$PY -c "import torch, transformers, polars, numpy; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__, 'polars', polars.__version__, 'numpy', numpy.__version__)" | tee -a "$OUT/gpu.txt"
[ "$DEVICE" = cuda ] && step test_cuda $PY -m pytest -q -p no:cacheprovider tests/test_cuda.py
# 2: streaming WD, the accumulators on the device (the dump-time path) against exact on the CPU
step bench_streaming $PY benchmarks/bench_streaming.py --device "$DEVICE" --memory-tokens --dumps "" $Q
# 3: dump vs bare forward, keep all and keep histograms: the default config's tiny models (float32),
#    then a larger random llama in bfloat16 (hidden 1024, 8 layers, MLP 4096, 1024-token windows)
#    (token samples small against the token count, as at scale)
step bench_dump_tiny $PY benchmarks/bench_dump.py --device "$DEVICE" --keep all histograms --sample-tokens 1024 --repeat 2 $Q
step bench_dump_1024 $PY benchmarks/bench_dump.py --device "$DEVICE" --keep all histograms --archs llama \
  --hidden 1024 --layers 8 --heads 16 --intermediate 4096 --context 1024 --window 1024 --stride 512 \
  --batch-size 16 --tokens 65536 --sample-tokens 2048 --model-dtype bfloat16 --dtype bfloat16 --bins 1024 --repeat 2 $Q
# where the time of the streaming accumulators goes, per step, on the device
step profile_streaming $PY benchmarks/profile_streaming.py --device "$DEVICE" $Q
# 4: minimal pairs, neg_zero on vs off and negdiff vs the official batched method (both at batch 128 here)
step bench_eval_tiny $PY benchmarks/bench_eval.py --device "$DEVICE" --batch-size 128 --repeat 3 $Q
step bench_eval_1024 $PY benchmarks/bench_eval.py --device "$DEVICE" --batch-size 128 --hidden 1024 --layers 8 --heads 16 \
  --intermediate 4096 --repeat 3 $Q
