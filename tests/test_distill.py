"""Distillation: soft targets from finished runs, the check that a teacher never saw this run's
validation images, and `train.py --teacher ... --distill` end to end on the tiny data set."""

import json
import shutil

import numpy as np
import pytest

from conftest import TINY_DATA
from pneumo.training.augment import make_dataset
from pneumo.training.data import list_split, split_by_patient
from pneumo.training.distill import check_teachers, soft_targets
from test_train import _check_outputs, _train


def test_soft_targets_blend_label_and_teacher():
    labels, teacher = np.array([0, 1, 1, 0]), np.array([0.1, 0.9, 0.2, 0.6])
    np.testing.assert_allclose(soft_targets(labels, teacher, 0.5), [0.05, 0.95, 0.6, 0.3], atol=1e-6)
    np.testing.assert_array_equal(soft_targets(labels, teacher, 0.0), labels)
    np.testing.assert_allclose(soft_targets(labels, teacher, 1.0), teacher, atol=1e-7)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        soft_targets(labels, teacher, 1.5)
    with pytest.raises(ValueError, match="3 teacher probabilities for 4 labels"):
        soft_targets(labels, teacher[:3], 0.5)


def test_soft_targets_are_trained_on_while_class_weights_follow_the_label():
    gray = np.zeros((4, 299, 299), dtype=np.uint8)
    labels, targets = np.array([0, 1, 1, 0]), np.array([0.2, 0.7, 0.9, 0.4], dtype=np.float32)
    _, y, w = next(iter(make_dataset(gray, labels, 4, class_weight={0: 2.0, 1: 0.5}, targets=targets)))
    np.testing.assert_allclose(y.numpy(), np.stack([targets, labels], axis=-1))  # the loss's target, the metrics' label
    np.testing.assert_allclose(w.numpy(), [2.0, 0.5, 0.5, 2.0])
    with pytest.raises(ValueError, match="3 targets for 4 labels"):
        make_dataset(gray, labels, 4, targets=targets[:3])


def _fake_teacher(folder, config):
    folder.mkdir(parents=True)
    (folder / "pneumonia.keras").write_bytes(b"not read by the check")
    (folder / "metrics.json").write_text(json.dumps({"config": config}))
    return folder / "pneumonia.keras"


def test_a_teacher_that_trained_on_the_validation_images_is_refused(tmp_path):
    val = split_by_patient(list_split(TINY_DATA, "train"), 0.25, 1)[1]
    same_split = _fake_teacher(tmp_path / "same", {"val_fraction": 0.25, "seed": 7, "split_seed": 1})
    check_teachers([same_split], TINY_DATA, val)  # another training seed on the same split is fine
    other_split = _fake_teacher(tmp_path / "other", {"val_fraction": 0.25, "seed": 3})
    with pytest.raises(ValueError, match=r"trained on \d+ of this run's \d+ validation images"):
        check_teachers([same_split, other_split], TINY_DATA, val)
    with pytest.raises(ValueError, match="does not exist"):
        check_teachers([tmp_path / "missing.keras"], TINY_DATA, val)
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "pneumonia.keras").write_bytes(b"")
    with pytest.raises(ValueError, match="training split is unknown"):
        check_teachers([tmp_path / "bare" / "pneumonia.keras"], TINY_DATA, val)
    for config in ({"seed": 1}, None):  # no validation fraction; no config at all
        with pytest.raises(ValueError, match="does not record the split"):
            check_teachers([_fake_teacher(tmp_path / f"old{config is None}", config)], TINY_DATA, val)


def test_train_distils_from_teachers_and_refuses_bad_ones(tmp_path):
    cache = tmp_path / "cache"
    teacher_run = _train("--epochs", "1", out=tmp_path / "teacher", cache=cache)
    assert teacher_run.returncode == 0, teacher_run.stderr[-3000:]
    teacher = str(tmp_path / "teacher" / "pneumonia.keras")

    student = _train("--epochs", "1", "--teacher", teacher, "--teacher", teacher, "--distill", "0.5", out=tmp_path / "student", cache=cache)
    assert student.returncode == 0, student.stderr[-3000:]
    assert "2 teachers predicted the training images" in student.stdout
    assert "distillation: targets 0.5 x label + 0.5 x the teachers' mean" in student.stdout
    _check_outputs(tmp_path / "student", epochs=1)
    assert np.load(tmp_path / "student" / "checkpoint" / "teacher_probabilities.npy").shape == (8,)
    card = (tmp_path / "student" / "MODEL_CARD.md").read_text()
    assert f"--teacher {teacher} --teacher {teacher} --distill 0.5" in card
    assert "distilled: targets 0.5 × label + 0.5 × the mean probability of 2 earlier runs" in card

    alone = _train("--epochs", "1", "--teacher", teacher, out=tmp_path / "o1", cache=cache, timeout=60)
    assert alone.returncode == 2 and "--distill and --teacher go together" in alone.stderr
    shutil.copytree(tmp_path / "teacher", tmp_path / "moved")
    metrics = json.loads((tmp_path / "moved" / "metrics.json").read_text())
    metrics["config"]["split_seed"] = 3  # as if it had been trained on another split
    (tmp_path / "moved" / "metrics.json").write_text(json.dumps(metrics))
    for bad, message in [(tmp_path / "moved" / "pneumonia.keras", "validation images"), (tmp_path / "nothing.keras", "does not exist")]:
        refused = _train("--epochs", "1", "--teacher", str(bad), "--distill", "0.5", out=tmp_path / "o2", cache=cache, timeout=120)
        assert refused.returncode == 2 and message in refused.stderr and "Traceback" not in refused.stderr
    (tmp_path / "moved" / "pneumonia.keras").write_bytes(b"not a model")
    metrics["config"]["split_seed"] = None
    (tmp_path / "moved" / "metrics.json").write_text(json.dumps(metrics))
    broken = _train("--epochs", "1", "--teacher", str(tmp_path / "moved" / "pneumonia.keras"), "--distill", "0.5", out=tmp_path / "o3", cache=cache, timeout=120)
    assert broken.returncode == 2 and "a teacher could not be loaded" in broken.stderr and "Traceback" not in broken.stderr
