"""Classification metrics for a binary detector (positive = PNEUMONIA), computed with scikit-learn."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import confusion_matrix, roc_auc_score

from pneumo.bundle import predicted_label


def binary_metrics(y_true: np.ndarray, prob: np.ndarray, threshold: float) -> dict:
    """AUC and the threshold-dependent metrics at `threshold` (predicted positive when prob >= threshold)."""
    y_true = np.asarray(y_true).astype(int).ravel()
    prob = np.asarray(prob, dtype=np.float64).ravel()
    y_pred = predicted_label(prob, threshold)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel())

    def ratio(a: int, b: int) -> float:
        return float(a / b) if b else float("nan")

    sensitivity, precision = ratio(tp, tp + fn), ratio(tp, tp + fp)
    return {
        "threshold": float(threshold),
        "auc": float(roc_auc_score(y_true, prob)) if len(set(y_true)) == 2 else float("nan"),
        "accuracy": ratio(tp + tn, len(y_true)),
        "sensitivity": sensitivity,
        "specificity": ratio(tn, tn + fp),
        "precision": precision,
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "confusion_matrix": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        "counts": {"total": int(len(y_true)), "normal": int((y_true == 0).sum()), "pneumonia": int((y_true == 1).sum())},
    }


def fewest_detected(n_positive: int, min_sensitivity: float = 0.95, confidence: float = 0.95) -> int:
    """The fewest of n_positive positives a threshold must catch for the lower end of the Wilson
    interval of its sensitivity to reach min_sensitivity (all of them if even that does not)."""
    from scipy.stats import binomtest

    for k in range(1, n_positive + 1):
        if binomtest(k, n_positive).proportion_ci(confidence, method="wilson").low >= min_sensitivity:
            return k
    return n_positive


def floor_threshold(
    y_true: np.ndarray, probs: Sequence[np.ndarray], min_sensitivity: float = 0.95, confidence: float = 0.95
) -> float:
    """The highest threshold at which the sensitivity floor holds under every one of several
    predictions of the same labelled images (pneumo.training.shift's fixed acquisition changes of the
    validation split): the lower end of the `confidence` Wilson interval of sensitivity stays at or
    above min_sensitivity in each. A screening threshold: sensitivity first, then as much specificity
    as is left, and the floor must survive another acquisition, not just hold on average.

    The threshold sits midway between the last score that must stay positive and the next lower score
    of any image (so no exact probability matters). With too few positives to certify the floor, it
    keeps every positive.
    """
    y_true = np.asarray(y_true).astype(int).ravel()
    probs = [np.asarray(p, dtype=np.float64).ravel() for p in probs]
    if not probs or any(len(p) != len(y_true) for p in probs):
        raise ValueError("floor_threshold needs one or more predictions, each with one score per label")
    n_pos = int((y_true == 1).sum())
    if not n_pos or n_pos == len(y_true):
        raise ValueError("floor_threshold needs both classes among the labels")
    k = fewest_detected(n_pos, min_sensitivity, confidence)
    # under each change, the k-th highest positive score is the highest threshold that still catches k
    last_kept = min(float(np.sort(p[y_true == 1])[::-1][k - 1]) for p in probs)
    scores = np.concatenate(probs)
    below = scores[scores < last_kept]
    return (last_kept + float(below.max())) / 2.0 if below.size else last_kept / 2.0


def bootstrap_intervals(
    y_true: np.ndarray, prob: np.ndarray, threshold: float, n_resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> dict[str, list[float]]:
    """Percentile bootstrap confidence intervals of the scalar metrics (resampling images)."""
    y_true = np.asarray(y_true).astype(int).ravel()
    prob = np.asarray(prob, dtype=np.float64).ravel()
    rng = np.random.default_rng(seed)
    names = ("auc", "accuracy", "sensitivity", "specificity", "precision", "f1")
    draws: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(n_resamples):
        idx = rng.integers(0, len(y_true), len(y_true))
        if len(set(y_true[idx])) < 2:
            continue
        m = binary_metrics(y_true[idx], prob[idx], threshold)
        for name in names:
            draws[name].append(m[name])
    alpha = (1.0 - level) / 2.0
    return {name: [float(np.nanquantile(v, alpha)), float(np.nanquantile(v, 1.0 - alpha))] for name, v in draws.items()}


def metrics_with_intervals(y_true: np.ndarray, prob: np.ndarray, threshold: float, n_resamples: int = 2000) -> dict:
    """binary_metrics plus "ci95", their 95 % bootstrap intervals (none when n_resamples is 0)."""
    metrics = binary_metrics(y_true, prob, threshold)
    if n_resamples:
        metrics["ci95"] = bootstrap_intervals(y_true, prob, threshold, n_resamples=n_resamples)
    return metrics
