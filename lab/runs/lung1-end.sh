#!/usr/bin/env bash
# Campaign lung1 (docs/TRAINING.md), after run 3: measure it on validation, pick by the pre-registered
# rule (the highest shift score; within 0.002, the higher validation AUC), then the pick's one test read.
set -euo pipefail
PY=${PY:-.venv/bin/python}
while pgrep -f "out runs/lung1-c" > /dev/null; do sleep 20; done
$PY -m pneumo.training.lungstep --validation runs/lung1-c > /dev/null
PICK=$($PY - <<'PYEOF'
import json
runs = ["runs/lung1-a", "runs/lung1-b", "runs/lung1-c"]
checks = {run: json.load(open(f"{run}/lung1-validation.json"))["checks"] for run in runs}
best = max(checks[r]["shift_score"]["value"] for r in runs)
tied = [r for r in runs if checks[r]["shift_score"]["value"] >= best - 0.002]
print(max(tied, key=lambda r: checks[r]["validation_auc"]["value"]))
PYEOF
)
echo "lung1 pick: $PICK ($(date -u +%H:%M) UTC)"
$PY -m pneumo.training.lungstep --test "$PICK" > /dev/null
echo "test read written to $PICK/lung1-test.json ($(date -u +%H:%M) UTC)"
