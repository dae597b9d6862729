"""Fit the model to a site from its own films, and save what changes as a site profile.

    pneumo adapt scans/ --out site.json --name "Ward 7"          # unlabelled films: label-free adaptation
    pneumo adapt labelled/ --out site.json                        # NORMAL/ and PNEUMONIA/ folders: a site threshold too
    pneumo adapt scans/ --labels labels.csv --out site.json       # or a CSV of file and label
    pneumo predict new/ --site site.json                          # then read with it (= pneumo.load(site="site.json"))

Every film goes through the page's checks first (pneumo.analysis.model_view): a picture the guard or
the population check flags (not a chest X-ray, inverted, lateral, an adult's film) is left out, and
the count says so. Label-free adaptation re-estimates the BatchNorm statistics that campaign site1
chose (docs/SITE.md) from at least MIN_FILMS usable films, where that campaign shipped a plan
beside the weights; labelled films (at least MIN_LABELLED of each class) give the site's ROC, AUC
and a threshold by the rule docs/SITE.md registered.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pneumo.bundle import CLASS_NAMES, DEFAULT_MODEL
from pneumo.site import MIN_LABELLED, SITE_FILE, SiteProfile

MIN_FILMS = 32  # usable films for label-free adaptation (the smallest batch campaign site1 measured)
MAX_FILMS = 128  # at most this many films re-estimate the statistics (evenly spaced over the rest)


class NothingToFit(ValueError):
    """The films allow no profile; `report` still holds what was measured (the site distance)."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


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


def read_site_films(items: list[tuple[str, bytes]], guard, labels: dict[str, int] | None = None) -> SiteFilms:
    """The films that pass the page's checks, as the model sees them. Labels: from `labels` (by file
    name) where given, else from NORMAL/ and PNEUMONIA/ folders in the names; None when no film has one."""
    from pneumo.analysis import model_view, warning_of
    from pneumo.imageio import ImageReadError, decode

    gray, names, found, left_out = [], [], [], []
    for name, data in items:
        try:
            decoded = decode(data, name)
            g, verdict, population = model_view(decoded.image, guard, decoded.header)
        except ImageReadError as error:
            left_out.append((name, str(error)))
            continue
        except Exception as error:  # noqa: BLE001 - one odd file must not stop the site
            left_out.append((name, f"could not be processed ({type(error).__name__})"))
            continue
        warning = warning_of(verdict, population)
        if warning is not None:
            left_out.append((name, f"flagged: {warning[0]}"))
            continue
        gray.append(g)
        names.append(name)
        found.append(labels.get(Path(name).name, -1) if labels is not None else folder_label(name))
    marks = np.array(found, dtype=np.int32)
    return SiteFilms(np.stack(gray) if gray else np.empty((0, 299, 299), np.uint8), names,
                     marks if (marks >= 0).any() else None, left_out)


def evenly(n: int, most: int) -> np.ndarray:
    """Up to `most` indices spread evenly over range(n)."""
    return np.unique(np.linspace(0, n - 1, min(n, most)).round().astype(int)) if n else np.empty(0, int)


def shipped_plan(weights: str | Path = DEFAULT_MODEL) -> tuple[str, dict[str, np.ndarray]] | None:
    """(setting, plan) of the label-free adaptation shipped beside the weights; None where campaign
    site1 shipped none (docs/SITE.md)."""
    import json

    path = Path(weights).with_name(SITE_FILE)
    shipped = json.loads(path.read_text()).get("plan") if path.is_file() else None
    if not shipped:
        return None
    return shipped["setting"], {name: np.asarray(mask, dtype=bool) for name, mask in shipped["layers"].items()}


def fit_site(model, model_file: str | Path, films: SiteFilms, name: str, plan: tuple[str, dict] | None) -> tuple[SiteProfile, dict]:
    """The profile for these films, and what a person is told about it. NothingToFit (a ValueError
    with a message for a person, and the report so far) when the films allow nothing: too few usable
    films, or no shipped plan, and no labels to calibrate with."""
    from pneumo.inference import predict_gray
    from pneumo.preprocess import to_model_input
    from pneumo.bundle import weights_sha256
    from pneumo.site import batch_distance, distance_reference, distance_words, reestimate, roc, site_threshold, with_statistics

    usable = len(films.gray)
    chosen = evenly(usable, MAX_FILMS)  # the films the distance and the statistics are measured on
    report: dict = {"films": usable, "left_out": len(films.left_out)}
    if usable:
        report["distance"] = batch_distance(model, to_model_input(films.gray[chosen]))
        report["distance_words"] = distance_words(report["distance"], usable, distance_reference(model_file))
    statistics: dict = {}
    method = "none"
    if plan is None:
        report["label_free"] = "not shipped: no setting of campaign site1 passed its ship rule (docs/SITE.md)"
    elif usable < MIN_FILMS:
        report["label_free"] = f"needs at least {MIN_FILMS} films that pass the checks; {usable} did"
    else:
        statistics = reestimate(model, to_model_input(films.gray[chosen]), plan[1])
        method = f"campaign site1, setting {plan[0]}, from {len(chosen)} films"
        report["label_free"] = method
    adapted = with_statistics(model, statistics) if statistics else model
    if usable:  # every usable film's score, before and after (the page's histograms)
        report["before"] = predict_gray(model, films.gray)
        report["after"] = predict_gray(adapted, films.gray) if statistics else report["before"]
    threshold = None
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
            called = probabilities >= threshold
            report["calibration"] = {"auc": curve["auc"], "ci95": curve["ci95"], "threshold": threshold, "normal": counts[0],
                                     "pneumonia": counts[1], "sensitivity": float(called[labels[known] == 1].mean()),
                                     "specificity": float(1 - called[labels[known] == 0].mean())}
            method += "; threshold by the site rule" if method != "none" else "threshold by the site rule"
    if not statistics and threshold is None:
        reasons = [r for r in (report.get("label_free"), report.get("calibration")) if isinstance(r, str)]
        raise NothingToFit("nothing to fit: " + "; ".join(reasons) + (f" ({len(films.left_out)} film(s) left out by the checks)"
                                                                        if films.left_out else ""), report)
    profile = SiteProfile(site=name, model_sha256=weights_sha256(model_file), method=method, films=usable,
                          left_out=len(films.left_out), statistics=statistics, threshold=threshold)
    return profile, report


def describe(report: dict, profile: SiteProfile) -> list[str]:
    """What a person is told about a fit (`pneumo adapt` prints it; the page shows it): the profile
    and its films first, then the site distance, label-free adaptation and the site threshold."""
    lines = [f"{profile.describe()}: {report['films']} film(s) passed the checks, {report['left_out']} left out"]
    if "distance_words" in report:
        lines.append(report["distance_words"])
    lines.append(f"label-free adaptation: {report['label_free']}")
    calibration = report.get("calibration")
    if isinstance(calibration, dict):
        lines.append(f"labelled films: {calibration['normal']} NORMAL, {calibration['pneumonia']} PNEUMONIA; AUC {calibration['auc']:.3f} "
                     f"(95 % CI {calibration['ci95'][0]:.3f}–{calibration['ci95'][1]:.3f}); site threshold {calibration['threshold']:.3f} "
                     f"(the rule in docs/SITE.md): sensitivity {calibration['sensitivity']:.1%}, specificity {calibration['specificity']:.1%} "
                     "on these films, which chose it; expect less on new ones")
    elif calibration:
        lines.append(f"site threshold: {calibration}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pneumo adapt", description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", help="the site's films: files or folders (NORMAL/ and PNEUMONIA/ folders give labels)")
    parser.add_argument("--out", required=True, help="where to write the site profile (JSON)")
    parser.add_argument("--labels", default=None, help="a CSV with the columns file and label (NORMAL or PNEUMONIA)")
    parser.add_argument("--name", default=None, help="the site's name (default: the first input's name)")
    parser.add_argument("--weights", default=str(DEFAULT_MODEL), help="the model the profile is for (default: the shipped one)")
    args = parser.parse_args(argv)
    from pneumo.predict import files_or_say

    files = files_or_say(args.inputs)
    if not files:
        return 2
    try:
        labels = read_labels(args.labels) if args.labels else None
        from pneumo.bundle import load_bundle
        from pneumo.guard import load_guard
        from pneumo.inference import load_model

        bundle = load_bundle(args.weights)
        model = load_model(bundle.model_file)
        films = read_site_films([(str(f), f.read_bytes()) for f in files], load_guard(), labels)
        profile, report = fit_site(model, bundle.model_file, films, args.name or Path(args.inputs[0]).resolve().name,
                                   shipped_plan(bundle.model_file))
        profile.save(args.out)
    except (OSError, ValueError) as error:
        if isinstance(error, NothingToFit) and "distance_words" in error.report:
            print(error.report["distance_words"])
        print(f"error: {error}", file=sys.stderr)
        return 2
    for film, why in films.left_out:
        print(f"left out: {film}: {why}", file=sys.stderr)
    print("\n".join(describe(report, profile)))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
