"""Matplotlib figures for the app: training curves and the confusion matrix (the model card's ROC and
reliability figures are drawn by pneumo.training.figures)."""

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
    """Per-epoch train/validation curves from weights/history.json, the best epoch marked. An
    ensemble's history holds its members' runs (`members`): one colour per member, validation
    solid, training dotted, each member's best epoch a dot on its validation curve."""
    if "members" in history:
        return _member_curves(history["members"])
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


MEMBER_PANELS = (("Loss", "loss"), ("Accuracy", "accuracy"), ("Recall at 0.5 (sensitivity)", "recall"), ("ROC AUC", "auc"))


def _member_curves(members: list[dict]) -> Figure:
    fig, axes = plt.subplots(2, 3, figsize=(12, 7.5), layout="constrained")
    panels = list(axes.flat)
    for k, member in enumerate(members):
        epochs, colour = member["epochs"], f"C{k}"
        if not epochs:
            continue
        x = [e["epoch"] for e in epochs]
        best = member.get("best_epoch")
        for ax, (title, key) in zip(panels, MEMBER_PANELS):
            if key in epochs[0]:
                ax.plot(x, [e[key] for e in epochs], ":", color=colour, alpha=0.7)
            if f"val_{key}" in epochs[0]:
                values = [e[f"val_{key}"] for e in epochs]
                ax.plot(x, values, "-", color=colour, label=f"fold {member['fold']}")
                if best and 1 <= best <= len(values):
                    ax.plot([best], [values[best - 1]], "o", color=colour)
            ax.set_title(title + " (validation solid, training dotted)")
        panels[4].plot(x, [e["learning_rate"] for e in epochs], color=colour, label=f"fold {member['fold']}")
        panels[5].plot(x, [e["seconds"] for e in epochs], color=colour, marker=".", label=f"fold {member['fold']}")
    panels[4].set_title("Learning rate")
    panels[5].set_title("Seconds per epoch")
    for ax in panels:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.title.set_fontsize(9)
    panels[3].legend(fontsize=7)
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


def png_bytes(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def site_fit_histograms(scores: np.ndarray, labels: np.ndarray | None, shipped: float, site: float | None,
                        before: np.ndarray | None = None) -> Figure:
    """A site's films by their probability of pneumonia, one panel per class where labels are given,
    with the shipped threshold and the site's (where a fit set one) marked, and what each threshold
    calls right on these films in the panel's title; `before`, where the fit changed the network, the
    scores before it as an outline."""
    classes = [(0, "NORMAL", "tab:green"), (1, "PNEUMONIA", "tab:red")] if labels is not None and (labels >= 0).any() else [(None, "films", "tab:blue")]
    fig, axes = plt.subplots(1, len(classes), figsize=(5 * len(classes), 3.2), sharey=True, layout="constrained", squeeze=False)
    bins = np.linspace(0, 1, 26)
    for ax, (label, name, colour) in zip(axes[0], classes):
        shown = scores if label is None else scores[labels == label]
        ax.hist(shown, bins=bins, color=colour, alpha=0.7, label="after the fit" if before is not None else None)
        if before is not None:
            ax.hist(before if label is None else before[labels == label], bins=bins, histtype="step", color="black", linewidth=1,
                    label="before")
        parts = []
        for threshold, style, what in ((shipped, ":", "shipped"), (site, "--", "site")):
            if threshold is None:
                continue
            ax.axvline(threshold, color="black", linestyle=style, linewidth=1.2, label=f"{what} threshold {threshold:.3f}")
            if label is not None and len(shown):
                right = (shown >= threshold).mean() if label == 1 else (shown < threshold).mean()
                parts.append(f"{what} {right:.0%}")
        title = name if label is None else f"{name}: {'sensitivity' if label == 1 else 'specificity'} " + ", ".join(parts)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("probability of pneumonia")
        ax.legend(frameon=False, fontsize=8)
    axes[0][0].set_ylabel("films")
    return fig
