#!/usr/bin/env bash
# One GPU round (docs: /work/shared/GPU.md): everything a GPU needs to see, in one go.
#
#   scripts/gpu_round.sh OUTDIR
#
# Steps, each logged to OUTDIR/<step>.log (and echoed):
#   info        GPU, driver, nvcc, cmake, torch, commit
#   check_cuda  nvcc-only compile of csrc/kernels/cuda/*.cu with the ptxas report (OUTDIR/ptxas.log)
#   build       pip install --no-build-isolation --no-deps --no-index -e .  (SPARSEKERNELS_CUDA=on)
#   build_inplace  only if that failed: setup.py build_ext --inplace, so the rest can still run
#   import      the library loads and was built with CUDA
#   test_cuda   pytest -m cuda (junit XML in OUTDIR)
#   memcheck / racecheck / synccheck   compute-sanitizer on a small CUDA subset
#   bench       python -m sparsekernels.bench --suite quick --device cuda --out OUTDIR/bench, if it exists
#   bench_targets  the targets suite on CUDA (issue 6's rows) --out OUTDIR/bench_targets
#   test_other  pytest -m "not cuda" (the rest of the suite; this CPU has AVX-512), last
# A failing step is recorded and the round goes on; the exit status is 1 if any
# step failed. The whole round stays inside SK_ROUND_BUDGET_S seconds (default
# 560): each step gets min(its own limit, the time left), a step with no time
# left is recorded as skipped (a failure). Summary: OUTDIR/summary.txt, .json.
#
# Environment (defaults): PYTHON (./.venv over the system python3, created if
# missing, as scripts/env.sh does), SPARSEKERNELS_CUDA_ARCHS=90a, MAX_JOBS=16,
# SK_ROUND_BUDGET_S=560.
set -uo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$1"
OUT="$(cd "$1" && pwd)"
cd "$ROOT"

PY="${PYTHON:-python3}"
BUDGET="${SK_ROUND_BUDGET_S:-560}"
# The same environment as scripts/env.sh: a venv over the system torch (no
# network needed; pip may refuse to install into an externally managed system
# python). Without one, the system python is used with PYTHONPATH.
if [[ -z "${PYTHON:-}" ]]; then
  if [[ ! -x "$ROOT/.venv/bin/python" ]]; then
    python3 -m venv --system-site-packages "$ROOT/.venv" >"$OUT/venv.log" 2>&1 ||
      echo "gpu_round: could not create .venv (see $OUT/venv.log); using the system python3"
  fi
  if [[ -x "$ROOT/.venv/bin/python" ]] && "$ROOT/.venv/bin/python" -c "import torch" 2>/dev/null; then
    PY="$ROOT/.venv/bin/python"
  fi
fi
export SPARSEKERNELS_CUDA=on
export SPARSEKERNELS_CUDA_ARCHS="${SPARSEKERNELS_CUDA_ARCHS:-90a}"
export MAX_JOBS="${MAX_JOBS:-16}"
export PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

SANITIZER="$(command -v compute-sanitizer || true)"
for candidate in "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer" \
                 "${CUDA_HOME:-/usr/local/cuda}/compute-sanitizer/compute-sanitizer"; do
  [[ -z "$SANITIZER" && -x "$candidate" ]] && SANITIZER="$candidate"
done

ROUND_START=$SECONDS
STEPS=()     # "name status seconds"
FAILED=0

# run_step NAME LIMIT_S COMMAND: runs COMMAND with bash -c under a time limit,
# output to OUTDIR/NAME.log and the terminal.
run_step() {
  local name="$1" limit="$2" cmd="$3"
  local log="$OUT/$name.log"
  local left=$((BUDGET - (SECONDS - ROUND_START) - 10))
  if ((left < 20)); then
    echo "=== $name: SKIPPED, out of time (round budget ${BUDGET}s)" | tee "$log"
    STEPS+=("$name skipped-out-of-time 0")
    FAILED=1
    return 1
  fi
  ((limit > left)) && limit=$left
  echo "=== $name (limit ${limit}s) $(date -u +%H:%M:%S): $cmd" | tee "$log"
  local start=$SECONDS
  timeout --kill-after=15 "$limit" bash -c "$cmd" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  local took=$((SECONDS - start))
  local status=ok
  if ((rc == 124 || rc == 137)); then
    status="timeout"
  elif ((rc != 0)); then
    status="failed(rc=$rc)"
  fi
  echo "=== $name: $status in ${took}s" | tee -a "$log"
  STEPS+=("$name $status $took")
  [[ $status == ok ]] || FAILED=1
  [[ $status == ok ]]
}

run_step info 60 '
  set +e
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  host: $(hostname)"
  echo "python: '"$PY"'"
  echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown) $(git status --porcelain 2>/dev/null | head -c 2000 | wc -l) changed file(s)"
  nvidia-smi
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv
  echo; nvcc --version; echo; cmake --version | head -n 1; ninja --version
  echo "compute-sanitizer: '"${SANITIZER:-not found}"'"
  ls "${CUDA_HOME:-/usr/local/cuda}/include/cusparse.h" "${CUDA_HOME:-/usr/local/cuda}/include/cublas_v2.h" 2>&1
  lscpu | grep -E "Model name|^CPU\(s\)|Flags" | sed -e "s/\(.\{400\}\).*/\1.../"
  env | grep -E "^(SPARSEKERNELS|TORCH_CUDA_ARCH_LIST|CUDA_HOME|MAX_JOBS|PYTHONPATH)=" | sort
  '"$PY"' - <<EOF
import torch, sys
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)
print("device", torch.cuda.get_device_name(0), "capability", torch.cuda.get_device_capability(0),
      "count", torch.cuda.device_count())
print("cmake prefix", torch.utils.cmake_prefix_path)
EOF
'

run_step check_cuda 90 "scripts/check_cuda.sh '$OUT/ptxas.log'"

if ! run_step build 420 "'$PY' -m pip install --no-build-isolation --no-deps --no-index -v -e ."; then
  run_step build_inplace 420 "'$PY' setup.py build_ext --inplace"
fi

run_step import 60 "'$PY' - <<'EOF'
import json, torch, sparsekernels as sk
info = sk.build_info()
print(json.dumps(info, indent=1))
print('library:', sk._lib.LIBRARY_PATH)
assert info['cuda_archs'], 'built without CUDA'
assert torch.cuda.is_available(), 'torch sees no GPU'
print('csr_spmm CUDA kernel registered:', torch._C._dispatch_has_kernel_for_dispatch_key('sparse::csr_spmm', 'CUDA'))
EOF"

run_step test_cuda 240 "'$PY' -m pytest -q -m cuda --durations=15 --junitxml='$OUT/test_cuda.xml' tests"

# The sanitizers: every tensor gets its own cudaMalloc (no caching allocator
# pool), so an out-of-bounds access is caught at the allocation it overruns.
# Left out: the CPU ISA duplicates, tests that time streams against each
# other or capture graphs (the tools serialize work), and the 70k-row shapes.
SAN_TESTS="tests/test_csr_spmm.py tests/test_bitmap.py tests/test_cuda.py tests/test_cuda_bitmap.py"
SAN_FILTER="not avx2 and not avx512 and not stream and not graph and not more_rows and not large_inputs and not more_column_chunks and not many_groups"
# racecheck / synccheck: the kernels with shared memory and barriers (bitmap's
# double-buffered stage; split K), on the small shapes.
SAN_SHARED="(tile_edges or strided or duplicate or column_chunk_edges or split_k or non_finite_b)"
SAN_ENV="PYTORCH_NO_CUDA_MEMORY_CACHING=1"
if [[ -n "$SANITIZER" ]]; then
  run_step memcheck 180 "$SAN_ENV '$SANITIZER' --tool memcheck --report-api-errors no --error-exitcode 1 --print-limit 20 \
    '$PY' -m pytest -q -p no:cacheprovider -m cuda -k '$SAN_FILTER' $SAN_TESTS"
  run_step racecheck 120 "$SAN_ENV '$SANITIZER' --tool racecheck --report-api-errors no --error-exitcode 1 --print-limit 20 \
    '$PY' -m pytest -q -p no:cacheprovider -k '$SAN_FILTER and $SAN_SHARED' tests/test_cuda.py tests/test_cuda_bitmap.py"
  run_step synccheck 120 "$SAN_ENV '$SANITIZER' --tool synccheck --report-api-errors no --error-exitcode 1 --print-limit 20 \
    '$PY' -m pytest -q -p no:cacheprovider -k '$SAN_FILTER and $SAN_SHARED' tests/test_cuda.py tests/test_cuda_bitmap.py"
else
  echo "=== sanitizers: compute-sanitizer not found" | tee "$OUT/memcheck.log"
  STEPS+=("memcheck not-found 0")
  FAILED=1
fi

if [[ -f python/sparsekernels/bench/__main__.py || -f python/sparsekernels/bench.py ]]; then
  run_step bench 150 "'$PY' -m sparsekernels.bench --suite quick --device cuda --out '$OUT/bench'"
  # The issues' CUDA target rows (issue 6: bitmap vs cuBLAS / cuSPARSE); a timeout keeps the rows already
  # measured in OUTDIR/bench_targets/results.partial.jsonl.
  run_step bench_targets 240 "'$PY' -m sparsekernels.bench --suite targets --device cuda --no-plots --out '$OUT/bench_targets'"
else
  echo "=== bench: python/sparsekernels/bench is not in this checkout, skipped" | tee "$OUT/bench.log"
  STEPS+=("bench not-present 0")
fi

# Last: the CPU tests (CI runs them too; here they add the AVX-512 variants).
run_step test_other 200 "'$PY' -m pytest -q -m 'not cuda' --durations=10 --junitxml='$OUT/test_other.xml' tests"

{
  echo "gpu_round $(date -u +%Y-%m-%dT%H:%M:%SZ), $((SECONDS - ROUND_START)) s, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  for s in "${STEPS[@]}"; do
    read -r name status took <<<"$s"
    printf "  %-14s %-22s %5s s\n" "$name" "$status" "$took"
  done
} | tee "$OUT/summary.txt"
{
  echo "{"
  echo "  \"seconds\": $((SECONDS - ROUND_START)), \"failed\": $FAILED,"
  echo "  \"steps\": ["
  n=${#STEPS[@]}
  for i in "${!STEPS[@]}"; do
    read -r name status took <<<"${STEPS[$i]}"
    sep=","; ((i == n - 1)) && sep=""
    echo "    {\"name\": \"$name\", \"status\": \"$status\", \"seconds\": $took}$sep"
  done
  echo "  ]"
  echo "}"
} >"$OUT/summary.json"
exit $FAILED
