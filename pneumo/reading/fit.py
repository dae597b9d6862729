"""Fitting a site profile from a site's own films (`pneumo adapt`, the page's "Your site" tab).

Every film goes through the reader's checks first: a picture the guard or the population check flags
(not a chest X-ray, inverted, lateral, an adult's film) is left out, and the count says so. Labelled
films (at least MIN_LABELLED of each class) give the site's ROC, AUC and a threshold by the rule
docs/SITE.md registered. Label-free adaptation of the network's statistics is not offered: no method
passed its safety check (docs/SITE.md).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pneumo.bundle import CLASS_NAMES
from pneumo.operating import band_at, local_shares
from pneumo.reading.decode import ImageReadError
from pneumo.reading.preprocess import to_model_input
from pneumo.reading.reader import Reader
from pneumo.reading.siteprofile import (MIN_LABELLED, SiteProfile, batch_distance, distance_reference, distance_words, roc,
                                 site_threshold)

MAX_FILMS = 128  # at most this many films measure the site distance (evenly spaced over the rest)
LABEL_FREE = "not offered: no label-free method passed its safety check on a new site"


class NothingToFit(ValueError):
    """The films allow no profile; `report` still holds what was measured (the site distance)."""

    def __init__(self, message: str, report: dict, why: str = ""):
        super().__init__(message)
        self.report = report
        self.why = why  # the reason alone, for a caller that words the next step its own way


@dataclass
class SiteFilms:
    """A site's films as the model sees them, the ones left out and why, and the labels where given."""

    gray: np.ndarray  # uint8 (N, 299, 299): films that passed the checks
    names: list[str]
    labels: np.ndarray | None = None  # 0 NORMAL / 1 PNEUMONIA per usable film; -1 where unlabelled; None: no labels at all
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (film, why)


def folder_label(name: str) -> int:
    """1 / 0 for a film inside a PNEUMONIA / NORMAL folder (any depth, any case), else -1."""
    parts = [p.upper() for p in Path(name).parts[:-1]]
    return next((CLASS_NAMES.index(p) for p in reversed(parts) if p in CLASS_NAMES), -1)


def read_labels(path: str | Path) -> dict[str, int]:
    """A CSV with the columns file and label (NORMAL / PNEUMONIA, or 0 / 1): file name -> label.
    ValueError with the line for a person when it cannot be read."""
    labels = {}
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"cannot read the labels file {path}: {error}") from None
    for i, row in enumerate(rows, start=2):
        if not row or "file" not in row or "label" not in row:
            raise ValueError(f"{path}: the labels file needs the columns file and label")
        label = str(row["label"]).strip().upper()
        if label not in ("NORMAL", "PNEUMONIA", "0", "1"):
            raise ValueError(f"{path}, line {i}: label {row['label']!r} is not NORMAL or PNEUMONIA")
        labels[Path(str(row["file"]).strip()).name] = 1 if label in ("PNEUMONIA", "1") else 0
    return labels


def read_site_films(reader: Reader, items: list[tuple[str, bytes]], labels: dict[str, int] | None = None) -> SiteFilms:
    """The films that pass the reader's checks, as the model sees them. Labels: from `labels` (by file
    name) where given, else from NORMAL/ and PNEUMONIA/ folders in the names; None when no film has one."""
    gray, names, found, left_out = [], [], [], []
    for name, data in items:
        try:
            result = reader.prepare(data, name)
        except ImageReadError as error:
            left_out.append((name, str(error)))
            continue
        except Exception as error:  # noqa: BLE001 - one odd file must not stop the site
            left_out.append((name, f"could not be processed ({type(error).__name__})"))
            continue
        if result.warnings is not None:
            left_out.append((name, f"flagged: {result.warning_kind}"))
            continue
        gray.append(result.gray299)
        names.append(name)
        found.append(labels.get(Path(name).name, -1) if labels is not None else folder_label(name))
    marks = np.array(found, dtype=np.int32)
    return SiteFilms(np.stack(gray) if gray else np.empty((0, 299, 299), np.uint8), names,
                     marks if (marks >= 0).any() else None, left_out)


def evenly(n: int, most: int) -> np.ndarray:
    """Up to `most` indices spread evenly over range(n)."""
    return np.unique(np.linspace(0, n - 1, min(n, most)).round().astype(int)) if n else np.empty(0, int)


def fit_site(reader: Reader, films: SiteFilms, name: str) -> tuple[SiteProfile, dict]:
    """The profile for these films, and what a person is told about it. NothingToFit (a ValueError
    with a message for a person, and the report so far) when the films allow nothing: no labels, or
    too few of a class."""
    from pneumo.reading.networks import predict_gray

    model, model_file = reader.networks.model, reader.bundle.model_file
    usable = len(films.gray)
    report: dict = {"films": usable, "left_out": len(films.left_out), "label_free": LABEL_FREE}
    if usable:
        report["distance"] = batch_distance(model, to_model_input(films.gray[evenly(usable, MAX_FILMS)]))
        report["distance_words"] = distance_words(report["distance"], usable, distance_reference(model_file))
        report["before"] = report["after"] = predict_gray(model, films.gray)  # every usable film's score (the page's histograms)
    threshold, band = None, None
    labels = films.labels
    counts = {c: int((labels == c).sum()) for c in (0, 1)} if labels is not None else {0: 0, 1: 0}
    if labels is not None:
        if min(counts.values()) < MIN_LABELLED:
            report["calibration"] = (f"needs at least {MIN_LABELLED} labelled films of each class; got {counts[0]} NORMAL and "
                                     f"{counts[1]} PNEUMONIA")
        else:
            known = labels >= 0
            probabilities = report["after"][known]
            curve = roc(labels[known], probabilities)
            threshold = site_threshold(probabilities[labels[known] == 1])
            band = site_band(probabilities, labels[known], threshold)
            called = probabilities >= threshold
            report["calibration"] = {"auc": curve["auc"], "ci95": curve["ci95"], "threshold": threshold, "normal": counts[0],
                                     "pneumonia": counts[1], "sensitivity": float(called[labels[known] == 1].mean()),
                                     "specificity": float(1 - called[labels[known] == 0].mean())}
    if threshold is None:
        why = report.get("calibration") if isinstance(report.get("calibration"), str) else "no film came with a label"
        raise NothingToFit(f"nothing to fit: {why}. Only a labelled fit is offered (no label-free method passed its safety check): give at "
                           f"least {MIN_LABELLED} films of each class, in NORMAL/ and PNEUMONIA/ folders (or a zip of them on the page, "
                           "a labels CSV with `pneumo adapt --labels`)"
                           + (f" ({len(films.left_out)} film(s) left out by the checks)" if films.left_out else ""), report, why)
    profile = SiteProfile(site=name, model_sha256=reader.weights_sha256, method="threshold by the site rule", films=usable,
                          left_out=len(films.left_out), statistics={}, threshold=threshold, band=band)
    return profile, report


def site_band(probabilities: np.ndarray, labels: np.ndarray, threshold: float) -> tuple[float, float] | None:
    """The indeterminate band at the site threshold by the shipped band's rule, on the site's own
    labelled films: where more than 10 % of the nearest films (a fifth of them, at most 50) are misread."""
    neighbours = min(50, max(8, len(labels) // 5))
    grid, share = local_shares(probabilities, labels, neighbours)
    band = band_at({"logit_grid": grid, "pneumonia_share": share, "level": 0.10, "neighbours": neighbours,
                    "source": f"the site's {len(labels)} labelled films"}, threshold)
    return None if band is None else (round(band.low, 6), round(band.high, 6))


def describe_fit(report: dict, profile: SiteProfile) -> list[str]:
    """What a person is told about a fit (`pneumo adapt` prints it; the page shows it): the profile
    and its films first, then the site distance and the site threshold."""
    lines = [f"{profile.describe()}: {report['films']} film(s) passed the checks, {report['left_out']} left out; it changes "
             f"{profile.changes}"]
    if "distance_words" in report:
        lines.append(report["distance_words"])
    lines.append(f"label-free adaptation: {report['label_free']}")
    calibration = report.get("calibration")
    if isinstance(calibration, dict):
        lines.append(f"labelled films: {calibration['normal']} NORMAL, {calibration['pneumonia']} PNEUMONIA; AUC {calibration['auc']:.3f} "
                     f"(95 % CI {calibration['ci95'][0]:.3f}–{calibration['ci95'][1]:.3f}); site threshold {calibration['threshold']:.3f} "
                     f"(set from your labelled pneumonias): sensitivity {calibration['sensitivity']:.1%}, specificity {calibration['specificity']:.1%} "
                     "on these films, which chose it; expect less on new ones")
    elif calibration:
        lines.append(f"site threshold: {calibration}")
    return lines
