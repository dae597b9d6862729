import numpy as np
import pytest

from conftest import FULL_DATA, TINY_DATA, needs_full_data
from pneumo.training.data import balanced_class_weights, labels_of, list_split, load_images, optional_test_split, patient_id, split_by_patient, split_seed_of


@pytest.mark.parametrize(
    "name,label,expected",
    [
        ("person1_bacteria_1.jpeg", 1, "PNEUMONIA/person1"),
        ("person1000_virus_1681.jpeg", 1, "PNEUMONIA/person1000"),
        ("person447_virus_921_1.jpeg", 1, "PNEUMONIA/person447"),
        ("IM-0115-0001.jpeg", 0, "NORMAL/IM-0115"),
        ("IM-0429-0001-0002.jpeg", 0, "NORMAL/IM-0429"),
        ("NORMAL2-IM-1345-0001.jpeg", 0, "NORMAL/NORMAL2-IM-1345"),
        ("odd name.png", 0, "NORMAL/odd name"),
    ],
)
def test_patient_id(name, label, expected):
    assert patient_id(name, label) == expected


def _check_split(samples, fraction, seed):
    train, val = split_by_patient(samples, fraction, seed)
    assert len(train) + len(val) == len(samples)
    assert not {s.patient for s in train} & {s.patient for s in val}
    assert set(labels_of(val)) == {0, 1}  # stratified: both classes in validation
    again = split_by_patient(samples, fraction, seed)
    assert [s.path for s in again[1]] == [s.path for s in val]  # deterministic
    return train, val


def test_patient_split_on_tiny_data():
    samples = list_split(TINY_DATA, "train")
    _check_split(samples, 0.25, seed=0)


@needs_full_data
def test_patient_split_on_the_real_train_folder():
    samples = list_split(FULL_DATA, "train")
    assert len(samples) == 5216
    train, val = _check_split(samples, 0.1, seed=42)
    assert 0.09 < len(val) / len(samples) < 0.12
    for label in (0, 1):  # stratified: each class gets about 10% in validation
        share = (labels_of(val) == label).sum() / (labels_of(samples) == label).sum()
        assert 0.09 < share < 0.12
    other = split_by_patient(samples, 0.1, seed=7)[1]
    assert {s.path for s in other} != {s.path for s in val}


def test_split_seed_of_a_run_config():
    # Runs before --split-seed drew their split from --seed; a run with --split-seed keeps that split
    # while its own --seed changes the rest.
    assert split_seed_of({"seed": 42}) == 42
    assert split_seed_of({"seed": 42, "split_seed": None}) == 42
    assert split_seed_of({"seed": 1, "split_seed": 42}) == 42
    assert split_seed_of({"seed": 1, "split_seed": 0}) == 0


def test_balanced_class_weights():
    weights = balanced_class_weights(np.array([0] * 25 + [1] * 75))
    assert weights == pytest.approx({0: 2.0, 1: 2 / 3})
    assert 25 * weights[0] == pytest.approx(75 * weights[1])
    with pytest.raises(ValueError):
        balanced_class_weights(np.array([1, 1]))


def test_image_cache_round_trip(tmp_path):
    samples = list_split(TINY_DATA, "test")
    first, sizes = load_images(samples, tmp_path, workers=1, progress=False)
    assert first.shape == (len(samples), 299, 299) and first.dtype == np.uint8
    assert sizes.tolist()[0] == [224, 224]
    assert len(list(tmp_path.glob("images-*.npz"))) == 1
    second, _ = load_images(samples, tmp_path, workers=1, progress=False)
    assert np.array_equal(first, second)


def test_missing_split_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no 'train' folder"):
        list_split(tmp_path, "train")


def test_test_split_is_optional(tmp_path):
    # Reports evaluate the test split when the data set has one; a data set without it is not an error.
    assert optional_test_split(tmp_path) == []
    assert optional_test_split(TINY_DATA) == list_split(TINY_DATA, "test")
    assert optional_test_split(TINY_DATA)


@needs_full_data
def test_cross_validation_folds_keep_patients_apart_and_classes_balanced():
    from pneumo.training.data import fold_split, patient_folds

    samples = list_split(FULL_DATA, "train")
    folds = patient_folds(samples, 5, seed=42)
    assert set(folds) == {0, 1, 2, 3, 4}
    labels = labels_of(samples)
    for k in range(5):  # stratified: 775 of the 3875 pneumonias and about a fifth of the NORMALs in each
        assert (labels[folds == k] == 1).sum() == 775 and 265 <= (labels[folds == k] == 0).sum() <= 272
    fold_of_patient: dict[str, set] = {}
    for sample, fold in zip(samples, folds):
        fold_of_patient.setdefault(sample.patient, set()).add(int(fold))
    assert all(len(f) == 1 for f in fold_of_patient.values())  # no patient in two folds
    np.testing.assert_array_equal(patient_folds(samples, 5, seed=42), folds)  # deterministic
    assert (patient_folds(samples, 5, seed=7) != folds).any()
    train, val = fold_split(samples, 5, 3, seed=42)
    assert {s.path for s in val} == {s.path for s, f in zip(samples, folds) if f == 3} and len(train) + len(val) == 5216


def test_folds_and_series_on_tiny_data():
    from pneumo.training.data import fold_split, patient_folds, run_split, series_of

    samples = list_split(TINY_DATA, "train")
    folds = patient_folds(samples, 2, seed=0)
    assert sorted(set(folds)) == [0, 1]
    for k in (0, 1):
        assert set(labels_of([s for s, f in zip(samples, folds) if f == k])) == {0, 1}
    config = {"folds": 2, "fold": 1, "seed": 5, "split_seed": 0, "val_fraction": 0.1}
    assert [s.path for s in run_split(TINY_DATA, config)[1]] == [s.path for s in fold_split(samples, 2, 1, 0)[1]]
    with pytest.raises(ValueError, match="at least 2 folds"):
        patient_folds(samples, 1, seed=0)
    with pytest.raises(ValueError, match="fold must be between 0 and 1"):
        fold_split(samples, 2, 2, seed=0)
    assert [series_of(n) for n in ("NORMAL2-IM-1345-0001.jpeg", "IM-0115-0001.jpeg", "person1_bacteria_1.jpeg", "person3_virus_9.jpeg")] == [
        "NORMAL2", "IM", "bacteria", "virus"]


def test_two_workers_filling_one_cache_at_once_both_succeed(tmp_path, monkeypatch):
    """The workers of a multi-worker run share the decoded-image cache and decode at the same moment:
    each writes its own partial file, so neither renames the other's away (which killed one worker
    and left the other waiting for it)."""
    from pneumo.training import data
    from pneumo.training.data import list_split, load_images

    samples = list_split(TINY_DATA, "train")
    pids = iter([1001, 1002])
    monkeypatch.setattr(data.os, "getpid", lambda: next(pids))
    real_savez, others = np.savez, []

    def savez(path, **arrays):  # while this worker writes, the other one finishes
        real_savez(path, **arrays)
        if not others:
            others.append(None)
            others[0] = load_images(samples, tmp_path, workers=1, progress=False)

    monkeypatch.setattr(np, "savez", savez)
    images, sizes = load_images(samples, tmp_path, workers=1, progress=False)
    np.testing.assert_array_equal(images, others[0][0])
    assert [p.name for p in tmp_path.iterdir()] == [next(tmp_path.glob("images-*.npz")).name]  # one cache file, no partial left
