#!/usr/bin/env bash
# Campaign cv5 (docs/TRAINING.md): the five folds one after another, each resumed from its
# checkpoint if one is there. Run from the repository root: nohup bash runs/cv5.sh > runs/cv5.log 2>&1 &
set -u
PY=${PY:-.venv/bin/python}
RECIPE="--epochs 24 --batch-size 32 --contrast 0.25 --gamma 0.3 --ema 0.998 --noise 10 --degrade-min-size 150 --sharpness 1.0 --local-contrast 0.7 --jpeg-quality 50 --seed 42 --folds 5"
for k in 0 1 2 3 4; do
    out=runs/cv5-f$k
    if [ -f "$out/oof.csv" ]; then echo "fold $k: done"; continue; fi
    if [ -f "$out/checkpoint/state.json" ]; then
        echo "fold $k: resuming $(date -u +%H:%M)"; $PY train.py --resume --out "$out" || exit 1
    else
        echo "fold $k: starting $(date -u +%H:%M)"; $PY train.py $RECIPE --fold $k --out "$out" || exit 1
    fi
done
echo "all folds done $(date -u +%H:%M)"
