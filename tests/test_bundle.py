"""The shipped bundle (pneumo.bundle: threshold, class names, metrics, history, the decision rule),
batched inference, and that the serving wing never loads the training wing or scikit-learn."""

import json
import subprocess
import sys

import numpy as np

from conftest import REPO_ROOT, SUBPROCESS_ENV, TINY_DATA
from pneumo.bundle import CLASS_NAMES, DEFAULT_THRESHOLD, label_name, read_bundle, predicted_label
from pneumo.reading.networks import predict_gray


class CentreBrightness:
    """A stand-in model: the probability is the mean model input in the central 100 x 100 pixels."""

    def __init__(self):
        self.batch_sizes = []

    def predict_on_batch(self, x):
        self.batch_sizes.append(len(x))
        return np.asarray(x)[:, 100:200, 100:200].mean(axis=(1, 2, 3))[:, None]


def test_the_decision_rule_is_at_least_the_threshold():
    assert predicted_label(0.3, 0.3) == 1 and predicted_label(0.2999, 0.3) == 0
    assert isinstance(predicted_label(0.5, 0.3), int)
    np.testing.assert_array_equal(predicted_label(np.array([0.1, 0.3, 0.9]), 0.3), [0, 1, 1])
    assert (label_name(0.31, 0.3), label_name(0.29, 0.3)) == ("PNEUMONIA", "NORMAL")
    assert CLASS_NAMES == ("NORMAL", "PNEUMONIA")


def test_bundle_reads_what_ships_beside_the_weights(tmp_path):
    weights = tmp_path / "pneumonia.keras"
    bare = read_bundle(weights)  # nothing shipped beside it
    assert (bare.threshold, bare.test, bare.config, bare.history) == (DEFAULT_THRESHOLD, {}, None, None)
    (tmp_path / "metrics.json").write_text(json.dumps({"threshold": 0.3, "test": {"auc": 0.9}, "config": {"seed": 1}}))
    (tmp_path / "history.json").write_text(json.dumps({"best_epoch": 2, "epochs": []}))
    bundle = read_bundle(weights)
    assert (bundle.threshold, bundle.test, bundle.config, bundle.history["best_epoch"]) == (0.3, {"auc": 0.9}, {"seed": 1}, 2)
    assert (bundle.threshold_or(None), bundle.threshold_or(0.7)) == (0.3, 0.7)
    assert bundle.file("roc.png") == tmp_path / "roc.png"


def test_shipped_bundle_is_complete():
    bundle = read_bundle()
    assert bundle.model_file == REPO_ROOT / "weights" / "pneumonia.keras" and bundle.model_file.is_file()
    assert 0.0 < bundle.threshold < 1.0 and bundle.test["counts"]["total"] == 624
    runs = bundle.history.get("members") or [bundle.history]  # an ensemble ships each member's curves
    assert len(runs) == bundle.networks and all(run["epochs"] for run in runs)


def test_predict_gray_batches():
    model = CentreBrightness()
    yy, xx = np.mgrid[:299, :299]
    gray = np.stack([((yy - 149) ** 2 + (xx - 149) ** 2 < r**2).astype(np.uint8) * 200 + 20 for r in (20, 40, 60, 80, 100)])
    probs = predict_gray(model, gray, batch_size=2)
    assert probs.shape == (5,) and model.batch_sizes == [2, 2, 1]
    assert np.all(np.diff(probs) >= 0)  # bigger bright disks, brighter centres
    assert predict_gray(model, gray[:0]).shape == (0,)


# scikit-learn is made unimportable first: Keras imports it when it can (for its scikit-learn
# wrappers) and goes on without it, so "loaded" alone would say nothing about this project's code.
SERVING_PROBE = r"""
import importlib.abc, sys

class NoScikitLearn(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "sklearn":
            raise ModuleNotFoundError(f"No module named {name!r} (the serving wing must not need it)")

sys.meta_path.insert(0, NoScikitLearn())
from streamlit.testing.v1 import AppTest

at = AppTest.from_file(sys.argv[1], default_timeout=180)
at.run()
assert not at.exception, at.exception
at.button(key="example-Pneumonia 1").click()
at.run()
assert not at.exception and at.metric, "the example got no result"
import pneumo.cli
assert pneumo.cli.main(["predict", sys.argv[2], "--json"]) == 0
loaded = sorted(m for m in sys.modules if m.startswith(("pneumo.training", "sklearn", "scipy.stats")))
print("LOADED", loaded)
"""


def test_the_app_and_the_cli_run_without_scikit_learn_and_load_no_training_module():
    result = subprocess.run(
        [sys.executable, "-c", SERVING_PROBE, str(REPO_ROOT / "streamlit_app.py"), str(TINY_DATA / "test")],
        capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=300, cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "LOADED []" in result.stdout, result.stdout[-2000:]
