"""Evaluate a saved model on one split of the data set, from scratch, with scikit-learn.

    python -m pneumo.training.evaluate --data-dir ../shared/data/chest_xray --split test --weights weights/pneumonia.keras [--json out.json]
    python -m pneumo.training.evaluate --split val --csv val.csv      # also one row per image, to see which ones it gets wrong

The decision threshold is the bundle's (pneumo.bundle: the metrics.json next to the weights, chosen
on the validation split), or given with --threshold.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from pneumo.bundle import CLASS_NAMES, DEFAULT_MODEL, METRICS_FILE, Bundle, label_name, read_bundle
from pneumo.training.data import DEFAULT_CACHE_DIR, DEFAULT_DATA_DIR, Sample, labels_of, list_split, load_images, run_split
from pneumo.training.metrics import metrics_with_intervals


def evaluate_gray(model, gray: np.ndarray, labels: np.ndarray, threshold: float, bootstrap: int = 2000) -> tuple[dict, np.ndarray]:
    """Metrics (with 95% bootstrap intervals when bootstrap > 0) and the probabilities."""
    from pneumo.reading.networks import predict_gray

    prob = predict_gray(model, gray)
    return metrics_with_intervals(labels, prob, threshold, bootstrap), prob


def _split_samples(data_dir: str, split: str, weights: str):
    """The named split; "val" without a val/ folder is the patient split train.py held out for
    these weights (seed and fraction from the metrics.json beside them)."""
    if split == "val" and not (Path(data_dir) / "val").is_dir():
        cfg = read_bundle(weights).config
        if cfg is None:
            raise FileNotFoundError(f"no val/ folder in {data_dir} and no {METRICS_FILE} beside {weights} to rebuild the validation split from")
        return run_split(data_dir, cfg)[1]
    return list_split(data_dir, split)


def split_and_model(data_dir: str, split: str, weights: str) -> tuple[list[Sample], Bundle, object]:
    """(samples of the split, the bundle, the loaded model).
    The split is listed first, so a wrong folder fails fast, before TensorFlow loads. Raises
    FileNotFoundError or ValueError with a human message."""
    samples = _split_samples(data_dir, split, weights)
    shipped = read_bundle(weights)
    from pneumo.reading.networks import load_model

    return samples, shipped, load_model(weights)


def format_metrics(m: dict) -> str:
    cm = m["confusion_matrix"]
    lines = [f"threshold {m['threshold']:.4f}  ({m['counts']['normal']} NORMAL / {m['counts']['pneumonia']} PNEUMONIA)"]
    for name in ("auc", "accuracy", "sensitivity", "specificity", "precision", "f1"):
        ci = m.get("ci95", {}).get(name)
        lines.append(f"  {name:<12}{m[name]:.4f}" + (f"   95% CI [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""))
    lines.append(f"  confusion    TN {cm['tn']}  FP {cm['fp']}  FN {cm['fn']}  TP {cm['tp']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo.training.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help="Kaggle-layout data set folder")
    parser.add_argument("--split", default="test", help="train, val or test (default: test); val without a val/ folder is the held-out patient split")
    parser.add_argument("--weights", default=str(DEFAULT_MODEL), help="saved .keras model")
    parser.add_argument("--threshold", type=float, default=None, help="decision threshold (default: the one in metrics.json)")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for 95%% intervals (0: none)")
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR), help="decoded-image cache ('' for none)")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the metrics to this JSON file")
    parser.add_argument("--csv", dest="csv_out", default=None, help="also write one row per image (file, label, probability, "
                        "predicted, stored size) to this CSV file, lowest-scoring first")
    args = parser.parse_args(argv)

    try:
        samples, shipped, model = split_and_model(args.data_dir, args.split, args.weights)
    except (FileNotFoundError, ValueError) as error:
        # An installed package's default points beside site-packages: say how to name the data.
        hint = "" if Path(args.data_dir).is_dir() else "; pass --data-dir DATA (a folder with train/ and test/, each with NORMAL/ and PNEUMONIA/)"
        print(f"error: {error}{hint}", file=sys.stderr)
        return 2
    threshold = shipped.threshold_or(args.threshold)
    gray, sizes = load_images(samples, args.cache_dir or None)
    metrics, prob = evaluate_gray(model, gray, labels_of(samples), threshold, args.bootstrap)
    result = {"split": args.split, "weights": str(args.weights), **metrics}
    print(f"{args.split} split, {args.weights}")
    print(format_metrics(result))
    try:
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n")
        if args.csv_out:
            write_per_image_csv(args.csv_out, samples, sizes, prob, threshold)
    except OSError as error:  # the metrics are printed above, so nothing computed is lost
        print(f"error: could not write {error.filename or 'the output file'}: {error.strerror or error}", file=sys.stderr)
        return 2
    return 0


def write_per_image_csv(path: str | Path, samples: list, sizes: np.ndarray, prob: np.ndarray, threshold: float) -> None:
    """One row per image, sorted by probability: the missed pneumonias come first, the NORMALs called
    pneumonia last. `stored_size` is the file's own width x height (224x224: the published copies)."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label", "probability", "predicted", "correct", "stored_size"])
        for i in np.argsort(prob, kind="stable"):
            label, predicted = CLASS_NAMES[samples[i].label], label_name(prob[i], threshold)
            writer.writerow([samples[i].path.name, label, f"{prob[i]:.6f}", predicted, label == predicted, f"{sizes[i][0]}x{sizes[i][1]}"])


if __name__ == "__main__":
    sys.exit(main())
