"""The one preprocessing path: every PIL mode gives the same kind of model input, upright."""

import io

import numpy as np
import pytest
from PIL import Image

from conftest import TINY_DATA
from pneumo.reading.decode import read_image
from pneumo.reading.preprocess import IMAGE_SIZE, equalize, preprocess, to_gray299, to_model_input

XRAY = TINY_DATA / "train" / "NORMAL" / "IM-0115-0001.jpeg"  # an original: not square


@pytest.fixture(scope="module")
def gray() -> Image.Image:
    image = Image.open(XRAY)
    image.load()
    return image.convert("L")


def _as_mode(gray: Image.Image, mode: str) -> Image.Image:
    if mode == "I;16":
        return Image.fromarray(np.asarray(gray, dtype=np.uint16) * 257)  # the same picture in 16 bits
    if mode == "LA":
        return Image.merge("LA", (gray, Image.new("L", gray.size, 255)))
    if mode == "RGBA":
        return gray.convert("RGB").convert("RGBA")
    return gray.convert(mode)


MODES = ["L", "LA", "RGB", "RGBA", "P", "I;16", "CMYK"]


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_gives_the_same_kind_of_input(gray, mode):
    image = _as_mode(gray, mode)
    assert image.mode == mode
    x = preprocess(image)
    assert x.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
    assert x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert x.max() > 0.5  # not blanked by a wrong bit depth
    assert np.array_equal(x[..., 0], x[..., 1]) and np.array_equal(x[..., 1], x[..., 2])
    # ... and the same picture as the 8-bit grayscale original (P: a 256-entry palette may merge levels).
    tolerance = 2 / 255 if mode == "P" else 1e-7
    assert np.abs(x - preprocess(gray)).max() <= tolerance


def test_alpha_is_composited_over_black(gray):
    rgba = gray.convert("RGBA")
    rgba.putalpha(0)
    assert preprocess(rgba).max() == 0.0


def test_model_input_is_the_cached_uint8_scaled(gray):
    g = to_gray299(gray)
    assert g.dtype == np.uint8 and g.shape == (IMAGE_SIZE, IMAGE_SIZE)
    assert np.array_equal(to_model_input(g), preprocess(gray))
    batch = to_model_input(np.stack([g, g]))
    assert batch.shape == (2, IMAGE_SIZE, IMAGE_SIZE, 3)


def test_exif_rotated_jpeg_comes_out_upright(gray):
    # Store the picture turned a quarter left with EXIF orientation 6 ("rotate 90 CW to view"),
    # as phones and some viewers write it.
    stored = gray.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=95, exif=exif)
    decoded = read_image(buffer.getvalue(), "rotated.jpg")
    assert decoded.size == stored.size  # the pixels on disk are sideways...
    upright = preprocess(decoded)
    assert np.abs(upright - preprocess(gray)).mean() < 0.01  # ...the model input is upright
    assert np.abs(preprocess(stored) - preprocess(gray)).mean() > 0.05


def test_equalisation_makes_exposure_changes_invisible(gray):
    g = to_gray299(gray)
    x = equalize(g)
    assert x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0
    assert abs(float(x.mean()) - 0.5) < 0.05  # about uniform
    order = np.argsort(g, axis=None, kind="stable")
    assert np.all(np.diff(x.ravel()[order]) >= 0)  # brighter stays brighter
    # Any one-to-one monotonic change of the gray levels (exposure, contrast, gamma) gives the same
    # input; on 64 gray levels there is room for such changes without merging levels.
    q = g // 4
    x = equalize(q)
    bright_gamma = np.round(255 * ((np.arange(64) + 1) / 64) ** 0.5).astype(np.uint8)
    assert len(np.unique(bright_gamma)) == 64  # one-to-one
    darker_flatter = (100 + q).astype(np.uint8)
    for changed in (q * 4 + 3, darker_flatter, bright_gamma[q]):
        assert np.array_equal(equalize(changed.astype(np.uint8)), x)
    # A batch is equalised image by image.
    batch = np.stack([q, darker_flatter, np.full_like(g, 7)])
    assert np.array_equal(equalize(batch)[0], x) and np.array_equal(equalize(batch)[1], x)
    assert np.all(equalize(batch)[2] == 0.0)  # a constant image: zeros, no NaN
