"""Is an upload plausibly a frontal chest radiograph? A guard in front of the diagnosis.

How it works, on what the model itself would see (the 299x299 grayscale input) plus the colour of
the decoded picture, in this order:

1. colour: radiographs are gray. A picture whose mean chroma (Hasler-Süsstrunk colourfulness)
   is above COLOUR_LIMIT is a colour photo, a screenshot or a chart.
2. blank: a picture with almost no contrast (standard deviation below BLANK_STD of full scale).
3. detail: radiographs carry fine structure (ribs, vessels, edges). A picture whose mean absolute
   Laplacian, relative to its contrast, is far below every training X-ray's is a gradient, a
   blurred scene or a blank page.
4. layout: frontal chest X-rays share one layout (dark lungs either side of a bright spine and
   heart, shoulders above, diaphragm below). The image is shrunk to 32x32, standardised (zero
   mean, unit variance) and projected onto the top principal components of the training X-rays.
   Two distances from "chest X-ray" come out: the share of its energy the components cannot
   explain (residual), and how unusual its coordinates along them are (Mahalanobis). Above the
   limits set on the training X-rays, the picture is flagged; if its negative fits, it is flagged
   as an inverted (negative) X-ray, which is also what a MONOCHROME1 DICOM whose pixels were
   really MONOCHROME2 looks like.
5. a second opinion (campaign g8): the layout was fitted on children and refuses many adults' films
   (portable, intensive care). A picture it refuses (not as inverted) still passes when two checks
   agree: the X-ray check (an SVM on edge histograms, X-rays against generated non-X-rays,
   weights/xray_check.npz) calls it an X-ray, and the population score calls it an adult's chest
   X-ray. Such a picture always carries the population warning (pneumo.reading.reader.checks), so
   nothing the layout refuses is ever read in silence.

The principal components and the limits are fitted by `python -m pneumo.training.guard --fit` on
the training split only and shipped in weights/xray_guard.npz (~100 KB); `--measure` prints the
false alarm rate on the test X-rays and the detection rate on generated non-X-ray pictures. This
module only checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops

from pneumo.bundle import ADULT_SCORE_FILE, GUARD_FILE, XRAY_CHECK_FILE
from pneumo.reading.population import ImageScore, load_image_score
from pneumo.reading.preprocess import thumbnails

COLOUR_LIMIT = 12.0  # colourfulness on 0..255; gray JPEG copies of X-rays measure < 3
BLANK_STD = 0.03


@dataclass
class Verdict:
    plausible: bool
    reason: str | None  # for a person, when not plausible
    residual: float  # distance from the X-ray layout (0 = perfect fit; nan when not measured)
    colourfulness: float
    kind: str | None = None  # for machines: None (plausible), "not_xray" or "inverted"
    check: str | None = None  # which check decided: "colour", "blank", "detail" or "layout" (None when plausible)
    layout_passed: bool = True  # False: the layout refused it and the second opinion let it through (always warned)

    def __post_init__(self):
        if self.kind is None and not self.plausible:
            self.kind = "not_xray"


def colourfulness(image: Image.Image) -> float:
    """Hasler and Süsstrunk (2003) colourfulness of an RGB picture (0 for gray), on 0..255."""
    if image.mode not in ("RGB", "RGBA", "P", "CMYK", "YCbCr", "LAB", "HSV", "PA"):
        return 0.0
    image = image.convert("RGB")
    red, green, blue = image.split()
    if ImageChops.difference(red, green).getbbox() is None and ImageChops.difference(green, blue).getbbox() is None:
        return 0.0  # a gray picture stored in colour (most X-ray JPEGs): what the formula gives, in a tenth of the time
    rgb = np.asarray(image.resize((128, 128), Image.Resampling.BILINEAR), dtype=np.float64)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def detail(gray299: np.ndarray) -> np.ndarray:
    """Mean absolute Laplacian relative to the standard deviation: fine structure per unit contrast."""
    x = np.asarray(gray299, dtype=np.float64)
    if x.ndim == 2:
        x = x[np.newaxis]
    laplacian = 4 * x[:, 1:-1, 1:-1] - x[:, :-2, 1:-1] - x[:, 2:, 1:-1] - x[:, 1:-1, :-2] - x[:, 1:-1, 2:]
    return np.abs(laplacian).mean(axis=(1, 2)) / np.maximum(x.std(axis=(1, 2)), 1e-6)


def layout_distances(x: np.ndarray, mean: np.ndarray, components: np.ndarray, scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(residual, Mahalanobis distance) of each row of features `x` from a layout: its mean, principal
    components and their scales."""
    coefficients = (x - mean) @ components.T
    residual = ((x - mean - coefficients @ components) ** 2).sum(axis=1) / x.shape[1]
    return residual, np.sqrt(((coefficients / scales) ** 2).sum(axis=1))


class XrayGuard:
    def __init__(self, mean: np.ndarray, components: np.ndarray, scales: np.ndarray, limits: dict[str, float], adult_score=None,
                 xray_check: ImageScore | None = None):
        self.mean, self.components, self.scales = mean, components, scales
        self.limits = {k: float(v) for k, v in limits.items()}  # residual, mahalanobis (max); detail (min)
        # pneumo.reading.population.ImageScore, shipped beside the guard: the population check of pictures
        # without an age in a header
        self.adult_score = adult_score
        self.xray_check = xray_check  # the second opinion on layout refusals (an ImageScore: at or above its threshold, an X-ray)

    def second_opinion(self, gray299: np.ndarray) -> bool:
        """Whether a picture the layout refused is an adult's chest X-ray by both the X-ray check and the
        population score (False without either)."""
        return (self.xray_check is not None and self.adult_score is not None
                and float(self.xray_check.score(gray299)[0]) >= self.xray_check.threshold
                and float(self.adult_score.score(gray299)[0]) >= self.adult_score.threshold)

    def distances(self, gray299: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(residual, Mahalanobis distance) of each image from the X-ray layout."""
        return layout_distances(thumbnails(gray299), self.mean, self.components, self.scales)

    def _fits(self, gray299: np.ndarray) -> tuple[bool, float]:
        residual, mahalanobis = (float(v[0]) for v in self.distances(gray299))
        return residual <= self.limits["residual"] and mahalanobis <= self.limits["mahalanobis"], residual

    def check(self, gray299: np.ndarray, picture: Image.Image | None = None) -> Verdict:
        """Whether `gray299` (the model's uint8 input) and its decoded `picture` look like a chest X-ray."""
        gray299 = np.asarray(gray299)
        colour = colourfulness(picture) if picture is not None else 0.0
        if colour > COLOUR_LIMIT:
            return Verdict(False, "This is a colour picture; radiographs are grayscale. It is probably not a chest X-ray.", float("nan"), colour,
                           check="colour")
        if float(gray299.std()) / 255.0 < BLANK_STD:
            return Verdict(False, "The picture is blank or almost uniform: there is no X-ray to read.", float("nan"), colour, check="blank")
        if float(detail(gray299)[0]) < self.limits["detail"]:
            return Verdict(False, "The picture has none of the fine detail of a radiograph (ribs, vessels, edges): it is not a chest X-ray, or far too blurred.", float("nan"), colour,
                           check="detail")
        fits, residual = self._fits(gray299)
        if fits:
            return Verdict(True, None, residual, colour)
        if self._fits(255 - gray299)[0]:
            return Verdict(
                False,
                "This looks like an inverted (negative) chest X-ray: bones dark, lungs bright. The model reads "
                "positive images; if this came from a DICOM file, its photometric interpretation may be mislabelled.",
                residual,
                colour,
                kind="inverted",
                check="layout",
            )
        if self.second_opinion(gray299):
            return Verdict(True, None, residual, colour, layout_passed=False)
        # The layout alone refused 4.7 % of NIH's adult films, 42 % of Hannover's ICU films and 11 % of the web's; with the
        # second opinion, 0-1 % (docs/POPULATION.md, g8). What is left is mostly not an X-ray, so it says both.
        return Verdict(False, "This does not look like the frontal chest X-rays the model learned from (children aged 1–5): "
                       "it is probably not a chest X-ray, or it is one the model was not made for, such as an adult's "
                       "film taken in intensive care.", residual, colour, check="layout")

    @classmethod
    def load(cls, path: str | Path) -> "XrayGuard":
        with np.load(path) as f:
            return cls(*(f[k].astype(np.float64) for k in ("mean", "components", "scales")), json.loads(str(f["limits"])))


def load_guard(path: str | Path = GUARD_FILE, adult_score: str | Path | None = ADULT_SCORE_FILE,
               xray_check: str | Path | None = XRAY_CHECK_FILE) -> XrayGuard | None:
    """The shipped guard with the shipped image score and X-ray check (none depends on which model
    weights are in use); None if absent. adult_score=None or xray_check=None: without it (the second
    opinion needs both)."""
    path = Path(path)
    if not path.is_file():
        return None
    guard = XrayGuard.load(path)
    if adult_score is not None:
        guard.adult_score = load_image_score(adult_score)
    if xray_check is not None:
        guard.xray_check = load_image_score(xray_check)
    return guard

