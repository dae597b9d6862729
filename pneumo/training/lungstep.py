"""Campaign lung1's measurements (docs/TRAINING.md): the ship rule's checks on validation, then the
one read of the test split for the run the rule picks.

    python -m pneumo.training.lungstep --validation runs/lung1-a   # the four checks, validation only
    python -m pneumo.training.lungstep --test runs/lung1-a         # once, after the choice

Both compare with the shipped model (weights/pneumonia.keras) and write their numbers beside the
run (lung1-validation.json, lung1-test.json). The heat inside the lungs is HiResCAM's (the shipped
default) share of mass inside the segmenter's lungs, for the class each model predicts at its own
threshold (pneumo.training.explanations.in_lungs).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from pneumo.bundle import DEFAULT_MODEL, MODEL_FILE, read_bundle
from pneumo.training.data import DEFAULT_CACHE_DIR, DEFAULT_DATA_DIR, labels_of, list_split, load_images, run_split

R12_SHIFT_SCORE, SEED_SPREAD, MIN_VAL_AUC = 0.984, 0.017, 0.996  # the ship rule's bounds (docs/TRAINING.md, lung1)
METHOD = "hirescam"


def heat_in_lungs(weights: Path, gray: np.ndarray, groups: np.ndarray) -> dict:
    """Per group: images, the lungs' share of the image, HiResCAM's mean share inside them, empty maps."""
    from pneumo.inference import load_classifier
    from pneumo.lungs import load_segmenter
    from pneumo.training.explanations import in_lungs

    model, input_lungs = load_classifier(weights)
    report = in_lungs(model, gray, groups, load_segmenter(), (METHOD,), read_bundle(weights).threshold, input_lungs=input_lungs)
    return {group: {"images": g["images"], "lung_share": round(g["lung_share"], 4),
                    "map_in_lungs": round(g["methods"][METHOD]["map_in_lungs"], 4), "empty": g["methods"][METHOD]["empty"]}
            for group, g in report["groups"].items()}


def called_groups(weights: Path, gray: np.ndarray, labels: np.ndarray, split: str) -> np.ndarray:
    """'<split> PNEUMONIA', '<split> NORMAL called NORMAL' or '... called PNEUMONIA' by this model's reading."""
    from pneumo.inference import load_classifier, predict_gray

    model, lungs = load_classifier(weights)
    called = predict_gray(model, gray, lungs=lungs) >= read_bundle(weights).threshold
    return np.where(labels == 1, f"{split} PNEUMONIA", np.where(called, f"{split} NORMAL called PNEUMONIA", f"{split} NORMAL called NORMAL"))


def validation_checks(run: Path, shipped: Path, data_dir: str, cache_dir: str | None) -> dict:
    """The ship rule's four checks for the run, on its validation split only."""
    bundle = read_bundle(run / MODEL_FILE)
    metrics = bundle.metrics
    shift_score = metrics["validation_shift"]["mean"]["specificity"]
    val_auc = metrics["validation"]["auc"]
    _, val = run_split(data_dir or bundle.config["data_dir"], bundle.config)
    gray, _ = load_images(val, cache_dir, progress=False)
    groups = np.where(labels_of(val) == 1, "validation PNEUMONIA", "validation NORMAL")
    heat = {"run": heat_in_lungs(run / MODEL_FILE, gray, groups), "shipped": heat_in_lungs(shipped, gray, groups)}
    inside = {k: v["validation PNEUMONIA"]["map_in_lungs"] for k, v in heat.items()}
    checks = {
        "shift_score": {"value": shift_score, "bound": R12_SHIFT_SCORE - SEED_SPREAD, "met": shift_score >= R12_SHIFT_SCORE - SEED_SPREAD},
        "validation_auc": {"value": val_auc, "bound": MIN_VAL_AUC, "met": val_auc >= MIN_VAL_AUC},
        "threshold": {"value": bundle.threshold, "met": metrics.get("threshold_rule", "").startswith("the highest threshold")
                      and bundle.threshold > 0},
        "heat_in_lungs": {"value": inside["run"], "bound": inside["shipped"], "met": inside["run"] > inside["shipped"]},
    }
    return {"run": str(run), "checks": checks, "ships": all(c["met"] for c in checks.values()), "heat_in_lungs": heat,
            "note": "the shipped model was trained on all of train/, these validation images included"}


def test_read(run: Path, shipped: Path, data_dir: str, cache_dir: str | None) -> dict:
    """The one read of the test split for the picked run: its metrics (written by train.py, not
    printed there), the heat inside the lungs by reading, and how it reads the adult sets."""
    from pneumo.training.data import DEFAULT_ADULT_DIR, DEFAULT_OTHER_CHILDREN_DIR, DEFAULT_WEB_DIR
    from pneumo.training.population import measure

    bundle = read_bundle(run / MODEL_FILE)
    test = list_split(data_dir, "test")
    gray, _ = load_images(test, cache_dir, progress=False)
    labels = labels_of(test)
    heat = {name: heat_in_lungs(weights, gray, called_groups(weights, gray, labels, "test"))
            for name, weights in (("run", run / MODEL_FILE), ("shipped", shipped))}
    adults = measure(run / MODEL_FILE, DEFAULT_ADULT_DIR, DEFAULT_WEB_DIR, DEFAULT_OTHER_CHILDREN_DIR, Path(data_dir), cache_dir)
    m = bundle.metrics["test"]
    return {"run": str(run), "threshold": bundle.threshold, "auc": m["auc"], "sensitivity": m["sensitivity"],
            "specificity": m["specificity"], "ci95": m["ci95"], "confusion_matrix": m["confusion_matrix"],
            "target_met": m["sensitivity"] >= 0.95 and m["specificity"] >= 0.80, "heat_in_lungs": heat,
            "adult_normal_called_pneumonia": adults["adult_normal_called_pneumonia"], "adult": adults["adult"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo.training.lungstep", description=__doc__.split("\n\n")[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--validation", metavar="RUN", help="the ship rule's checks for this run folder (validation only)")
    what.add_argument("--test", metavar="RUN", help="the one read of the test split, for the run the rule picked")
    parser.add_argument("--shipped", default=str(DEFAULT_MODEL), help="the model to compare with (default: the shipped one)")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR))
    args = parser.parse_args(argv)
    run = Path(args.validation or args.test)
    if not (run / MODEL_FILE).is_file():
        print(f"error: no {MODEL_FILE} in {run}: has its run finished?", file=sys.stderr)
        return 2
    if args.validation:
        report, name = validation_checks(run, Path(args.shipped), args.data_dir, args.cache_dir or None), "lung1-validation.json"
    else:
        report, name = test_read(run, Path(args.shipped), args.data_dir, args.cache_dir or None), "lung1-test.json"
    (run / name).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
