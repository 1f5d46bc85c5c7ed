#!/usr/bin/env bash
# Syntax-checks the CUDA glue (csrc/ops/cuda/*.cpp) with the host compiler, on a
# machine without a GPU or a CUDA build of torch: a CPU-only torch wheel ships
# the ATen/cuda and c10/cuda headers, the CUDA toolkit provides cuda_runtime.h.
# Only c10/cuda/impl/cuda_cmake_macros.h (generated when torch is built with
# CUDA) is missing from a CPU wheel; a stand-in is generated here. This checks
# that the glue compiles and that every kernel function it calls is defined by
# the objects of scripts/check_cuda.sh (run first); scripts/gpu_round.sh links it.
#
#   scripts/check_cuda_glue.sh        (about 30 s per file: torch headers)
#
# Environment: PYTHON (default python3, must import torch), CXX (default c++),
# CUDA_HOME (else next to nvcc, else /usr/local/cuda). Without the CUDA
# headers it prints a message and exits 0.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
CXX="${CXX:-c++}"

CANDIDATES=()
[[ -n "${CUDA_HOME:-}" ]] && CANDIDATES+=("$CUDA_HOME")
if command -v nvcc >/dev/null; then
  CANDIDATES+=("$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")")
fi
CANDIDATES+=(/usr/local/cuda)
CUDA_ROOT=""
for dir in "${CANDIDATES[@]}"; do
  if [[ -f "$dir/include/cuda_runtime.h" ]]; then
    CUDA_ROOT="$dir"
    break
  fi
done
if [[ -z "$CUDA_ROOT" ]]; then
  echo "check_cuda_glue: cuda_runtime.h not found (looked in: ${CANDIDATES[*]}), skipping"
  exit 0
fi

shopt -s nullglob
SOURCES=("$ROOT"/csrc/ops/cuda/*.cpp)
if [[ ${#SOURCES[@]} -eq 0 ]]; then
  echo "check_cuda_glue: no sources under csrc/ops/cuda"
  exit 0
fi

GEN="$(mktemp -d)"
trap 'rm -rf "$GEN"' EXIT
mapfile -t TORCH_INCLUDES < <("$PY" -c "
from torch.utils.cpp_extension import include_paths
print('\n'.join(include_paths()))")
ABI="$("$PY" -c "import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))")"

# build_info.h as CMake would generate it (values do not matter for a syntax check).
sed -e 's/@[A-Za-z_]*@//g' "$ROOT/cmake/build_info.h.in" >"$GEN/build_info.h"
has_macros=0
for dir in "${TORCH_INCLUDES[@]}"; do
  [[ -f "$dir/c10/cuda/impl/cuda_cmake_macros.h" ]] && has_macros=1
done
if [[ $has_macros -eq 0 ]]; then
  mkdir -p "$GEN/c10/cuda/impl"
  printf '#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n' >"$GEN/c10/cuda/impl/cuda_cmake_macros.h"
fi

FLAGS=(-std=c++17 -O0 -Wall -Wno-unused-function -D_GLIBCXX_USE_CXX11_ABI="$ABI" -DSK_WITH_CUDA=1
       -I"$ROOT/csrc" -I"$GEN" -isystem "$CUDA_ROOT/include")
for dir in "${TORCH_INCLUDES[@]}"; do FLAGS+=(-isystem "$dir"); done

failed=0
for src in "${SOURCES[@]}"; do
  rel="${src#"$ROOT"/}"
  start=$SECONDS
  if "$CXX" "${FLAGS[@]}" -c "$src" -o "$GEN/$(basename "$src").o"; then
    echo "check_cuda_glue: ok    $rel ($((SECONDS - start)) s)"
  else
    echo "check_cuda_glue: FAIL  $rel"
    failed=1
  fi
done

# Link check without a link: every sk::cuda:: function the glue calls must be
# defined (T) or instantiated (W) by the kernel objects of scripts/check_cuda.sh
# (a template instantiated for other types would otherwise fail only when the
# extension is built against CUDA torch, on the GPU machine).
KOBJ="${SK_CUDA_OBJECTS:-$ROOT/build/check_cuda/objects}"
shopt -s nullglob
KERNEL_OBJECTS=("$KOBJ"/*.o)
GLUE_OBJECTS=("$GEN"/*.o)
if [[ $failed -eq 0 && ${#KERNEL_OBJECTS[@]} -gt 0 && ${#GLUE_OBJECTS[@]} -gt 0 ]] && command -v nm >/dev/null; then
  nm -C --defined-only "${KERNEL_OBJECTS[@]}" | sed -nE 's/^[0-9a-f]+ [TW] //p' | sort -u >"$GEN/defined.txt"
  nm -C --undefined-only "${GLUE_OBJECTS[@]}" | sed -nE 's/^ +U //p' | grep '^[^(]*sk::cuda::' | sort -u >"$GEN/needed.txt" || true
  missing="$(comm -23 "$GEN/needed.txt" "$GEN/defined.txt")"
  if [[ -n "$missing" ]]; then
    echo "check_cuda_glue: FAIL  the glue calls CUDA kernel functions no kernel object defines:" >&2
    echo "$missing" >&2
    failed=1
  else
    echo "check_cuda_glue: ok    $(wc -l <"$GEN/needed.txt") sk::cuda:: function(s) the glue calls are defined by $KOBJ"
  fi
elif [[ $failed -eq 0 ]]; then
  echo "check_cuda_glue: no kernel objects in $KOBJ (run scripts/check_cuda.sh first): symbol check skipped"
fi
exit $failed
