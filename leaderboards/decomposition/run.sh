#!/usr/bin/env bash
# Reference decomposition runs on the shipped Shapes models (2-core CPU, shared machine).
# Usage: bash leaderboards/decomposition/run.sh dense|sparse|spurious
# spurious needs `interpbench train clip spurious` first (not shipped); it runs the spurious-cue
# experiment only, on 1,000 images so that each of the 24 (shape, background) groups has ~20.
set -euo pipefail
name=${1:?dense, sparse or spurious}
out=results/decomposition
log=leaderboards/decomposition/shapes_${name}.log
if [ "$name" = spurious ]; then
  cmd=(spurious --n-images 1000)
else
  cmd=(all --n-images 200)
fi
interpbench decompose "${cmd[@]}" --model "shapes:${name}" --texts-per-head 10 --last-layers 4 \
  --pool shapes+general --n-heads 2 --n-random 5 --seed 0 --out "$out" 2>&1 \
  | grep -v -e 'it/s\]' -e '^WARNING' | tee "$log"
mkdir -p "leaderboards/decomposition/shapes_${name}"
cp "$out/shapes_${name}"/*.png "leaderboards/decomposition/shapes_${name}/" 2>/dev/null || true
cp "$out/shapes_${name}.json" "leaderboards/decomposition/shapes_${name}.json"
python -c "
import json, sys
from interpbench.decomposition.record import summary_markdown
from interpbench.ioutils import atomic_write_text
rec = json.load(open('leaderboards/decomposition/shapes_${name}.json'))
atomic_write_text('leaderboards/decomposition/shapes_${name}.md', summary_markdown(rec))
"
