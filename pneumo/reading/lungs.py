"""Where the lungs are: a small U-Net that outlines the lung fields on the model's own 299x299 gray
input, and what follows from the outline: the share of the image the lungs cover, the share of a
heatmap's mass inside them, and the outline the page draws.

The segmenter is trained by `python -m pneumo.training.lungs --fit` on lung masks of the training
children only (V7 Labs annotations of Kermany et al. 2018, CC BY 4.0, which include the lung behind
the heart) and shipped as weights/lungs.keras with its measurements (weights/lungs.json). It sees
the histogram-equalised input (pneumo.reading.preprocess.equalize, the classifier's own step) at
LUNG_SIZE px; its mask is brought back to 299 px and cleaned (`clean_mask`): each half of the image
keeps its largest piece, and holes are filled, so the outline draws two lungs, not specks.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from pneumo.bundle import WEIGHTS_DIR
from pneumo.reading.preprocess import equalize

LUNG_SIZE = 160
LUNGS_FILE = WEIGHTS_DIR / "lungs.keras"
LUNGS_INFO = WEIGHTS_DIR / "lungs.json"


def lung_input(gray299: np.ndarray, size: int = LUNG_SIZE, equalized: np.ndarray | None = None) -> np.ndarray:
    """uint8 (N, 299, 299) or (299, 299) -> float32 (N, size, size, 1): equalised, then resized;
    `equalized`: the images' pneumo.reading.preprocess.equalize where the caller has it already."""
    gray299 = np.asarray(gray299, dtype=np.uint8)
    if gray299.ndim == 2:
        gray299 = gray299[np.newaxis]
    flat = equalize(gray299) if equalized is None else np.asarray(equalized, dtype=np.float32).reshape(gray299.shape)
    small = np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.Resampling.BILINEAR)) for f in flat])
    return small[..., np.newaxis].astype(np.float32)


def to_frame(probability: np.ndarray, side: int = 299) -> np.ndarray:
    """(N, s, s) lung probabilities -> (N, side, side) boolean masks (bilinear up, then >= 0.5)."""
    return upsampled(probability, side) >= 0.5


def upsampled(probability: np.ndarray, side: int = 299) -> np.ndarray:
    """(N, s, s) lung probabilities -> (N, side, side), bilinear."""
    return np.stack([np.asarray(Image.fromarray(p.astype(np.float32)).resize((side, side), Image.Resampling.BILINEAR))
                     for p in probability])


SECOND_LUNG = 0.05  # a half's largest piece is kept if it is at least this share of the other half's (a speck is no lung)


def pieces(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """(label image, count) of the mask's connected pieces (pixels sharing an edge)."""
    return ndimage.label(np.asarray(mask, dtype=bool))


def kept_pieces(labels: np.ndarray, count: int) -> list[int]:
    """The labels `clean_mask` keeps: in each half of the image (the patient's right and left lung on
    a frontal film), the piece with the most pixels there; one lung spanning both halves wins both."""
    if count == 0:
        return []
    half = labels.shape[1] // 2
    winners = []
    for side in (labels[:, :half], labels[:, half:]):
        area = np.bincount(side.ravel(), minlength=count + 1)[1:]
        if area.max() > 0:
            winners.append((int(area.max()), int(area.argmax()) + 1))
    largest = max(a for a, _ in winners)
    return sorted({label for a, label in winners if a >= SECOND_LUNG * largest})


def clean_mask(mask: np.ndarray) -> np.ndarray:
    """Each half's largest piece of the (H, W) boolean mask, holes filled: stray islands (on the
    arms, the abdomen, a marker) go, and so do gaps inside a lung."""
    labels, count = pieces(mask)
    keep = np.zeros(count + 1, dtype=bool)
    keep[kept_pieces(labels, count)] = True
    kept = keep[labels]
    # holes: the background pieces that do not reach the border (what ndimage.binary_fill_holes fills,
    # with the same 4-connectivity, at half its cost)
    background, n = ndimage.label(~kept)
    reaches_border = np.zeros(n + 1, dtype=bool)
    for edge in (background[0], background[-1], background[:, 0], background[:, -1]):
        reaches_border[edge] = True
    reaches_border[0] = False  # label 0 is the lungs themselves
    return ~reaches_border[background]


def stray_pieces(mask: np.ndarray) -> int:
    """How many pieces of a mask `clean_mask` would drop (0 for a clean one)."""
    labels, count = pieces(mask)
    return count - len(kept_pieces(labels, count))


def lung_share(mask: np.ndarray) -> float:
    """The share of the image the lungs cover."""
    return float(np.asarray(mask, dtype=bool).mean())


def map_in_lungs(heatmap: np.ndarray, mask: np.ndarray) -> float | None:
    """The share of the map's mass that lies inside the lungs (None for an empty map)."""
    heat = np.clip(np.asarray(heatmap, dtype=np.float64), 0, None)
    total = heat.sum()
    return None if total <= 0 else float(heat[np.asarray(mask, dtype=bool)].sum() / total)








class LungSegmenter:
    """The shipped U-Net, called directly (no Keras predict loop: ~10 ms warm per X-ray here)."""

    def __init__(self, model, info: dict | None = None):
        import tensorflow as tf

        self.model = model
        self.info = info or {}
        self.size = int(model.input_shape[1])
        self._call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def probabilities(self, gray299: np.ndarray, equalized: np.ndarray | None = None) -> np.ndarray:
        """(N, size, size) lung probabilities for uint8 (N, 299, 299) images (`equalized`: see lung_input)."""
        return np.asarray(self._call(lung_input(gray299, self.size, equalized)))[..., 0]

    def masks(self, gray299: np.ndarray, clean: bool = True, equalized: np.ndarray | None = None) -> np.ndarray:
        """(N, 299, 299) boolean lung masks, cleaned (`clean_mask`); clean=False: the network's own, for
        measuring; `equalized`: see lung_input."""
        gray299 = np.asarray(gray299)
        raw = to_frame(self.probabilities(gray299, equalized), gray299.shape[-1])
        return np.stack([clean_mask(m) for m in raw]) if clean and len(raw) else raw

    def mask(self, gray299: np.ndarray) -> np.ndarray:
        return self.masks(np.asarray(gray299)[np.newaxis] if np.ndim(gray299) == 2 else gray299)[0]


def load_segmenter(path: str | Path = LUNGS_FILE) -> LungSegmenter | None:
    """The shipped segmenter (it does not depend on the classifier's weights); None if absent."""
    path = Path(path)
    if not path.is_file():
        return None
    from pneumo.reading.runtime import configure_tensorflow_env

    configure_tensorflow_env()
    import keras

    info_file = path.with_suffix(".json")
    info = json.loads(info_file.read_text()) if info_file.is_file() else {}
    return LungSegmenter(keras.saving.load_model(path, compile=False), info)
