"""Classification metrics for a binary detector (positive = PNEUMONIA), computed with scikit-learn."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve


def binary_metrics(y_true: np.ndarray, prob: np.ndarray, threshold: float) -> dict:
    """AUC and the threshold-dependent metrics at `threshold` (predicted positive when prob >= threshold)."""
    y_true = np.asarray(y_true).astype(int).ravel()
    prob = np.asarray(prob, dtype=np.float64).ravel()
    y_pred = (prob >= threshold).astype(int)
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


def youden_threshold(y_true: np.ndarray, prob: np.ndarray) -> float:
    """The threshold maximising sensitivity + specificity - 1 (Youden's J), for use on validation data.

    Ties go to the threshold closest to 0.5. The returned value sits midway between the two
    neighbouring scores, so it does not depend on one exact probability.
    """
    y_true = np.asarray(y_true).astype(int).ravel()
    prob = np.asarray(prob, dtype=np.float64).ravel()
    fpr, tpr, thresholds = roc_curve(y_true, prob, drop_intermediate=False)
    j = tpr - fpr
    candidates = np.flatnonzero(np.isclose(j, j.max()))
    best = candidates[np.argmin(np.abs(np.clip(thresholds[candidates], 0, 1) - 0.5))]
    upper = min(float(thresholds[best]), 1.0)
    lower = float(thresholds[best + 1]) if best + 1 < len(thresholds) else 0.0
    return (upper + lower) / 2.0 if lower < upper else upper


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
