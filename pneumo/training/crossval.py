"""Cross-validation over all 5,216 training X-rays: out-of-fold probabilities, one CSV.

Each fold is an ordinary train.py run that holds out one patient-grouped, class-stratified fold
(`python train.py --folds 5 --fold k --out lab/runs/cv5-fk ...`). At its end it writes `oof.csv`:
its own fold's images with the probability the fold's model gives them, which it never trained on.

    python -m pneumo.training.crossval combine lab/runs/cv5-f0 lab/runs/cv5-f1 ... --out lab/runs/cv5/oof.csv

checks that the runs are the folds of one split (same K, split seed and data set; every fold
once; every training image exactly once) and writes them as one CSV.

    python -m pneumo.training.crossval report lab/runs/cv5/oof.csv [--json lab/runs/cv5/oof-report.json]
    python -m pneumo.training.crossval ensemble lab/runs/cv5-f0 ... lab/runs/cv5-f4 --out lab/runs/cv5/pneumonia.keras

chooses the threshold by the campaign's rule (docs/TRAINING.md: the highest at which the lower end
of the 95 % Wilson interval of out-of-fold sensitivity stays >= 0.95 over all pneumonias and within
each pneumonia series) and reports validation numbers only: AUC, sensitivity and specificity at it,
overall, per series and per stored size, with intervals, and the worst files. `ensemble` joins the
folds' networks into one model (pneumo.training.model.ensemble: the sigmoid of their mean logit).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from pneumo.bundle import CLASS_NAMES, predicted_label, read_bundle
from pneumo.training.data import SHARP_MIN_SIDE, Sample, list_split, series_of, split_seed_of
from pneumo.training.metrics import floor_threshold, metrics_with_intervals

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


PNEUMONIA_SERIES = ("bacteria", "virus")
MIN_SENSITIVITY, CONFIDENCE = 0.95, 0.95


def _arrays(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([CLASS_NAMES.index(r["label"]) for r in rows]), np.array([r["probability"] for r in rows], dtype=np.float64)


def oof_threshold(rows: list[dict], min_sensitivity: float = MIN_SENSITIVITY, confidence: float = CONFIDENCE) -> dict:
    """The campaign's rule: the highest threshold whose sensitivity floor (lower end of the Wilson
    interval >= min_sensitivity) holds over all pneumonias and within each pneumonia series; the
    candidates of each part are returned too, the binding one is the lowest."""
    y, p = _arrays(rows)
    series = np.array([r["series"] for r in rows])
    parts = {"all": np.ones(len(rows), bool)} | {name: (y == 0) | (series == name) for name in PNEUMONIA_SERIES}
    candidates = {name: floor_threshold(y[mask], [p[mask]], min_sensitivity, confidence) for name, mask in parts.items() if (y[mask] == 1).any()}
    return {"threshold": min(candidates.values()), "candidates": candidates, "binding": min(candidates, key=candidates.get)}


def _wilson(k: int, n: int) -> list[float]:
    from scipy.stats import binomtest

    interval = binomtest(k, n).proportion_ci(0.95, method="wilson")
    return [float(interval.low), float(interval.high)]


def oof_report(rows: list[dict], threshold: float, worst: int = 5, bootstrap: int = 2000) -> dict:
    """Validation numbers of the out-of-fold scores at `threshold` (never test)."""
    y, p = _arrays(rows)
    report = {"threshold": threshold, "overall": metrics_with_intervals(y, p, threshold, bootstrap), "series": {}, "stored_size": {},
              "worst": {}}
    called = predicted_label(p, threshold)
    for name in sorted({r["series"] for r in rows}):
        mask = np.array([r["series"] == name for r in rows])
        label = int(y[mask][0])
        hits = int((called[mask] == label).sum())
        kind = "sensitivity" if label == 1 else "specificity"
        report["series"][name] = {"images": int(mask.sum()), kind: hits / int(mask.sum()), f"{kind}_ci95": _wilson(hits, int(mask.sum()))}
        order = np.argsort(p[mask])  # lowest first
        picks = order[:worst] if label == 1 else order[::-1][:worst]
        names = np.array([r["file"] for r in rows])[mask]
        report["worst"][name] = [{"file": str(names[i]), "probability": float(p[mask][i])} for i in picks]
    sides = np.array([min(int(v) for v in r["stored_size"].split("x")) for r in rows])
    for name, mask in (("224px_copies", sides < SHARP_MIN_SIDE), ("originals", sides >= SHARP_MIN_SIDE)):
        if mask.any() and len(set(y[mask])) == 2:
            m = metrics_with_intervals(y[mask], p[mask], threshold, bootstrap)
            report["stored_size"][name] = {key: m[key] for key in ("auc", "sensitivity", "specificity", "counts", "ci95")}
    return report


def format_report(report: dict, rule: dict | None = None) -> str:
    o = report["overall"]
    lines = [f"out-of-fold, {o['counts']['total']} images ({o['counts']['pneumonia']} PNEUMONIA / {o['counts']['normal']} NORMAL), "
             f"threshold {report['threshold']:.4f}" + (f" (binding: {rule['binding']}; candidates " + ", ".join(
                 f"{k} {v:.4f}" for k, v in rule["candidates"].items()) + ")" if rule else "")]
    for key in ("auc", "sensitivity", "specificity", "accuracy"):
        lines.append(f"  {key:<12}{o[key]:.4f}  95% CI [{o['ci95'][key][0]:.4f}, {o['ci95'][key][1]:.4f}]")
    for name, m in report["series"].items():
        kind = "sensitivity" if "sensitivity" in m else "specificity"
        lines.append(f"  series {name:<9} {m['images']:>5} images  {kind} {m[kind]:.4f} [{m[kind + '_ci95'][0]:.4f}, {m[kind + '_ci95'][1]:.4f}]")
    for name, m in report["stored_size"].items():
        lines.append(f"  {name:<16} {m['counts']['total']:>5} images  AUC {m['auc']:.4f}  sensitivity {m['sensitivity']:.4f}  specificity {m['specificity']:.4f}")
    lines.append("  worst files (lowest-scoring pneumonias, highest-scoring NORMALs):")
    for name, files in report["worst"].items():
        lines.append(f"    {name:<9} " + ", ".join(f"{f['file']} {f['probability']:.3f}" for f in files))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo.training.crossval", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    joined = sub.add_parser("combine", help="the folds' oof.csv files as one CSV, checked")
    joined.add_argument("runs", nargs="+", type=Path, help="the fold runs' output folders")
    joined.add_argument("--data-dir", default=None, help="default: the data set in the runs' metrics.json")
    joined.add_argument("--out", required=True, type=Path)
    reported = sub.add_parser("report", help="the rule's threshold and validation numbers of a combined out-of-fold CSV")
    reported.add_argument("csv", type=Path)
    reported.add_argument("--json", dest="json_out", type=Path, default=None)
    joined_models = sub.add_parser("ensemble", help="the folds' networks as one .keras model (mean of their logits)")
    joined_models.add_argument("runs", nargs="+", type=Path)
    joined_models.add_argument("--data-dir", default=None)
    joined_models.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    if args.command == "ensemble":
        try:
            combine(args.runs, args.data_dir)  # the folds of one split, each once
        except (ValueError, FileNotFoundError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        from pneumo.reading.networks import load_model
        from pneumo.training.model import ensemble

        args.out.parent.mkdir(parents=True, exist_ok=True)
        ensemble([load_model(run / "pneumonia.keras") for run in args.runs]).save(args.out)
        print(f"wrote {args.out}: {len(args.runs)} members")
        return 0
    if args.command == "report":
        import json

        rows = read_out_of_fold(args.csv)
        rule = oof_threshold(rows)
        report = oof_report(rows, rule["threshold"])
        print(format_report(report, rule))
        if args.json_out:
            args.json_out.write_text(json.dumps({"rule": rule, **report}, indent=2) + "\n")
        return 0
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
