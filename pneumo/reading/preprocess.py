"""The one preprocessing path, shared by training, evaluation, the CLI and the app.

decoded PIL image (any mode, EXIF orientation applied)
  -> 8-bit grayscale  -> 299x299 (antialiased, aspect ratio squashed like the training data)
  -> histogram equalisation to float32 in [0, 1] -> 3 identical channels.

Histogram equalisation maps each pixel to the share of the image's pixels that are no brighter, so
any monotonic change of exposure, contrast or gamma (another scanner, another processing chain)
gives the model the same input: the exposure and contrast part of the difference between one
acquisition and another (the data set's test folder against its training folder, say) is gone.

Split in two steps so that training can cache the compact uint8 299x299 image once and still feed
the model exactly what `preprocess` gives at run time (`to_model_input(to_gray299(img))`).
`thumbnails` is the coarse picture step below both checks of an upload (pneumo.reading.guard's layout,
pneumo.reading.population's image score): the 299 px gray image shrunk to 32x32 and standardised.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageOps

IMAGE_SIZE = 299
THUMB_SIDE = 32  # the thumbnail the guard and the image score read: layout, not detail
# Antialiased: PIL widens the filter support by the downscale factor, so a 2500px original and
# a 224px copy of it end up close to each other at 299px.
RESAMPLE = Image.Resampling.BILINEAR
_HIGH_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def _high_bit_to_gray8(image: Image.Image) -> Image.Image:
    """16-bit / 32-bit / float grayscale to 8-bit, scaling by the smallest plausible bit depth.

    8-bit data stored in 16 bits stays as it is; 10, 12, 14 and 16-bit data is scaled to 0..255.
    (PIL's own convert("L") clips at 255, which would turn most 16-bit X-rays white.)
    """
    values = np.asarray(image, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return Image.new("L", image.size, 0)
    if image.mode == "F" and finite.min() >= 0.0 and finite.max() <= 1.0:
        full_scale = 1.0
    else:
        values = values - min(0.0, float(finite.min()))
        peak = float(np.nanmax(values[np.isfinite(values)]))
        full_scale = next((2.0**bits - 1 for bits in (8, 10, 12, 14, 16) if peak <= 2.0**bits - 1), peak)
    scaled = np.nan_to_num(values / max(full_scale, 1e-12), nan=0.0, posinf=1.0, neginf=0.0)
    return Image.fromarray(np.clip(np.round(scaled * 255.0), 0, 255).astype(np.uint8))


def to_gray8(image: Image.Image) -> Image.Image:
    """Any PIL image, upright and as 8-bit grayscale ("L"). Alpha is composited over black."""
    image = ImageOps.exif_transpose(image)
    if image.mode == "L":
        return image
    if image.mode in _HIGH_BIT_MODES:
        return _high_bit_to_gray8(image)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("LA", "La", "RGBA", "RGBa", "PA"):
        background = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    if image.mode != "RGB":  # CMYK, YCbCr, 1, ...: through RGB, which PIL converts from anything
        image = image.convert("RGB")
    return image.convert("L")  # ITU-R 601 luma; an RGB copy of a gray image maps back exactly


def to_gray299(image: Image.Image, size: int = IMAGE_SIZE) -> np.ndarray:
    """Any PIL image -> uint8 array (size, size): upright, grayscale, resized. Cached in training."""
    gray = to_gray8(image)
    if gray.size != (size, size):
        gray = gray.resize((size, size), RESAMPLE)
    return np.asarray(gray, dtype=np.uint8)


def equalize(gray: np.ndarray) -> np.ndarray:
    """uint8 grayscale (..., H, W) -> float32 (..., H, W) in [0, 1], each image histogram-equalised.

    A pixel of value v becomes (#pixels <= v - #pixels of the darkest value) / (#pixels - that), so
    the darkest value maps to 0 and the brightest to 1. A constant image maps to 0.
    """
    gray = np.asarray(gray, dtype=np.uint8)
    images = gray.reshape(-1, gray.shape[-2] * gray.shape[-1])
    out = np.empty(images.shape, dtype=np.float32)
    for i, pixels in enumerate(images):
        cdf = np.cumsum(np.bincount(pixels, minlength=256))
        darkest = cdf[pixels.min()]
        lut = (cdf - darkest) / max(int(cdf[-1] - darkest), 1)
        out[i] = lut.astype(np.float32)[pixels]
    return out.reshape(gray.shape)


def to_model_input(gray: np.ndarray) -> np.ndarray:
    """uint8 grayscale (..., H, W) -> float32 (..., H, W, 3) in [0, 1], equalised, channels identical."""
    return np.repeat(equalize(gray)[..., np.newaxis], 3, axis=-1)


def preprocess(image: Image.Image, size: int = IMAGE_SIZE) -> np.ndarray:
    """The model input for one decoded image: float32 (size, size, 3) in [0, 1]."""
    return to_model_input(to_gray299(image, size))


def thumbnails(gray299: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    """uint8 (N, 299, 299) -> standardised float (N, side*side): box-downscaled, each to mean 0, std 1."""
    gray299 = np.asarray(gray299)
    if gray299.ndim == 2:
        gray299 = gray299[np.newaxis]
    small = np.stack([np.asarray(Image.fromarray(g).resize((side, side), Image.Resampling.BOX), dtype=np.float64) for g in gray299])
    flat = small.reshape(len(small), -1)
    flat = flat - flat.mean(axis=1, keepdims=True)
    return flat / np.maximum(flat.std(axis=1, keepdims=True), 1e-6)


HOG_CELL, HOG_BINS = 16, 9


@functools.lru_cache(maxsize=4)
def _gradient_tables(bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude and orientation bin of every central difference pair of 8-bit pixels (gx, gy in
    -255..255), indexed by (gy + 255) * 511 + gx + 255: two look-ups per pixel instead of hypot,
    arctan2 and a floating remainder (a third of the population check's time), the same values."""
    gy, gx = np.meshgrid(np.arange(-255.0, 256.0), np.arange(-255.0, 256.0), indexing="ij")
    magnitude = np.hypot(gx, gy).ravel()
    orientation = np.minimum((np.arctan2(gy, gx) % np.pi) / np.pi * bins, bins - 1).astype(np.intp).ravel()
    return magnitude, orientation


def gradient_histograms(gray299: np.ndarray, side: int = 128, cell: int = HOG_CELL, bins: int = HOG_BINS) -> np.ndarray:
    """Histograms of oriented gradients: uint8 (N, 299, 299) -> float (N, features). Each image
    box-resized to `side` px; central-difference gradients; each pixel's magnitude added to one of
    `bins` unsigned orientation bins of its `cell` px cell; blocks of 2x2 cells normalised (L2,
    clipped at 0.2, normalised again). The edges a thumbnail blurs away: ribs, clavicles, the
    heart's border, the body's outline (the population check, pneumo.reading.population)."""
    gray299 = np.asarray(gray299)
    if gray299.dtype != np.uint8:
        raise TypeError(f"gradient_histograms reads uint8 images, not {gray299.dtype}")
    if gray299.ndim == 2:
        gray299 = gray299[np.newaxis]
    if len(gray299) > 256:  # bounded memory for a whole data set
        return np.concatenate([gradient_histograms(gray299[i:i + 256], side, cell, bins) for i in range(0, len(gray299), 256)])
    x = np.stack([np.asarray(Image.fromarray(g).resize((side, side), Image.Resampling.BOX), dtype=np.int32) for g in gray299])
    # the (gx, gy) pair of each pixel as one table index; 0 difference (index 255) on the border, as np.zeros gave
    gx = np.full_like(x, 255)
    gy = np.full_like(x, 255 * 511)
    gx[:, :, 1:-1] += x[:, :, 2:] - x[:, :, :-2]
    gy[:, 1:-1, :] += (x[:, 2:, :] - x[:, :-2, :]) * 511
    magnitude_of, orientation_of = _gradient_tables(bins)
    cells = side // cell
    n = len(x)
    pair = (gx + gy)[:, :cells * cell, :cells * cell]
    # cell index of each pixel, then one bincount over (image, cell row, cell column, bin)
    rows = (np.arange(cells * cell) // cell)[:, None] * cells + (np.arange(cells * cell) // cell)[None, :]
    index = (np.arange(n)[:, None, None] * cells * cells + rows[None]) * bins + orientation_of[pair]
    hist = np.bincount(index.ravel(), weights=magnitude_of[pair].ravel(), minlength=n * cells * cells * bins).reshape(n, cells, cells, bins)
    blocks = np.concatenate([hist[:, :-1, :-1], hist[:, 1:, :-1], hist[:, :-1, 1:], hist[:, 1:, 1:]], axis=-1)
    blocks = blocks / np.sqrt((blocks ** 2).sum(axis=-1, keepdims=True) + 1e-6)
    blocks = np.minimum(blocks, 0.2)
    blocks = blocks / np.sqrt((blocks ** 2).sum(axis=-1, keepdims=True) + 1e-6)
    return blocks.reshape(n, -1)




DISPLAY_MAX_SIDE = 1024



def display_image(image: Image.Image, max_side: int = DISPLAY_MAX_SIDE) -> Image.Image:
    """The upright 8-bit grayscale picture, at most max_side pixels a side, aspect ratio kept."""
    gray = to_gray8(image)
    if max(gray.size) > max_side:
        gray = gray.copy()
        gray.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return gray
