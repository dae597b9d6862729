"""The command-line tools: pneumo predict (pneumo.cli) and pneumo.training.evaluate."""

import csv
import json
import subprocess
import sys

import pytest

from conftest import SUBPROCESS_ENV, TINY_DATA


def _run(module, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=timeout)


def test_predict_files_folders_and_bad_files(tmp_path, untrained_model_file):
    text_as_png = tmp_path / "notes.png"
    text_as_png.write_text("this is not an image")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    jpeg_named_png = tmp_path / "xray.png"
    jpeg_named_png.write_bytes((TINY_DATA / "test" / "NORMAL" / "IM-0001-0001.jpeg").read_bytes())
    result = _run("pneumo", "predict", TINY_DATA / "test", text_as_png, empty, jpeg_named_png, "--json", "--weights", untrained_model_file)
    assert result.returncode == 1  # some files failed
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 7
    by_name = {r["file"].split("/")[-1]: r for r in rows}
    assert "not an image" in by_name["notes.png"]["error"]
    assert "empty" in by_name["empty.jpg"]["error"]
    good = [r for r in rows if r["error"] is None]
    assert len(good) == 5  # the 4 test images (folder, recursively) and the JPEG named .png
    for r in good:
        assert 0.0 <= r["probability"] <= 1.0
        assert r["label"] == ("PNEUMONIA" if r["probability"] >= r["threshold"] else "NORMAL")
    assert "Traceback" not in result.stderr


def test_predict_csv_and_exit_status_zero(tmp_path, untrained_model_file):
    out_csv = tmp_path / "out.csv"
    result = _run("pneumo", "predict", TINY_DATA / "train", "--csv", out_csv, "--weights", untrained_model_file)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 12 and all(r["error"] == "" for r in rows)


def test_evaluate_unwritable_output_is_a_clear_error(tmp_path, untrained_model_file):
    result = _run("pneumo.training.evaluate", "--data-dir", TINY_DATA, "--split", "test", "--weights", untrained_model_file,
                  "--bootstrap", "0", "--cache-dir", "", "--csv", tmp_path / "no such folder" / "rows.csv")
    assert result.returncode == 2 and "could not write" in result.stderr and "Traceback" not in result.stderr
    assert "accuracy" in result.stdout  # the metrics were printed before the write failed


def test_predict_missing_weights_is_a_clear_error(tmp_path):
    result = _run("pneumo", "predict", TINY_DATA / "test", "--weights", tmp_path / "none.keras")
    assert result.returncode == 2 and "no model file" in result.stderr and "Traceback" not in result.stderr


def test_evaluate_matches_a_direct_computation(tmp_path, untrained_model_file):
    out_json = tmp_path / "eval.json"
    result = _run("pneumo.training.evaluate", "--data-dir", TINY_DATA, "--split", "test", "--weights", untrained_model_file,
                  "--threshold", "0.5", "--bootstrap", "100", "--cache-dir", "", "--json", out_json, "--csv", tmp_path / "per-image.csv")
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads(out_json.read_text())
    assert metrics["counts"] == {"total": 4, "normal": 2, "pneumonia": 2}
    assert "auc" in result.stdout and "confusion" in result.stdout

    import keras

    from pneumo.training.data import labels_of, list_split, load_images
    from pneumo.reading.networks import predict_gray
    from pneumo.training.metrics import binary_metrics

    samples = list_split(TINY_DATA, "test")
    gray, _ = load_images(samples, None, workers=1, progress=False)
    prob = predict_gray(keras.saving.load_model(untrained_model_file), gray)
    expected = binary_metrics(labels_of(samples), prob, 0.5)
    assert metrics["auc"] == pytest.approx(expected["auc"])
    assert metrics["accuracy"] == pytest.approx(expected["accuracy"])
    assert metrics["confusion_matrix"] == expected["confusion_matrix"]
    # One row per image, lowest probability first, each with its label and the call at the threshold.
    import csv

    rows = list(csv.DictReader((tmp_path / "per-image.csv").open()))
    from PIL import Image

    by_file = {s.path.name: (s.label, p) for s, p in zip(samples, prob)}
    stored = {s.path.name: "{}x{}".format(*Image.open(s.path).size) for s in samples}
    assert sorted(r["file"] for r in rows) == sorted(by_file)
    assert [float(r["probability"]) for r in rows] == sorted(float(r["probability"]) for r in rows)
    for r in rows:
        label, p = by_file[r["file"]]
        assert r["label"] == ("NORMAL", "PNEUMONIA")[label] and float(r["probability"]) == pytest.approx(p, abs=1e-6)
        assert r["predicted"] == ("PNEUMONIA" if p >= 0.5 else "NORMAL") and r["correct"] == str(r["label"] == r["predicted"])
        assert r["stored_size"] == stored[r["file"]]


def test_evaluate_without_the_data_set_says_to_pass_data_dir(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pneumo.cli", "evaluate", "--data-dir", str(tmp_path / "absent")],
                            capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=120)
    assert result.returncode == 2
    assert "no 'test' folder" in result.stderr and "pass --data-dir DATA" in result.stderr and "Traceback" not in result.stderr


def test_batched_maps_equal_the_single_image_path_and_no_maps_gives_probabilities_alone(tmp_path):
    """The CLI's maps come from one pass per batch: each equals the page's one-image map (HiResCAM,
    to 1e-5); --no-maps gives the same probabilities without the lung fields. On the shipped network:
    an untrained one's unnormalised activations are so large that float32 rounding alone moves its
    probabilities by about 1e-6 between a batch of 12 and a batch of one, and by machine."""
    import numpy as np

    from pneumo.bundle import DEFAULT_MODEL
    from pneumo.reading import Reader
    from pneumo.training.data import list_split

    reader = Reader(DEFAULT_MODEL)
    files = [s.path for s in list_split(TINY_DATA, "train")]
    single = [reader.read(f) for f in files]
    batch = list(reader.read_many(files))
    assert [s.explained_class for s in single] == [b.explained_class for b in batch]
    assert max(abs(s.probability - b.probability) for s, b in zip(single, batch)) < 1e-6
    assert max(float(np.abs(s.heatmap - b.heatmap).max()) for s, b in zip(single, batch)) < 1e-5
    with_maps = _run("pneumo", "predict", TINY_DATA / "train", "--json", "--weights", DEFAULT_MODEL, "--batch-size", "5")
    without = _run("pneumo", "predict", TINY_DATA / "train", "--json", "--no-maps", "--weights", DEFAULT_MODEL)
    assert with_maps.returncode == 0 and without.returncode == 0, without.stderr[-2000:]
    rows = {json.loads(line)["file"]: json.loads(line) for line in with_maps.stdout.splitlines()}
    bare = {json.loads(line)["file"]: json.loads(line) for line in without.stdout.splitlines()}
    assert rows.keys() == bare.keys() and len(rows) == 12
    for name, row in rows.items():
        assert row["probability"] == pytest.approx(bare[name]["probability"], abs=1e-5)
        assert row["lung_share"] is not None and bare[name]["lung_share"] is None and bare[name]["map_in_lungs"] is None
    assert "predicting" in without.stderr  # the progress bar, on stderr
