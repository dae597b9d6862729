"""The loss and metrics `train.py` compiles with, for batches whose y holds the training target and
the label side by side.

Accuracy, precision, recall and AUC mean something only against labels: counted against a soft
target (the closed distillation experiment of r17 and r18), a run's training accuracy read 0 and its
AUC 0 in history.json and in the app's curves. So a training batch may carry y of
shape (N, 2): column 0 the target the loss fits, column 1 the label the metrics count. A plain y of
shape (N,) or (N, 1) is both. The label is rounded before counting, so that a mixup blend counts as
the label of its larger part.
"""

from __future__ import annotations

import keras
from keras import ops


def _as_columns(y_true):
    """y as a float (N, k) tensor: a plain (N,) label becomes one column."""
    y_true = ops.convert_to_tensor(y_true, dtype="float32")
    return ops.expand_dims(y_true, -1) if len(y_true.shape) == 1 else y_true


def target_column(y_true):
    """The target the loss fits: the first column of y (N, 1)."""
    return _as_columns(y_true)[:, :1]


def label_column(y_true):
    """The label the metrics count: the last column of y, rounded to 0 or 1 (N, 1)."""
    return ops.round(_as_columns(y_true)[:, -1:])


@keras.saving.register_keras_serializable(package="pneumo")
class TargetCrossentropy(keras.losses.BinaryCrossentropy):
    """Binary cross-entropy against the target column."""

    def call(self, y_true, y_pred):
        return super().call(target_column(y_true), y_pred)


class _CountsLabels:
    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(label_column(y_true), y_pred, sample_weight=sample_weight)


@keras.saving.register_keras_serializable(package="pneumo")
class LabelAccuracy(_CountsLabels, keras.metrics.BinaryAccuracy):
    """Binary accuracy against the label column."""


@keras.saving.register_keras_serializable(package="pneumo")
class LabelPrecision(_CountsLabels, keras.metrics.Precision):
    """Precision against the label column."""


@keras.saving.register_keras_serializable(package="pneumo")
class LabelRecall(_CountsLabels, keras.metrics.Recall):
    """Recall against the label column."""


@keras.saving.register_keras_serializable(package="pneumo")
class LabelAUC(_CountsLabels, keras.metrics.AUC):
    """ROC AUC against the label column."""


def training_metrics() -> list[keras.metrics.Metric]:
    """The metrics history.json records each epoch, on the training batches and on validation."""
    return [
        LabelAccuracy(name="accuracy"),
        LabelPrecision(name="precision"),
        LabelRecall(name="recall"),
        LabelAUC(name="auc", num_thresholds=1000),
    ]
