#!/usr/bin/env bash
# Check minflow on an NVIDIA GPU (CuPy) in one go, from the repository root:
#
#     bash tools/gpu_check.sh                  # results in $OUT, or ./gpu-out where OUT is unset
#
# Four stages, each under its own time limit (`timeout`), about 8 minutes at most in all:
#   1. env        nvidia-smi, Python, NumPy, CuPy and PyTorch versions, the GPU's name; can CuPy and
#                 PyTorch reach the GPU?
#   2. suite      the whole test suite with MINFLOW_BACKEND=cupy, notebooks excepted (-m "not lessons")
#   3. benchmark  benchmarks/gpu.py: R2 and D8 steps on CuPy, PyTorch CUDA and the CPU (NumPy on 2 cores,
#                 this project's CPU), with the two D8-at-512 targets (10x the CPU, within 3x of PyTorch)
#   4. digits     `python -m minflow digits` on CuPy: one epoch, then a second resumed from the checkpoint
# It ends with summary.txt and summary.json in the output folder: each stage passed / failed / skipped
# with the reason, and the key numbers. It uses the Python it finds ($PYTHON, else python3) with the
# packages already installed, and installs nothing.
#
# Without a usable CuPy (a CPU machine) it runs what it can and says what it skipped: the suite under
# MINFLOW_BACKEND=cupy (every test skips itself, saying why), the benchmark's CPU rows (--cpu-only), and
# the digits run on NumPy. Exit status: 0 where no stage failed, 1 where one did.
#
# Settings (environment):
#   OUT                   output folder (default ./gpu-out)
#   PYTHON                the interpreter (default python3)
#   GPU_CHECK_SMOKE=1     a few seconds: a handful of tests, a one-step R2 benchmark, a tiny digits run
#   GPU_CHECK_STAGES      which of suite, benchmark, digits to run (default all three; env always runs)
#   GPU_CHECK_TESTS       what pytest runs (default: tests; in smoke mode tests/test_backend.py)
#   GPU_CHECK_WORKERS     pytest-xdist workers for the suite, where xdist is installed (default 8; 1 in
#                         smoke mode): small kernels are bound by launch latency, so processes sharing
#                         the GPU finish the suite sooner
#   GPU_CHECK_CPU_CORES   cores for the benchmark's CPU rows (default 2, this project's CPU)
#   GPU_CHECK_PACK=1      pack every file but the summaries into gpu-check.tar.gz (for machines that
#                         hand back only a few files)
#   GPU_CHECK_LIMIT_SUITE, GPU_CHECK_LIMIT_BENCHMARK, GPU_CHECK_LIMIT_DIGITS   seconds (240, 120, 60 for each
#                         of the two digits runs)

set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
OUT=${OUT:-$ROOT/gpu-out}
PY=${PYTHON:-python3}
SMOKE=${GPU_CHECK_SMOKE:-0}
CORES=${GPU_CHECK_CPU_CORES:-2}
LIMIT_ENV=60
LIMIT_SUITE=${GPU_CHECK_LIMIT_SUITE:-240}
LIMIT_BENCHMARK=${GPU_CHECK_LIMIT_BENCHMARK:-120}
LIMIT_DIGITS=${GPU_CHECK_LIMIT_DIGITS:-60}
if [ "$SMOKE" = 1 ]; then
    TESTS=${GPU_CHECK_TESTS:-tests/test_backend.py}
    WORKERS=${GPU_CHECK_WORKERS:-1}
else
    TESTS=${GPU_CHECK_TESTS:-tests}
    WORKERS=${GPU_CHECK_WORKERS:-8}
fi

mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)
(cd "$OUT" && rm -rf env.txt suite.log suite.xml benchmark.* digits digits.log summary.* gpu-check.tar.gz)  # an earlier run's
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"  # minflow from this checkout, not installed
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
unset MINFLOW_BACKEND  # each stage sets its own
SELECTED=" ${GPU_CHECK_STAGES:-suite benchmark digits} "
STAGES=()  # --stage NAME STATUS SECONDS NOTE, for tools/gpu_check_summary.py

record() {  # record NAME STATUS SECONDS NOTE
    STAGES+=(--stage "$1" "$2" "$3" "$4")
    printf '%-10s %-8s %5ss  %s\n' "$1" "$2" "$3" "$4"
}

selected() {  # selected NAME: true where GPU_CHECK_STAGES names the stage, else records it as skipped
    case "$SELECTED" in *" $1 "*) return 0 ;; esac
    record "$1" skipped 0 "not selected (GPU_CHECK_STAGES=\"${GPU_CHECK_STAGES:-}\")"
    return 1
}

timed() {  # timed LIMIT LOG COMMAND...: run COMMAND under `timeout`, output to LOG; sets RC and SECONDS_TAKEN
    local limit=$1 log=$2 start
    shift 2
    start=$(date +%s)
    # SIGINT first, so that pytest stops cleanly and still writes its junit XML; SIGKILL 20 s later
    timeout -s INT -k 20 "$limit" "$@" >"$log" 2>&1
    RC=$?
    SECONDS_TAKEN=$(($(date +%s) - start))
}

outcome() {  # outcome LIMIT: "passed", or "failed" with the reason in NOTE, from RC
    if [ "$RC" = 0 ]; then
        STATUS=passed
    elif [ "$RC" = 124 ] || [ "$RC" = 137 ]; then
        STATUS=failed NOTE="timed out after $1 s; ${NOTE}"
    else
        STATUS=failed NOTE="exit status $RC; ${NOTE}"
    fi
}

echo "minflow GPU check: output in $OUT (smoke mode: $SMOKE)"

# -- 1. env: versions, the GPU, and whether CuPy and PyTorch can use it -------------------------------
start=$(date +%s)
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "host: $(uname -srm)"
    echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown) $(git status --porcelain 2>/dev/null | wc -l | tr -d ' ') changed files"
    if command -v nvidia-smi >/dev/null 2>&1; then
        timeout 20 nvidia-smi
    else
        echo "nvidia-smi: not found"
    fi
} >"$OUT/env.txt" 2>&1
PROBE=$(timeout -k 5 "$LIMIT_ENV" "$PY" - 2>>"$OUT/env.txt" <<'EOF'
import platform

import numpy

print(f"python {platform.python_version()}  numpy {numpy.__version__}")
try:
    import cupy

    n = cupy.cuda.runtime.getDeviceCount()
    props = cupy.cuda.runtime.getDeviceProperties(0) if n else {}
    name = props.get("name", b"")
    name = name.decode() if isinstance(name, bytes) else name
    assert int((cupy.arange(4) ** 2).sum()) == 14  # a kernel compiles and runs
    print(f"cupy {cupy.__version__}  devices {n}  gpu {name}" if n else f"cupy {cupy.__version__}  devices 0")
    cupy_status = f"ok {name}" if n else "no: CuPy is installed but no NVIDIA GPU was found"
except ImportError:
    cupy_status = "no: CuPy is not installed"
except Exception as err:  # noqa: BLE001 (no driver, broken CUDA: any error means no GPU here)
    cupy_status = f"no: CuPy cannot reach a GPU ({type(err).__name__}: {err})".replace("\n", " ")
try:
    import torch

    cuda = torch.cuda.is_available()
    print(f"torch {torch.__version__}  cuda {torch.version.cuda}  available {cuda}")
    torch_status = "ok" if cuda else f"no: PyTorch {torch.__version__} sees no CUDA device"
except ImportError:
    torch_status = "no: PyTorch is not installed"
print(f"CUPY: {cupy_status}")
print(f"TORCH_CUDA: {torch_status}")
EOF
)
RC=$?
echo "$PROBE" >>"$OUT/env.txt"
CUPY=$(echo "$PROBE" | sed -n 's/^CUPY: //p')
TORCH_CUDA=$(echo "$PROBE" | sed -n 's/^TORCH_CUDA: //p')
if [ "$RC" = 0 ] && [ -n "$CUPY" ]; then
    record env passed $(($(date +%s) - start)) "CuPy: $CUPY; PyTorch CUDA: $TORCH_CUDA"
else
    CUPY=${CUPY:-"no: the environment probe failed (exit status $RC, see env.txt)"}
    TORCH_CUDA=${TORCH_CUDA:-"no: the environment probe failed"}
    record env failed $(($(date +%s) - start)) "the probe of Python, NumPy, CuPy and PyTorch failed (exit status $RC; see env.txt)"
fi
GPU=0
case "$CUPY" in ok*) GPU=1 ;; esac
NO_GPU_REASON=${CUPY#no: }

# -- 2. suite: every test with MINFLOW_BACKEND=cupy, notebooks excepted -------------------------------
stage_suite() {
    local PYTEST_ARGS NOTE
    PYTEST_ARGS=(-m "not lessons" -q -rfEs -p no:cacheprovider --durations=15 -o faulthandler_timeout=120
                 --junitxml="$OUT/suite.xml")
    if "$PY" -c "import pytest_timeout" 2>/dev/null; then
        PYTEST_ARGS+=(--timeout=180)  # one test stuck on the device fails alone, the others still run
    fi
    local processes="one process"
    if [ "$WORKERS" -gt 1 ] && "$PY" -c "import xdist" 2>/dev/null; then
        PYTEST_ARGS+=(-n "$WORKERS")
        processes="$WORKERS xdist workers"
    fi
    # shellcheck disable=SC2086  # TESTS is a list of paths or pytest node ids
    timed "$LIMIT_SUITE" "$OUT/suite.log" env MINFLOW_BACKEND=cupy "$PY" -m pytest "${PYTEST_ARGS[@]}" $TESTS
    NOTE="pytest -m 'not lessons' $TESTS with MINFLOW_BACKEND=cupy, $processes; see suite.log and suite.xml"
    if [ "$GPU" = 1 ]; then
        outcome "$LIMIT_SUITE"
        record suite "$STATUS" "$SECONDS_TAKEN" "$NOTE"
    elif [ "$RC" = 0 ]; then  # conftest.py skipped every test, saying why
        record suite skipped "$SECONDS_TAKEN" "no usable CuPy ($NO_GPU_REASON): every test skipped itself; $NOTE"
    else
        outcome "$LIMIT_SUITE"
        record suite "$STATUS" "$SECONDS_TAKEN" "without CuPy every test should skip itself, yet pytest failed; $NOTE"
    fi
}

# -- 3. benchmark: benchmarks/gpu.py; its CPU rows on $CORES cores ------------------------------------
stage_benchmark() {
    local BENCH_ARGS SKIPPED PIN NOTE
    BENCH_ARGS=(--json "$OUT/benchmark.json" --markdown "$OUT/benchmark.md")
    if [ "$SMOKE" = 1 ]; then
        BENCH_ARGS+=(--only r2 --steps 1 --warmup 0 --no-torch)
    elif [ "$GPU" = 1 ]; then
        BENCH_ARGS+=(--steps 30 --cpu-steps 8 --warmup 3)
    else
        BENCH_ARGS+=(--only d8 --steps 3 --warmup 1)
    fi
    SKIPPED=""
    if [ "$GPU" = 0 ]; then
        BENCH_ARGS+=(--cpu-only)
        SKIPPED="the minflow-cupy and torch-cuda rows and both targets skipped: no usable CuPy ($NO_GPU_REASON); "
    elif [ "${TORCH_CUDA%%:*}" != ok ] && [ "$SMOKE" != 1 ]; then
        BENCH_ARGS+=(--no-torch)
        SKIPPED="the torch-cuda rows and the 3x target skipped (${TORCH_CUDA#no: }); "
    fi
    PIN=()
    if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge "$CORES" ]; then
        PIN=(taskset -c "0-$((CORES - 1))")
    fi
    timed "$LIMIT_BENCHMARK" "$OUT/benchmark.log" env OMP_NUM_THREADS="$CORES" OPENBLAS_NUM_THREADS="$CORES" \
        MKL_NUM_THREADS="$CORES" "${PIN[@]}" "$PY" benchmarks/gpu.py "${BENCH_ARGS[@]}"
    NOTE="${SKIPPED}benchmarks/gpu.py ${BENCH_ARGS[*]:4}, CPU rows on $CORES threads${PIN:+ pinned to $CORES cores}"
    outcome "$LIMIT_BENCHMARK"
    record benchmark "$STATUS" "$SECONDS_TAKEN" "$NOTE"
}

# -- 4. digits: D8 on the 8x8 digits on CuPy, one epoch, then one more resumed from the checkpoint ----
stage_digits() {
    local DIGITS BACKEND NOTE first
    DIGITS=(-m minflow digits --out "$OUT/digits" --json "$OUT/digits/digits.json" --checkpoint "$OUT/digits/d8.npz")
    if [ "$SMOKE" = 1 ]; then
        DIGITS+=(--train-size 64 --val 16 --eval-draws 1 --no-figures)
    else
        DIGITS+=(--val 100 --eval-draws 2)
    fi
    BACKEND=numpy NOTE=""
    if [ "$GPU" = 1 ]; then
        BACKEND=cupy
    else
        NOTE="ran on NumPy, not CuPy: no usable CuPy ($NO_GPU_REASON); "
    fi
    mkdir -p "$OUT/digits"
    timed "$LIMIT_DIGITS" "$OUT/digits.log" env MINFLOW_BACKEND=$BACKEND "$PY" "${DIGITS[@]}" --epochs 1
    if [ "$RC" = 0 ]; then
        first=$SECONDS_TAKEN
        timed "$LIMIT_DIGITS" "$OUT/digits-resume.log" env MINFLOW_BACKEND=$BACKEND "$PY" "${DIGITS[@]}" --epochs 2 --resume
        SECONDS_TAKEN=$((SECONDS_TAKEN + first))
        cat "$OUT/digits-resume.log" >>"$OUT/digits.log" && rm -f "$OUT/digits-resume.log"
    fi
    NOTE="${NOTE}python ${DIGITS[*]:0:3} --epochs 1, then --epochs 2 --resume, MINFLOW_BACKEND=$BACKEND; see digits.log"
    outcome "$LIMIT_DIGITS"
    record digits "$STATUS" "$SECONDS_TAKEN" "$NOTE"
}

for name in suite benchmark digits; do
    if selected "$name"; then
        "stage_$name"
    fi
done

# -- summary -----------------------------------------------------------------------------------------
"$PY" tools/gpu_check_summary.py --out "$OUT" --smoke "$SMOKE" "${STAGES[@]}"
RC=$?
if [ "${GPU_CHECK_PACK:-0}" = 1 ]; then
    (cd "$OUT" && tar -czf gpu-check.tar.gz --exclude gpu-check.tar.gz --exclude 'summary.*' -- * &&
        find . -mindepth 1 -maxdepth 1 ! -name gpu-check.tar.gz ! -name 'summary.*' -exec rm -rf {} +)
fi
exit "$RC"
