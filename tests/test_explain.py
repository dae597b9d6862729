"""Grad-CAM: the project's fast path gives what plain tf-keras-vis gives, on the right layer."""

from pathlib import Path

import keras
import numpy as np
import pytest
from tf_keras_vis.gradcam import Gradcam
from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
from tf_keras_vis.utils.scores import BinaryScore

from conftest import TINY_DATA
from pneumo.training.data import list_split, load_images
from pneumo.explain import Explainer
from pneumo.model import GRADCAM_LAYER, build_model, calibrate_batchnorm
from pneumo.preprocess import to_model_input


@pytest.fixture(scope="module")
def setup():
    gray, _ = load_images(list_split(TINY_DATA, "train"), None, workers=1, progress=False)
    x = to_model_input(gray)
    keras.utils.set_random_seed(3)
    model = build_model(output_bias=0.3)
    calibrate_batchnorm(model, x)  # an untrained model with default BN statistics gives all-zero maps
    return model, x


def _naive(model, x, target, cls=Gradcam, layer=GRADCAM_LAYER):
    return cls(model, model_modifier=ReplaceToLinear(), clone=True)(
        BinaryScore(target), x[np.newaxis], penultimate_layer=layer, seek_penultimate_conv_layer=False
    )[0]


@pytest.mark.parametrize("method,cls", [("gradcam", Gradcam), ("gradcam++", GradcamPlusPlus)])
def test_fast_path_equals_plain_tf_keras_vis(setup, method, cls):
    model, x = setup
    explainer = Explainer(model)
    for image in x[:3]:
        expected_p = float(model.predict(image[np.newaxis], verbose=0)[0, 0])
        for target in ("pneumonia", "normal"):
            p, heatmap, explained = explainer.explain(image, target=target, method=method)
            assert explained == (1 if target == "pneumonia" else 0)
            assert p == pytest.approx(expected_p, abs=1e-5)
            naive = _naive(model, image, target == "pneumonia", cls)
            assert heatmap.shape == (299, 299)
            assert np.abs(heatmap - naive).max() <= 1e-4
            assert heatmap.max() > 0.5  # a real map, not all zeros


def test_predicted_target_follows_the_threshold(setup):
    model, x = setup
    explainer = Explainer(model)
    p, _, _ = explainer.explain(x[0], target="pneumonia")
    assert explainer.explain(x[0], threshold=max(p - 0.01, 0.001))[2] == 1
    assert explainer.explain(x[0], threshold=min(p + 0.01, 0.999))[2] == 0


def test_engine_reports_the_cli_probability_and_explains_the_class_at_the_bundles_threshold(setup):
    from pneumo.bundle import Bundle, predicted_label
    from pneumo.engine import Engine
    from pneumo.inference import predict_gray

    model, x = setup
    gray = np.round(x[:2, ..., 0] * 255).astype(np.uint8)
    expected = predict_gray(model, gray)
    for image, p in zip(gray, expected):
        for threshold in (p - 1e-3, p + 1e-3):
            engine = Engine(model, Explainer(model), Bundle(Path("unused.keras"), {"threshold": float(threshold)}))
            result = engine.analyze(image)
            assert result.probability == pytest.approx(float(p), abs=1e-6)
            assert result.explained_class == predicted_label(p, threshold)
            same_class = engine.analyze(image, target="pneumonia" if result.explained_class else "normal")
            np.testing.assert_allclose(result.heatmap, same_class.heatmap, atol=1e-5)


def test_heatmap_comes_from_block5_not_the_first_conv(setup):
    model, x = setup
    _, heatmap, _ = Explainer(model).explain(x[0], target="pneumonia")
    first_conv = _naive(model, x[0], True, layer="block0_conv1")
    # block5 features are 9x9: the upsampled map is smooth, unlike a 299x299 first-layer map.
    assert np.abs(heatmap - first_conv).max() > 0.1
    assert np.abs(np.diff(heatmap, axis=1)).max() < 0.1 < np.abs(np.diff(first_conv, axis=1)).max()
