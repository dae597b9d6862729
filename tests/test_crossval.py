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
