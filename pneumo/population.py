"""Is this X-ray from the population the model learned from? Children aged 1 to 5, frontal views,
one hospital. Separate from the guard (pneumo.guard: "is this a chest X-ray at all?"): an adult's
chest X-ray is a chest X-ray, but the model's reading of it is close to a coin toss.

The verdict says why. From the DICOM header: the patient's age (PatientAge in any form the
standard allows, or the bare numbers some exporters write; else PatientBirthDate with the study's
date, used and never shown), and a lateral view (ViewPosition, or a series, protocol or study
description saying lateral). A picture without such a header gets no population verdict yet: a
score from the image itself is not shipped (the measurements so far: the project's note on the
population issue).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

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
    view = str(fields.get("ViewPosition") or "").strip().upper()
    texts = " ".join(str(fields.get(k) or "") for k in ("SeriesDescription", "ProtocolName", "StudyDescription", "ImageLaterality"))
    if view in _LATERAL_VIEWS or _LATERAL_TEXT.search(texts):
        source = f"ViewPosition {view}" if view in _LATERAL_VIEWS else "the series, protocol or study description"
        return PopulationVerdict("lateral", "This is a lateral view ({}); the model learned from frontal chest X-rays only, "
                                 "so its reading of a lateral film means nothing.".format(source), f"lateral view ({source})")
    years = parse_age(fields.get("PatientAge"))
    source = "DICOM PatientAge"
    if years is None:
        study = fields.get("StudyDate") or fields.get("AcquisitionDate") or fields.get("ContentDate") or fields.get("SeriesDate")
        years, source = age_from_dates(fields.get("PatientBirthDate"), study), "the DICOM birth and study dates"
    if years is None or TRAINING_AGES[0] <= years < TRAINING_AGES[1]:
        return IN_POPULATION
    seen = f"age {_age_words(years)} ({source})"
    return PopulationVerdict(
        "population",
        f"The patient's age is {_age_words(years)} ({source}); the model learned from children aged 1 to 5 years.",
        seen,
        age_years=years,
    )
