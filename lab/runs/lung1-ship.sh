#!/usr/bin/env bash
# Campaign lung1 (docs/TRAINING.md): ship the run the rule picked, then rebuild what depends on the
# model. Run only when `python -m pneumo.training.lungstep --validation RUN` says "ships": true.
set -euo pipefail
RUN=${1:-runs/lung1-a}
PY=${PY:-.venv/bin/python}
cp "$RUN"/pneumonia.keras "$RUN"/metrics.json "$RUN"/history.json "$RUN"/MODEL_CARD.md "$RUN"/roc.png "$RUN"/reliability.png weights/
rm -f weights/uncertainty.json weights/population.json
# The indeterminate band from the run's own validation scores (the test numbers inside it: report only).
$PY -m pneumo.training.evaluate --split val --bootstrap 0 --csv /tmp/lung1-val.csv
$PY -m pneumo.training.evaluate --split test --bootstrap 0 --csv /tmp/lung1-test.csv
$PY -m pneumo.training.uncertainty /tmp/lung1-val.csv --source "the validation split of run $(basename "$RUN") (524 X-rays of 10 % of the training patients)" \
    --test-csv /tmp/lung1-test.csv --write
$PY -m pneumo.training.population --write   # how it reads adults and what each set gets; the card's section
$PY -m pneumo.training.gallery              # the teaching gallery of its test mistakes
