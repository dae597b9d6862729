"""Classification metrics for a binary detector (positive = PNEUMONIA), computed with scikit-learn."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import confusion_matrix, roc_auc_score


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


def shift_threshold(y_true: np.ndarray, probs: Sequence[np.ndarray]) -> float:
    """The threshold maximising the mean balanced accuracy ((sensitivity + specificity) / 2) over
    several predictions of the same labelled images, for use on validation data: pneumo.shift's
    fixed acquisition changes, so the operating point is the one that holds up under them.

    With a single prediction this is Youden's J. Candidates sit midway between neighbouring scores
    (so no exact probability matters); ties go to the middle one of the tied candidates, not to an
    end of a flat stretch.
    """
    y_true = np.asarray(y_true).astype(int).ravel()
    probs = [np.asarray(p, dtype=np.float64).ravel() for p in probs]
    if not probs or any(len(p) != len(y_true) for p in probs):
        raise ValueError("shift_threshold needs one or more predictions, each with one score per label")
    n_pos, n_neg = int((y_true == 1).sum()), int((y_true == 0).sum())
    if not n_pos or not n_neg:
        raise ValueError("shift_threshold needs both classes among the labels")
    scores = np.unique(np.concatenate(probs))
    candidates = np.concatenate([[0.0], (scores[:-1] + scores[1:]) / 2.0, [max(1.0, scores[-1] + 1e-9)]])
    balanced = np.zeros(len(candidates))
    for p in probs:
        pos, neg = np.sort(p[y_true == 1]), np.sort(p[y_true == 0])
        sensitivity = 1.0 - np.searchsorted(pos, candidates, side="left") / n_pos  # share of positives >= t
        specificity = np.searchsorted(neg, candidates, side="left") / n_neg  # share of negatives < t
        balanced += (sensitivity + specificity) / 2.0
    best = np.flatnonzero(np.isclose(balanced, balanced.max(), rtol=0.0, atol=1e-12))
    return float(candidates[best[len(best) // 2]])


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
