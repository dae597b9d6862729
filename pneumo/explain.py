"""Probability and Grad-CAM heatmap for one preprocessed X-ray, via tf-keras-vis.

The visualisers are built once per model and reused. The score function is the one the app
documents, BinaryScore(1.0) for PNEUMONIA or BinaryScore(0.0) for NORMAL, applied to the logit
(the sigmoid is swapped for a linear output with tf-keras-vis's ReplaceToLinear, so gradients do
not vanish on confident predictions); the probability is read off the same forward pass.

tf-keras-vis 0.8.7 does not count SeparableConv2D as a convolution when it seeks the layer, and
would silently fall back to the first Conv2D (299x299x16): the layer is named explicitly and
seeking is switched off.

Speed: tf-keras-vis runs the model eagerly, layer by layer, on every call (~0.13 s of Python
dispatch for a 0.8 GFLOP network). The visualisers here get the same network with the same weights
cut into two compiled stages, input -> `block5_sepconv2` features -> logit, each one tf.function;
tf-keras-vis still does all the Grad-CAM work on it (tape, gradients, weights, upsampling,
normalisation), at about a tenth of the cost. `python -m pneumo.training.bench` compares it with the naive
path (model.predict, then a fresh Gradcam) for probability and heatmap.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from pneumo.runtime import configure_tensorflow_env

configure_tensorflow_env()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from tf_keras_vis.gradcam import Gradcam  # noqa: E402
from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus  # noqa: E402
from tf_keras_vis.utils.model_modifiers import ReplaceToLinear  # noqa: E402

from pneumo.model import GRADCAM_LAYER  # noqa: E402

Method = Literal["gradcam", "gradcam++"]
Target = Literal["predicted", "pneumonia", "normal"]
METHODS: dict[str, type] = {"gradcam": Gradcam, "gradcam++": GradcamPlusPlus}


class CompiledStage(keras.layers.Layer):
    """A sub-network run as one compiled function (inference mode), so eager callers pay no
    per-layer dispatch; gradients flow through it as through any TensorFlow function.

    With differentiable=False the stage is forward-only: the tape does not record its backward
    pass (Grad-CAM needs gradients at the stage's output, never at its input), which halves the cost
    of a call. Its output stays on the tape's path, so gradients with respect to it still work.
    """

    def __init__(self, network: keras.Model, differentiable: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.differentiable = differentiable
        self._run = tf.function(lambda x: self.network(x, training=False), reduce_retracing=True)

    def call(self, x):
        if self.differentiable:
            return self._run(x)
        outputs = self._run(tf.stop_gradient(x))
        return outputs + 0.0 * x[:, :1, :1, :1]  # on the tape, value unchanged, no backward through the stage

    def compute_output_spec(self, x):
        return keras.KerasTensor(self.network.output.shape, dtype=self.network.output.dtype)


def two_stage_model(model: keras.Model, layer: str = GRADCAM_LAYER) -> keras.Model:
    """input -> [layer's features] -> logit: the same weights, the sigmoid replaced by a linear output
    (what ReplaceToLinear does), cut after `layer` into two compiled stages. The stage producing the
    features carries the layer's name, so tf-keras-vis finds it as the penultimate layer."""
    linear = keras.models.clone_model(model)
    linear.set_weights(model.get_weights())
    ReplaceToLinear()(linear)
    names = [l.name for l in linear.layers]
    if layer not in names:
        raise ValueError(f"the model has no layer {layer!r}")
    trunk = keras.Model(linear.inputs, linear.get_layer(layer).output, name="trunk")
    features_in = keras.Input(shape=trunk.output.shape[1:], name="features")
    y = features_in
    for later in linear.layers[names.index(layer) + 1 :]:  # the network is one chain of layers
        y = later(y)
    head = keras.Model(features_in, y, name="head")
    image = keras.Input(shape=model.input_shape[1:], name="image")
    features = CompiledStage(trunk, differentiable=False, name=layer)(image)
    return keras.Model(image, CompiledStage(head, name="logit")(features), name="two_stage")


class Explainer:
    """Grad-CAM / Grad-CAM++ of the `block5_sepconv2` features, with the probability from the same pass."""

    def __init__(self, model, layer: str = GRADCAM_LAYER):
        self.model = model
        self.layer = layer
        self._visualisers: dict[str, object] = {}
        self._two_stage: keras.Model | None = None

    def _visualiser(self, method: Method):
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
        if method not in self._visualisers:
            if self._two_stage is None:
                self._two_stage = two_stage_model(self.model, self.layer)
            self._visualisers[method] = METHODS[method](self._two_stage)
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
