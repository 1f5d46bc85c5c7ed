#!/usr/bin/env bash
# The main job: sets up ./.venv if needed, builds, runs the benchmark harness on the present device.
# Default: the quick suite into bench-out/; extra args go to `python -m sparsekernels.bench`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$SK_ROOT"
if [ "$#" -eq 0 ]; then set -- --suite quick --out bench-out; fi
python -m sparsekernels.bench "$@"
