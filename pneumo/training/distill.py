"""Distillation targets: train on a blend of each image's label and the mean probability that
finished runs ("teachers") give it.

    python train.py --teacher runs/r12/pneumonia.keras --teacher runs/r13/pneumonia.keras --distill 0.5

The mean of several runs can rank images better than each of them (r12, r13 and r16 do on the
validation split: docs/TRAINING.md), and the shipped model must stay one network of the published
size, so a student of that size learns from their mean. The teachers predict each training image
once, unaugmented, through the one preprocessing function; the blended targets then go with the
image through augmentation.

A teacher must not have trained on this run's validation images (its scores there would be
memorised, not learned), so each teacher's own split is rebuilt from the metrics.json beside it
and checked against this run's validation split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from pneumo.bundle import METRICS_FILE, read_bundle
from pneumo.training.data import Sample, run_split


def check_teachers(teacher_files: Sequence[str | Path], data_dir: str | Path, val_samples: Sequence[Sample]) -> None:
    """Raise ValueError, naming the teacher, if a teacher file is missing, has no metrics.json beside
    it (its training split cannot be known), or trained on any of these validation images."""
    val_names = {s.path.name for s in val_samples}
    for teacher in teacher_files:
        teacher = Path(teacher)
        if not teacher.is_file():
            raise ValueError(f"teacher {teacher} does not exist")
        if not teacher.with_name(METRICS_FILE).is_file():
            raise ValueError(f"teacher {teacher} has no {METRICS_FILE} beside it, so its training split is unknown")
        unrecorded = ValueError(f"teacher {teacher}: its {METRICS_FILE} does not record the split it was trained on")
        try:
            config = read_bundle(teacher).config
            if not isinstance(config, dict):
                raise unrecorded
            teacher_train, _ = run_split(data_dir, config)
        except (ValueError, KeyError, TypeError):  # unreadable JSON (a ValueError) or not all of the split's settings
            raise unrecorded from None
        seen = val_names & {s.path.name for s in teacher_train}
        if seen:
            raise ValueError(
                f"teacher {teacher} trained on {len(seen)} of this run's {len(val_names)} validation images "
                "(another split seed or validation fraction): give it the same --split-seed and --val-fraction"
            )


def teacher_probabilities(teacher_files: Sequence[str | Path], gray: np.ndarray) -> np.ndarray:
    """The mean probability of pneumonia over the teachers, for uint8 grayscale images (N, 299, 299)."""
    from pneumo.inference import load_model, predict_gray

    probs = []
    for teacher in teacher_files:
        model = load_model(teacher)
        probs.append(predict_gray(model, gray))
        del model
    return np.mean(probs, axis=0).astype(np.float32)


def soft_targets(labels: np.ndarray, teacher_prob: np.ndarray, weight: float) -> np.ndarray:
    """(1 - weight) * label + weight * teacher probability: weight 0 is the labels, 1 the teachers alone."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"the distillation weight must be in [0, 1]; got {weight}")
    labels = np.asarray(labels, dtype=np.float32)
    teacher_prob = np.asarray(teacher_prob, dtype=np.float32)
    if labels.shape != teacher_prob.shape:
        raise ValueError(f"{len(teacher_prob)} teacher probabilities for {len(labels)} labels")
    return (1.0 - weight) * labels + weight * teacher_prob
