"""A real end-to-end `python train.py` on a tiny data set of real X-rays, including an interruption
and `--resume`."""

import json
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import REPO_ROOT, SUBPROCESS_ENV, TINY_DATA

ARGS = ["--batch-size", "4", "--val-fraction", "0.25", "--lr", "1e-3", "--seed", "1"]
HISTORY_KEYS = {"loss", "accuracy", "precision", "recall", "auc", "val_loss", "val_accuracy", "val_precision",
                "val_recall", "val_auc", "learning_rate", "seconds"}
TEST_METRIC_KEYS = {"auc", "accuracy", "sensitivity", "specificity", "precision", "f1", "confusion_matrix", "counts", "ci95"}


def _train(*extra, out, cache, timeout=300):
    command = [sys.executable, str(REPO_ROOT / "train.py"), "--data-dir", str(TINY_DATA), "--out", str(out), "--cache-dir", str(cache)]
    return subprocess.run(command + ARGS + list(extra), capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=timeout)


def _check_outputs(out, epochs):
    model = keras.saving.load_model(out / "pneumonia.keras")
    assert model.count_params() == 1_321_953
    assert getattr(model, "optimizer", None) is None  # shipped without optimizer state
    history = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == list(range(1, epochs + 1))
    assert all(HISTORY_KEYS <= set(e) for e in history["epochs"])
    assert 1 <= history["best_epoch"] <= epochs
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["threshold"] <= 1.0
    assert TEST_METRIC_KEYS <= set(metrics["test"])
    assert metrics["test"]["counts"] == {"total": 4, "normal": 2, "pneumonia": 2}
    assert {"seed", "versions", "git_commit", "training_seconds", "validation"} <= set(metrics)
    assert metrics["versions"]["oneDNN"] == "1"
    assert {"validation_brier", "test_brier"} <= set(metrics["calibration"])
    assert set(metrics["validation_by_resolution"]) <= {"224px_copies", "originals"}
    for name in ("MODEL_CARD.md", "roc.png", "reliability.png"):
        assert (out / name).stat().st_size > 0
    assert "not a medical device" in (out / "MODEL_CARD.md").read_text()
    # The model in the file is the one the metrics describe.
    from pneumo.training.data import labels_of, list_split, load_images
    from pneumo.reading.networks import predict_gray

    samples = list_split(TINY_DATA, "test")
    gray, _ = load_images(samples, None, workers=1, progress=False)
    prob = predict_gray(model, gray)
    from pneumo.training.metrics import binary_metrics

    again = binary_metrics(labels_of(samples), prob, metrics["threshold"])
    assert again["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert again["confusion_matrix"] == metrics["test"]["confusion_matrix"]
    return history


def test_train_writes_loadable_weights_history_and_metrics(tmp_path):
    result = _train("--epochs", "2", "--noise", "8", "--degrade-min-size", "150", "--mixup", "0.2", "--weight-decay", "0.05", "--split-seed", "3", out=tmp_path / "run", cache=tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "output bias initialised to log(" in result.stdout
    assert "shift score" in result.stdout and "sensitivity" not in result.stdout  # test numbers stay in the files
    _check_outputs(tmp_path / "run", epochs=2)
    card = (tmp_path / "run" / "MODEL_CARD.md").read_text()
    assert "--noise 8.0" in card and "150–224 px" in card and "noise σ ≤ 8 gray levels" in card and "mixup α 0.2" in card and "AdamW, weight decay 0.05" in card
    assert "sensitivity stays at or above 0.95 under every one of the seven fixed acquisition changes" in card
    assert "not an unbiased estimate" in card
    assert "(split seed 3; training seed 1)" in card
    # Evaluation and reports rebuild the validation split from --split-seed, not from --seed.
    from pneumo.training.data import list_split, split_by_patient
    from pneumo.training.evaluate import _split_samples

    def names(samples):
        return {s.path.name for s in samples}

    rebuilt = names(_split_samples(str(TINY_DATA), "val", str(tmp_path / "run" / "pneumonia.keras")))
    train_folder = list_split(TINY_DATA, "train")
    assert rebuilt == names(split_by_patient(train_folder, 0.25, 3)[1]) != names(split_by_patient(train_folder, 0.25, 1)[1])
    assert "| **mean** |" in card and "mean specificity over the changes (the shift score" in card
    # pneumo.training.report rebuilds the report from the files: the same threshold, the model card follows.
    from pneumo.bundle import read_bundle

    metrics_file = tmp_path / "run" / "metrics.json"
    stale = json.loads(metrics_file.read_text())
    report = subprocess.run([sys.executable, "-m", "pneumo.training.report", "--weights", str(tmp_path / "run" / "pneumonia.keras"),
                             "--cache-dir", str(tmp_path / "cache")], capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=120)
    assert report.returncode == 0, report.stderr[-2000:]
    metrics = json.loads(metrics_file.read_text())
    assert metrics["threshold"] == pytest.approx(stale["threshold"]) and metrics["config"] == stale["config"]
    assert read_bundle(tmp_path / "run" / "pneumonia.keras").threshold == metrics["threshold"]
    _check_outputs(tmp_path / "run", epochs=2)  # the file's model gives the metrics it now states
    assert list((tmp_path / "cache").glob("images-*.npz"))  # decoded once, cached


def test_interrupted_run_resumes_from_its_checkpoint(tmp_path):
    out, cache = tmp_path / "run", tmp_path / "cache"
    command = [sys.executable, str(REPO_ROOT / "train.py"), "--data-dir", str(TINY_DATA), "--out", str(out),
               "--cache-dir", str(cache), "--epochs", "4", "--weight-decay", "0.05"] + ARGS
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=SUBPROCESS_ENV)
    try:
        for line in process.stdout:  # kill it hard as soon as the first epoch is checkpointed
            if "checkpoint saved" in line:
                process.send_signal(signal.SIGKILL)
                break
    finally:
        process.kill()
        process.wait(timeout=60)
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    done = state["epoch"]
    assert 1 <= done < 4 and not state.get("finished")
    assert not (out / "pneumonia.keras").exists()

    # A plain restart refuses to throw the unfinished run away.
    refused = _train("--epochs", "4", out=out, cache=cache)
    assert refused.returncode == 2 and "--resume" in refused.stderr

    resumed = _train("--resume", out=out, cache=cache)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming after epoch {done} of 4" in resumed.stdout
    assert f"epoch {done + 1}/4:" in resumed.stdout and "epoch 1/4:" not in resumed.stdout
    history = _check_outputs(out, epochs=4)
    assert history["epochs"][:done] == state["history"]  # the epochs before the interruption are kept
    from pneumo.training import objectives  # noqa: F401 (registers the loss the checkpoint names; run alone, nothing else has)

    optimizer = keras.saving.load_model(out / "checkpoint" / "last.keras").optimizer
    assert type(optimizer).__name__ == "AdamW" and optimizer.weight_decay == pytest.approx(0.05)  # resumed as it began

    again = _train("--resume", out=out, cache=cache)
    assert again.returncode == 2 and "already finished" in again.stderr


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    result = _train("--resume", out=tmp_path / "nothing", cache=tmp_path / "cache", timeout=60)
    assert result.returncode == 2
    assert "no checkpoint" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "flags, message",
    [(["--noise", "-1"], "--noise must be >= 0"), (["--degrade-min-size", "300"], "--degrade-min-size must be in"), (["--zoom", "1.5"], "--zoom"), (["--mixup", "-0.2"], "--mixup must be >= 0"), (["--weight-decay", "-1"], "--weight-decay must be >= 0")],
)
def test_bad_augmentation_flags_are_clear_errors(tmp_path, flags, message):
    result = _train(*flags, out=tmp_path / "o", cache=tmp_path / "cache", timeout=60)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_missing_data_dir_is_a_clear_error(tmp_path):
    command = [sys.executable, str(REPO_ROOT / "train.py"), "--data-dir", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]
    result = subprocess.run(command, capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=60)
    assert result.returncode == 2
    assert "no 'train' folder" in result.stderr and "Traceback" not in result.stderr


def test_cross_validation_folds_write_out_of_fold_scores_that_combine(tmp_path):
    from pneumo.training.crossval import combine, main as crossval_main, read_out_of_fold

    cache = tmp_path / "cache"
    for k in (0, 1):
        result = _train("--epochs", "1", "--folds", "2", "--fold", str(k), out=tmp_path / f"f{k}", cache=cache)
        assert result.returncode == 0, result.stderr[-3000:]
        metrics = json.loads((tmp_path / f"f{k}" / "metrics.json").read_text())
        assert metrics["test"] is None and metrics["data"]["test"] == 0  # a fold model never reads the test split
        assert f"fold {k} of a 2-fold cross-validation split" in (tmp_path / f"f{k}" / "MODEL_CARD.md").read_text()
        rows = read_out_of_fold(tmp_path / f"f{k}" / "oof.csv")
        assert len(rows) == metrics["data"]["val"] and {r["fold"] for r in rows} == {k}
        # the file's model gives the probabilities its oof.csv states
        from pneumo.reading.networks import predict_gray
        from pneumo.training.data import load_images, run_split

        val = run_split(TINY_DATA, metrics["config"])[1]
        prob = predict_gray(keras.saving.load_model(tmp_path / f"f{k}" / "pneumonia.keras"), load_images(val, None, workers=1, progress=False)[0])
        assert [r["file"] for r in rows] == [s.path.name for s in val]
        np.testing.assert_allclose([r["probability"] for r in rows], prob, atol=1e-5)
    rows = combine([tmp_path / "f0", tmp_path / "f1"])
    assert sorted(r["file"] for r in rows) == sorted(p.name for p in (TINY_DATA / "train").rglob("*.jpeg"))
    assert {"file", "label", "fold", "patient", "series", "stored_size", "probability"} <= set(rows[0])
    assert crossval_main(["combine", str(tmp_path / "f0"), str(tmp_path / "f1"), "--out", str(tmp_path / "oof.csv")]) == 0
    assert len(read_out_of_fold(tmp_path / "oof.csv")) == 12
    with pytest.raises(ValueError, match="each of the 2 folds once"):
        combine([tmp_path / "f0", tmp_path / "f0"])
    assert crossval_main(["ensemble", str(tmp_path / "f0"), str(tmp_path / "f1"), "--out", str(tmp_path / "cv" / "pneumonia.keras")]) == 0
    from pneumo.reading.explain import ensemble_members

    joined = keras.saving.load_model(tmp_path / "cv" / "pneumonia.keras", compile=False)
    assert len(ensemble_members(joined)) == 2 and joined.count_params() == 2 * 1_321_953
    bad = _train("--epochs", "1", "--folds", "2", out=tmp_path / "bad", cache=cache)
    assert bad.returncode == 2 and "needs --fold" in bad.stderr


def test_a_run_on_all_of_train_keeps_the_last_epoch_and_chooses_no_threshold(tmp_path):
    """--val-fraction 0 (campaign cv5's run 7): every training X-ray trains, nothing validates, the last
    epoch is the model, and neither a threshold nor test numbers are written (release adds them)."""
    out = tmp_path / "run"
    result = _train("--epochs", "2", "--val-fraction", "0", out=out, cache=tmp_path / "cache")  # the later flag wins
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no validation (all of train/)" in result.stdout and "pneumo.training.release" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert "threshold" not in metrics and "test" not in metrics and metrics["data"]["train"] == 12 and metrics["data"]["val"] == 0
    history = json.loads((out / "history.json").read_text())
    assert history["best_epoch"] == 2 and history["monitor"] == "last epoch"
    assert not any(key.startswith("val_") for key in history["epochs"][-1])
    assert not (out / "MODEL_CARD.md").exists()
