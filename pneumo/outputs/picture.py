"""Pictures made from a result: the heatmap over the X-ray at the picture's own aspect ratio, the lung
outline, the legend, PNG bytes."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

COLORMAP = "jet"




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


def outline(mask: np.ndarray) -> np.ndarray:
    """The mask's boundary pixels (a pixel of the mask with a 4-neighbour outside it)."""
    m = np.asarray(mask, dtype=bool)
    padded = np.pad(m, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return m & ~inner



def draw_outline(picture: Image.Image, mask: np.ndarray, colour: tuple[int, int, int] = (0, 230, 255), width: int = 2) -> Image.Image:
    """The picture (any size) with the 299 px mask's outline drawn on it, in RGB."""
    rgb = picture.convert("RGB")
    scaled = np.asarray(Image.fromarray(np.asarray(mask, dtype=np.uint8) * 255).resize(rgb.size, Image.Resampling.NEAREST)) > 127
    edge = outline(scaled)
    for _ in range(max(width - 1, 0)):  # thicken inwards and outwards
        edge = edge | np.pad(edge, 1)[:-2, 1:-1] | np.pad(edge, 1)[2:, 1:-1] | np.pad(edge, 1)[1:-1, :-2] | np.pad(edge, 1)[1:-1, 2:]
    pixels = np.asarray(rgb).copy()
    pixels[edge] = colour
    return Image.fromarray(pixels)
