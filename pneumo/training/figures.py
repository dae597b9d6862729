"""The model card's figures: ROC with the operating point, and the reliability diagram."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score, roc_curve

from pneumo.bundle import predicted_label
from pneumo.outputs.plots import plt


def _unit_square(title: str, xlabel: str, ylabel: str, diagonal: str | None = None):
    """A square [0, 1] x [0, 1] plot with its diagonal dotted."""
    fig, ax = plt.subplots(figsize=(4.5, 4.2), layout="constrained")
    ax.plot([0, 1], [0, 1], ":", color="gray", label=diagonal)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title, xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
    ax.grid(alpha=0.3)
    return fig, ax


def roc_figure(y_true: np.ndarray, prob: np.ndarray, threshold: float, title: str = "ROC, test split") -> Figure:
    fpr, tpr, _ = roc_curve(y_true, prob)
    pred = predicted_label(prob, threshold).astype(bool)
    op_tpr = pred[y_true == 1].mean()
    op_fpr = pred[y_true == 0].mean()
    fig, ax = _unit_square(title, "1 - specificity", "sensitivity")
    ax.plot(fpr, tpr, label=f"AUC {roc_auc_score(y_true, prob):.3f}")
    ax.plot([op_fpr], [op_tpr], "o", color="tab:red", label=f"threshold {threshold:.3f}")
    ax.legend(loc="lower right")
    return fig


def reliability_figure(y_true: np.ndarray, prob: np.ndarray, bins: int = 10, title: str = "Calibration, test split") -> Figure:
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(prob, edges) - 1, 0, bins - 1)
    mean_p = [prob[which == b].mean() for b in range(bins) if (which == b).any()]
    frac = [y_true[which == b].mean() for b in range(bins) if (which == b).any()]
    counts = [(which == b).sum() for b in range(bins) if (which == b).any()]
    fig, ax = _unit_square(title, "predicted probability of pneumonia", "observed share with pneumonia", diagonal="perfect calibration")
    ax.plot(mean_p, frac, "o-", label="model")
    for p, f, n in zip(mean_p, frac, counts):
        ax.annotate(str(n), (p, f), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.legend(loc="upper left")
    return fig


def save(fig: Figure, path) -> None:
    fig.savefig(path, dpi=110)
    plt.close(fig)
