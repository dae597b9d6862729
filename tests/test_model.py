import math

import numpy as np
import pytest

from pneumo.training.model import build_model, output_bias_for
from pneumo.reading.explain import GRADCAM_LAYER

# (layer name, output shape without batch) in order, as in the published summary table.
EXPECTED_LAYERS = [
    ("image", (299, 299, 3)),
    ("block0_conv1", (299, 299, 16)),
    ("block0_conv2", (299, 299, 16)),
    ("block0_pool", (149, 149, 16)),
    ("block1_sepconv1", (149, 149, 32)),
    ("block1_sepconv2", (149, 149, 32)),
    ("block1_bn", (149, 149, 32)),
    ("block1_pool", (74, 74, 32)),
    ("block2_sepconv1", (74, 74, 64)),
    ("block2_sepconv2", (74, 74, 64)),
    ("block2_bn", (74, 74, 64)),
    ("block2_pool", (37, 37, 64)),
    ("block3_sepconv1", (37, 37, 128)),
    ("block3_sepconv2", (37, 37, 128)),
    ("block3_bn", (37, 37, 128)),
    ("block3_pool", (18, 18, 128)),
    ("block3_dropout", (18, 18, 128)),
    ("block4_sepconv1", (18, 18, 256)),
    ("block4_sepconv2", (18, 18, 256)),
    ("block4_bn", (18, 18, 256)),
    ("block4_pool", (9, 9, 256)),
    ("block4_dropout", (9, 9, 256)),
    ("block5_sepconv1", (9, 9, 128)),
    ("block5_sepconv2", (9, 9, 128)),
    ("block5_bn", (9, 9, 128)),
    ("block5_pool", (4, 4, 128)),
    ("block5_dropout", (4, 4, 128)),
    ("flatten", (2048,)),
    ("dense1", (512,)),
    ("dense1_bn", (512,)),
    ("dense1_dropout", (512,)),
    ("dense2", (128,)),
    ("dense2_bn", (128,)),
    ("dense2_dropout", (128,)),
    ("dense3", (64,)),
    ("dense3_bn", (64,)),
    ("dense3_dropout", (64,)),
    ("pneumonia", (1,)),
]


@pytest.fixture(scope="module")
def model():
    return build_model()


def test_parameter_counts(model):
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert trainable + non_trainable == 1_321_953
    assert non_trainable == 2_624


def test_layer_names_types_and_shapes(model):
    got = [(layer.name, tuple(layer.output.shape[1:])) for layer in model.layers]
    assert got == EXPECTED_LAYERS
    assert type(model.get_layer(GRADCAM_LAYER)).__name__ == "SeparableConv2D"
    assert GRADCAM_LAYER == "block5_sepconv2"
    dropouts = {layer.name: layer.rate for layer in model.layers if type(layer).__name__ == "Dropout"}
    assert dropouts == {
        "block3_dropout": 0.2, "block4_dropout": 0.2, "block5_dropout": 0.2,
        "dense1_dropout": 0.7, "dense2_dropout": 0.5, "dense3_dropout": 0.3,
    }
    assert model.get_layer("pneumonia").activation.__name__ == "sigmoid"


def test_output_bias_is_log_of_pneumonia_over_normal():
    # Kaggle train: 3875 PNEUMONIA, 1341 NORMAL -> positive bias (the original code had it swapped).
    bias = output_bias_for(n_pneumonia=3875, n_normal=1341)
    assert bias == pytest.approx(math.log(3875 / 1341))
    assert bias > 0
    model = build_model(output_bias=bias)
    assert float(model.get_layer("pneumonia").bias.numpy()[0]) == pytest.approx(bias, rel=1e-6)
    # With the dense features zeroed, the model predicts the training prior P(PNEUMONIA).
    head = model.get_layer("pneumonia")
    prior = float(head(np.zeros((1, 64), dtype=np.float32)).numpy()[0, 0])
    assert prior == pytest.approx(3875 / (3875 + 1341), abs=1e-6)


def test_output_bias_needs_both_classes():
    with pytest.raises(ValueError):
        output_bias_for(10, 0)


def test_train_py_applies_the_bias():
    import train

    cfg = {"lr": 1e-3, "label_smoothing": 0.0}
    model = train.new_model(cfg, n_pneumonia=300, n_normal=100)
    assert float(model.get_layer("pneumonia").bias.numpy()[0]) == pytest.approx(math.log(3.0), rel=1e-6)
    assert model.count_params() == 1_321_953
