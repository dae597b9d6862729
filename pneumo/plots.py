"""Matplotlib figures for the app and the model card: training curves, confusion matrix, ROC, reliability."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display: figures are rendered to images

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

CURVES = (
    ("Loss", ("loss",)),
    ("Accuracy", ("accuracy",)),
    ("Precision and recall", ("precision", "recall")),
    ("ROC AUC", ("auc",)),
)


def training_curves(history: dict) -> Figure:
    """Per-epoch train/validation curves from weights/history.json, the best epoch marked."""
    epochs = history["epochs"]
    x = [e["epoch"] for e in epochs]
    best = history.get("best_epoch")
    fig, axes = plt.subplots(2, 3, figsize=(12, 7.5), layout="constrained")
    panels = list(axes.flat)
    for ax, (title, keys) in zip(panels, CURVES):
        for key, style in zip(keys, ("-", "--")):
            if key in epochs[0]:
                ax.plot(x, [e[key] for e in epochs], style, color="tab:blue", marker=".", label=f"train {key}")
            if f"val_{key}" in epochs[0]:
                ax.plot(x, [e[f"val_{key}"] for e in epochs], style, color="tab:orange", marker=".", label=f"validation {key}")
        ax.set_title(title)
    lr_ax = panels[4]
    lr_ax.plot(x, [e["learning_rate"] for e in epochs], color="tab:green", marker=".")
    lr_ax.set_title("Learning rate")
    time_ax = panels[5]
    time_ax.bar(x, [e["seconds"] for e in epochs], color="tab:gray")
    time_ax.set_title("Seconds per epoch")
    for i, ax in enumerate(panels):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if best:
            ax.axvline(best, color="tab:red", linestyle=":", label=f"best epoch ({best})")
        if i < len(CURVES):
            ax.legend(fontsize=7)
    return fig


def confusion_matrix_figure(cm: dict, title: str = "Test confusion matrix") -> Figure:
    counts = np.array([[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]])
    fig, ax = plt.subplots(figsize=(4.2, 3.8), layout="constrained")
    ax.imshow(counts, cmap="Blues")
    for (i, j), value in np.ndenumerate(counts):
        ax.text(j, i, str(value), ha="center", va="center", fontsize=14, color="white" if value > counts.max() / 2 else "black")
    ax.set_xticks([0, 1], ["NORMAL", "PNEUMONIA"])
    ax.set_yticks([0, 1], ["NORMAL", "PNEUMONIA"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return fig


def _unit_square(title: str, xlabel: str, ylabel: str, diagonal: str | None = None):
    """A square [0, 1] x [0, 1] plot with its diagonal dotted."""
    fig, ax = plt.subplots(figsize=(4.5, 4.2), layout="constrained")
    ax.plot([0, 1], [0, 1], ":", color="gray", label=diagonal)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title, xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
    ax.grid(alpha=0.3)
    return fig, ax


def roc_figure(y_true: np.ndarray, prob: np.ndarray, threshold: float, title: str = "ROC, test split") -> Figure:
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(y_true, prob)
    pred = prob >= threshold
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
