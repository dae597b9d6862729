"""Is this X-ray from the population the model learned from? Children aged 1 to 5, frontal views,
one hospital. Separate from the guard (pneumo.reading.guard: "is this a chest X-ray at all?"): an adult's
chest X-ray is a chest X-ray, but the model's reading of it is close to a coin toss.

The verdict says why, and from where (`source`):
- "dicom": the DICOM header. The patient's age (PatientAge in any form the standard allows, or the
  bare numbers some exporters write; else PatientBirthDate with the study's date, used and never
  shown), and a lateral view (ViewPosition, or a series, protocol or study description saying
  lateral). A header that gives an age decides: 1-5 years is in the population whatever the pixels say.
- "image": for a picture whose header gives no age (every JPEG and PNG), an image score
  (ImageScore): an RBF support-vector machine on histograms of oriented gradients of the model's
  input at 256 px (pneumo.reading.preprocess.gradient_histograms: the edges of ribs, clavicles, the heart's
  border), fitted on the training children against adult X-rays from three kinds of source by
  `python -m pneumo.training.population --fit` and shipped as numpy arrays (weights/adult_score.npz),
  so serving needs no scikit-learn. Its threshold sits above what 99 % of the training children of
  either class score (cross-fitted); how it does on hospitals it never saw: docs/POPULATION.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from pneumo.bundle import ADULT_SCORE_FILE
from pneumo.reading.preprocess import gradient_histograms

# The data set's children were one to five years old: an age in whole years outside 1..5 is outside
# the training population (an infant under one year is as much outside it as an adult).
TRAINING_AGES = (1.0, 6.0)  # [low, high) in years
_AGE = re.compile(r"^\s*(\d{1,3})\s*([DWMY]?)\s*$", re.IGNORECASE)
_UNIT_YEARS = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0, "": 1.0}  # bare numbers: years
_LATERAL_VIEWS = {"LL", "RL", "LAT", "LATERAL", "LLAT", "RLAT"}
_LATERAL_TEXT = re.compile(r"\bLAT(ERAL)?\b|\bSEITLICH\b", re.IGNORECASE)


def parse_age(text: str | None) -> float | None:
    """DICOM PatientAge (AS: '062Y', '018M', '010W', '005D') or a bare number of years ('62') -> years."""
    match = _AGE.match(str(text or ""))
    if not match:
        return None
    return int(match.group(1)) * _UNIT_YEARS[match.group(2).upper()]


def parse_date(text: str | None) -> date | None:
    """DICOM DA 'YYYYMMDD' (or 'YYYY.MM.DD', an old form) -> date."""
    digits = re.sub(r"[.\-]", "", str(text or "").strip())
    if not re.fullmatch(r"\d{8}", digits):
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


def age_from_dates(birth: str | None, study: str | None) -> float | None:
    """Years between a birth date and a study date (None if either is missing or the order is impossible)."""
    born, seen = parse_date(birth), parse_date(study)
    if born is None or seen is None or seen < born:
        return None
    return (seen - born).days / 365.25


def _age_words(years: float) -> str:
    if years < 1 / 12:
        return f"{round(years * 365.25)} days"
    if years < 2:
        return f"{round(years * 12)} months"
    return f"{int(years)} years"


@dataclass(frozen=True)
class PopulationVerdict:
    kind: str | None  # None (nothing seen against it), "population" (age, or an adult's film) or "lateral"
    reason: str | None  # for a person
    seen: str | None = None  # what was seen, briefly: "age 62 years (DICOM PatientAge)"
    age_years: float | None = None
    source: str | None = None  # what decided: "dicom" (the header) or "image" (the image score); None when nothing did
    score: float | None = None  # the image score, when the image decided

    @property
    def in_population(self) -> bool:
        return self.kind is None


IN_POPULATION = PopulationVerdict(None, None)


def check_header(fields: dict[str, str]) -> PopulationVerdict:
    """The verdict from DICOM header fields (IN_POPULATION when they say nothing against it)."""
    view = str(fields.get("ViewPosition") or "").strip().upper()
    texts = " ".join(str(fields.get(k) or "") for k in ("SeriesDescription", "ProtocolName", "StudyDescription", "ImageLaterality"))
    if view in _LATERAL_VIEWS or _LATERAL_TEXT.search(texts):
        source = f"ViewPosition {view}" if view in _LATERAL_VIEWS else "the series, protocol or study description"
        return PopulationVerdict("lateral", "This is a lateral view ({}); the model learned from frontal chest X-rays only, "
                                 "so its reading of a lateral film means nothing.".format(source), f"lateral view ({source})",
                                 source="dicom")
    years = parse_age(fields.get("PatientAge"))
    source = "DICOM PatientAge"
    if years is None:
        study = fields.get("StudyDate") or fields.get("AcquisitionDate") or fields.get("ContentDate") or fields.get("SeriesDate")
        years, source = age_from_dates(fields.get("PatientBirthDate"), study), "the DICOM birth and study dates"
    if years is None:
        return IN_POPULATION
    seen = f"age {_age_words(years)} ({source})"
    if TRAINING_AGES[0] <= years < TRAINING_AGES[1]:
        return PopulationVerdict(None, None, seen, age_years=years, source="dicom")  # the header decides: in the population
    return PopulationVerdict(
        "population",
        f"The patient's age is {_age_words(years)} ({source}); the model learned from children aged 1 to 5 years.",
        seen,
        age_years=years,
        source="dicom",
    )


@dataclass(frozen=True)
class ImageScore:
    """Does a picture look like an adult's chest X-ray rather than one of the training children's?
    An RBF support-vector machine on histograms of oriented gradients (`features`: "hogN", the picture
    at N px; pneumo.reading.preprocess.gradient_histograms), folded into arrays:
    z = features @ projection + offset (principal components and standardisation in one map), then
    score = sum_i dual_i exp(-gamma |z - support_i|^2) + intercept. Above `threshold`: adult."""

    side: int
    projection: np.ndarray  # (side * side, components)
    offset: np.ndarray  # (components,)
    support: np.ndarray  # (support vectors, components)
    dual: np.ndarray  # (support vectors,): dual coefficients, signed (adult positive)
    intercept: float
    gamma: float
    threshold: float
    children_share: float = 0.99  # the share of training children (each class) scoring below the threshold
    features: str = "hog256"  # "hogN": histograms of oriented gradients of the picture at N px

    def score(self, gray299: np.ndarray) -> np.ndarray:
        """The score of each of (N, 299, 299) uint8 images (one image: shape (1,))."""
        return self.score_features(gradient_histograms(gray299, int(self.features.removeprefix("hog"))))

    def score_features(self, x: np.ndarray) -> np.ndarray:
        """The score of each row of features `x` (what `score` computes from the pictures)."""
        z = x @ self.projection + self.offset
        squared = (z ** 2).sum(axis=1)[:, None] + (self.support ** 2).sum(axis=1)[None, :] - 2 * z @ self.support.T
        return np.exp(-self.gamma * np.maximum(squared, 0.0)) @ self.dual + self.intercept

    def check(self, gray299: np.ndarray) -> PopulationVerdict:
        """The image's verdict: "population" (source "image") when it scores above the threshold."""
        s = float(self.score(gray299)[0])
        if s < self.threshold:
            return PopulationVerdict(None, None, score=s)
        seen = f"looks like an adult's chest X-ray (score {s:.2f}; above what {self.children_share:.0%} of the training children score)"
        return PopulationVerdict(
            "population",
            f"This picture {seen}; the model learned from children aged 1 to 5 years, so its reading of an adult's film is "
            "unreliable.",
            seen,
            source="image",
            score=s,
        )

    def save(self, path: str | Path, **info) -> None:
        arrays = {k: np.asarray(getattr(self, k), dtype=np.float32) for k in ("projection", "offset", "support", "dual")}
        np.savez_compressed(path, **arrays, scalars=json.dumps({k: getattr(self, k) for k in ("side", "intercept", "gamma", "threshold",
                                                                                                "children_share", "features")}),
                            info=json.dumps(info))

    @classmethod
    def load(cls, path: str | Path) -> "ImageScore":
        with np.load(path) as f:
            scalars = json.loads(str(f["scalars"]))
            arrays = {k: f[k].astype(np.float64) for k in ("projection", "offset", "support", "dual")}
        return cls(side=int(scalars["side"]), intercept=float(scalars["intercept"]), gamma=float(scalars["gamma"]),
                   threshold=float(scalars["threshold"]), children_share=float(scalars["children_share"]),
                   features=str(scalars.get("features") or "hog256"), **arrays)


def load_image_score(path: str | Path = ADULT_SCORE_FILE) -> ImageScore | None:
    """The shipped image score (it does not depend on the classifier's weights); None if absent."""
    path = Path(path)
    return ImageScore.load(path) if path.is_file() else None


def population_of(header: dict[str, str], image: PopulationVerdict | None) -> PopulationVerdict:
    """The header's verdict where it gives an age or a view; else the image score's (IN_POPULATION without one)."""
    by_header = check_header(header)
    if by_header.source == "dicom":
        return by_header
    return image if image is not None else IN_POPULATION
