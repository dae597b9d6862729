"""Bytes -> decoded PIL image, recognised by content rather than file name.

This is the one place uploads and files are read; DICOM support slots in here.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError

# Refuse images whose header promises more pixels than this, before decoding them
# (a decompression bomb is a few KB that decodes to gigabytes). Real radiographs are < 50 Mpx.
MAX_PIXELS = 60_000_000
# Below this a picture cannot carry the detail of a chest X-ray.
MIN_SIDE = 64


class ImageReadError(ValueError):
    """A file that is not a readable image; the message is meant for a person."""


def read_image(data: bytes, name: str = "file") -> Image.Image:
    """Decode image bytes (JPEG, PNG, BMP, TIFF, WebP, GIF ...) into a loaded PIL image.

    Raises ImageReadError with a human message when the content is not a usable image.
    """
    if not data:
        raise ImageReadError(f"{name}: the file is empty.")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
            if width * height > MAX_PIXELS:
                raise ImageReadError(
                    f"{name}: the image is {width}x{height} pixels, more than the "
                    f"{MAX_PIXELS // 1_000_000} megapixels this tool accepts."
                )
            if getattr(probe, "n_frames", 1) > 1:
                raise ImageReadError(f"{name}: the file holds {probe.n_frames} frames (an animation); upload a single still image.")
            probe.load()
            image = probe.copy()
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(f"{name}: this is not an image file this tool can read (JPEG, PNG, BMP, TIFF, WebP).") from None
    except Image.DecompressionBombError:
        raise ImageReadError(f"{name}: the image is too large to decode safely.") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageReadError(f"{name}: the image is damaged or incomplete and cannot be decoded ({error}).") from None
    if min(image.size) < MIN_SIDE:
        raise ImageReadError(
            f"{name}: the image is only {image.size[0]}x{image.size[1]} pixels; a chest X-ray needs at least "
            f"{MIN_SIDE} pixels a side."
        )
    return image


def read_image_file(path: str | Path) -> Image.Image:
    """Read and decode one image file from disk (see `read_image`)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ImageReadError(f"{path}: cannot read the file ({error.strerror or error}).") from None
    return read_image(data, name=str(path))
