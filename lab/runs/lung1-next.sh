#!/usr/bin/env bash
# Campaign lung1 (docs/TRAINING.md), after run 2: wait for it, measure it on validation, and start
# run 3 only if the pre-registered sequence says so (neither run meets the ship rule): the variant
# whose run has the higher shift score, training seed 1 (split seed 42: the same validation split), the recipe otherwise unchanged.
set -euo pipefail
PY=${PY:-.venv/bin/python}
while pgrep -f "train.py --resume --out runs/lung1-b" > /dev/null; do sleep 30; done
$PY -m pneumo.training.lungstep --validation runs/lung1-b > /dev/null
NEXT=$($PY - <<'PYEOF'
import json
runs = {"dim": "runs/lung1-a", "crop": "runs/lung1-b"}
reports = {kind: json.load(open(f"{run}/lung1-validation.json")) for kind, run in runs.items()}
if any(r["ships"] for r in reports.values()):
    print("none")
else:
    scores = {kind: r["checks"]["shift_score"]["value"] for kind, r in reports.items()}
    print(max(scores, key=scores.get))  # the rule's ties (0.002) only decide the pick, not run 3's variant
PYEOF
)
echo "lung1 after run 2: run 3 = $NEXT ($(date -u +%H:%M) UTC)"
[ "$NEXT" = none ] && exit 0
exec $PY train.py --epochs 24 --batch-size 32 --contrast 0.25 --gamma 0.3 --ema 0.998 --noise 10 \
    --degrade-min-size 150 --sharpness 1.0 --local-contrast 0.7 --jpeg-quality 50 \
    --lung-step "$NEXT" --seed 1 --split-seed 42 --out runs/lung1-c
