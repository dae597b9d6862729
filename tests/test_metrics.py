import numpy as np
import pytest

import math

from pneumo.training.metrics import binary_metrics, bootstrap_intervals, fewest_detected, floor_threshold, metrics_with_intervals

# Hand-computed example: 3 NORMAL, 4 PNEUMONIA.
Y = np.array([0, 0, 0, 1, 1, 1, 1])
P = np.array([0.1, 0.4, 0.6, 0.35, 0.7, 0.8, 0.9])


def test_metrics_at_threshold_by_hand():
    m = binary_metrics(Y, P, 0.5)
    # predicted positive: 0.6 (FP), 0.7, 0.8, 0.9 (TP); 0.35 is a FN; 0.1, 0.4 are TN.
    assert m["confusion_matrix"] == {"tn": 2, "fp": 1, "fn": 1, "tp": 3}
    assert m["accuracy"] == pytest.approx(5 / 7)
    assert m["sensitivity"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(2 / 3)
    assert m["precision"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    # AUC = share of (pos, neg) pairs ranked correctly: 10 of 12.
    assert m["auc"] == pytest.approx(10 / 12)
    assert m["counts"] == {"total": 7, "normal": 3, "pneumonia": 4}


def test_threshold_is_inclusive():
    m = binary_metrics(np.array([0, 1]), np.array([0.3, 0.5]), 0.5)
    assert m["confusion_matrix"]["tp"] == 1


def _wilson_low(k: int, n: int, z: float = 1.959964) -> float:  # by hand, independent of scipy
    p = k / n
    return (p + z * z / (2 * n) - z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)


@pytest.mark.parametrize("n", [73, 100, 389, 1000])
def test_fewest_detected_is_the_smallest_count_whose_wilson_floor_reaches_095(n):
    k = fewest_detected(n)
    assert _wilson_low(k, n) >= 0.95 > _wilson_low(k - 1, n)
    assert fewest_detected(389) == 378  # the validation split's 389 pneumonias: at most 11 missed


def test_fewest_detected_with_too_few_positives_asks_for_all():
    assert fewest_detected(20) == 20  # 20 of 20 gives a Wilson floor of 0.84: the floor cannot be certified


def _scores(n_pos: int = 400, n_neg: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.array([1] * n_pos + [0] * n_neg)
    return y, np.concatenate([rng.uniform(0.3, 1.0, n_pos), rng.uniform(0.0, 0.7, n_neg)])


def test_floor_threshold_is_the_highest_that_keeps_the_floor():
    y, p = _scores()
    k = fewest_detected(400)
    t = floor_threshold(y, [p])
    assert binary_metrics(y, p, t)["confusion_matrix"]["tp"] == k  # exactly the fewest allowed
    higher = np.sort(p[p > t])[0]  # the next score up: one more positive would be missed
    assert binary_metrics(y, p, higher + 1e-9)["confusion_matrix"]["tp"] == k - 1
    assert not np.any(p == t)  # midway between two scores


def test_floor_threshold_holds_under_every_changed_prediction():
    y, plain = _scores()
    lowered = plain.copy()
    lowered[:400] -= 0.1  # a change that lowers the positive scores: the floor must hold there too
    t_plain, t_both = floor_threshold(y, [plain]), floor_threshold(y, [plain, lowered])
    assert t_both < t_plain
    k = fewest_detected(400)
    tp = [binary_metrics(y, p, t_both)["confusion_matrix"]["tp"] for p in (plain, lowered)]
    assert min(tp) == k and max(tp) > k  # the worst change sets it; the other keeps more than the floor


def test_floor_threshold_with_few_positives_keeps_them_all():
    y = np.array([0, 0, 1, 1])
    assert floor_threshold(y, [np.array([0.1, 0.2, 0.8, 0.9])]) == pytest.approx(0.5)  # midway below the lowest positive
    assert floor_threshold(y, [np.array([0.1, 0.2, 0.8, 0.9]), np.array([0.1, 0.2, 0.6, 0.9])]) == pytest.approx(0.4)


@pytest.mark.parametrize("probs", [[], [np.array([0.1, 0.9])], [P, P[:3]]])
def test_floor_threshold_refuses_what_it_cannot_use(probs):
    with pytest.raises(ValueError):
        floor_threshold(Y if len(probs) != 1 else np.array([1, 1]), probs)


def test_bootstrap_interval_brackets_the_estimate():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = np.clip(y * 0.3 + rng.normal(0.35, 0.2, 300), 0, 1)
    m = binary_metrics(y, p, 0.5)
    ci = bootstrap_intervals(y, p, 0.5, n_resamples=300)
    for name in ("auc", "accuracy", "sensitivity", "specificity"):
        low, high = ci[name]
        assert low <= m[name] <= high
        assert high - low < 0.25
    both = metrics_with_intervals(y, p, 0.5, n_resamples=300)  # what evaluate and report write
    assert both["ci95"] == ci and {k: v for k, v in both.items() if k != "ci95"} == m
    assert "ci95" not in metrics_with_intervals(y, p, 0.5, n_resamples=0)
