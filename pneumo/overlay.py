"""Drawing a heatmap over the original X-ray, at the original's own aspect ratio."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from pneumo.preprocess import to_gray8

DISPLAY_MAX_SIDE = 1024
COLORMAP = "jet"


def display_image(image: Image.Image, max_side: int = DISPLAY_MAX_SIDE) -> Image.Image:
    """The upright 8-bit grayscale picture, at most max_side pixels a side, aspect ratio kept."""
    gray = to_gray8(image)
    if max(gray.size) > max_side:
        gray = gray.copy()
        gray.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return gray


def _colormap(name: str = COLORMAP):
    from matplotlib import colormaps

    return colormaps[name]


def overlay(picture: Image.Image, heatmap: np.ndarray, opacity: float = 0.4) -> Image.Image:
    """Blend a [0, 1] heatmap (any square size: the model saw a squashed square) over `picture`.

    The heatmap is stretched back to the picture's own width and height, which undoes the squash.
    """
    width, height = picture.size
    stretched = Image.fromarray(np.asarray(heatmap, dtype=np.float32)).resize((width, height), Image.Resampling.BILINEAR)
    colors = _colormap()(np.clip(np.asarray(stretched), 0.0, 1.0))[..., :3]
    base = np.asarray(picture.convert("RGB"), dtype=np.float32) / 255.0
    blended = (1.0 - opacity) * base + opacity * colors
    return Image.fromarray(np.round(blended * 255.0).astype(np.uint8))


def to_png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def colorbar_png(width: int = 480, height: int = 70) -> bytes:
    """A horizontal legend for the heatmap colours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    fig, ax = plt.subplots(figsize=(width / 100, height / 100), dpi=100)
    fig.subplots_adjust(left=0.04, right=0.96, bottom=0.55, top=0.95)
    bar = fig.colorbar(matplotlib.cm.ScalarMappable(norm=Normalize(0, 1), cmap=_colormap()), cax=ax, orientation="horizontal")
    bar.set_ticks([0, 0.5, 1])
    bar.set_ticklabels(["low", "map weight (relative to this image)", "high"])
    bar.ax.tick_params(labelsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
