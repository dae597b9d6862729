"""Fitting a site profile from a site's own films (`pneumo adapt`, the page's "Your site" tab).

Every film goes through the reader's checks first: a picture the guard or the population check flags
(not a chest X-ray, inverted, lateral, an adult's film) is left out, and the count says so. Then, as
docs/SITE.md registered and measured:

- labelled films (at least MIN_LABELLED of each class): the site's ROC and AUC, and a threshold by
  campaign site2's rule (the shipped threshold moved by how the site's pneumonias score against the
  training site's; never down without evidence), on the shipped network;
- otherwise, at least MIN_FILMS films: label-free adaptation, campaign site1's C-0.50 (the
  BatchNorm statistics of the convolutional blocks re-estimated from the site's films, the most
  class-sensitive half of each layer's channels kept as trained), at the shipped threshold.

What a site can expect is said from the campaigns' measurements (shipped in site.json beside the
weights), not from the films that made the profile.
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
from pneumo.reading.siteprofile import MIN_LABELLED, SiteProfile, reestimate, roc, site_threshold, with_statistics

MIN_FILMS = 32  # films for label-free adaptation: the smallest batch campaign site1 measured
MAX_FILMS = 128  # at most this many films re-estimate the statistics (evenly spaced over the rest)


class NothingToFit(ValueError):
    """The films allow no profile; `report` still holds what was measured (the films' scores)."""

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


def fit_files(reader: Reader, files: list[Path], name: str, labels: dict[str, int] | None = None) -> tuple[SiteProfile, dict, SiteFilms]:
    """`pneumo adapt`'s path (and the API's): the files read and checked, then `fit_site`. Returns the
    profile, what a person is told about it (`describe_fit`) and the films with those left out."""
    films = read_site_films(reader, [(str(f), Path(f).read_bytes()) for f in files], labels)
    profile, report = fit_site(reader, films, name)
    return profile, report, films


def evenly(n: int, most: int) -> np.ndarray:
    """Up to `most` indices spread evenly over range(n)."""
    return np.unique(np.linspace(0, n - 1, min(n, most)).round().astype(int)) if n else np.empty(0, int)


def expected_with(rule: dict, films: int) -> tuple[int, dict] | None:
    """(size, what campaign site2's simulation measured) at the largest simulated number of labelled films
    of each class not above `films`."""
    sizes = sorted(int(n) for n in rule.get("expected", {}) if int(n) <= films)
    return (sizes[-1], rule["expected"][str(sizes[-1])]) if sizes else None


def fit_site(reader: Reader, films: SiteFilms, name: str) -> tuple[SiteProfile, dict]:
    """The profile for these films, and what a person is told about it. NothingToFit (a ValueError
    with a message for a person, and the report so far) when the films allow nothing: too few
    labelled films of a class and too few films for label-free adaptation."""
    from pneumo.reading.networks import load_model, predict_gray

    if reader.site is not None and reader.site.statistics:  # fit from the shipped network, not one already adapted
        model = load_model(reader.bundle.model_file)
    else:
        model = reader.networks.model
    bundle = reader.bundle
    usable = len(films.gray)
    report: dict = {"films": usable, "left_out": len(films.left_out), "shipped_threshold": bundle.threshold}
    if usable:
        report["before"] = report["after"] = predict_gray(model, films.gray)  # every usable film's score (the page's histograms)
    labels = films.labels
    counts = {c: int((labels == c).sum()) for c in (0, 1)} if labels is not None else {0: 0, 1: 0}
    rule = bundle.labelled_rule
    if labels is not None and min(counts.values()) >= MIN_LABELLED and rule is not None:
        known = labels >= 0
        probabilities = report["before"][known]
        curve = roc(labels[known], probabilities)
        threshold = site_threshold(probabilities[labels[known] == 1], bundle.threshold, float(rule["training_pneumonia_logit"]))
        band = site_band(probabilities, labels[known], threshold)
        report["calibration"] = {"auc": curve["auc"], "ci95": curve["ci95"], "threshold": threshold, "normal": counts[0],
                                 "pneumonia": counts[1], "expected": expected_with(rule, min(counts.values()))}
        profile = SiteProfile(site=name, model_sha256=reader.weights_sha256, method="threshold by the site rule", films=usable,
                              left_out=len(films.left_out), statistics={}, threshold=threshold, band=band)
        return profile, report
    if labels is not None and rule is None:
        report["calibration"] = "these weights ship no rule for a site threshold (no site.json beside them)"
    elif labels is not None:
        report["calibration"] = (f"a site threshold needs at least {MIN_LABELLED} labelled films of each class; got {counts[0]} NORMAL "
                                 f"and {counts[1]} PNEUMONIA")
    plan = bundle.adaptation_plan
    left = f" ({len(films.left_out)} film(s) left out by the checks)" if films.left_out else ""
    if plan is None or usable < MIN_FILMS:
        why = (f"label-free adaptation needs at least {MIN_FILMS} films that pass the checks; {usable} did" if plan is not None
               else "no label-free adaptation ships with these weights")
        if isinstance(report.get("calibration"), str):
            why = f"{report['calibration']}, and {why}"
        raise NothingToFit(f"nothing to fit: {why}{left}. Give at least {MIN_FILMS} films of the site, or at least {MIN_LABELLED} "
                           "labelled films of each class in NORMAL/ and PNEUMONIA/ folders (or a zip of them on the page, a labels "
                           "CSV with `pneumo adapt --labels`)", report, why)
    setting, channels, measured = plan
    chosen = evenly(usable, MAX_FILMS)
    statistics = reestimate(model, to_model_input(films.gray[chosen]), channels)
    report["after"] = predict_gray(with_statistics(model, statistics), films.gray)
    report["label_free"] = {"setting": setting, "films": int(len(chosen)), "measured": measured}
    profile = SiteProfile(site=name, model_sha256=reader.weights_sha256, method=f"label-free adaptation ({setting})", films=int(len(chosen)),
                          left_out=len(films.left_out), statistics=statistics, threshold=None)
    return profile, report


def site_band(probabilities: np.ndarray, labels: np.ndarray, threshold: float) -> tuple[float, float] | None:
    """The indeterminate band at the site threshold by the shipped band's rule, on the site's own
    labelled films: where more than 10 % of the nearest films (a fifth of them, at most 50) are misread."""
    neighbours = min(50, max(8, len(labels) // 5))
    grid, share = local_shares(probabilities, labels, neighbours)
    band = band_at({"logit_grid": grid, "pneumonia_share": share, "level": 0.10, "neighbours": neighbours,
                    "source": f"the site's {len(labels)} labelled films"}, threshold)
    return None if band is None else (round(band.low, 6), round(band.high, 6))


def _spread(cell: dict) -> str:
    return f"{cell['mean']:.1%} (5th–95th percentile {cell['p5']:.1%}–{cell['p95']:.1%})"


def describe_fit(report: dict, profile: SiteProfile) -> list[str]:
    """What a person is told about a fit (`pneumo adapt` prints it; the page shows it): the profile
    and its films first, then what it changes and what a site can expect, as measured by the campaigns."""
    lines = [f"{profile.describe()}: {report['films']} film(s) passed the checks, {report['left_out']} left out; it changes "
             f"{profile.changes}"]
    calibration = report.get("calibration")
    if isinstance(calibration, dict):
        shipped = report.get("shipped_threshold")
        lines.append(f"labelled films: {calibration['normal']} NORMAL, {calibration['pneumonia']} PNEUMONIA; AUC {calibration['auc']:.3f} "
                     f"(95 % CI {calibration['ci95'][0]:.3f}–{calibration['ci95'][1]:.3f}); site threshold {calibration['threshold']:.3f}"
                     + (f" (the shipped one is {shipped:.3f}): moved by how your labelled pneumonias score against the training "
                        "hospital's, and never lowered unless they show the shipped one misses too many" if shipped else ""))
        expected = calibration.get("expected")
        if expected:
            size, cell = expected
            lines.append(f"what to expect on new films, as simulated with {size} labelled films of each class on a hospital the model "
                         f"never saw (half of the test folder, 1,000 draws): sensitivity {_spread(cell['sensitivity'])}, specificity "
                         f"{_spread(cell['specificity'])}, where the shipped threshold gave specificity {cell['shipped_specificity']['mean']:.1%}; "
                         "the figures on the films that set the threshold would promise more than new films give")
    elif calibration:
        lines.append(f"no site threshold: {calibration}")
    label_free = report.get("label_free")
    if label_free:
        lines.append(f"label-free adaptation from {label_free['films']} films: the statistics of the network's "
                     "convolutional blocks follow your films (their most class-sensitive half kept as trained); the threshold stays the shipped one")
        measured = label_free.get("measured")
        if measured:
            h, t = measured["holdout"], measured["training_site"]
            lines.append(f"measured on a hospital the model never saw (half of the test folder, batches of 32 and 64 at six class mixes): "
                         f"specificity {h['specificity'][0]:.0%}–{h['specificity'][1]:.0%} instead of {h['unadapted_specificity'][0]:.0%}–"
                         f"{h['unadapted_specificity'][1]:.0%}, sensitivity {h['sensitivity'][0]:.1%}–{h['sensitivity'][1]:.1%}; at the "
                         f"training hospital sensitivity {t['sensitivity'][0]:.1%}–{t['sensitivity'][1]:.1%} (unadapted "
                         f"{t['unadapted_sensitivity'][0]:.1%}–{t['unadapted_sensitivity'][1]:.1%}): its cost is there, with batches "
                         "made mostly of pneumonias")
    return lines
