#!/usr/bin/env bash
# Regenerates the committed Shapes leaderboard, its controls, the SAE reseed view, the analyses'
# columns and the metric-validity report from the shipped reference models (offline, CPU).
# Usage: bash leaderboards/regenerate.sh [RESULTS_DIR]     (from the repository root)
set -euo pipefail
R=${1:-results}
interpbench evaluate --results "$R" -q          # shapes:dense, shapes:sparse, shapes:sae, shapes:sae-resid (judge: groundtruth)
interpbench evaluate --results "$R" -q \
  --model control:random@shapes:dense --model control:untrained@shapes:dense \
  --model control:random@shapes:sparse --model control:untrained@shapes:sparse \
  --model control:random@shapes:sae --model control:random-decoder@shapes:sae \
  --model control:random@shapes:sae-resid --model control:random-decoder@shapes:sae-resid
interpbench train sae --seeds 0,1,2 --out runs  # shapes:sae's recipe once per seed (seed 0 = the shipped one)
interpbench evaluate --results "$R" -q $(for s in 0 1 2; do echo --model sae:interpbench:./runs/sae-seed$s@shapes:dense; done)
interpbench analyze run shapes:dense shapes:sparse shapes:sae --results "$R" --figures leaderboards/analyses
interpbench analyze report --results "$R" --out leaderboards/analyses
interpbench validate-metrics --results "$R" --out leaderboards/validity.md
interpbench leaderboard --results "$R" --out leaderboards
