"""The measurement sets, each named once: every campaign, benchmark and report asks here for the
X-rays it measures on, so that "the validation split" or "the adults from the web" mean the same
files everywhere.

| set | what | function |
|---|---|---|
| training children | `chest_xray/train/`, 5,216 X-rays | `training` |
| validation | the r-series split: 10 % of train/'s patients, seed 42 (524 X-rays) | `validation`, `in_validation` |
| test | `chest_xray/test/`, 624 X-rays: final reporting only | `test` |
| adults | NIH (2,000 NORMAL), Hannover (228 COVID-19), web (265 COVID-19): never train the classifier | `adults`, `ADULT_SOURCES` |
| children elsewhere | `pediatric_other/`, 16 children from other hospitals, with ages | `other_children` |
| non-X-rays | 120 generated pictures (pneumo.training.synthetic) | `non_xrays` |
| DICOMs | `dicom/`: a real adult CR and its MONOCHROME1 variant | `dicoms` |
| the new site's halves | test/ split by patient, seed 42, into a development half (312) and a holdout half (312), for site adaptation only (docs/SITE.md) | `site_half` |

Training runs choose their own validation split (train.py's --val-fraction, --seed, --folds;
`pneumo.training.data.run_split`); the validation set here is the one the guard, the image score
and the segmenter's campaigns measure on. The data never ships: everything here is for measuring.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pneumo.bundle import REPO_ROOT
from pneumo.training.data import DEFAULT_DATA_DIR, Sample, grouped_folds, list_split, optional_test_split, split_by_patient, train_val_split

SHARED_DATA = DEFAULT_DATA_DIR.parent
DEFAULT_ADULT_DIR = SHARED_DATA / "adult"
DEFAULT_WEB_DIR = SHARED_DATA / "adult_web"
DEFAULT_OTHER_CHILDREN_DIR = SHARED_DATA / "pediatric_other"
ADULT_SOURCES = ("NIH", "Hannover", "web")
VALIDATION_FRACTION, VALIDATION_SEED = 0.1, 42  # the r-series split
SITE_SEED = 42  # the test folder as a new site: halves by patient (docs/SITE.md)
SITE_HALVES = ("development", "holdout")
SITE_LISTS = REPO_ROOT / "lab" / "runs" / "site1"  # the halves' file lists, committed before any number of them was computed


def training(data_dir: str | Path = DEFAULT_DATA_DIR) -> list[Sample]:
    """Every training child (train/), sorted by path."""
    return list_split(data_dir, "train")


def validation(data_dir: str | Path = DEFAULT_DATA_DIR) -> list[Sample]:
    """The validation children: the r-series split of train/ by patient."""
    return train_val_split(data_dir, VALIDATION_FRACTION, VALIDATION_SEED)[1]


def in_validation(samples: list[Sample], data_dir: str | Path = DEFAULT_DATA_DIR) -> np.ndarray:
    """True for each of `samples` (training children) that lies in the validation split."""
    held = {str(s.path) for s in validation(data_dir)}
    return np.array([str(s.path) in held for s in samples], dtype=bool)


def test(data_dir: str | Path = DEFAULT_DATA_DIR, required: bool = True) -> list[Sample]:
    """The test children (test/), for final reporting; required=False: [] when the folder is absent."""
    return list_split(data_dir, "test") if required else optional_test_split(data_dir)


@dataclass(frozen=True)
class AdultSample:
    """An X-ray from outside the training population (to measure the model there and to recognise
    such uploads, never to train the classifier): its source ("NIH", "Hannover", "web" or "children
    elsewhere"), label, the patient it belongs to and, where known, the age in years."""

    path: Path
    source: str
    label: str  # "NORMAL" or "COVID19"
    group: str  # Hannover: its patient column; web: country, age and sex where the age is known; else each file its own
    age: float | None = None


def _manifest(folder: Path) -> list[dict]:
    manifest = folder / "MANIFEST.csv"
    if not manifest.is_file():
        raise FileNotFoundError(f"no X-ray set at {folder} (expected {manifest})")
    with open(manifest, newline="") as handle:
        return list(csv.DictReader(handle))


def list_adult(adult_dir: str | Path = DEFAULT_ADULT_DIR) -> list[AdultSample]:
    """The adult set's MANIFEST.csv (NIH and Hannover), sorted by path."""
    adult_dir = Path(adult_dir)
    samples = []
    for row in _manifest(adult_dir):
        source = "Hannover" if row["source"].lower().startswith("hannover") else "NIH"
        group = f"Hannover/{row['patient']}" if source == "Hannover" and row.get("patient") else f"{source}/{row['file']}"
        samples.append(AdultSample(adult_dir / row["file"], source, row["label"], group))
    return sorted(samples, key=lambda s: str(s.path))


def _web_rows(folder: Path, source: str) -> list[AdultSample]:
    samples = []
    for row in _manifest(folder):
        age = float(row["age"]) if row.get("age", "").strip() else None
        # Several films of one case sit side by side there without a patient id: country, age and sex stand for one.
        group = f"{source}/{row['country']}/{row['age']}/{row['sex']}" if age is not None else f"{source}/{row['file']}"
        samples.append(AdultSample(folder / row["file"], source, row["finding"].replace("-", "").upper(), group, age))
    return sorted(samples, key=lambda s: str(s.path))


def list_web(web_dir: str | Path = DEFAULT_WEB_DIR) -> list[AdultSample]:
    """The adult films collected from the web (COVID-CXNet, many countries), source "web"."""
    return _web_rows(Path(web_dir), "web")


def list_other_children(folder: str | Path = DEFAULT_OTHER_CHILDREN_DIR) -> list[AdultSample]:
    """The 16 children from hospitals other than Guangzhou (measured only), with their ages."""
    return _web_rows(Path(folder), "children elsewhere")


def adult_folds(samples: list[AdultSample], n_folds: int = 5, seed: int = 42) -> np.ndarray:
    """The fold of each adult X-ray: grouped by patient (see AdultSample.group) and stratified by source."""
    return grouped_folds([s.source for s in samples], [s.group for s in samples], n_folds, seed)


def site_halves(data_dir: str | Path = DEFAULT_DATA_DIR) -> dict[str, list[Sample]]:
    """test/ split by patient (class-stratified, seed SITE_SEED) into the development and holdout halves."""
    development, holdout = split_by_patient(test(data_dir), 0.5, SITE_SEED)
    return {"development": development, "holdout": holdout}


def site_half(name: str, data_dir: str | Path = DEFAULT_DATA_DIR) -> list[Sample]:
    """One half of the new site (docs/SITE.md), checked against its committed file list: a data set
    that splits differently is an error, not a silent change of what was measured."""
    if name not in SITE_HALVES:
        raise ValueError(f"no site half {name!r} (known: {', '.join(SITE_HALVES)})")
    samples = site_halves(data_dir)[name]
    listed = (SITE_LISTS / f"{name}.txt").read_text().split()
    if [f"{s.path.parent.name}/{s.path.name}" for s in samples] != listed:
        raise ValueError(f"the {name} half of {data_dir}/test differs from {SITE_LISTS / name}.txt")
    return samples


def adults(adult_dir: str | Path = DEFAULT_ADULT_DIR, web_dir: str | Path = DEFAULT_WEB_DIR,
           sources: tuple[str, ...] = ADULT_SOURCES) -> list[AdultSample]:
    """The adult X-rays of the given sources (default: NIH, Hannover and web), each source sorted by path."""
    chosen = [s for s in list_adult(adult_dir) if s.source in sources] if {"NIH", "Hannover"} & set(sources) else []
    return chosen + (list_web(web_dir) if "web" in sources else [])


def other_children(folder: str | Path = DEFAULT_OTHER_CHILDREN_DIR) -> list[AdultSample]:
    """The children from other hospitals, with their ages; [] where the folder is absent."""
    return list_other_children(folder) if (Path(folder) / "MANIFEST.csv").is_file() else []


def non_xrays() -> list[tuple[str, Image.Image]]:
    """The 120 generated pictures that are not chest X-rays (name, picture)."""
    from pneumo.training.synthetic import non_xray_images

    return non_xray_images()


def dicoms(data_dir: str | Path = DEFAULT_DATA_DIR) -> list[Path]:
    """The shared DICOM radiographs (the dicom/ folder beside the data set), sorted; [] where it is absent."""
    return sorted((Path(data_dir).parent / "dicom").glob("*.dcm"))
