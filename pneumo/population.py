"""Is this X-ray from the population the model learned from? Children aged 1 to 5, frontal views,
one hospital. Separate from the guard (pneumo.guard: "is this a chest X-ray at all?"): an adult's
chest X-ray is a chest X-ray, but the model's reading of it is close to a coin toss.

The verdict says why. From the DICOM header: the patient's age (PatientAge in any form the
standard allows, or the bare numbers some exporters write; else PatientBirthDate with the study's
date, used and never shown), and a lateral view (ViewPosition, or a series, protocol or study
description saying lateral). Where the header gives no age (a PNG, a JPEG, a DICOM without one),
from the image: a score fitted on the training X-rays against adult X-rays from two other hospitals
(pneumo.training.adultscore, campaign img3 in docs/POPULATION.md: an RBF support-vector machine on
the guard's 32x32 thumbnail, its principal components and scaling folded into numpy arrays in
weights/adult_score.npz, so serving needs no scikit-learn). Its threshold lets 0.5 % of the
training X-rays' cross-fitted scores through.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from pneumo.bundle import ADULT_SCORE_FILE
from pneumo.guard import thumbnails

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
    kind: str | None  # None (nothing seen against it), "population" (age) or "lateral"
    reason: str | None  # for a person
    seen: str | None = None  # what was seen, briefly: "age 62 years (DICOM PatientAge)"
    age_years: float | None = None

    @property
    def in_population(self) -> bool:
        return self.kind is None


IN_POPULATION = PopulationVerdict(None, None)


def check_header(fields: dict[str, str]) -> PopulationVerdict:
    """The verdict from DICOM header fields (IN_POPULATION when they say nothing against it)."""
    return _from_header(fields)[0]


def header_age(fields: dict[str, str]) -> float | None:
    """The patient's age in years from the header (PatientAge, else birth and study dates), if any."""
    years = parse_age(fields.get("PatientAge"))
    if years is None:
        study = fields.get("StudyDate") or fields.get("AcquisitionDate") or fields.get("ContentDate") or fields.get("SeriesDate")
        years = age_from_dates(fields.get("PatientBirthDate"), study)
    return years


def _from_header(fields: dict[str, str]) -> tuple[PopulationVerdict, bool]:
    """(verdict, whether the header settled it: a lateral view or an age)."""
    view = str(fields.get("ViewPosition") or "").strip().upper()
    texts = " ".join(str(fields.get(k) or "") for k in ("SeriesDescription", "ProtocolName", "StudyDescription", "ImageLaterality"))
    if view in _LATERAL_VIEWS or _LATERAL_TEXT.search(texts):
        source = f"ViewPosition {view}" if view in _LATERAL_VIEWS else "the series, protocol or study description"
        return PopulationVerdict("lateral", "This is a lateral view ({}); the model learned from frontal chest X-rays only, "
                                 "so its reading of a lateral film means nothing.".format(source), f"lateral view ({source})"), True
    years = header_age(fields)
    if years is None:
        return IN_POPULATION, False
    if TRAINING_AGES[0] <= years < TRAINING_AGES[1]:
        return IN_POPULATION, True
    source = "DICOM PatientAge" if parse_age(fields.get("PatientAge")) is not None else "the DICOM birth and study dates"
    return PopulationVerdict(
        "population",
        f"The patient's age is {_age_words(years)} ({source}); the model learned from children aged 1 to 5 years.",
        f"age {_age_words(years)} ({source})",
        age_years=years,
    ), True


LOOKS_ADULT = PopulationVerdict(
    "population",
    "This looks like an adult's chest X-ray (a score from the image itself, without an age in a DICOM header); "
    "the model learned from children aged 1 to 5 years.",
    "looks like an adult chest X-ray (a score from the image; no age in a DICOM header)",
)


@dataclass(frozen=True)
class ImageScore:
    """Does a picture look like an adult's chest X-ray? An RBF support-vector machine on the principal
    components of the guard's thumbnail: z = thumbnail @ projection - offset (components and
    scaling folded together), score = sum_i coef_i exp(-gamma |z - support_i|^2) + intercept;
    at or above the threshold: adult."""

    side: int
    projection: np.ndarray  # (side*side, components)
    offset: np.ndarray  # (components,)
    support: np.ndarray  # (vectors, components)
    coef: np.ndarray  # (vectors,)
    intercept: float
    gamma: float
    threshold: float

    def score(self, gray299: np.ndarray) -> np.ndarray:
        """uint8 (N, 299, 299) or (299, 299) -> (N,) scores."""
        z = thumbnails(gray299, self.side) @ self.projection - self.offset
        squared = (z ** 2).sum(axis=1)[:, None] - 2 * z @ self.support.T + (self.support ** 2).sum(axis=1)[None, :]
        return np.exp(-self.gamma * np.maximum(squared, 0.0)) @ self.coef + self.intercept

    def looks_adult(self, gray299: np.ndarray) -> bool:
        return bool(self.score(gray299)[0] >= self.threshold)

    def save(self, path: str | Path, facts: dict) -> None:
        np.savez_compressed(path, side=self.side, projection=self.projection.astype(np.float32), offset=self.offset,
                            support=self.support.astype(np.float32), coef=self.coef, intercept=self.intercept, gamma=self.gamma,
                            threshold=self.threshold, facts=json.dumps(facts))

    @classmethod
    def load(cls, path: str | Path) -> "ImageScore":
        with np.load(path) as f:
            return cls(int(f["side"]), f["projection"].astype(np.float64), f["offset"].astype(np.float64),
                       f["support"].astype(np.float64), f["coef"].astype(np.float64), float(f["intercept"]), float(f["gamma"]),
                       float(f["threshold"]))


def load_image_score(path: str | Path = ADULT_SCORE_FILE) -> ImageScore | None:
    """The shipped image score (weights/adult_score.npz); None if absent."""
    path = Path(path)
    return ImageScore.load(path) if path.is_file() else None


def check(fields: dict[str, str], gray299: np.ndarray | None = None, image_score: ImageScore | None = None) -> PopulationVerdict:
    """The population verdict: the header's when it gives a view or an age, else the image score's
    (when one is given), else IN_POPULATION."""
    verdict, settled = _from_header(fields)
    if settled or image_score is None or gray299 is None:
        return verdict
    return LOOKS_ADULT if image_score.looks_adult(gray299) else IN_POPULATION
