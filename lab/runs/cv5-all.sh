#!/usr/bin/env bash
# Campaign cv5's run 7 (docs/TRAINING.md): one network on all 5,216 training X-rays, the shipped recipe,
# 24 epochs, the last kept. Resumes from its checkpoint. Run from the repository root:
#   nohup bash runs/cv5-all.sh > runs/cv5-all.log 2>&1 &
set -u
PY=${PY:-.venv/bin/python}
out=runs/cv5-all
if [ -f "$out/metrics.json" ]; then echo "done"; exit 0; fi
if [ -f "$out/checkpoint/state.json" ]; then
    echo "resuming $(date -u +%H:%M)"; exec $PY train.py --resume --out "$out"
fi
echo "starting $(date -u +%H:%M)"
exec $PY train.py --epochs 24 --batch-size 32 --contrast 0.25 --gamma 0.3 --ema 0.998 --noise 10 --degrade-min-size 150 \
    --sharpness 1.0 --local-contrast 0.7 --jpeg-quality 50 --seed 42 --val-fraction 0 --out "$out"
