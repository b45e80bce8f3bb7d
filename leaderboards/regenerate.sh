#!/usr/bin/env bash
# Regenerates the committed Shapes leaderboard, its controls, the SAE reseed view, the analyses'
# columns and the metric-validity report from the shipped reference models (offline, CPU).
# Usage: bash leaderboards/regenerate.sh [RESULTS_DIR]     (from the repository root)
set -euo pipefail
R=${1:-results}
# the four shipped models and their matching controls (random codes for each; untrained for the
# CLIPs, a random decoder for the SAEs), which the verdicts, the rank and the bold cells need
interpbench evaluate --results "$R" -q --controls
interpbench train sae --seeds 0,1,2 --out runs  # shapes:sae's recipe once per seed (seed 0 = the shipped one)
interpbench evaluate --results "$R" -q $(for s in 0 1 2; do echo --model sae:interpbench:./runs/sae-seed$s@shapes:dense; done)
interpbench analyze run shapes:dense shapes:sparse shapes:sae --results "$R" --figures leaderboards/analyses
# the same analyses on controls, so an analysis column is bold only where a trained model beats one
interpbench analyze run control:untrained@shapes:dense control:untrained@shapes:sparse \
  control:random-decoder@shapes:sae --results "$R"
interpbench analyze report --results "$R" --out leaderboards/analyses
interpbench validate-metrics --results "$R" --out leaderboards/validity.md
interpbench leaderboard --results "$R" --out leaderboards
