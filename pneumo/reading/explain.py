"""Probability and heatmap for one preprocessed X-ray, via tf-keras-vis.

Methods (all of the `block5_sepconv2` features, upsampled bilinearly to the input):
- Grad-CAM: channels weighted by their spatially averaged gradient, summed, ReLU;
- Grad-CAM++: the same with second-order weights;
- LayerCAM: each position's activation times its positive gradient, summed over channels, ReLU;
- HiResCAM (Draelos & Carin 2020): activation times gradient, element-wise, summed over channels,
  ReLU: what the logit gains from each position through a flattening head (tf-keras-vis's
  LayerCAM without its gradient ReLU);
- Faster Score-CAM: the 10 most varied channels used as masks on the input, each weighted by the
  explained class's probability for its masked input (10 forward passes).
docs/EXPLANATIONS.md measures them; the page's default is chosen there.

A map with no spatial contrast (all zero after the ReLU, or constant) is reported as empty: no
position raised the score for the explained class, and the page says so instead of an overlay.

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
normalisation), at about a tenth of the cost (docs/SPEED.md compares it with the naive path:
model.predict, then a fresh Gradcam).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from pneumo.reading.runtime import configure_tensorflow_env

configure_tensorflow_env()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from tf_keras_vis.gradcam import Gradcam  # noqa: E402
from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus  # noqa: E402
from tf_keras_vis.layercam import Layercam  # noqa: E402
from tf_keras_vis.scorecam import Scorecam  # noqa: E402
from tf_keras_vis.utils import normalize  # noqa: E402
from tf_keras_vis.utils.model_modifiers import ReplaceToLinear  # noqa: E402

from pneumo.bundle import DEFAULT_METHOD, METHOD_NAMES  # noqa: E402
GRADCAM_LAYER = "block5_sepconv2"  # the last convolution: the layer the heatmaps explain

Method = Literal["gradcam", "gradcam++", "layercam", "hirescam", "scorecam"]
Target = Literal["predicted", "pneumonia", "normal"]
METHODS: tuple[str, ...] = tuple(METHOD_NAMES)
SCORECAM_CHANNELS = 10  # Faster Score-CAM: the channels with the largest spatial variance
FLAT = 1e-7  # a map whose spread is below this share of its largest magnitude is empty


def visualiser_for(method: str, model: keras.Model, **options):
    """(tf-keras-vis visualiser, extra call arguments) for a method on `model` (the two-stage model
    here; the whole model with ReplaceToLinear for the naive path the benchmark compares)."""
    if method == "gradcam":
        return Gradcam(model, **options), {}
    if method == "gradcam++":
        return GradcamPlusPlus(model, **options), {}
    if method == "layercam":
        return Layercam(model, **options), {}
    if method == "hirescam":
        return Layercam(model, **options), {"gradient_modifier": None}
    if method == "scorecam":
        keras.config.disable_interactive_logging()  # Score-CAM calls model.predict, whose progress bar would fill the log
        return Scorecam(two_class_logits(model), **options), {"max_N": SCORECAM_CHANNELS}
    raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")


def two_class_logits(model: keras.Model) -> keras.Model:
    """The logit z as two class logits (0, z): their softmax is (1 - p, p). tf-keras-vis's Score-CAM
    takes the softmax of the output before scoring it, which for one sigmoid unit is always 1."""
    logit = model.output
    return keras.Model(model.inputs, keras.layers.Concatenate(name="class_logits")([keras.ops.zeros_like(logit), logit]), name="two_class")


@dataclass(frozen=True)
class Explanation:
    probability: float  # of pneumonia
    heatmap: np.ndarray  # (299, 299) in [0, 1]; zeros when empty
    explained_class: int  # 1 PNEUMONIA, 0 NORMAL
    empty: bool  # no position raised the explained class's score


def _linear_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of linear interpolation with the end points aligned, as
    scipy.ndimage.zoom(order=1) places them: output o reads input position o (n_in - 1) / (n_out - 1)."""
    weights = np.zeros((n_out, n_in))
    if n_in == 1 or n_out == 1:
        weights[:, 0] = 1.0
        return weights
    position = np.arange(n_out) * ((n_in - 1) / (n_out - 1))
    left = np.minimum(np.floor(position).astype(int), n_in - 2)
    right_share = position - left
    weights[np.arange(n_out), left] = 1.0 - right_share
    weights[np.arange(n_out), left + 1] = right_share
    return weights


def upsampled(cams: np.ndarray, side: tuple[int, int]) -> np.ndarray:
    """Maps (N, h, w) brought to (N, *side) by linear interpolation: what tf-keras-vis does with
    scipy.ndimage.zoom(order=1) (to 1e-7), as two small matrix products, a third of the time of the
    gradient pass that made them (issue #45)."""
    cams = np.asarray(cams, dtype=np.float64)
    rows, columns = _linear_weights(cams.shape[1], side[0]), _linear_weights(cams.shape[2], side[1])
    return (rows @ cams @ columns.T).astype(np.float32)


def normalized(cam: np.ndarray) -> tuple[np.ndarray, bool]:
    """tf-keras-vis's min-max normalisation of a raw map, and whether the map is empty (no spread)."""
    cam = np.nan_to_num(np.asarray(cam, dtype=np.float32))
    spread = float(cam.max() - cam.min())
    if spread <= FLAT * max(float(np.abs(cam).max()), 1e-30):
        return np.zeros_like(cam), True
    return np.clip(normalize(cam[np.newaxis])[0], 0.0, 1.0), False


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
    """Maps of the `block5_sepconv2` features, with the probability from the same pass (Score-CAM:
    from the unmasked pass before its masked ones)."""

    def __init__(self, model, layer: str = GRADCAM_LAYER):
        self.model = model
        self.layer = layer
        self._visualisers: dict[str, tuple] = {}
        self._two_stage: keras.Model | None = None

    @property
    def two_stage(self) -> keras.Model:
        if self._two_stage is None:
            self._two_stage = two_stage_model(self.model, self.layer)
        return self._two_stage

    def _visualiser(self, method: Method):
        if method not in self._visualisers:
            self._visualisers[method] = visualiser_for(method, self.two_stage)
        return self._visualisers[method]

    def logit(self, batch: np.ndarray) -> float:
        """The logit of one model input (1, 299, 299, 3), from a plain forward pass."""
        return float(np.asarray(self.two_stage(batch)).reshape(-1)[0])

    def raw_maps(self, batch: np.ndarray, method: Method, fixed: float | None, logit_threshold: float,
                 rectify: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(maps before normalisation, logits, explained classes) for a batch of model inputs
        (N, 299, 299, 3), in one pass of the gradient methods (each input's map depends on that input
        alone: the network runs in inference mode); Score-CAM one input at a time (`raw_map`)."""
        if method == "scorecam":
            one = [self.raw_map(batch[i:i + 1], method, fixed, logit_threshold, rectify) for i in range(len(batch))]
            return np.stack([m for m, _, _ in one]), np.array([z for _, z, _ in one]), np.array([c for _, _, c in one])
        visualiser, extra = self._visualiser(method)
        if not rectify:
            extra = {**extra, "activation_modifier": None}
        captured: dict[str, tf.Tensor] = {}

        def score(output: tf.Tensor) -> tf.Tensor:
            logit = tf.reshape(output, (-1,))
            captured["logit"] = logit
            explained_now = tf.cast(logit >= logit_threshold, logit.dtype) if fixed is None else tf.fill(tf.shape(logit), fixed)
            captured["explained"] = explained_now
            # == BinaryScore(explained): +logit for PNEUMONIA, -logit for NORMAL.
            return (2.0 * tf.stop_gradient(explained_now) - 1.0) * logit

        cam = visualiser(score, batch, penultimate_layer=self.layer, seek_penultimate_conv_layer=False, normalize_cam=False, expand_cam=False,
                         **extra)
        return (upsampled(cam, batch.shape[1:3]), np.asarray(captured["logit"], dtype=np.float64),
                np.asarray(captured["explained"], dtype=np.float64))

    def raw_map(self, batch: np.ndarray, method: Method, fixed: float | None, logit_threshold: float, rectify: bool = True):
        """(map before normalisation, logit, explained class) for one model input (1, 299, 299, 3):
        the class is `fixed` (1.0 PNEUMONIA, 0.0 NORMAL) or, when None, the one predicted at
        `logit_threshold`, decided inside the same pass. rectify=False leaves out the method's final
        ReLU (an ensemble averages its members' maps first)."""
        if method != "scorecam":
            cams, logits, explained = self.raw_maps(batch, method, fixed, logit_threshold, rectify)
            return cams[0], float(logits[0]), float(explained[0])
        # Score-CAM's score sees masked inputs only: the class is read off a plain pass first.
        visualiser, extra = self._visualiser(method)
        if not rectify:
            extra = {**extra, "activation_modifier": None}
        logit = self.logit(batch)
        explained = float(logit >= logit_threshold) if fixed is None else fixed
        cam = visualiser(
            lambda probabilities: probabilities[:, int(explained)],  # the explained class's probability
            batch, penultimate_layer=self.layer, seek_penultimate_conv_layer=False, normalize_cam=False, **extra,
        )
        return np.asarray(cam)[0], logit, explained

    def explain(self, x: np.ndarray, target: Target = "predicted", threshold: float = 0.5, method: Method = DEFAULT_METHOD) -> Explanation:
        """x: one model input (299, 299, 3). target "predicted" explains the class the model
        predicts at `threshold` (PNEUMONIA when the probability is at least it, as pneumo.bundle decides)."""
        fixed = _fixed_class(target)
        cam, logit, explained = self.raw_map(x[np.newaxis].astype(np.float32), method, fixed, _logit_of(threshold))
        heatmap, empty = normalized(cam)
        return Explanation(float(tf.sigmoid(logit)), heatmap, int(explained), empty)

    def explain_batch(self, x: np.ndarray, target: Target = "predicted", threshold: float = 0.5,
                      method: Method = DEFAULT_METHOD) -> list[Explanation]:
        """`explain` for each of the model inputs x (N, 299, 299, 3), the gradient methods in one pass."""
        if len(x) == 0:
            return []
        cams, logits, explained = self.raw_maps(np.asarray(x, dtype=np.float32), method, _fixed_class(target), _logit_of(threshold))
        out = []
        for cam, logit, cls in zip(cams, logits, explained):
            heatmap, empty = normalized(cam)
            out.append(Explanation(float(1.0 / (1.0 + np.exp(-logit))), heatmap, int(cls), empty))
        return out


class EnsembleExplainer:
    """An ensemble (pneumo.training.model.ensemble): the probability from the mean of the members' logits; the
    map the mean of the members' maps, each from its own `block5_sepconv2`, for the ensemble's class.
    For HiResCAM and Grad-CAM, whose maps are linear in the logit's gradient, the mean before the ReLU
    is exactly the map of the ensemble's logit."""

    def __init__(self, model, layer: str = GRADCAM_LAYER):
        self.model = model
        self.members = [Explainer(member, layer) for member in ensemble_members(model)]

    def explain(self, x: np.ndarray, target: Target = "predicted", threshold: float = 0.5, method: Method = DEFAULT_METHOD) -> Explanation:
        batch = x[np.newaxis].astype(np.float32)
        logit = float(np.mean([member.logit(batch) for member in self.members]))
        fixed = _fixed_class(target)
        explained = float(logit >= _logit_of(threshold)) if fixed is None else fixed
        raw = np.mean([member.raw_map(batch, method, explained, 0.0, rectify=False)[0] for member in self.members], axis=0)
        heatmap, empty = normalized(np.maximum(raw, 0.0))
        return Explanation(float(tf.sigmoid(logit)), heatmap, int(explained), empty)

    def explain_batch(self, x: np.ndarray, target: Target = "predicted", threshold: float = 0.5,
                      method: Method = DEFAULT_METHOD) -> list[Explanation]:
        return [self.explain(one, target, threshold, method) for one in x]


def explainer_for(model, layer: str = GRADCAM_LAYER) -> Explainer | EnsembleExplainer:
    """The explainer of one network or of an ensemble of them."""
    return EnsembleExplainer(model, layer) if ensemble_members(model) else Explainer(model, layer)


def _fixed_class(target: Target) -> float | None:
    if target not in ("predicted", "pneumonia", "normal"):
        raise ValueError(f"unknown target {target!r}")
    return None if target == "predicted" else float(target == "pneumonia")


def _logit_of(threshold: float) -> float:
    """The probability threshold on the logit scale (-inf / inf at 0 / 1)."""
    return float(np.log(threshold / (1.0 - threshold))) if 0.0 < threshold < 1.0 else (-np.inf if threshold <= 0 else np.inf)


def ensemble_members(model: keras.Model) -> list[keras.Model]:
    """The members of a model made by `ensemble` (their outputs are logits); [] for one network."""
    return [layer for layer in model.layers if isinstance(layer, keras.Model) and layer.name.startswith("member_")]
