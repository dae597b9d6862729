"""Ship a cross-validation campaign (docs/TRAINING.md, campaign cv5): its fold networks as one
bundle, or one network trained on all of train/ at the threshold the folds' out-of-fold scores set.

    python -m pneumo.training.release lab/runs/cv5-f0 lab/runs/cv5-f1 lab/runs/cv5-f2 lab/runs/cv5-f3 lab/runs/cv5-f4 --out weights
    python -m pneumo.training.release lab/runs/cv5-f0 ... lab/runs/cv5-f4 --network lab/runs/cv5-all --out weights

writes into --out:
- pneumonia.keras: the folds' networks as one model, the sigmoid of the mean of their logits
  (pneumo.training.model.ensemble; each member the published network, explained from its own block5_sepconv2),
  or with --network that run's network (train.py --val-fraction 0: no validation of its own);
- metrics.json: the threshold by the campaign's rule on the out-of-fold scores (pneumo.training.crossval),
  those scores' validation numbers (overall, per stored size, per series, with intervals), the test
  split's numbers at that threshold with 95 % bootstrap intervals, and the members;
- history.json: each member's training curves (or the network's); the model card and its figures.

The test split is read here, once, for what ships. Nothing is chosen on it: the members, their
epochs and the threshold are fixed before it is read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from pneumo.bundle import CLASS_NAMES, HISTORY_FILE, MODEL_FILE, read_bundle, read_json
from pneumo.training.crossval import combine, oof_report, oof_threshold
from pneumo.training.data import DEFAULT_CACHE_DIR, SHARP_MIN_SIDE, labels_of, load_images, optional_test_split
from pneumo.training.report import evaluation, git_commit, write_json, write_report

CV_RULE = ("the highest threshold at which the lower end of the 95 % Wilson interval of out-of-fold sensitivity stays at or above "
           "0.95 over all {pneumonias:,} training pneumonias and within the bacteria and virus series ({folds}-fold patient-grouped "
           "cross-validation of the training folder, campaign cv5, `docs/TRAINING.md`)")
THRESHOLD_SOURCE = "out-of-fold scores of all {images:,} training X-rays"
CARRIED_SOURCE = ("out-of-fold scores of all {images:,} training X-rays ({folds} fold networks'), carried over to this network, "
                  "trained on all of them with the same recipe and epochs")


def members_of(runs: list[Path], rows: list[dict]) -> list[dict]:
    """What each fold network brings: its fold, epochs, validation AUC and the threshold the rule
    would pick on its own fold alone (their spread says how firm the pooled threshold is)."""
    members = []
    for run in runs:
        bundle = read_bundle(run / MODEL_FILE)
        fold = int(bundle.config["fold"])
        own = [r for r in rows if r["fold"] == fold]
        members.append({
            "run": str(run), "fold": fold, "best_epoch": bundle.metrics.get("best_epoch"), "epochs_run": bundle.metrics.get("epochs_run"),
            "training_seconds": bundle.metrics.get("training_seconds"), "fold_auc": bundle.metrics["validation"]["auc"],
            "fold_images": len(own), "fold_threshold": oof_threshold(own)["threshold"], "git_commit": bundle.metrics.get("git_commit"),
        })
    return members


def ensemble_history(runs: list[Path]) -> dict:
    """history.json of an ensemble: each member's own curves (validated on its own fold)."""
    members = []
    for run in runs:
        history = read_json(run / HISTORY_FILE) or {}
        members.append({"fold": int(read_bundle(run / MODEL_FILE).config["fold"]), "best_epoch": history.get("best_epoch"),
                        "epochs": history.get("epochs", [])})
    return {"monitor": "val_auc", "members": members}


def release(runs: list[Path], out: Path, data_dir: str | None = None, cache_dir: str | None = str(DEFAULT_CACHE_DIR),
            bootstrap: int = 2000, network: Path | None = None) -> dict:
    """Write the bundle into `out` and return its metrics. Raises ValueError when the runs are not
    the folds of one split (crossval.combine) or `network` is not a run on all of their images, and
    FileNotFoundError when a file is missing."""
    rows = combine(runs, data_dir)
    first = read_bundle(runs[0] / MODEL_FILE)
    cfg = {k: v for k, v in first.config.items() if k != "fold"}
    alone = None
    if network is not None:
        alone = read_bundle(network / MODEL_FILE)
        if not alone.config or alone.config.get("val_fraction") != 0 or alone.config.get("folds"):
            raise ValueError(f"{network}: not a run on all of train/ (train.py --val-fraction 0)")
        if alone.metrics.get("data", {}).get("train") != len(rows):
            raise ValueError(f"{network} trained on {alone.metrics.get('data', {}).get('train')} images, the folds cover {len(rows)}")
        cfg = alone.config
    data = data_dir or cfg["data_dir"]
    test = optional_test_split(data)
    rule = oof_threshold(rows)
    threshold = rule["threshold"]
    oof = oof_report(rows, threshold, bootstrap=bootstrap)
    members = members_of(runs, rows)

    from pneumo.reading.networks import load_model, predict_gray
    from pneumo.training.model import ensemble

    model = load_model(network / MODEL_FILE) if network is not None else ensemble([load_model(run / MODEL_FILE) for run in runs])
    y_oof = np.array([CLASS_NAMES.index(r["label"]) for r in rows])
    p_oof = np.array([r["probability"] for r in rows], dtype=np.float64)
    sharp = np.array([min(int(v) for v in r["stored_size"].split("x")) >= SHARP_MIN_SIDE for r in rows])
    y_test = p_test = None
    if test:  # the one read of the test split
        gray, _ = load_images(test, cache_dir)
        y_test, p_test = labels_of(test), predict_gray(model, gray)
    pneumonias = int(y_oof.sum())
    metrics = evaluation(y_oof, p_oof, sharp, y_test, p_test, threshold,
                         CV_RULE.format(pneumonias=pneumonias, folds=len(runs)), validation_shift=None, bootstrap=bootstrap)
    metrics["validation"] = oof["overall"]  # with its bootstrap intervals
    metrics.update({
        "threshold_source": (CARRIED_SOURCE if alone else THRESHOLD_SOURCE).format(images=len(rows), folds=len(runs)),
        "threshold_candidates": rule["candidates"], "threshold_binding": rule["binding"],
        "validation_by_series": oof["series"], "validation_worst": oof["worst"],
        "validation_of": "the fold networks' out-of-fold scores" + (" (this network has no validation split of its own)" if alone else ""),
    })
    if alone:
        metrics.update({"carried_threshold": {"folds": members}, "best_epoch": alone.metrics["best_epoch"],
                        "epochs_run": alone.metrics["epochs_run"], "training_seconds": alone.metrics["training_seconds"]})
    else:
        metrics.update({
            "ensemble": {"combine": "sigmoid of the mean of the members' logits",
                         "heatmap": "mean of the members' maps, each from its own block5_sepconv2", "members": members},
            "best_epoch": None, "epochs_run": max(int(m["epochs_run"]) for m in members),
            "training_seconds": float(sum(m["training_seconds"] or 0 for m in members))})
    metrics.update({
        "data": {"train": len(rows), "train_pneumonia": pneumonias, "train_normal": len(rows) - pneumonias, "val": len(rows),
                 "test": len(test)},
        "seed": (alone or first).metrics.get("seed"), "config": cfg, "versions": (alone or first).metrics.get("versions"),
        "git_commit": git_commit(),
    })
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / MODEL_FILE)
    write_json(out / HISTORY_FILE, read_json(network / HISTORY_FILE) if alone else ensemble_history(runs))
    write_report(out, metrics, y_test, p_test)
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo.training.release", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="the fold runs' output folders, one per fold")
    parser.add_argument("--out", required=True, type=Path, help="the bundle folder to write (weights/ ships)")
    parser.add_argument("--network", type=Path, default=None,
                        help="ship this run's network (train.py --val-fraction 0) at the folds' threshold instead of the folds joined")
    parser.add_argument("--data-dir", default=None, help="default: the data set in the runs' metrics.json")
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR), help="decoded-image cache ('' for none)")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for 95%% intervals")
    args = parser.parse_args(argv)
    try:
        metrics = release(args.runs, args.out, args.data_dir, args.cache_dir or None, args.bootstrap, args.network)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from pneumo.training.evaluate import format_metrics

    what = f"the network of {args.network}" if args.network else f"{len(args.runs)} members"
    print(f"wrote {args.out}: {what}, threshold {metrics['threshold']:.4f} ({metrics['threshold_binding']} binds)")
    print("out-of-fold (validation):\n" + format_metrics(metrics["validation"]))
    if metrics.get("test"):
        print("test:\n" + format_metrics(metrics["test"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
