"""The published pneumonia CNN, as a flat Keras 3 functional model with stable layer names.

Input 299x299x3 -> 2x Conv2D(16) -> 5 separable blocks (32, 64, 128, 256, 128 filters)
-> Flatten (2048) -> 3 dense blocks (512/0.7, 128/0.5, 64/0.3) -> Dense(1, sigmoid).
1,321,953 parameters, 2,624 of them non-trainable (BatchNormalization moving statistics).
"""

from __future__ import annotations

import math

import keras
from keras import layers

from pneumo.reading.explain import GRADCAM_LAYER  # noqa: F401  (the layer the heatmaps explain; tests ask the model for it)

IMAGE_SIZE = 299
SEPARABLE_FILTERS = (32, 64, 128, 256, 128)
#: Blocks (1-based) followed by Dropout(0.2), as published.
BLOCKS_WITH_DROPOUT = (3, 4, 5)
DENSE_BLOCKS = ((512, 0.7), (128, 0.5), (64, 0.3))
# Standard deviation of a unit normal truncated at +-2 (what Keras's "truncated_normal" variance scaling corrects for).
_TRUNCATED_NORMAL_STD = 0.87962566103423978


def output_bias_for(n_pneumonia: int, n_normal: int) -> float:
    """Initial logit bias so the untrained model predicts the training prior.

    With p = P(PNEUMONIA) the bias is log(p / (1 - p)) = log(#PNEUMONIA / #NORMAL).
    """
    if n_pneumonia <= 0 or n_normal <= 0:
        raise ValueError(f"need both classes to set the output bias, got {n_pneumonia} pneumonia / {n_normal} normal")
    return math.log(n_pneumonia / n_normal)


def build_model(output_bias: float | None = None, image_size: int = IMAGE_SIZE) -> keras.Model:
    """Build the published architecture.

    output_bias: initial bias of the sigmoid unit (see `output_bias_for`); None leaves it at zero.

    Initialisation keeps the activation scale through the ReLU stack (same layers, same parameter
    count): He for the convolutions and dense layers, and unit variance per 3x3 window for the
    depthwise kernels. Keras's defaults (Glorot, with the depthwise fan-in counted as 9 x channels)
    shrink the signal 5-10x per separable conv, so block 5 activations start near 1e-6, far below
    BatchNormalization's epsilon (1e-3): the BN layers cannot renormalise, activations keep growing
    in training, the moving statistics lag behind, and inference-mode outputs saturate.
    """
    depthwise_init = keras.initializers.TruncatedNormal(stddev=math.sqrt(1.0 / 9.0) / _TRUNCATED_NORMAL_STD)
    conv_init = {"kernel_initializer": "he_normal"}
    sep_init = {"depthwise_initializer": depthwise_init, "pointwise_initializer": "he_normal"}
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = layers.Conv2D(16, 3, activation="relu", padding="same", name="block0_conv1", **conv_init)(inputs)
    x = layers.Conv2D(16, 3, activation="relu", padding="same", name="block0_conv2", **conv_init)(x)
    x = layers.MaxPooling2D(name="block0_pool")(x)

    for block, filters in enumerate(SEPARABLE_FILTERS, start=1):
        x = layers.SeparableConv2D(filters, 3, activation="relu", padding="same", name=f"block{block}_sepconv1", **sep_init)(x)
        x = layers.SeparableConv2D(filters, 3, activation="relu", padding="same", name=f"block{block}_sepconv2", **sep_init)(x)
        x = layers.BatchNormalization(name=f"block{block}_bn")(x)
        x = layers.MaxPooling2D(name=f"block{block}_pool")(x)
        if block in BLOCKS_WITH_DROPOUT:
            x = layers.Dropout(0.2, name=f"block{block}_dropout")(x)

    x = layers.Flatten(name="flatten")(x)
    for i, (units, rate) in enumerate(DENSE_BLOCKS, start=1):
        x = layers.Dense(units, activation="relu", name=f"dense{i}", kernel_initializer="he_normal")(x)
        x = layers.BatchNormalization(name=f"dense{i}_bn")(x)
        x = layers.Dropout(rate, name=f"dense{i}_dropout")(x)

    bias_init = keras.initializers.Constant(output_bias) if output_bias is not None else "zeros"
    outputs = layers.Dense(1, activation="sigmoid", bias_initializer=bias_init, name="pneumonia")(x)
    return keras.Model(inputs, outputs, name="pneumonia_cnn")


def calibrate_batchnorm(model: keras.Model, images) -> None:
    """Set every BatchNormalization layer's moving mean/variance to the statistics of `images`.

    A fresh layer starts at mean 0 / variance 1 and moves with momentum 0.99, so it takes ~1000
    steps to forget that start; until then inference-mode outputs are off. Called once before
    training (and for tests that need a non-degenerate untrained model).
    """
    norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    saved = [layer.momentum for layer in norms]
    try:
        for layer in norms:
            layer.momentum = 0.0
        model(images, training=True)
    finally:
        for layer, momentum in zip(norms, saved):
            layer.momentum = momentum


def ensemble(members: list[keras.Model], name: str = "pneumonia_ensemble") -> keras.Model:
    """Several trained networks as one model: the sigmoid of the mean of their logits. Each member is
    kept whole (the published network, its output made linear) as a nested model `member_k`, so
    every member's own `block5_sepconv2` can be explained (pneumo.reading.explain)."""
    if len(members) < 2:
        raise ValueError(f"an ensemble needs two or more members, got {len(members)}")
    image = keras.Input(shape=members[0].input_shape[1:], name="image")
    logits = []
    for k, member in enumerate(members):
        linear = keras.models.clone_model(member)
        linear.set_weights(member.get_weights())
        linear.layers[-1].activation = keras.activations.linear
        logits.append(keras.Model(linear.input, linear.output, name=f"member_{k}")(image))
    mean_logit = layers.Average(name="mean_logit")(logits)
    return keras.Model(image, layers.Activation("sigmoid", name="pneumonia")(mean_logit), name=name)


