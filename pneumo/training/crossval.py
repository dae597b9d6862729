"""Cross-validation over all 5,216 training X-rays: out-of-fold probabilities, one CSV.

Each fold is an ordinary train.py run that holds out one patient-grouped, class-stratified fold
(`python train.py --folds 5 --fold k --out runs/cv5-fk ...`). At its end it writes `oof.csv`:
its own fold's images with the probability the fold's model gives them, which it never trained on.

    python -m pneumo.training.crossval combine runs/cv5-f0 runs/cv5-f1 ... --out runs/cv5/oof.csv

checks that the runs are the folds of one split (same K, split seed and data set; every fold
once; every training image exactly once) and writes them as one CSV.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from pneumo.bundle import CLASS_NAMES, read_bundle
from pneumo.training.data import Sample, list_split, series_of, split_seed_of

OOF_FILE = "oof.csv"
OOF_COLUMNS = ("file", "label", "fold", "patient", "series", "stored_size", "probability")


def write_out_of_fold(path: Path, samples: list[Sample], sizes: np.ndarray, prob: np.ndarray, fold: int) -> None:
    """One row per held-out image of a fold, with the fold's model's probability."""
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(OOF_COLUMNS)
        for sample, size, p in zip(samples, sizes, prob):
            writer.writerow([sample.path.name, CLASS_NAMES[sample.label], fold, sample.patient, series_of(sample.path.name),
                             f"{size[0]}x{size[1]}", f"{float(p):.6f}"])
    tmp.replace(path)


def read_out_of_fold(path: str | Path) -> list[dict]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["fold"], row["probability"] = int(row["fold"]), float(row["probability"])
    return rows


def combine(run_dirs: list[Path], data_dir: str | None = None) -> list[dict]:
    """The out-of-fold rows of the runs, checked to be the folds of one split of the training folder.
    Raises ValueError, naming the run, when they are not."""
    configs = []
    for run in run_dirs:
        config = read_bundle(run / "pneumonia.keras").config
        if not config or not config.get("folds"):
            raise ValueError(f"{run}: not a cross-validation run (its metrics.json has no --folds)")
        if not (run / OOF_FILE).is_file():
            raise ValueError(f"{run}: no {OOF_FILE} (the run has not finished)")
        configs.append(config)
    keys = {(c["folds"], split_seed_of(c), data_dir or c["data_dir"]) for c in configs}
    if len(keys) != 1:
        raise ValueError(f"the runs are folds of different splits (folds, split seed, data set): {sorted(keys)}")
    n_folds, _, data = keys.pop()
    folds = sorted(c["fold"] for c in configs)
    if folds != list(range(n_folds)):
        raise ValueError(f"need each of the {n_folds} folds once, got folds {folds}")
    rows = [row for run in run_dirs for row in read_out_of_fold(run / OOF_FILE)]
    expected = {s.path.name for s in list_split(data, "train")}
    names = [row["file"] for row in rows]
    if len(names) != len(set(names)) or set(names) != expected:
        raise ValueError(f"the folds' images are not the training folder's {len(expected)} images exactly once "
                         f"({len(names)} rows, {len(set(names))} distinct)")
    return sorted(rows, key=lambda row: row["file"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo.training.crossval", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    joined = sub.add_parser("combine", help="the folds' oof.csv files as one CSV, checked")
    joined.add_argument("runs", nargs="+", type=Path, help="the fold runs' output folders")
    joined.add_argument("--data-dir", default=None, help="default: the data set in the runs' metrics.json")
    joined.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        rows = combine(args.runs, args.data_dir)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=OOF_COLUMNS)
        writer.writeheader()
        writer.writerows({**row, "probability": f"{row['probability']:.6f}"} for row in rows)
    print(f"wrote {len(rows)} out-of-fold probabilities from {len(args.runs)} folds to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
