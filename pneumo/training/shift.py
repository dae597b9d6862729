"""Validation scores under fixed acquisition changes: a model-selection signal that can see shift.

The validation split comes from the same folder as the training images, so its AUC (about 0.997
for every run so far) cannot tell apart recipes that differ in how they cope with another exposure,
contrast, sharpness or noise level, which is what the test folder of the data set, and any other
hospital, brings. Each change here is fixed (no randomness from run to run) and applied to the
299 px uint8 image before the one preprocessing function, so every model is judged on the same
inputs through its own preprocessing.

    python -m pneumo.training.shift --weights weights/pneumonia.keras [--json shift.json]

The threshold is the one in the metrics.json beside the weights (chosen on validation), or --threshold.
With --choose-threshold it is chosen again as train.py chooses it (THRESHOLD_RULE: the highest threshold whose sensitivity floor holds under
every change). The shift score, which docs/TRAINING.md's rule compares runs by, is the mean
specificity over the changes at that threshold.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from pneumo.bundle import DEFAULT_MODEL
from pneumo.training.data import DEFAULT_CACHE_DIR, DEFAULT_DATA_DIR, labels_of, load_images
from pneumo.training.metrics import binary_metrics, floor_threshold

Perturbation = Callable[[np.ndarray], np.ndarray]


def gamma(g: float) -> Perturbation:
    """Pixel value v -> 255 (v / 255) ** g: g < 1 brightens the mid-tones (more exposure), g > 1 darkens."""
    lut = np.round(255.0 * (np.arange(256) / 255.0) ** g).astype(np.uint8)
    return lambda gray: lut[gray]


def contrast(c: float) -> Perturbation:
    """Contrast x c about each image's mean, clipped to 0..255."""

    def apply(gray: np.ndarray) -> np.ndarray:
        values = gray.astype(np.float32)
        mean = values.mean(axis=(-2, -1), keepdims=True)
        return np.clip(np.round(mean + c * (values - mean)), 0, 255).astype(np.uint8)

    return apply


def through(size: int) -> Perturbation:
    """Down to size x size px and back up (bilinear): a blurrier, lower-resolution acquisition."""

    def apply(gray: np.ndarray) -> np.ndarray:
        images = gray.reshape(-1, *gray.shape[-2:])
        out = np.empty_like(images)
        for i, image in enumerate(images):
            small = Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR)
            out[i] = np.asarray(small.resize(image.shape[::-1], Image.Resampling.BILINEAR))
        return out.reshape(gray.shape)

    return apply


def noise(sigma: float, seed: int = 0) -> Perturbation:
    """Additive Gaussian noise of sigma gray levels; the same noise for the same input shape."""

    def apply(gray: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return np.clip(np.round(gray + rng.normal(0.0, sigma, gray.shape)), 0, 255).astype(np.uint8)

    return apply


# The fixed set. Written down in docs/TRAINING.md before the runs it judges finished; change it
# only together with that rule.
PERTURBATIONS: dict[str, Perturbation] = {
    "identity": lambda gray: gray,
    "gamma 0.6": gamma(0.6),
    "gamma 1.6": gamma(1.6),
    "contrast x0.6": contrast(0.6),
    "contrast x1.4": contrast(1.4),
    "through 150 px": through(150),
    "noise sigma 8": noise(8.0),
}


SCORES = ("auc", "sensitivity", "specificity", "balanced_accuracy")
SENSITIVITY_FLOOR, FLOOR_CONFIDENCE = 0.95, 0.95  # the sensitivity target; the usual interval
THRESHOLD_RULE = (
    f"the highest threshold at which the lower end of the {FLOOR_CONFIDENCE * 100:g} % Wilson interval of sensitivity stays "
    f"at or above {SENSITIVITY_FLOOR:g} under every one of the seven fixed acquisition changes of `pneumo.training.shift` "
    "on the validation split"
)
SHIFT_SCORE = "specificity"  # the shift score: this score's mean over the changes, at the THRESHOLD_RULE threshold


def shift_predictions(model, gray: np.ndarray) -> dict[str, np.ndarray]:
    """The model's probabilities for the images under each fixed change ("identity": unchanged)."""
    from pneumo.reading.networks import predict_gray

    return {name: predict_gray(model, change(gray)) for name, change in PERTURBATIONS.items()}


def shift_scores(
    probs: dict[str, np.ndarray], labels: np.ndarray, threshold: float | None
) -> tuple[dict[str, dict[str, float]], float]:
    """Per fixed change: AUC, and sensitivity, specificity and their mean (balanced accuracy) at the
    model's own validation threshold; plus "mean", their averages over all changes. Returns them and
    the threshold: threshold=None chooses it by THRESHOLD_RULE, the highest one whose sensitivity
    floor holds under each of these changes (use on validation only).

    AUC sees whether the ranking survives a change; the thresholded scores see whether the operating
    point does (a model whose NORMAL scores rise under another exposure loses specificity).
    """
    if threshold is None:
        threshold = floor_threshold(labels, list(probs.values()), SENSITIVITY_FLOOR, FLOOR_CONFIDENCE)
    results = {}
    for name, prob in probs.items():
        m = binary_metrics(labels, prob, threshold)
        results[name] = {
            "auc": m["auc"],
            "sensitivity": m["sensitivity"],
            "specificity": m["specificity"],
            "balanced_accuracy": (m["sensitivity"] + m["specificity"]) / 2.0,
        }
    results["mean"] = {key: float(np.mean([r[key] for r in results.values()])) for key in SCORES}
    return results, float(threshold)


def shift_metrics(
    model, gray: np.ndarray, labels: np.ndarray, threshold: float | None
) -> tuple[dict[str, dict[str, float]], float]:
    """shift_scores of the model's predictions of the images under the fixed changes."""
    return shift_scores(shift_predictions(model, gray), labels, threshold)


def main(argv: list[str] | None = None) -> int:
    from pneumo.training.evaluate import split_and_model

    parser = argparse.ArgumentParser(prog="python -m pneumo.training.shift", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help="Kaggle-layout data set folder")
    parser.add_argument("--split", default="val", help="val (default: the patient split held out for these weights) or train")
    parser.add_argument("--weights", default=str(DEFAULT_MODEL), help="saved .keras model")
    parser.add_argument("--threshold", type=float, default=None, help="decision threshold (default: the one in metrics.json)")
    parser.add_argument("--choose-threshold", action="store_true",
                        help="choose the threshold again on --split val by the current rule (default: metrics.json's)")
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR), help="decoded-image cache ('' for none)")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the scores to this JSON file")
    args = parser.parse_args(argv)
    if args.split == "test":
        print("error: the test split is for final reporting only; judge models on --split val", file=sys.stderr)
        return 2
    if args.choose_threshold and args.threshold is not None:
        print("error: give --threshold or --choose-threshold, not both", file=sys.stderr)
        return 2
    rechosen = args.choose_threshold
    if rechosen and args.split != "val":
        print("error: a threshold is chosen on --split val only; or pass --threshold", file=sys.stderr)
        return 2
    try:  # the flags are checked first: loading TensorFlow and the model takes seconds
        samples, shipped, model = split_and_model(args.data_dir, args.split, args.weights)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    gray, _ = load_images(samples, args.cache_dir or None, progress=False)
    threshold = None if rechosen else shipped.threshold_or(args.threshold)
    results, threshold = shift_metrics(model, gray, labels_of(samples), threshold)
    print(
        f"{args.split} split ({len(samples)} images), {args.weights}, threshold {threshold:.4f}"
        + (" (chosen again: the highest whose sensitivity floor holds under every change)" if rechosen else "")
    )
    print(f"  {'change':<16}" + "".join(f"{key:>19}" for key in SCORES))
    for name, scores in results.items():
        print(f"  {name:<16}" + "".join(f"{scores[key]:>19.4f}" for key in SCORES))
    print(f"shift score (mean {SHIFT_SCORE} over the changes): {results['mean'][SHIFT_SCORE]:.4f}")
    if args.json_out:
        report = {"split": args.split, "weights": str(args.weights), "threshold": threshold, "threshold_chosen_here": rechosen,
                  "changes": results}
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
