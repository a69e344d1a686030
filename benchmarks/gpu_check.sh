#!/usr/bin/env bash
# The GPU checks in one call, for a session with a CUDA GPU: the whole test suite with every test
# array on the GPU (`pytest --device cuda`) and the GPU benchmarks, everything written under $OUT.
#
# Usage (from anywhere):  OUT=/path benchmarks/gpu_check.sh [PART ...]
#   PART: tests      the test suite on $DEVICE (junit XML + the text report)
#         bench      bench_monarch.py (Monarch/BTT matmat fp32 and bf16 vs dense GEMM and bmm, torch and JAX),
#                    bench_dispatch.py (per-call overhead of a tiny call on the device) and bench_layers.py
#                    (linops.nn layer forward+backward step vs nn.Linear, fp32 and bf16)
#         bench-all  every other benchmark that has a --device mode, at its default sizes
#   default: tests bench
# Environment: OUT (default ./gpu_results), DEVICE (default cuda), TEST_TIMEOUT (seconds for the suite,
#   default 420), BENCH_TIMEOUT (seconds per benchmark script, default 240), PYTEST_ARGS (extra pytest
#   arguments, e.g. "-x" or "-k monarch"). A part cut by its timeout still leaves its partial output.
# $OUT/summary.txt lists each step's exit status and seconds; environment.txt the GPU and versions.
set -u
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-gpu_results}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
# JAX would take 75% of the GPU's memory at start-up, leaving torch (same process) little, and making
# its peak-memory figures meaningless
export XLA_PYTHON_CLIENT_PREALLOCATE=false
PARTS=${*:-tests bench}

{
    date -u
    nvidia-smi || true
    python -c "import torch, jax; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available()); print('jax', jax.__version__, jax.devices())"
    git rev-parse HEAD 2>/dev/null
    git status --short 2>/dev/null | head -50
} > "$OUT/environment.txt" 2>&1

step() {  # step NAME SECONDS COMMAND...: output to $OUT/NAME.txt, status to summary.txt
    local name=$1 limit=$2 start rc
    shift 2
    start=$(date +%s)
    timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
    rc=$?
    echo "$name rc=$rc $(( $(date +%s) - start ))s$([ "$rc" = 124 ] && echo " (timed out)")" | tee -a "$OUT/summary.txt"
}

for part in $PARTS; do
    case $part in
        tests)
            # shellcheck disable=SC2086  # PYTEST_ARGS is a list of arguments
            step "pytest_$DEVICE" "${TEST_TIMEOUT:-420}" python -m pytest -q -p no:cacheprovider --device "$DEVICE" \
                --junitxml="$OUT/pytest_$DEVICE.xml" --durations=25 ${PYTEST_ARGS:-} tests
            ;;
        bench)
            # NumPy rows would time the host CPU: torch and JAX only
            step bench_monarch "${BENCH_TIMEOUT:-240}" python benchmarks/bench_monarch.py --device "$DEVICE" \
                --backends torch,jax
            step bench_dispatch "${BENCH_TIMEOUT:-240}" python benchmarks/bench_dispatch.py --device "$DEVICE"
            step bench_layers "${BENCH_TIMEOUT:-240}" python benchmarks/bench_layers.py --device "$DEVICE" \
                --backends torch,jax --dtype float32
            step bench_layers_bf16 "${BENCH_TIMEOUT:-240}" python benchmarks/bench_layers.py --device "$DEVICE" \
                --backends torch,jax --dtype bfloat16
            ;;
        bench-all)
            step bench_banded_fft "${BENCH_TIMEOUT:-240}" python benchmarks/bench_banded_fft.py --device "$DEVICE"
            step bench_solvers "${BENCH_TIMEOUT:-240}" python benchmarks/bench_solvers.py --per-iteration-only --device "$DEVICE"
            step bench_arnoldi "${BENCH_TIMEOUT:-240}" python benchmarks/bench_arnoldi.py --device "$DEVICE"
            step bench_eigen "${BENCH_TIMEOUT:-240}" python benchmarks/bench_eigen.py --device "$DEVICE"
            step bench_estimators "${BENCH_TIMEOUT:-240}" python benchmarks/bench_estimators.py --device "$DEVICE"
            step bench_preconditioners "${BENCH_TIMEOUT:-240}" python benchmarks/bench_preconditioners.py --no-cola --device "$DEVICE"
            step bench_gradients "${BENCH_TIMEOUT:-240}" python benchmarks/bench_gradients.py --parts 1 3 --device "$DEVICE"
            step bench_algorithms "${BENCH_TIMEOUT:-240}" python benchmarks/bench_algorithms.py --no-cola --device "$DEVICE"
            ;;
        *)
            echo "unknown part $part (valid: tests bench bench-all)" >&2
            exit 2
            ;;
    esac
done
