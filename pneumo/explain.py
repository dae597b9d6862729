"""Probability and Grad-CAM heatmap for one preprocessed X-ray, via tf-keras-vis.

The visualisers are built once per model and reused. The score function is the one the app
documents, BinaryScore(1.0) for PNEUMONIA or BinaryScore(0.0) for NORMAL, applied to the logit
(the sigmoid is swapped for a linear output with tf-keras-vis's ReplaceToLinear, so gradients do
not vanish on confident predictions); the probability is read off the same forward pass.

tf-keras-vis 0.8.7 does not count SeparableConv2D as a convolution when it seeks the layer, and
would silently fall back to the first Conv2D (299x299x16): the layer is named explicitly and
seeking is switched off.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from pneumo.runtime import configure_tensorflow_env

configure_tensorflow_env()

import tensorflow as tf  # noqa: E402
from tf_keras_vis.gradcam import Gradcam  # noqa: E402
from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus  # noqa: E402
from tf_keras_vis.utils.model_modifiers import ReplaceToLinear  # noqa: E402

from pneumo.model import GRADCAM_LAYER  # noqa: E402

Method = Literal["gradcam", "gradcam++"]
Target = Literal["predicted", "pneumonia", "normal"]
METHODS: dict[str, type] = {"gradcam": Gradcam, "gradcam++": GradcamPlusPlus}


class Explainer:
    """Grad-CAM / Grad-CAM++ of the `block5_sepconv2` features, with the probability from the same pass."""

    def __init__(self, model, layer: str = GRADCAM_LAYER):
        self.model = model
        self.layer = layer
        self._visualisers: dict[str, object] = {}

    def _visualiser(self, method: Method):
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
        if method not in self._visualisers:
            self._visualisers[method] = METHODS[method](self.model, model_modifier=ReplaceToLinear(), clone=True)
        return self._visualisers[method]

    def explain(
        self, x: np.ndarray, target: Target = "predicted", threshold: float = 0.5, method: Method = "gradcam"
    ) -> tuple[float, np.ndarray, int]:
        """x: one model input (299, 299, 3). Returns (probability of pneumonia, heatmap (299, 299)
        in [0, 1], explained class: 1 PNEUMONIA / 0 NORMAL).

        target "predicted" explains the class the model predicts at `threshold`.
        """
        if target not in ("predicted", "pneumonia", "normal"):
            raise ValueError(f"unknown target {target!r}")
        captured: dict[str, tf.Tensor] = {}
        logit_threshold = float(np.log(threshold / (1.0 - threshold))) if 0.0 < threshold < 1.0 else (-np.inf if threshold <= 0 else np.inf)

        def score(output: tf.Tensor) -> tf.Tensor:
            logit = tf.reshape(output, (-1,))
            captured["logit"] = logit
            if target == "predicted":
                explained = tf.cast(logit >= logit_threshold, logit.dtype)
            else:
                explained = tf.fill(tf.shape(logit), 1.0 if target == "pneumonia" else 0.0)
            captured["explained"] = explained
            # == BinaryScore(explained): +logit for PNEUMONIA, -logit for NORMAL.
            return (2.0 * tf.stop_gradient(explained) - 1.0) * logit

        cam = self._visualiser(method)(
            score, x[np.newaxis].astype(np.float32), penultimate_layer=self.layer, seek_penultimate_conv_layer=False
        )
        probability = float(tf.sigmoid(captured["logit"])[0])
        heatmap = np.nan_to_num(np.asarray(cam, dtype=np.float32)[0])
        return probability, np.clip(heatmap, 0.0, 1.0), int(captured["explained"][0])
