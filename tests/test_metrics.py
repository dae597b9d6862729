import numpy as np
import pytest

from pneumo.metrics import binary_metrics, bootstrap_intervals, shift_threshold

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


def test_shift_threshold_of_one_prediction_is_youdens_by_hand():
    # J is 0.75 above 0.6 (TPR 3/4, FPR 0): the cut sits midway between 0.7 and 0.6.
    assert shift_threshold(Y, [P]) == pytest.approx(0.65)


def test_shift_threshold_holds_up_under_the_changed_predictions():
    y = np.array([0, 0, 1, 1])
    plain = np.array([0.1, 0.2, 0.8, 0.9])  # separable: Youden's cut is midway, 0.5
    brighter = np.array([0.1, 0.5, 0.8, 0.9])  # a change lifts one NORMAL image to exactly that cut
    assert shift_threshold(y, [plain]) == pytest.approx(0.5)
    # 0.5 would call that image PNEUMONIA; midway between 0.5 and 0.8 separates both predictions
    assert shift_threshold(y, [plain, brighter]) == pytest.approx(0.65)


def test_shift_threshold_ties_go_to_the_middle_candidate():
    # balanced accuracy 2/3 at 0.15, 0.35 and 0.55 (0.5 between them): the middle one
    y = np.array([0, 1, 0, 1, 0, 1])
    assert shift_threshold(y, [np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])]) == pytest.approx(0.35)


@pytest.mark.parametrize("probs", [[], [np.array([0.1, 0.9])], [P, P[:3]]])
def test_shift_threshold_refuses_what_it_cannot_use(probs):
    with pytest.raises(ValueError):
        shift_threshold(Y if len(probs) != 1 else np.array([1, 1]), probs)


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
