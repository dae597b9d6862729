"""The cross-validation campaign's threshold rule and its out-of-fold report (validation numbers only)."""

import numpy as np
import pytest

from pneumo.training.crossval import oof_report, oof_threshold
from pneumo.training.metrics import fewest_detected


def _rows(rng, n_bacteria=400, n_virus=200, n_normal=300, virus_shift=0.0):
    rows = []
    for series, label, n, centre in (("bacteria", "PNEUMONIA", n_bacteria, 0.9), ("virus", "PNEUMONIA", n_virus, 0.9 - virus_shift),
                                     ("IM", "NORMAL", n_normal // 2, 0.1), ("NORMAL2", "NORMAL", n_normal // 2, 0.2)):
        for i, p in enumerate(np.clip(rng.normal(centre, 0.1, n), 0.0005, 0.9995)):
            rows.append({"file": f"{series}-{i}.jpeg", "label": label, "fold": i % 5, "patient": f"{series}/{i}", "series": series,
                         "stored_size": "224x224" if i % 3 else "400x320", "probability": float(p)})
    return rows


def test_the_threshold_keeps_the_floor_overall_and_within_each_series():
    rows = _rows(np.random.default_rng(0), virus_shift=0.25)  # viral pneumonias score lower: their floor binds
    rule = oof_threshold(rows)
    assert rule["binding"] == "virus" and rule["threshold"] == min(rule["candidates"].values()) < rule["candidates"]["all"]
    for series in ("bacteria", "virus"):
        scores = np.array([r["probability"] for r in rows if r["series"] == series])
        assert (scores >= rule["threshold"]).sum() >= fewest_detected(len(scores))  # its Wilson floor holds
    virus = np.sort([r["probability"] for r in rows if r["series"] == "virus"])[::-1]
    k = fewest_detected(len(virus))
    assert virus[k] < rule["threshold"] <= virus[k - 1]  # and no higher threshold keeps it
    assert oof_threshold(_rows(np.random.default_rng(0)))["threshold"] > rule["threshold"]


def test_the_report_gives_series_stored_sizes_and_worst_files():
    rows = _rows(np.random.default_rng(1))
    threshold = oof_threshold(rows)["threshold"]
    report = oof_report(rows, threshold, bootstrap=200)
    assert report["overall"]["counts"] == {"total": 900, "normal": 300, "pneumonia": 600}
    assert set(report["series"]) == {"bacteria", "virus", "IM", "NORMAL2"}
    assert "sensitivity" in report["series"]["virus"] and "specificity" in report["series"]["IM"]
    low, high = report["series"]["bacteria"]["sensitivity_ci95"]
    assert low <= report["series"]["bacteria"]["sensitivity"] <= high
    assert set(report["stored_size"]) == {"224px_copies", "originals"}
    worst_virus = report["worst"]["virus"]
    assert [w["probability"] for w in worst_virus] == sorted(r["probability"] for r in rows if r["series"] == "virus")[:5]
    worst_normal = report["worst"]["NORMAL2"]
    assert worst_normal[0]["probability"] == pytest.approx(max(r["probability"] for r in rows if r["series"] == "NORMAL2"))


def _fold_run(run, samples, folds, k, rng):
    """A finished fold run as train.py leaves it: an (untrained) model, metrics.json, history.json, oof.csv."""
    import json

    from pneumo.training.model import build_model
    from pneumo.training.crossval import write_out_of_fold

    from conftest import TINY_DATA

    run.mkdir()
    build_model(output_bias=0.2 * k).save(run / "pneumonia.keras")
    config = {"data_dir": str(TINY_DATA), "epochs": 2, "batch_size": 4, "seed": 1, "split_seed": 0, "folds": 2, "fold": k}
    (run / "metrics.json").write_text(json.dumps({
        "threshold": 0.5, "validation": {"auc": 0.9 + k / 100}, "best_epoch": 2, "epochs_run": 2, "training_seconds": 60.0,
        "seed": 1, "config": config, "versions": {"keras": "3"}, "git_commit": "abc"}))
    epochs = [{"epoch": e, "loss": 0.5, "val_loss": 0.4, "auc": 0.8, "val_auc": 0.9, "accuracy": 0.7, "val_accuracy": 0.8,
               "recall": 0.7, "val_recall": 0.8, "learning_rate": 0.001, "seconds": 3.0} for e in (1, 2)]
    (run / "history.json").write_text(json.dumps({"best_epoch": 2, "monitor": "val_auc", "epochs": epochs}))
    held = [s for s, f in zip(samples, folds) if f == k]
    prob = np.clip([0.8 if s.label else 0.2 for s in held] + rng.normal(0, 0.1, len(held)), 0.01, 0.99)
    write_out_of_fold(run / "oof.csv", held, np.array([(224, 224)] * len(held)), prob, k)


def _fold_runs(tmp_path):
    """Two finished fold runs over the tiny training folder: (its samples, the run folders)."""
    from pneumo.training.data import list_split, patient_folds

    from conftest import TINY_DATA

    samples = list_split(TINY_DATA, "train")
    folds = patient_folds(samples, 2, seed=0)
    runs = [tmp_path / f"f{k}" for k in (0, 1)]
    for k, run in enumerate(runs):
        _fold_run(run, samples, folds, k, np.random.default_rng(k))
    return samples, runs


def test_release_ships_the_folds_as_one_bundle_at_the_rules_threshold(tmp_path):
    """pneumo.training.release: one .keras model of the fold networks, the threshold by the rule on the
    joined out-of-fold scores, those scores as the validation numbers, the test split at that threshold,
    each member's curves, and a model card that says what the model is."""
    import json

    from pneumo.bundle import read_bundle
    from pneumo.reading.networks import load_model
    from pneumo.reading.explain import ensemble_members
    from pneumo.outputs.plots import training_curves
    from pneumo.training.crossval import combine
    from pneumo.training.data import list_split
    from pneumo.training.release import main

    from conftest import TINY_DATA

    samples, runs = _fold_runs(tmp_path)
    out = tmp_path / "weights"
    assert main([str(runs[0]), "--out", str(out)]) == 2 and not out.exists()  # one fold of two: refused, nothing written
    assert main([*map(str, runs), "--out", str(out), "--bootstrap", "50", "--cache-dir", ""]) == 0

    shipped = read_bundle(out / "pneumonia.keras")
    rows = combine(runs)
    assert shipped.networks == 2 and shipped.threshold == oof_threshold(rows)["threshold"]
    assert shipped.threshold_source == f"out-of-fold scores of all {len(samples)} training X-rays"
    assert shipped.metrics["validation"]["counts"]["total"] == len(samples) and "ci95" in shipped.metrics["validation"]
    assert shipped.test["counts"]["total"] == len(list_split(TINY_DATA, "test")) and "ci95" in shipped.test
    members = shipped.metrics["ensemble"]["members"]
    assert [m["fold"] for m in members] == [0, 1] and [m["fold_auc"] for m in members] == [0.9, 0.91]
    assert len(ensemble_members(load_model(out / "pneumonia.keras"))) == 2
    history = json.loads((out / "history.json").read_text())
    assert [m["fold"] for m in history["members"]] == [0, 1] and training_curves(history) is not None
    card = (out / "MODEL_CARD.md").read_text()
    assert "2 such networks" in card and "out-of-fold" in card and "fold 1: 2 of 2 (AUC 0.9100)" in card
    assert (out / "roc.png").is_file()


def test_release_ships_one_all_data_network_at_the_folds_threshold(tmp_path):
    """release --network: the network of a run on all of train/ (train.py --val-fraction 0), at the
    threshold the folds' out-of-fold scores set, its own curves; a run that held images out is refused."""
    import json

    from pneumo.bundle import read_bundle
    from pneumo.reading.networks import load_model
    from pneumo.training.model import build_model
    from pneumo.reading.explain import ensemble_members
    from pneumo.training.crossval import combine
    from pneumo.training.data import list_split
    from pneumo.training.release import main

    from conftest import TINY_DATA

    samples, runs = _fold_runs(tmp_path)
    network = tmp_path / "all"
    network.mkdir()
    build_model(output_bias=0.5).save(network / "pneumonia.keras")
    config = {"data_dir": str(TINY_DATA), "epochs": 2, "batch_size": 4, "seed": 1, "val_fraction": 0, "folds": 0}
    facts = {"best_epoch": 2, "epochs_run": 2, "training_seconds": 90.0, "seed": 1, "config": config, "versions": {}, "git_commit": "abc",
             "data": {"train": len(samples), "train_pneumonia": 6, "train_normal": 6, "val": 0, "test": 0}}
    (network / "metrics.json").write_text(json.dumps(facts))
    (network / "history.json").write_text(json.dumps({"best_epoch": 2, "monitor": "last epoch", "epochs": [{"epoch": 1}, {"epoch": 2}]}))
    out = tmp_path / "weights"
    assert main([*map(str, runs), "--network", str(runs[0]), "--out", str(out)]) == 2 and not out.exists()  # a fold run: refused
    assert main([*map(str, runs), "--network", str(network), "--out", str(out), "--bootstrap", "50", "--cache-dir", ""]) == 0

    shipped = read_bundle(out / "pneumonia.keras")
    assert shipped.networks == 1 and not ensemble_members(load_model(out / "pneumonia.keras"))
    assert shipped.threshold == oof_threshold(combine(runs))["threshold"] and "carried over" in shipped.threshold_source
    assert shipped.config["val_fraction"] == 0 and shipped.metrics["best_epoch"] == 2 and shipped.history["monitor"] == "last epoch"
    assert [m["fold"] for m in shipped.metrics["carried_threshold"]["folds"]] == [0, 1]
    assert shipped.test["counts"]["total"] == len(list_split(TINY_DATA, "test"))
    card = (out / "MODEL_CARD.md").read_text()
    assert "Carried over unchanged" in card and "none of its own" in card and "The last epoch kept" in card
