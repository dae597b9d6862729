"""Where the lungs are: a small U-Net that outlines the lung fields on the model's own 299x299 gray
input, and what follows from the outline: the share of the image the lungs cover, the share of a
heatmap's mass inside them, and whether the picture shows two plausible lung fields at all.

The segmenter is trained by `python -m pneumo.training.lungs --fit` on lung masks of the training
children only (V7 Labs annotations of Kermany et al. 2018, CC BY 4.0, which include the lung behind
the heart) and shipped as weights/lungs.keras with its measurements (weights/lungs.json). It sees
the histogram-equalised input (pneumo.preprocess.equalize, the classifier's own step) at
LUNG_SIZE px; its mask is brought back to 299 px.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pneumo.bundle import WEIGHTS_DIR
from pneumo.preprocess import equalize

LUNG_SIZE = 160
LUNGS_FILE = WEIGHTS_DIR / "lungs.keras"
LUNGS_INFO = WEIGHTS_DIR / "lungs.json"
MOSTLY_OUTSIDE = 0.5  # below this share of the map's mass inside the lungs, the page says the evidence lies mostly outside


def lung_input(gray299: np.ndarray, size: int = LUNG_SIZE) -> np.ndarray:
    """uint8 (N, 299, 299) or (299, 299) -> float32 (N, size, size, 1): equalised, then resized."""
    gray299 = np.asarray(gray299, dtype=np.uint8)
    if gray299.ndim == 2:
        gray299 = gray299[np.newaxis]
    flat = equalize(gray299)
    small = np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.Resampling.BILINEAR)) for f in flat])
    return small[..., np.newaxis].astype(np.float32)


def to_frame(probability: np.ndarray, side: int = 299) -> np.ndarray:
    """(N, s, s) lung probabilities -> (N, side, side) boolean masks (bilinear up, then >= 0.5)."""
    return upsampled(probability, side) >= 0.5


def upsampled(probability: np.ndarray, side: int = 299) -> np.ndarray:
    """(N, s, s) lung probabilities -> (N, side, side), bilinear."""
    return np.stack([np.asarray(Image.fromarray(p.astype(np.float32)).resize((side, side), Image.Resampling.BILINEAR))
                     for p in probability])


def lung_share(mask: np.ndarray) -> float:
    """The share of the image the lungs cover."""
    return float(np.asarray(mask, dtype=bool).mean())


def map_in_lungs(heatmap: np.ndarray, mask: np.ndarray) -> float | None:
    """The share of the map's mass that lies inside the lungs (None for an empty map)."""
    heat = np.clip(np.asarray(heatmap, dtype=np.float64), 0, None)
    total = heat.sum()
    return None if total <= 0 else float(heat[np.asarray(mask, dtype=bool)].sum() / total)


def in_lungs_sentence(inside: float | None, share: float) -> str:
    """What the page and the PDF say for every X-ray whose map is not empty."""
    if inside is None:
        return f"The lungs cover {share:.0%} of the image; the map is empty."
    text = f"{inside:.0%} of the map lies inside the lungs, which cover {share:.0%} of the image."
    if inside < MOSTLY_OUTSIDE:
        text += " The model's evidence for this reading lies mostly outside the lungs."
    return text


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


@dataclass(frozen=True)
class LungFields:
    """The two lung fields the mask shows, one per half of the image: their areas (share of the
    image), centres (x, y as shares of the width and height) and their symmetry (smaller area over
    larger)."""

    left_area: float  # the image's left half (the patient's right lung on a PA film)
    right_area: float
    left_centre: tuple[float, float]
    right_centre: tuple[float, float]
    contrast: float = float("nan")  # mean equalised gray inside the lungs / outside them within their bounding box
    confidence: float = float("nan")  # the segmenter's mean probability over the pixels it calls lung

    @property
    def symmetry(self) -> float:
        big = max(self.left_area, self.right_area)
        return 0.0 if big == 0 else min(self.left_area, self.right_area) / big

    @property
    def total(self) -> float:
        return self.left_area + self.right_area


FIELD_VALUES = ("left_area", "right_area", "left_x", "left_y", "right_x", "right_y", "symmetry")  # campaign g4
EVIDENCE_VALUES = (*FIELD_VALUES, "contrast", "confidence")  # campaign g5 (docs/LUNGS.md)


def field_values(fields: LungFields) -> dict[str, float]:
    """The values the lung-field check bounds (docs/LUNGS.md)."""
    return {"left_area": fields.left_area, "right_area": fields.right_area, "left_x": fields.left_centre[0],
            "left_y": fields.left_centre[1], "right_x": fields.right_centre[0], "right_y": fields.right_centre[1],
            "symmetry": fields.symmetry, "contrast": fields.contrast, "confidence": fields.confidence}


def plausible_fields(fields: LungFields, limits: dict[str, tuple[float, float]]) -> bool:
    """Two plausible lung fields: each bounded value within its [low, high] (NaN never is)."""
    values = field_values(fields)
    return all(limits[k][0] <= values[k] <= limits[k][1] for k in limits)


def lung_evidence(gray299: np.ndarray, probability: np.ndarray) -> tuple[float, float]:
    """(contrast, confidence) of the lungs the 299 px probability map draws on this image."""
    mask = probability >= 0.5
    if not mask.any():
        return float("nan"), float("nan")
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    box = np.zeros_like(mask)
    box[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = True
    flat = equalize(gray299)
    around = box & ~mask
    outside = flat[around].mean() if around.any() else float("nan")
    contrast = float(flat[mask].mean() / outside) if outside and outside > 0 else float("nan")
    return contrast, float(probability[mask].mean())


def lung_fields(mask: np.ndarray, gray299: np.ndarray | None = None, probability: np.ndarray | None = None) -> LungFields:
    m = np.asarray(mask, dtype=bool)
    h, w = m.shape
    half = w // 2
    ys, xs = np.mgrid[:h, :w]

    def field(part: np.ndarray) -> tuple[float, tuple[float, float]]:
        n = part.sum()
        if n == 0:
            return 0.0, (float("nan"), float("nan"))
        return float(n / m.size), (float(xs[part].mean() / w), float(ys[part].mean() / h))

    left, right = m.copy(), m.copy()
    left[:, half:], right[:, :half] = False, False
    (la, lc), (ra, rc) = field(left), field(right)
    evidence = lung_evidence(gray299, probability) if gray299 is not None and probability is not None else (float("nan"),) * 2
    return LungFields(la, ra, lc, rc, *evidence)


# The lung step (docs/TRAINING.md, campaign lung1), two variants:
# "dim": the model sees the equalised frame multiplied by a weight that is 1 over the lungs and a
# margin round them and falls smoothly to 0 beyond, so that the mediastinum's edges, the diaphragm and
# the costophrenic angles stay in view but the arms, the abdomen, the neck and the markers do not;
# "crop": the model sees the box round the lungs (with a margin) resized to the full input, so every
# child's lungs fill the input whatever the child's size and the film's framing; its maps are put
# back into the frame. Where the segmenter finds no plausible lungs, either sees the whole frame.
LUNG_STEPS = ("none", "dim", "crop")
LUNG_MARGIN = 15  # px at 299 (5 % of the width): the dilation of the mask
LUNG_SOFTNESS = 5.0  # px: the Gaussian edge of the weight
CROP_MARGIN = 0.08  # of the box's width / height, on each side
CROP_QUANTILE = 0.005  # the box spans these quantiles of the lung pixels' rows and columns (a stray speck does not widen it)


def lung_weight(mask: np.ndarray, margin: int = LUNG_MARGIN, softness: float = LUNG_SOFTNESS) -> np.ndarray:
    """A (H, W) boolean lung mask -> uint8 weight (H, W): 255 over the dilated lungs, a soft edge, 0 beyond."""
    from PIL import ImageFilter

    picture = Image.fromarray(np.asarray(mask, dtype=np.uint8) * 255)
    dilated = picture.filter(ImageFilter.BoxBlur(margin)).point(lambda v: 255 if v > 0 else 0)
    return np.asarray(dilated.filter(ImageFilter.GaussianBlur(softness)), dtype=np.uint8)


Box = tuple[int, int, int, int]  # (left, top, right, bottom) in 299 px frame coordinates, right and bottom exclusive


def lung_box(mask: np.ndarray, margin: float = CROP_MARGIN) -> Box:
    """The box round the lungs (CROP_QUANTILE .. 1 - CROP_QUANTILE of their rows and columns) widened
    by `margin` of its size on each side, within the frame."""
    rows, cols = np.nonzero(np.asarray(mask, dtype=bool))
    h, w = np.shape(mask)
    top, bottom = np.quantile(rows, [CROP_QUANTILE, 1 - CROP_QUANTILE])
    left, right = np.quantile(cols, [CROP_QUANTILE, 1 - CROP_QUANTILE])
    dy, dx = margin * (bottom - top + 1), margin * (right - left + 1)
    return (max(0, int(np.floor(left - dx))), max(0, int(np.floor(top - dy))),
            min(w, int(np.ceil(right + 1 + dx))), min(h, int(np.ceil(bottom + 1 + dy))))


def crop_to(gray: np.ndarray, box: Box) -> np.ndarray:
    """uint8 (H, W) -> the box resized to (H, W), bilinear (its aspect ratio squashed, as the data set's are)."""
    left, top, right, bottom = box
    h, w = gray.shape
    return np.asarray(Image.fromarray(np.asarray(gray, np.uint8)[top:bottom, left:right]).resize((w, h), Image.Resampling.BILINEAR))


def map_to_frame(heatmap: np.ndarray, box: Box) -> np.ndarray:
    """A map over the cropped input (H, W) -> the same map over the frame: in the box, 0 outside it."""
    left, top, right, bottom = box
    out = np.zeros_like(heatmap, dtype=np.float32)
    resized = Image.fromarray(np.asarray(heatmap, np.float32)).resize((right - left, bottom - top), Image.Resampling.BILINEAR)
    out[top:bottom, left:right] = np.asarray(resized)
    return out


def plausible_lungs(mask: np.ndarray, limits: dict[str, tuple[float, float]]) -> bool:
    """Two lung fields whose areas, centres and symmetry lie within the training children's range (g4)."""
    return plausible_fields(lung_fields(mask), {k: v for k, v in limits.items() if k in FIELD_VALUES})


class LungSegmenter:
    """The shipped U-Net, called directly (no Keras predict loop: ~10 ms warm per X-ray here)."""

    def __init__(self, model, info: dict | None = None):
        import tensorflow as tf

        self.model = model
        self.info = info or {}
        self.size = int(model.input_shape[1])
        self._call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def probabilities(self, gray299: np.ndarray) -> np.ndarray:
        """(N, size, size) lung probabilities for uint8 (N, 299, 299) images."""
        return np.asarray(self._call(lung_input(gray299, self.size)))[..., 0]

    def masks(self, gray299: np.ndarray) -> np.ndarray:
        """(N, 299, 299) boolean lung masks."""
        gray299 = np.asarray(gray299)
        side = gray299.shape[-1]
        return to_frame(self.probabilities(gray299), side)

    def mask(self, gray299: np.ndarray) -> np.ndarray:
        return self.masks(np.asarray(gray299)[np.newaxis] if np.ndim(gray299) == 2 else gray299)[0]

    def plausible_masks(self, gray299: np.ndarray, batch_size: int = 64) -> Iterator[np.ndarray | None]:
        """Each uint8 (299, 299) image's mask in turn, None where it shows no plausible lungs (outside
        the training children's field limits, g4): there a lung step leaves the whole frame."""
        gray299 = np.asarray(gray299)
        limits = self.info.get("field_limits", {})
        for start in range(0, len(gray299), batch_size):
            for mask in self.masks(gray299[start : start + batch_size]):
                yield mask if plausible_lungs(mask, limits) else None

    def fields(self, gray299: np.ndarray) -> tuple[np.ndarray, LungFields]:
        """One X-ray's 299 px mask and its lung fields, with their contrast and the segmenter's confidence."""
        gray299 = np.asarray(gray299)
        probability = upsampled(self.probabilities(gray299[np.newaxis]), gray299.shape[-1])[0]
        mask = probability >= 0.5
        return mask, lung_fields(mask, gray299, probability)


class LungStep:
    """What a model trained with a lung step ("dim" or "crop") does to each uint8 299 px gray image
    before and inside the one preprocessing function, and how its maps go back to the frame."""

    REMEMBERED = 128  # images whose outcome is kept: asking again (were lungs found?) after a prediction costs no second segmentation

    def __init__(self, segmenter: LungSegmenter, kind: str):
        if kind not in LUNG_STEPS[1:]:
            raise ValueError(f"unknown lung step {kind!r} (known: {', '.join(LUNG_STEPS[1:])})")
        self.segmenter, self.kind = segmenter, kind
        self._outcomes: OrderedDict[bytes, np.ndarray | Box | None] = OrderedDict()

    def describe(self) -> str:
        """What the model sees, for a person."""
        return ("the X-ray darkened away from the lungs it outlines" if self.kind == "dim"
                else "the box round the lungs it outlines, enlarged to fill its input")

    def outcomes(self, gray299: np.ndarray, batch_size: int = 64) -> list[np.ndarray | Box | None]:
        """Per uint8 (299, 299) image: its weight ("dim", `lung_weight`) or its box ("crop", `lung_box`);
        None where the mask shows no plausible lungs (the model reads the whole frame)."""
        gray299 = np.asarray(gray299)
        make = lung_weight if self.kind == "dim" else lung_box
        out: list[np.ndarray | Box | None] = []
        for start in range(0, len(gray299), batch_size):  # in chunks, so that a training set is not remembered whole
            chunk = gray299[start : start + batch_size]
            keys = [hashlib.blake2b(g.tobytes(), digest_size=16).digest() for g in chunk]
            todo = [i for i, key in enumerate(keys) if key not in self._outcomes]
            for i, mask in zip(todo, self.segmenter.plausible_masks(chunk[todo], batch_size)):
                self._outcomes[keys[i]] = None if mask is None else make(mask)
            out += [self._outcomes[key] for key in keys]
            while len(self._outcomes) > self.REMEMBERED:
                self._outcomes.popitem(last=False)
        return out

    def weights(self, gray299: np.ndarray) -> np.ndarray:
        """"dim": the uint8 weights (N, 299, 299), 255 everywhere where no plausible lungs were found."""
        if self.kind != "dim":
            raise ValueError("only the dim step has weights: the crop step darkens nothing")
        out = np.full(np.shape(gray299), 255, dtype=np.uint8)
        for i, weight in enumerate(self.outcomes(gray299)):
            if weight is not None:
                out[i] = weight
        return out

    def boxes(self, gray299: np.ndarray) -> list[Box | None]:
        """"crop": each image's lung box, None where the mask shows no plausible lungs; "dim": all None."""
        return self.outcomes(gray299) if self.kind == "crop" else [None] * len(gray299)

    def crops(self, gray299: np.ndarray) -> np.ndarray:
        """"crop": each image's lung box resized to the frame (the whole frame without plausible lungs)."""
        return np.stack([g if box is None else crop_to(g, box) for g, box in zip(gray299, self.boxes(gray299))]) if len(gray299) else gray299

    def model_input(self, gray299: np.ndarray) -> np.ndarray:
        """uint8 (N, 299, 299) -> the model's float input (N, 299, 299, 3) through this step."""
        from pneumo.preprocess import to_model_input

        gray299 = np.asarray(gray299)
        if self.kind == "dim":
            return to_model_input(gray299, self.weights(gray299))
        return to_model_input(self.crops(gray299))

    def frame_input(self, gray299: np.ndarray) -> tuple[np.ndarray, Box | None]:
        """One uint8 (299, 299) image: its model input (299, 299, 3) and, for "crop", the box its maps
        go back to (`map_to_frame`); None where they are over the frame already."""
        gray = np.asarray(gray299)[np.newaxis]
        return self.model_input(gray)[0], self.boxes(gray)[0]

    def found(self, gray299: np.ndarray) -> bool:
        """Whether the step found plausible lungs on one image (else the model read the whole frame)."""
        return self.outcomes(np.asarray(gray299)[np.newaxis])[0] is not None


def input_lungs(lung_step: str, path: str | Path = LUNGS_FILE) -> LungStep | None:
    """The lung step a model's input needs (its bundle's `lung_step`): None for a model that sees the
    whole frame; FileNotFoundError when the model needs one and no segmenter ships."""
    if lung_step == "none":
        return None
    if lung_step not in LUNG_STEPS:
        raise ValueError(f"unknown lung step {lung_step!r} in the model's metrics.json (known: {', '.join(LUNG_STEPS)})")
    segmenter = load_segmenter(path)
    if segmenter is None:
        raise FileNotFoundError(f"this model was trained with the lung step {lung_step!r} and needs the lung segmenter at {path}")
    return LungStep(segmenter, lung_step)


def load_segmenter(path: str | Path = LUNGS_FILE) -> LungSegmenter | None:
    """The shipped segmenter (it does not depend on the classifier's weights); None if absent."""
    path = Path(path)
    if not path.is_file():
        return None
    from pneumo.runtime import configure_tensorflow_env

    configure_tensorflow_env()
    import keras

    info_file = path.with_suffix(".json")
    info = json.loads(info_file.read_text()) if info_file.is_file() else {}
    return LungSegmenter(keras.saving.load_model(path, compile=False), info)
