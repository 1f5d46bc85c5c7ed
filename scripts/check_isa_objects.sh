#!/usr/bin/env bash
# Checks that the baseline (scalar) CPU kernel objects hold no AVX/AVX-512 instruction and the AVX2 objects no
# AVX-512 one: a baseline object with a ymm/zmm register in it would crash (SIGILL) on an older CPU.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$(ls -d "$root"/build/cmake-* 2>/dev/null | head -1)"
[ -n "$build" ] || { echo "check_isa_objects: no build directory under $root/build; build first" >&2; exit 1; }
status=0
check() {  # $1 isa, $2 forbidden register regex
  local objs; objs=$(find "$build" -path "*sk_cpu_$1.dir*" -name "*.o")
  [ -n "$objs" ] || { echo "check_isa_objects: no objects for $1" >&2; status=1; return; }
  local n; n=$(for o in $objs; do objdump -d --no-show-raw-insn "$o"; done | grep -c -E "$2" || true)
  if [ "$n" != "0" ]; then echo "FAIL: $n instructions using $2 in the $1 objects"; status=1;
  else echo "ok: no $2 in the $1 objects ($(echo $objs | wc -w) files)"; fi
}
check scalar '%ymm|%zmm'
check avx2 '%zmm'
exit $status
