"""One uploaded file, from bytes to what the page shows: read it, preprocess it, keep a display copy.

The heavy part (probability and heatmap) lives in pneumo.engine; this module does not import
TensorFlow. Uploads are processed in memory only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from pneumo.imageio import read_image
from pneumo.overlay import display_image
from pneumo.preprocess import to_gray299


@dataclass
class PreparedImage:
    name: str
    digest: str  # sha256 of the bytes: the key results are cached under
    picture: Image.Image  # upright 8-bit grayscale, at most 1024 px a side, original aspect ratio
    gray299: np.ndarray  # what the model sees, as uint8 (see pneumo.preprocess)
    size: tuple[int, int]  # original width, height
    notes: list[str] = field(default_factory=list)


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def prepare(data: bytes, name: str) -> PreparedImage:
    """Decode and preprocess one file. Raises pneumo.imageio.ImageReadError with a human message."""
    image = read_image(data, name)
    return PreparedImage(name=name, digest=digest_of(data), picture=display_image(image), gray299=to_gray299(image), size=image.size)
