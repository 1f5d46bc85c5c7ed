#!/usr/bin/env bash
# Compile-checks every torch-free CUDA kernel (csrc/kernels/cuda/*.cu) with nvcc
# alone: no torch, no GPU. Writes the full ptxas report (registers, spills,
# shared memory per kernel and arch) to a log and prints a one-line summary per
# kernel. Fails if any file fails to compile. The objects stay in
# build/check_cuda/objects (next to LOG) for scripts/check_cuda_glue.sh.
#
#   scripts/check_cuda.sh [LOG]          default LOG: build/check_cuda/ptxas.log
#
# Environment:
#   SPARSEKERNELS_CUDA_ARCHS  arch list, CMake syntax (default "80;90a"): each
#                             entry NN or NNa/NNf becomes -gencode arch=compute_X,code=sm_X
#   NVCC                      the compiler (default: nvcc on PATH, else $CUDA_HOME/bin/nvcc)
# Without nvcc it prints "nvcc not found, skipping" and exits 0.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOG="${1:-$ROOT/build/check_cuda/ptxas.log}"
ARCHS="${SPARSEKERNELS_CUDA_ARCHS:-80;90a}"

NVCC="${NVCC:-$(command -v nvcc || true)}"
if [[ -z "$NVCC" && -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]]; then
  NVCC="${CUDA_HOME:-/usr/local/cuda}/bin/nvcc"
fi
if [[ -z "$NVCC" ]]; then
  echo "check_cuda: nvcc not found (PATH, CUDA_HOME), skipping the CUDA compile check"
  exit 0
fi

GENCODE=()
for arch in ${ARCHS//;/ }; do
  if [[ ! "$arch" =~ ^[0-9]+[af]?$ ]]; then
    echo "check_cuda: bad arch '$arch' in SPARSEKERNELS_CUDA_ARCHS='$ARCHS' (expected e.g. 80 or 90a)" >&2
    exit 2
  fi
  GENCODE+=("-gencode=arch=compute_${arch},code=sm_${arch}")
done
if [[ ${#GENCODE[@]} -eq 0 ]]; then
  echo "check_cuda: SPARSEKERNELS_CUDA_ARCHS is empty" >&2
  exit 2
fi

shopt -s nullglob
SOURCES=("$ROOT"/csrc/kernels/cuda/*.cu)
mkdir -p "$(dirname "$LOG")"
# Objects are kept next to the log: scripts/check_cuda_glue.sh checks that the
# glue's references to sk::cuda:: resolve against them.
OBJDIR="$(dirname "$LOG")/objects"
rm -rf "$OBJDIR"
mkdir -p "$OBJDIR"

{
  echo "# check_cuda $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "# $("$NVCC" --version | tail -n 2 | head -n 1)"
  echo "# archs: $ARCHS"
} >"$LOG"

# The same device flags as the CMake build (CMakeLists.txt, sk_cuda_kernels).
FLAGS=(-std=c++17 -O3 -lineinfo -I"$ROOT/csrc" -Xptxas -v -Xcompiler -Wall "${GENCODE[@]}")

failed=0
for src in "${SOURCES[@]}"; do
  rel="${src#"$ROOT"/}"
  start=$SECONDS
  echo "## $rel" >>"$LOG"
  out="$OBJDIR/$(basename "$src").txt"
  if "$NVCC" "${FLAGS[@]}" -c "$src" -o "$OBJDIR/$(basename "$src").o" >"$out" 2>&1; then
    echo "check_cuda: ok    $rel ($((SECONDS - start)) s)"
  else
    echo "check_cuda: FAIL  $rel"
    grep -v "^ptxas info\|^    [0-9]* bytes stack" "$out" | tail -n 40 >&2
    failed=1
  fi
  cat "$out" >>"$LOG"
done
if [[ ${#SOURCES[@]} -eq 0 ]]; then
  echo "check_cuda: no sources under csrc/kernels/cuda"
fi

# One line per kernel and arch: registers, spills, stack, shared memory.
demangle() { if command -v c++filt >/dev/null; then c++filt; else cat; fi; }
awk '
  /Compiling entry function/ {
    match($0, /function .[^ ]+. for .sm_[0-9a-z]+./); s = substr($0, RSTART + 10, RLENGTH - 10)
    split(s, p, " for "); fn = p[1]; arch = p[2]; gsub(/\047/, "", fn); gsub(/\047/, "", arch)
    stack = spst = spld = 0; next
  }
  /bytes stack frame/ { stack = $1; spst = $5; spld = $9; next }
  /Used [0-9]+ registers/ {
    regs = $0; sub(/.*Used /, "", regs); sub(/ registers.*/, "", regs)
    smem = 0; if (match($0, /[0-9]+ bytes smem/)) smem = substr($0, RSTART, RLENGTH - 11)
    flag = (spst + spld > 0) ? "  SPILLS" : ""
    printf "%-7s regs %3d  spill st/ld %4d/%-4d  stack %4d  smem %6d  %s%s\n", arch, regs, spst, spld, stack, smem, fn, flag
  }
' "$LOG" | demangle | sed -e 's/void //; s/sk::cuda::(anonymous namespace):://; s/sk::cuda:://g; s/>(.*$/>/' \
  | tee "${LOG%.log}.summary.txt"

if [[ $failed -ne 0 ]]; then
  echo "check_cuda: compile errors (full log: $LOG)" >&2
  exit 1
fi
echo "check_cuda: ${#SOURCES[@]} file(s) compiled for ${ARCHS}; ptxas report in $LOG"
