"""The shipped weights: they load as the published architecture, their files are complete, and
metrics.json reproduces from scratch on the test split through pneumo.training.evaluate."""

import json
import subprocess
import sys

import keras
import pytest

from pneumo.reading.explain import ensemble_members

from conftest import FULL_DATA, REPO_ROOT, SUBPROCESS_ENV, needs_full_data

WEIGHTS = REPO_ROOT / "weights"


@pytest.fixture(scope="module")
def metrics() -> dict:
    return json.loads((WEIGHTS / "metrics.json").read_text())


def test_shipped_files_are_complete(metrics):
    model = keras.saving.load_model(WEIGHTS / "pneumonia.keras")
    networks = ensemble_members(model) or [model]  # one network, or the fold networks joined (pneumo.training.release)
    assert len(networks) == len((metrics.get("ensemble") or {}).get("members") or [model])
    assert all(network.count_params() == 1_321_953 for network in networks)  # each the published network
    assert (WEIGHTS / "pneumonia.keras").stat().st_size < 6_000_000 * len(networks)  # no optimizer state
    history = json.loads((WEIGHTS / "history.json").read_text())
    runs = history.get("members") or [history]
    assert len(runs) == len(networks)
    for run in runs:
        assert 1 <= run["best_epoch"] <= len(run["epochs"]) <= metrics["epochs_run"]
    for key in ("threshold", "test", "validation", "seed", "versions", "git_commit", "training_seconds", "calibration"):
        assert key in metrics
    test = metrics["test"]
    assert test["counts"] == {"total": 624, "normal": 234, "pneumonia": 390}
    for name in ("auc", "accuracy", "sensitivity", "specificity"):
        low, high = test["ci95"][name]
        assert low <= test[name] <= high
    card = (WEIGHTS / "MODEL_CARD.md").read_text()
    assert "not a medical device" in card and "Adults, other hospitals" in card and "CC BY 4.0" in card
    for figure in ("roc.png", "reliability.png"):
        assert (WEIGHTS / figure).stat().st_size > 1000


@needs_full_data
def test_metrics_reproduce_on_the_test_split(metrics, tmp_path):
    out = tmp_path / "eval.json"
    result = subprocess.run(
        [sys.executable, "-m", "pneumo.training.evaluate", "--data-dir", str(FULL_DATA), "--split", "test",
         "--weights", str(WEIGHTS / "pneumonia.keras"), "--bootstrap", "0", "--cache-dir", "", "--json", str(out)],
        capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    again = json.loads(out.read_text())
    assert again["threshold"] == pytest.approx(metrics["threshold"])
    assert again["auc"] == pytest.approx(metrics["test"]["auc"], abs=1e-3)
    assert again["accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=1e-3)
    assert again["confusion_matrix"] == metrics["test"]["confusion_matrix"]


# What the README's results table states for the shipped weights on the 624 test X-rays. Weights that do
# worse, committed with a metrics.json made for them, pass every other test; they do not pass this one.
STATED = {"auc": 0.966, "sensitivity": 0.987, "specificity": 0.628}


@needs_full_data
def test_the_shipped_weights_read_the_test_folder_as_the_readme_states():
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from pneumo.reading import Reader, expand_inputs

    readme = (REPO_ROOT / "README.md").read_text()
    assert all(f"{value:.3f}" in readme for value in STATED.values())  # the card states these very numbers
    reader = Reader(WEIGHTS / "pneumonia.keras")
    files = expand_inputs([str(FULL_DATA / "test")])
    results = list(reader.read_many(files, maps=False, pictures=False))
    assert len(results) == 624 and not any(r.error for r in results)
    truth = np.array([int(r.name.split("/")[-2] == "PNEUMONIA") for r in results])
    probability = np.array([r.probability for r in results])
    called = probability >= reader.threshold
    assert reader.threshold == pytest.approx(0.223343, abs=1e-6)  # the shipped operating threshold
    assert round(roc_auc_score(truth, probability), 3) == STATED["auc"]
    assert round(float(called[truth == 1].mean()), 3) == STATED["sensitivity"]
    assert round(float(1 - called[truth == 0].mean()), 3) == STATED["specificity"]
