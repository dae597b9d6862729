"""What ships beside the weights, read in one place: the model file, the operating threshold, the
class names, the metrics and the training history, and the one rule that turns a probability into
a label. The app, the CLI, the evaluation and the report all go through here.

A bundle is a folder: pneumonia.keras, metrics.json (threshold, test and validation metrics, the
run's config), history.json (per-epoch curves), population.json (how it reads adults),
uncertainty.json (the indeterminate band's validation data), gallery/ (the test split's mistakes),
MODEL_CARD.md and its figures. PNEUMO_WEIGHTS=
/path/to/pneumonia.keras points the app and the CLIs at another bundle; the files beside that
model go with it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
_PACKAGE = Path(__file__).resolve().parent


def _shipped(folder: str) -> Path:
    """A folder that ships with the code: inside the package when installed (`pip install .` puts
    weights/ and examples/ there), else at the top of the checkout."""
    return _PACKAGE / folder if (_PACKAGE / folder).is_dir() else REPO_ROOT / folder


WEIGHTS_DIR = _shipped("weights")
EXAMPLES_DIR = _shipped("examples")
CLASS_NAMES = ("NORMAL", "PNEUMONIA")  # index = label; the positive class is PNEUMONIA = 1
MODEL_FILE = "pneumonia.keras"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.json"
CARD_FILE = "MODEL_CARD.md"
ROC_FILE = "roc.png"
POPULATION_FILE = "population.json"  # how the model reads adult X-rays (pneumo.training.population)
GALLERY_DIR = "gallery"  # the test split's misread X-rays as thumbnails (pneumo.training.gallery)
GALLERY_FILE = "gallery.json"
UNCERTAINTY_FILE = "uncertainty.json"  # validation scores behind the indeterminate band (pneumo.operating)
SITE_FILE = "site.json"  # how a site may fit this model: the label-free plan and the labelled rule (docs/SITE.md)
DEFAULT_THRESHOLD = 0.5  # for weights that ship no metrics.json
DEFAULT_MODEL = Path(os.environ.get("PNEUMO_WEIGHTS") or WEIGHTS_DIR / MODEL_FILE)
# The not-an-X-ray guard looks at pictures, not at any model's weights: one for every bundle.
GUARD_FILE = WEIGHTS_DIR / "xray_guard.npz"
# Nor does the image score that tells an adult's chest X-ray from a training child's (pneumo.reading.population).
ADULT_SCORE_FILE = WEIGHTS_DIR / "adult_score.npz"
# Nor does the X-ray check that gives a second opinion on pictures the guard's layout refuses (campaign g8).
XRAY_CHECK_FILE = WEIGHTS_DIR / "xray_check.npz"


def sha256_of(path: Path) -> str:
    """A file's SHA-256, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=4)
def _weights_hash(path: str, mtime: float) -> str:
    return sha256_of(Path(path))


def weights_sha256(path: Path) -> str:
    """The weights file's sha256, hashed once per file version; "" when there is no file."""
    path = Path(path)
    return _weights_hash(str(path), path.stat().st_mtime) if path.is_file() else ""


def predicted_label(probability: float | np.ndarray, threshold: float) -> int | np.ndarray:
    """1 (PNEUMONIA) where the probability is at least the threshold, else 0 (NORMAL): the one
    decision rule of the project. A scalar gives an int, an array an int array."""
    decided = np.asarray(probability) >= threshold
    return int(decided) if decided.ndim == 0 else decided.astype(np.int32)


def label_name(probability: float, threshold: float) -> str:
    """"PNEUMONIA" or "NORMAL" for one probability at `threshold`."""
    return CLASS_NAMES[predicted_label(probability, threshold)]


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


@dataclass(frozen=True)
class Bundle:
    """The files beside one model. Missing JSON files read as empty: a freshly trained model without
    a report still loads, at DEFAULT_THRESHOLD."""

    model_file: Path
    metrics: dict = field(default_factory=dict)
    history: dict | None = None
    population: dict | None = None  # population.json: how the model reads adult X-rays
    uncertainty: dict | None = None  # uncertainty.json: local validation pneumonia shares (pneumo.operating)
    site: dict | None = None  # site.json: what campaigns site1 and site2 shipped for fitting a site (docs/SITE.md)

    @property
    def folder(self) -> Path:
        return self.model_file.parent

    @property
    def threshold(self) -> float:
        return float(self.metrics.get("threshold", DEFAULT_THRESHOLD))

    @property
    def test(self) -> dict:
        """The test split's metrics at the shipped threshold ({} if none were reported)."""
        return self.metrics.get("test") or {}

    @property
    def threshold_source(self) -> str:
        """The validation data the threshold was chosen on, in words."""
        return self.metrics.get("threshold_source", "the validation split")

    @property
    def networks(self) -> int:
        """How many networks the model joins (1 for one network; pneumo.training.release ships more)."""
        return len((self.metrics.get("ensemble") or {}).get("members") or []) or 1

    @property
    def config(self) -> dict | None:
        """train.py's settings for the run (None for weights that did not record them)."""
        return self.metrics.get("config")

    @property
    def adult_normal_called_pneumonia(self) -> float | None:
        """The measured share of adult NORMAL X-rays from other hospitals called PNEUMONIA at the threshold."""
        measured = self.population or {}
        return measured.get("adult_normal_called_pneumonia") if measured.get("threshold") == self.threshold else None

    @property
    def adaptation_plan(self) -> tuple[str, dict[str, np.ndarray], dict | None] | None:
        """(setting, {BatchNorm layer: channels to re-estimate}, what it measured) of the label-free
        adaptation that campaign site1 shipped for these weights; None where none did."""
        plan = (self.site or {}).get("plan")
        if not plan:
            return None
        return (str(plan["setting"]), {name: np.asarray(mask, dtype=bool) for name, mask in plan["layers"].items()},
                plan.get("measured"))

    @property
    def labelled_rule(self) -> dict | None:
        """How a site's labelled films set its threshold (campaign site2): the training site's median
        pneumonia logit and what sites can expect by number of films; None where none shipped."""
        return (self.site or {}).get("labelled_rule")

    def threshold_or(self, override: float | None) -> float:
        """`override` (a --threshold flag) when given, else the shipped threshold."""
        return self.threshold if override is None else float(override)

    def file(self, name: str) -> Path:
        """Another file of the bundle (the model card, a figure)."""
        return self.folder / name


def read_bundle(weights: str | Path = DEFAULT_MODEL) -> Bundle:
    """The files beside the model at `weights`, as they are (the model itself is loaded by
    pneumo.reading.networks)."""
    model_file = Path(weights)
    return Bundle(model_file, read_json(model_file.with_name(METRICS_FILE)) or {}, read_json(model_file.with_name(HISTORY_FILE)),
                  read_json(model_file.with_name(POPULATION_FILE)), read_json(model_file.with_name(UNCERTAINTY_FILE)),
                  read_json(model_file.with_name(SITE_FILE)))



# The heatmap methods a person can choose, and the one every output uses unless asked
# (docs/EXPLANATIONS.md says how it was chosen).
METHOD_NAMES = {
    "hirescam": "HiResCAM",
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "layercam": "LayerCAM",
    "scorecam": "Faster Score-CAM",
}
DEFAULT_METHOD = "hirescam"

