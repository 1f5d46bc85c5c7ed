#!/usr/bin/env bash
# The CPU half of issue 5's evidence on the GPU machine's 16-core Xeon (AVX-512,
# AVX512-BF16): run it as a second `run` call right after scripts/gpu_round.sh,
# while the machine is warm (the build that round made is reused; nothing is
# rebuilt here).
#
#   scripts/cpu_targets_round.sh OUTDIR
#
# Writes OUTDIR/targets-all (the targets suite at all cores: 1 -> 16 thread
# scaling, AVX-512 kernels) and, time permitting, OUTDIR/targets-2t (2 threads,
# comparable with the 2-core development machine's runs), each with its log.
# Commit them under bench/results/ with the machine, commit and date.
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
[[ -z "${PYTHON:-}" && -x "$ROOT/.venv/bin/python" ]] && PY="$ROOT/.venv/bin/python"
export PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
BUDGET="${SK_ROUND_BUDGET_S:-560}"
START=$SECONDS

"$PY" -c "import sparsekernels as sk, torch; print('cpu isa', sk.cpu_isa(), 'threads', torch.get_num_threads())" \
  2>&1 | tee "$OUT/info.log"
lscpu | grep -E "Model name|^CPU\(s\)" | tee -a "$OUT/info.log"

# Shorter measurements than the default (0.3-3 s) so both runs fit one call; a run stopped by the time
# limit still leaves its finished rows in results.partial.jsonl.
FAST=(--min-time 0.1 --max-time 1.0)
left=$((BUDGET - (SECONDS - START) - 20))
timeout --kill-after=10 "$left" "$PY" -m sparsekernels.bench --suite targets --device cpu "${FAST[@]}" \
  --out "$OUT/targets-all" 2>&1 | tee "$OUT/targets-all.log"
left=$((BUDGET - (SECONDS - START) - 20))
if ((left > 90)); then
  timeout --kill-after=10 "$left" "$PY" -m sparsekernels.bench --suite targets --device cpu --threads 2 \
    "${FAST[@]}" --out "$OUT/targets-2t" 2>&1 | tee "$OUT/targets-2t.log"
fi
echo "cpu_targets_round: $((SECONDS - START)) s" | tee -a "$OUT/info.log"
