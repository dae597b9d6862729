"""pneumo.training.shift: the fixed acquisition changes and the scores computed under them."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import SUBPROCESS_ENV, TINY_DATA
from pneumo.reading.preprocess import to_model_input
from pneumo.training.shift import PERTURBATIONS, SCORES, contrast, gamma, noise, shift_metrics, shift_predictions, through


@pytest.fixture(scope="module")
def gray() -> np.ndarray:
    """Two smooth 299 px images with some texture: a dark and a bright one."""
    y, x = np.mgrid[0:299, 0:299]
    base = 90 + 60 * np.sin(x / 17.0) * np.cos(y / 23.0) + 20 * ((x // 7 + y // 7) % 2)
    return np.stack([base, base + 40]).clip(0, 255).astype(np.uint8)


def test_every_change_keeps_shape_and_type_for_one_image_and_a_batch(gray):
    for name, change in PERTURBATIONS.items():
        for images in (gray, gray[0]):
            out = change(images)
            assert out.shape == images.shape and out.dtype == np.uint8, name
    assert np.array_equal(PERTURBATIONS["identity"](gray), gray)


def test_changes_do_what_their_names_say(gray):
    assert gamma(0.6)(gray).mean() > gray.mean() + 10  # brighter mid-tones
    assert gamma(1.6)(gray).mean() < gray.mean() - 10
    assert gamma(0.6)(np.array([[0, 255]], np.uint8)).tolist() == [[0, 255]]  # black and white stay
    flat = contrast(0.6)(gray[0])
    assert flat.std() == pytest.approx(0.6 * gray[0].std(), rel=0.02)
    assert float(flat.mean()) == pytest.approx(float(gray[0].mean()), abs=1.0)  # about the image's mean
    blurred = through(150)(gray).astype(float)
    assert np.abs(np.diff(blurred, axis=-1)).mean() < np.abs(np.diff(gray.astype(float), axis=-1)).mean()
    noisy = noise(8.0)(gray)
    assert np.array_equal(noisy, noise(8.0)(gray))  # fixed: the same for every model judged
    assert 6.0 < (noisy.astype(float) - gray).std() < 10.0


class CornerBrightness:
    """A stand-in model: the probability is the mean model input in the top-left 50 x 50 corner."""

    def predict_on_batch(self, x):
        return x[:, :50, :50].mean(axis=(1, 2, 3))[:, None]


def test_scores_per_change_and_their_mean(gray):
    normal = gray[0]
    pneumonia = normal.copy()
    pneumonia[:50, :50] = 250  # a bright corner: the positives
    images = np.stack([normal] * 5 + [pneumonia] * 5)
    labels = np.array([0] * 5 + [1] * 5)
    scores = CornerBrightness().predict_on_batch(to_model_input(images)).ravel()
    threshold = float(scores[0] + scores[-1]) / 2.0
    results, used = shift_metrics(CornerBrightness(), images, labels, threshold=threshold)
    assert used == threshold
    assert list(results) == [*PERTURBATIONS, "mean"]
    assert results["identity"] == {"auc": 1.0, "sensitivity": 1.0, "specificity": 1.0, "balanced_accuracy": 1.0}
    # The model input is histogram-equalised (pneumo.reading.preprocess), so a change of gamma does not move
    # a single score, and the scores under it are those of the unchanged images.
    assert results["gamma 0.6"] == results["identity"] and results["gamma 1.6"] == results["identity"]
    for key in SCORES:
        assert results["mean"][key] == pytest.approx(np.mean([results[name][key] for name in PERTURBATIONS]))


def test_no_threshold_chooses_the_highest_that_keeps_the_sensitivity_floor_under_every_change(gray):
    normal = gray[0]
    pneumonia = normal.copy()
    pneumonia[:50, :50] = 250
    images, labels = np.stack([normal] * 3 + [pneumonia] * 3), np.array([0] * 3 + [1] * 3)
    scores = CornerBrightness().predict_on_batch(to_model_input(images)).ravel()
    results, chosen = shift_metrics(CornerBrightness(), images, labels, threshold=None)
    assert scores[0] < chosen <= scores[-1]  # separates the unchanged images
    # three positives cannot certify a 0.95 floor, so every positive is kept under every change...
    assert all(results[name]["sensitivity"] == 1.0 for name in PERTURBATIONS)
    # ...and no higher threshold does that: no image scores between it and the lowest positive under any change
    probs = shift_predictions(CornerBrightness(), images)
    lowest_positive = min(p[labels == 1].min() for p in probs.values())
    assert chosen < lowest_positive
    assert not any(np.any((p > chosen) & (p < lowest_positive)) for p in probs.values())


def _run(*args):
    return subprocess.run([sys.executable, "-m", "pneumo.training.shift", *map(str, args)], capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=180)


def test_cli_refuses_the_test_split_and_reports_missing_weights(tmp_path):
    refused = _run("--split", "test", "--data-dir", TINY_DATA)
    assert refused.returncode == 2 and "final reporting only" in refused.stderr
    missing = _run("--split", "train", "--data-dir", TINY_DATA, "--weights", tmp_path / "none.keras", "--cache-dir", "")
    assert missing.returncode == 2 and "no model file" in missing.stderr
    not_on_train = _run("--split", "train", "--data-dir", TINY_DATA, "--choose-threshold", "--cache-dir", "")
    assert not_on_train.returncode == 2 and "chosen on --split val only" in not_on_train.stderr
    both = _run("--split", "train", "--data-dir", TINY_DATA, "--choose-threshold", "--threshold", 0.5, "--cache-dir", "")
    assert both.returncode == 2 and "not both" in both.stderr
    for result in (refused, missing, not_on_train, both):
        assert "Traceback" not in result.stderr


def test_cli_scores_a_model_and_writes_json(tmp_path, untrained_model_file):
    out = tmp_path / "shift.json"
    result = _run("--split", "train", "--data-dir", TINY_DATA, "--weights", untrained_model_file, "--threshold", 0.5, "--cache-dir", "", "--json", out)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["threshold"] == 0.5 and set(report["changes"]) == {*PERTURBATIONS, "mean"}
    assert "balanced_accuracy" in result.stdout
