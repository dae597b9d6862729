"""Write uncertainty.json beside the weights: the local share of pneumonia along the score axis,
estimated from validation X-rays, from which pneumo.operating draws the indeterminate band at any
threshold.

Rule (fixed 2026-12-01, before it was computed): at each of 400 logits spread over the validation
scores' range, the share of pneumonia among the 50 validation X-rays nearest in logit; a reading is
indeterminate where the label the threshold gives is wrong for more than 10 % of those neighbours.
Validation scores only: the validation split of the shipped run (`python -m pneumo.training.evaluate
--split val --csv val.csv`), or out-of-fold scores (`crossval combine`) for a cross-validated model.
The test split's numbers inside the band are printed as a report, never used to set it.

    python -m pneumo.training.evaluate --split val --csv /tmp/val.csv
    python -m pneumo.training.uncertainty /tmp/val.csv --write            # -> weights/uncertainty.json
    python -m pneumo.training.uncertainty /tmp/val.csv --test-csv /tmp/test.csv   # and the test report
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import numpy as np

from pneumo.bundle import CARD_FILE, CLASS_NAMES, DEFAULT_MODEL, UNCERTAINTY_FILE, read_bundle
from pneumo.operating import Band, band_at, local_shares
from pneumo.training.report import set_card_section

NEIGHBOURS = 50
LEVEL = 0.10
GRID_POINTS = 400


def read_scores(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, labels 0/1) from an evaluate --csv or crossval oof.csv file."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"label", "probability"} <= set(rows[0]):
        raise SystemExit(f"{path}: expected a CSV with label and probability columns")
    labels = np.array([CLASS_NAMES.index(r["label"]) if r["label"] in CLASS_NAMES else int(r["label"]) for r in rows])
    return np.array([float(r["probability"]) for r in rows]), labels


def inside(band: Band | None, probabilities: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    """How many X-rays fall in the band, and the error rates inside and outside it."""
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    wrong = (probabilities >= threshold).astype(int) != labels
    held = np.zeros(len(labels), bool) if band is None else (probabilities >= band.low) & (probabilities <= band.high)
    rate = lambda mask: float(wrong[mask].mean()) if mask.any() else math.nan  # noqa: E731
    return {"images": int(len(labels)), "in_band": int(held.sum()), "share_in_band": float(held.mean()),
            "errors": int(wrong.sum()), "errors_in_band": int(wrong[held].sum()),
            "error_rate_in_band": rate(held), "error_rate_outside": rate(~held)}


CALIBRATION_PREVALENCES = (0.02, 0.05, 0.10, 0.20, 0.30, 0.50, 0.74)
CALIBRATION_BINS = 10


def calibration(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """How well the network's probability, moved to a prevalence by Bayes' rule (pneumo.operating.
    at_prevalence), matches the share of pneumonia, on the validation scores: each class weighted to
    the prevalence, the moved probabilities in ten equal-width bins; the expected calibration error
    (the bins' weighted mean gap between mean probability and share of pneumonia) and the largest
    gap of a bin holding at least 2 % of the weight."""
    from pneumo.operating import at_prevalence

    trained_at = float(labels.mean())
    rows = []
    for prevalence in CALIBRATION_PREVALENCES:
        weights = np.where(labels == 1, prevalence / trained_at, (1 - prevalence) / (1 - trained_at))
        moved = np.array([at_prevalence(p, prevalence, trained_at) for p in probabilities])
        bins = np.minimum((moved * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
        ece, worst = 0.0, 0.0
        for b in range(CALIBRATION_BINS):
            inside = bins == b
            weight = weights[inside].sum()
            if weight <= 0:
                continue
            gap = abs(float(np.average(moved[inside], weights=weights[inside])) - float(np.average(labels[inside], weights=weights[inside])))
            ece += weight / weights.sum() * gap
            if weight / weights.sum() >= 0.02:
                worst = max(worst, gap)
        rows.append({"prevalence": prevalence, "ece": round(ece, 4), "worst_bin": round(worst, 4)})
    return {"trained_at": round(trained_at, 4), "bins": CALIBRATION_BINS, "at_prevalence": rows}


def card_text(data: dict, test: dict | None) -> str:
    """The model card's section on the band."""
    v = data["validation"]
    if data["band"] is None:
        return f"No band at the shipped threshold: {data['rule']}, and validation errors are rare even next to it."
    lines = [f"Readings between **{data['band'][0]:.3f} and {data['band'][1]:.3f}** are shown as INDETERMINATE: {data['rule']} "
             f"({data['source']}; `python -m pneumo.training.uncertainty`).",
             f"- Validation: {v['in_band']} of {v['images']} X-rays in the band, holding {v['errors_in_band']} of its {v['errors']} errors "
             f"(error rate {v['error_rate_in_band']:.1%} inside, {v['error_rate_outside']:.1%} outside)."]
    if test:
        lines.append(f"- Test (report only): {test['in_band']} of {test['images']} in the band, holding {test['errors_in_band']} of "
                     f"{test['errors']} errors ({test['error_rate_in_band']:.1%} inside, {test['error_rate_outside']:.1%} outside).")
    if data.get("calibration"):
        rows = data["calibration"]["at_prevalence"]
        lines.append("- Calibration: the page moves each probability from the training mix "
                     f"({data['calibration']['trained_at']:.0%} pneumonia) to the prevalence a person sets, by Bayes' rule. On the "
                     "validation scores, each class weighted to that prevalence, the expected calibration error is "
                     + ", ".join(f"{r['ece']:.3f} at {r['prevalence']:.0%}" for r in rows)
                     + " (ten bins). Measured at the training hospital only: on the test folder's cohort the network scores normal "
                     "children far higher, so there it overstates pneumonia.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo.training.uncertainty", description=__doc__.split("\n\n")[0])
    parser.add_argument("validation_csv", type=Path, help="validation scores (evaluate --split val --csv, or crossval oof.csv)")
    parser.add_argument("--weights", type=Path, default=DEFAULT_MODEL, help="the bundle whose threshold the band is reported at")
    parser.add_argument("--source", default=None, help="what the validation scores are, in words (shown on the page)")
    parser.add_argument("--test-csv", type=Path, default=None, help="also report the test split's numbers inside the band (report only)")
    parser.add_argument("--write", action="store_true", help=f"write {UNCERTAINTY_FILE} beside the weights")
    args = parser.parse_args(argv)

    probabilities, labels = read_scores(args.validation_csv)
    grid, share = local_shares(probabilities, labels, NEIGHBOURS, GRID_POINTS)
    bundle = read_bundle(args.weights)
    source = args.source or f"{len(labels)} validation X-rays"
    data = {"rule": f"indeterminate where more than {LEVEL:.0%} of the {NEIGHBOURS} validation X-rays nearest in logit are misread at the threshold",
            "source": source, "neighbours": NEIGHBOURS, "level": LEVEL, "images": int(len(labels)),
            "logit_grid": [round(float(g), 5) for g in grid], "pneumonia_share": [round(float(s), 5) for s in share]}
    band = band_at(data, bundle.threshold)
    data["threshold"] = bundle.threshold
    data["band"] = None if band is None else [round(band.low, 6), round(band.high, 6)]
    data["validation"] = inside(band, probabilities, labels, bundle.threshold)
    data["calibration"] = calibration(probabilities, labels)
    report = {"threshold": bundle.threshold, "band": data["band"], "validation": data["validation"]}
    if args.test_csv:
        report["test"] = inside(band, *read_scores(args.test_csv), bundle.threshold)
    print(f"threshold {bundle.threshold:.4f}: band {'none' if band is None else f'{band.low:.4f} – {band.high:.4f}'}")
    for split in ("validation", "test"):
        if split in report:
            r = report[split]
            print(f"  {split:10s} {r['in_band']:4d} of {r['images']} in the band ({r['share_in_band']:.1%}); errors {r['errors_in_band']} of "
                  f"{r['errors']} inside; error rate inside {r['error_rate_in_band']:.1%}, outside {r['error_rate_outside']:.1%}")
    print("calibration, the probability moved to each prevalence: " + ", ".join(
        f"{row['prevalence']:.0%} ECE {row['ece']:.3f} (worst bin {row['worst_bin']:.3f})" for row in data["calibration"]["at_prevalence"]))
    print(json.dumps(report))
    if args.write:
        out = args.weights.with_name(UNCERTAINTY_FILE)
        out.write_text(json.dumps(data, indent=1) + "\n")
        set_card_section(args.weights.with_name(CARD_FILE), "Indeterminate band", card_text(data, report.get("test")))
        print(f"wrote {out} and its section of {CARD_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
