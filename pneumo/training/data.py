"""The data set on disk: listing the Kaggle layout, the patient-grouped validation split, and a
decode-once cache of preprocessed images.

Layout: DATA_DIR/{train,test[,val]}/{NORMAL,PNEUMONIA}/*.jpeg; label = folder (PNEUMONIA = 1).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pneumo.bundle import CLASS_NAMES, REPO_ROOT
from pneumo.reading.decode import read_image_file
from pneumo.reading.preprocess import IMAGE_SIZE, to_gray299

DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "chest_xray"
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache"
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
# The data set's originals are >= 320 px on the short side; its copies are 224 px.
SHARP_MIN_SIDE = 256
# Bump when preprocessing changes, so stale caches are not reused.
CACHE_VERSION = 1

_PNEUMONIA_PATIENT = re.compile(r"^(person\d+)_", re.IGNORECASE)
_NORMAL_PATIENT = re.compile(r"^((?:NORMAL2-)?IM-\d+)-", re.IGNORECASE)


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int  # 0 NORMAL, 1 PNEUMONIA

    @property
    def patient(self) -> str:
        return patient_id(self.path.name, self.label)


def patient_id(file_name: str, label: int) -> str:
    """The patient a file belongs to, from the Kaggle naming scheme.

    PNEUMONIA: personN_bacteria_K.jpeg / personN_virus_K.jpeg -> "PNEUMONIA/personN".
    NORMAL: IM-NNNN-KKKK.jpeg / NORMAL2-IM-NNNN-KKKK.jpeg -> "NORMAL/IM-NNNN" / "NORMAL/NORMAL2-IM-NNNN".
    The class is part of the key because the two name spaces are unrelated. A name that follows
    neither pattern is its own patient.
    """
    pattern = _PNEUMONIA_PATIENT if label == 1 else _NORMAL_PATIENT
    match = pattern.match(file_name)
    key = match.group(1) if match else Path(file_name).stem
    return f"{CLASS_NAMES[label]}/{key}"


def list_split(data_dir: str | Path, split: str) -> list[Sample]:
    """All images of one split, sorted by path (deterministic)."""
    root = Path(data_dir) / split
    if not root.is_dir():
        raise FileNotFoundError(f"no '{split}' folder in {data_dir} (expected {root}/NORMAL and {root}/PNEUMONIA)")
    samples = []
    for label, name in enumerate(CLASS_NAMES):
        folder = root / name
        if not folder.is_dir():
            raise FileNotFoundError(f"missing class folder {folder}")
        samples += [Sample(p, label) for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    if not samples:
        raise FileNotFoundError(f"no images under {root}")
    return samples


def split_by_patient(samples: list[Sample], val_fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Split into (train, val) with every patient on one side only, stratified by class.

    For each class, its patients are shuffled with `seed` and taken into validation until the
    class has `val_fraction` of its images there. Deterministic for a given file list and seed.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    rng = np.random.default_rng(seed)
    val_patients: set[str] = set()
    for label in range(len(CLASS_NAMES)):
        by_patient: dict[str, int] = {}
        for s in samples:
            if s.label == label:
                by_patient[s.patient] = by_patient.get(s.patient, 0) + 1
        patients = sorted(by_patient)
        rng.shuffle(patients)
        target = val_fraction * sum(by_patient.values())
        taken = 0
        for p in patients:
            if taken >= target:
                break
            val_patients.add(p)
            taken += by_patient[p]
    train = [s for s in samples if s.patient not in val_patients]
    val = [s for s in samples if s.patient in val_patients]
    return train, val


def train_val_split(data_dir: str | Path, val_fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """DATA_DIR/val if it exists, otherwise a patient-grouped split of DATA_DIR/train."""
    train = list_split(data_dir, "train")
    if (Path(data_dir) / "val").is_dir():
        return train, list_split(data_dir, "val")
    return split_by_patient(train, val_fraction, seed)


def patient_folds(samples: list[Sample], n_folds: int, seed: int) -> np.ndarray:
    """The fold (0..n_folds-1) of each sample: patient-grouped (no patient in two folds) and
    class-stratified K-fold, scikit-learn's StratifiedGroupKFold shuffled with `seed`.
    Deterministic for a given file list and seed."""
    if n_folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {n_folds}")
    return grouped_folds(labels_of(samples), [s.patient for s in samples], n_folds, seed)


def grouped_folds(strata, groups, n_folds: int, seed: int) -> np.ndarray:
    """The fold of each item: no group in two folds, strata balanced across them (scikit-learn's
    StratifiedGroupKFold shuffled with `seed`)."""
    from sklearn.model_selection import StratifiedGroupKFold

    folds = np.full(len(groups), -1, dtype=np.int32)
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for fold, (_, held_out) in enumerate(splitter.split(np.zeros(len(groups)), strata, groups)):
        folds[held_out] = fold
    return folds


def fold_split(samples: list[Sample], n_folds: int, fold: int, seed: int) -> tuple[list[Sample], list[Sample]]:
    """(train, validation) for cross-validation fold `fold`: validation is that fold."""
    if not 0 <= fold < n_folds:
        raise ValueError(f"fold must be between 0 and {n_folds - 1}, got {fold}")
    folds = patient_folds(samples, n_folds, seed)
    return [s for s, f in zip(samples, folds) if f != fold], [s for s, f in zip(samples, folds) if f == fold]


def series_of(file_name: str) -> str:
    """The data set's naming series: "NORMAL2" and "IM" (NORMAL), "bacteria" and "virus" (PNEUMONIA)."""
    name = Path(file_name).name
    if name.upper().startswith("NORMAL2-"):
        return "NORMAL2"
    if name.upper().startswith("IM-"):
        return "IM"
    for kind in ("bacteria", "virus"):
        if f"_{kind}" in name.lower():
            return kind
    return "other"


def optional_test_split(data_dir: str | Path) -> list[Sample]:
    """DATA_DIR/test's samples, or none when the data set has no test folder (it is optional:
    only reports use it)."""
    return list_split(data_dir, "test") if (Path(data_dir) / "test").is_dir() else []


def split_seed_of(cfg: dict) -> int:
    """The seed of a run's validation split: --split-seed if the run set one, else its --seed
    (runs before --split-seed existed drew the split from --seed)."""
    return cfg["seed"] if cfg.get("split_seed") is None else cfg["split_seed"]


def run_split(data_dir: str | Path, cfg: dict) -> tuple[list[Sample], list[Sample]]:
    """The (train, validation) samples of the run with config `cfg` (train.py's arguments, as
    metrics.json keeps them): what it trained on and what chose its epoch and threshold. A
    cross-validation run (--folds K --fold k) holds out fold k of DATA_DIR/train."""
    if cfg.get("folds"):
        return fold_split(list_split(data_dir, "train"), cfg["folds"], cfg["fold"], split_seed_of(cfg))
    if cfg.get("val_fraction") == 0:  # all of train/, no validation (train.py --val-fraction 0)
        return list_split(data_dir, "train"), []
    return train_val_split(data_dir, cfg["val_fraction"], split_seed_of(cfg))


def is_sharp(sizes: np.ndarray) -> np.ndarray:
    """Originals (short side >= SHARP_MIN_SIDE) as opposed to the blurrier 224 px copies."""
    return np.asarray(sizes).min(axis=1) >= SHARP_MIN_SIDE


def labels_of(samples: list[Sample]) -> np.ndarray:
    return np.array([s.label for s in samples], dtype=np.int32)


def balanced_class_weights(labels: np.ndarray) -> dict[int, float]:
    """n / (n_classes * n_c): each class contributes equally to the loss."""
    counts = np.bincount(labels, minlength=len(CLASS_NAMES))
    if (counts == 0).any():
        raise ValueError(f"both classes are needed for training, got counts {counts.tolist()}")
    return {c: float(len(labels) / (len(counts) * n)) for c, n in enumerate(counts)}


def _decode(path: str) -> tuple[np.ndarray, tuple[int, int]]:
    image = read_image_file(path)
    return to_gray299(image), image.size


def load_images(
    samples: list[Sample], cache_dir: str | Path | None, workers: int | None = None, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Decode and preprocess every sample once: uint8 (N, 299, 299) and original sizes (N, 2).

    Cached on disk under a key made of the file list (paths, sizes, mtimes) and CACHE_VERSION,
    so an epoch, a resumed run or an evaluation never decodes a JPEG twice.
    """
    key_source = json.dumps(
        [CACHE_VERSION, IMAGE_SIZE] + [[str(s.path.resolve()), s.path.stat().st_size, s.path.stat().st_mtime_ns] for s in samples]
    )
    key = hashlib.sha256(key_source.encode()).hexdigest()[:20]
    cache_file = Path(cache_dir) / f"images-{key}.npz" if cache_dir else None
    if cache_file is not None and cache_file.exists():
        with np.load(cache_file) as cached:
            return cached["images"], cached["sizes"]

    paths = [str(s.path) for s in samples]
    # Forking a process that already runs TensorFlow's thread pools can deadlock: decode in-process then.
    if workers is None:
        workers = 1 if "tensorflow" in sys.modules else min(len(paths), os.cpu_count() or 1)
    executor = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        chunk = max(1, len(paths) // (workers * 8))
        results = executor.map(_decode, paths, chunksize=chunk) if executor else map(_decode, paths)
        if progress:
            from tqdm import tqdm

            results = tqdm(results, total=len(paths), desc="decoding images (once, then cached)", unit="img")
        images = np.empty((len(paths), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
        sizes = np.empty((len(paths), 2), dtype=np.int32)
        for i, (gray, size) in enumerate(results):
            images[i], sizes[i] = gray, size
    finally:
        if executor:
            executor.shutdown(cancel_futures=True)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        # One partial file per process: workers of a multi-worker run share the cache and decode at once.
        partial = cache_file.with_suffix(f".{os.getpid()}.partial.npz")
        np.savez(partial, images=images, sizes=sizes)  # uncompressed: loads in a second
        partial.replace(cache_file)
    return images, sizes
