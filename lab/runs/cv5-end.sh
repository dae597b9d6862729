#!/usr/bin/env bash
# Campaign cv5's end, before anything ships (docs/TRAINING.md): join the folds' out-of-fold scores,
# the rule's threshold and their report, the networks joined as one model, its speed measured.
# Nothing here reads a label of the test split (the batch benchmark only times predictions on its files).
set -eu
PY=${PY:-.venv/bin/python}
RUNS="runs/cv5-f0 runs/cv5-f1 runs/cv5-f2 runs/cv5-f3 runs/cv5-f4"
mkdir -p runs/cv5/candidate
$PY -m pneumo.training.crossval combine $RUNS --out runs/cv5/oof.csv
$PY -m pneumo.training.crossval report runs/cv5/oof.csv --json runs/cv5/oof-report.json | tee runs/cv5/oof-report.txt
$PY -m pneumo.training.crossval ensemble $RUNS --out runs/cv5/candidate/pneumonia.keras
$PY -m pneumo.training.bench inference --weights runs/cv5/candidate/pneumonia.keras 2>/dev/null | tail -1 | tee runs/cv5/bench.jsonl
$PY -m pneumo.training.bench batch --weights runs/cv5/candidate/pneumonia.keras 2>/dev/null | tail -1 | tee -a runs/cv5/bench.jsonl
