"""train.py's loss fits the target column of y, its metrics count the label column: with soft
targets, training accuracy and AUC are measured against labels, not the targets."""

import keras
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss, precision_score, recall_score, roc_auc_score

from pneumo.training.objectives import TargetCrossentropy, training_metrics


def _fixed_model() -> keras.Model:
    """p = sigmoid(x): the probabilities are the inputs' logistic, nothing trained."""
    inputs = keras.Input((1,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", kernel_initializer="ones", bias_initializer="zeros")(inputs))
    model.compile(optimizer="adam", loss=TargetCrossentropy(), metrics=training_metrics())
    return model


X = np.array([[-2.0], [-0.5], [0.3], [1.5], [2.5], [-1.0], [0.8], [-3.0]], dtype=np.float32)
P = 1 / (1 + np.exp(-X[:, 0]))
LABELS = np.array([0, 1, 1, 1, 0, 0, 1, 0], dtype=np.float32)
TARGETS = np.array([0.2, 0.6, 0.9, 0.7, 0.45, 0.1, 0.55, 0.05], dtype=np.float32)


def _bce(target: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(-(target * np.log(p) + (1 - target) * np.log(1 - p))))


def test_the_loss_fits_the_target_and_the_metrics_count_the_label():
    scores = _fixed_model().evaluate(X, np.stack([TARGETS, LABELS], axis=-1), batch_size=8, return_dict=True, verbose=0)
    assert scores["loss"] == pytest.approx(_bce(TARGETS, P), abs=1e-5)
    assert scores["accuracy"] == pytest.approx(accuracy_score(LABELS, P >= 0.5))
    assert scores["auc"] == pytest.approx(roc_auc_score(LABELS, P), abs=1e-3)
    assert scores["precision"] == pytest.approx(precision_score(LABELS, P >= 0.5))
    assert scores["recall"] == pytest.approx(recall_score(LABELS, P >= 0.5))


def test_a_plain_label_is_both_and_a_mixup_blend_counts_as_its_larger_part():
    model = _fixed_model()
    plain = model.evaluate(X, LABELS, batch_size=8, return_dict=True, verbose=0)
    assert plain["loss"] == pytest.approx(log_loss(LABELS, P), abs=1e-5)
    assert plain["accuracy"] == pytest.approx(accuracy_score(LABELS, P >= 0.5))
    blended = np.abs(LABELS - 0.2)  # 0.2 toward the other class: still the same label
    mixed = model.evaluate(X, blended, batch_size=8, return_dict=True, verbose=0)
    assert mixed["loss"] == pytest.approx(_bce(blended, P), abs=1e-5)
    assert mixed["accuracy"] == pytest.approx(plain["accuracy"]) and mixed["auc"] == pytest.approx(plain["auc"])


def test_a_compiled_checkpoint_loads_again_with_them(tmp_path):
    model = _fixed_model()
    model.optimizer.build(model.trainable_variables)  # as after a training step
    y = np.stack([TARGETS, LABELS], axis=-1)
    before = model.evaluate(X, y, batch_size=8, return_dict=True, verbose=0)
    model.save(tmp_path / "last.keras")
    again = keras.saving.load_model(tmp_path / "last.keras")
    assert isinstance(again.loss, TargetCrossentropy)
    after = again.evaluate(X, y, batch_size=8, return_dict=True, verbose=0)
    assert after == pytest.approx(before)
