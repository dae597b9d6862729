"""Heatmaps: the project's fast path gives what plain tf-keras-vis gives for every method, on the right
layer; the default method finds a region that alone drives the logit; empty maps are reported."""

from pathlib import Path

import keras
import numpy as np
import pytest
from tf_keras_vis.gradcam import Gradcam
from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
from tf_keras_vis.layercam import Layercam
from tf_keras_vis.scorecam import Scorecam
from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
from tf_keras_vis.utils.scores import BinaryScore

from conftest import TINY_DATA
from pneumo.training.data import list_split, load_images
from pneumo.reading.explain import METHODS, Explainer, normalized, two_class_logits
from pneumo.training.model import build_model, calibrate_batchnorm
from pneumo.reading.explain import GRADCAM_LAYER
from pneumo.reading.preprocess import to_model_input


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


def _naive_map(model, image, pneumonia: bool, method: str) -> np.ndarray:
    """The map as plain tf-keras-vis makes it on the full model, eagerly."""
    if method == "scorecam":  # on the model's logit as two class logits, which tf-keras-vis's softmax needs
        linear = keras.models.clone_model(model)
        linear.set_weights(model.get_weights())
        ReplaceToLinear()(linear)
        return Scorecam(two_class_logits(linear))(
            lambda probs: probs[:, int(pneumonia)], image[np.newaxis], penultimate_layer=GRADCAM_LAYER, seek_penultimate_conv_layer=False, max_N=10
        )[0]
    cls = {"gradcam": Gradcam, "gradcam++": GradcamPlusPlus, "layercam": Layercam, "hirescam": Layercam}[method]
    extra = {"gradient_modifier": None} if method == "hirescam" else {}
    return cls(model, model_modifier=ReplaceToLinear(), clone=True)(
        BinaryScore(pneumonia), image[np.newaxis], penultimate_layer=GRADCAM_LAYER, seek_penultimate_conv_layer=False, **extra
    )[0]


@pytest.mark.parametrize("method", METHODS)
def test_fast_path_equals_plain_tf_keras_vis(setup, method):
    model, x = setup
    explainer = Explainer(model)
    for image in x[:2]:
        expected_p = float(model.predict(image[np.newaxis], verbose=0)[0, 0])
        for target in ("pneumonia", "normal"):
            result = explainer.explain(image, target=target, method=method)
            assert result.explained_class == (1 if target == "pneumonia" else 0)
            assert result.probability == pytest.approx(expected_p, abs=1e-5)
            naive = _naive_map(model, image, target == "pneumonia", method)
            assert result.heatmap.shape == (299, 299)
            assert np.abs(result.heatmap - naive).max() <= (1e-3 if method == "scorecam" else 1e-4)
            if not result.empty:
                assert result.heatmap.max() > 0.5  # normalised to its range
            else:
                assert not result.heatmap.any() and np.ptp(naive) < 1e-6


def test_maps_are_brought_to_the_image_as_scipys_linear_zoom_brings_them():
    from scipy.ndimage import zoom

    from pneumo.reading.explain import upsampled

    rng = np.random.default_rng(3)
    for h, w in ((10, 10), (19, 19), (7, 12), (1, 5), (2, 2)):
        cams = rng.normal(size=(3, h, w)).astype(np.float32)
        expected = zoom(cams, (1, 299 / h, 299 / w), order=1)  # what tf-keras-vis does with expand_cam on
        np.testing.assert_allclose(upsampled(cams, (299, 299)), expected, atol=1e-6)
    assert upsampled(np.zeros((0, 10, 10)), (299, 299)).shape == (0, 299, 299)


def test_predicted_target_follows_the_threshold(setup):
    model, x = setup
    explainer = Explainer(model)
    p = explainer.explain(x[0], target="pneumonia").probability
    assert explainer.explain(x[0], threshold=max(p - 0.01, 0.001)).explained_class == 1
    assert explainer.explain(x[0], threshold=min(p + 0.01, 0.999)).explained_class == 0
    assert explainer.explain(x[0], threshold=min(p + 0.01, 0.999), method="scorecam").explained_class == 0


def test_the_networks_report_the_cli_probability_and_explain_the_class_at_the_bundles_threshold(setup):
    from pneumo.bundle import Bundle, predicted_label
    from pneumo.reading.networks import Networks
    from pneumo.reading.networks import predict_gray

    model, x = setup
    gray = np.round(x[:2, ..., 0] * 255).astype(np.uint8)
    expected = predict_gray(model, gray)
    for image, p in zip(gray, expected):
        for threshold in (p - 1e-3, p + 1e-3):
            engine = Networks(model, Explainer(model), Bundle(Path("unused.keras"), {"threshold": float(threshold)}))
            result = engine.explain(image)
            assert result.probability == pytest.approx(float(p), abs=1e-6)
            assert result.explained_class == predicted_label(p, threshold)
            same_class = engine.explain(image, target="pneumonia" if result.explained_class else "normal")
            np.testing.assert_allclose(result.heatmap, same_class.heatmap, atol=1e-5)


def test_heatmap_comes_from_block5_not_the_first_conv(setup):
    model, x = setup
    heatmap = Explainer(model).explain(x[0], target="pneumonia").heatmap
    first_conv = _naive(model, x[0], True, layer="block0_conv1")
    # block5 features are 9x9: the upsampled map is smooth, unlike a 299x299 first-layer map.
    assert np.abs(heatmap - first_conv).max() > 0.1
    assert np.abs(np.diff(heatmap, axis=1)).max() < 0.1 < np.abs(np.diff(first_conv, axis=1)).max()


def _one_region_model(row: int, col: int):
    """The published network whose logit depends only on block5_sepconv2's features at the 2x2
    positions that max-pool into pooled cell (row, col): the head is set so that the logit is the
    sum over channels of that cell's pooled features (identity batch norms, one path of ones)."""
    keras.utils.set_random_seed(5)
    model = build_model()
    gray, _ = load_images(list_split(TINY_DATA, "train"), None, workers=1, progress=False)
    calibrate_batchnorm(model, to_model_input(gray))
    for name in ("block5_bn", "dense1_bn", "dense2_bn", "dense3_bn"):
        layer = model.get_layer(name)
        layer.set_weights([np.ones_like(w) if i in (0, 3) else np.zeros_like(w) for i, w in enumerate(layer.get_weights())])
    pooled = model.get_layer("block5_pool").output.shape[1:]  # (4, 4, 128)
    index = np.arange(np.prod(pooled)).reshape(pooled)[row, col]  # Flatten's order: row, column, channel
    for name in ("dense1", "dense2", "dense3", "pneumonia"):
        layer = model.get_layer(name)
        kernel, bias = (np.zeros_like(w) for w in layer.get_weights())
        if name == "dense1":
            kernel[index, 0] = 1.0
        else:
            kernel[0, 0] = 1.0
        layer.set_weights([kernel, bias])
    return model, to_model_input(gray)


def test_the_default_method_finds_the_one_region_that_drives_the_logit():
    from pneumo.bundle import DEFAULT_METHOD

    model, x = _one_region_model(row=3, col=0)  # pooled cell (3, 0): rows 6-7, columns 0-1 of the 9x9 features: lower left
    explainer = Explainer(model)
    for image in x[:4]:
        result = explainer.explain(image, target="pneumonia", method=DEFAULT_METHOD)
        assert not result.empty
        heat = result.heatmap / result.heatmap.sum()
        region = heat[int(299 * 5.5 / 9):, : int(299 * 2.5 / 9)].sum()  # those feature positions, with the upsampling's half cell
        assert region >= 0.8, f"{DEFAULT_METHOD}: {region:.2f} of the map in the region that alone drives the logit"


def test_empty_and_flat_maps_are_reported_as_empty():
    for cam in (np.zeros((299, 299)), np.full((299, 299), 0.7)):
        heatmap, empty = normalized(cam)
        assert empty and not heatmap.any()
    ramp = np.tile(np.linspace(0, 2, 299), (299, 1))
    heatmap, empty = normalized(ramp)
    assert not empty and heatmap.max() == pytest.approx(1.0, abs=1e-6) and heatmap.min() == 0.0


def test_randomisation_test_tells_a_model_explanation_from_an_image_one(setup):
    """Adebayo et al.'s test on the published network: re-initialising the head changes its weights
    there only; a 'map' that ignores the model (the image itself) comes out the same from both networks
    and so fails the test, while HiResCAM's map, the same on a second pass of one network, changes."""
    from lab.explanations import randomised, similarity

    model, x = setup
    shuffled = randomised(model, "head")
    names = [layer.name for layer in model.layers]
    after = names[names.index(GRADCAM_LAYER) + 1 :]
    for layer in model.layers:
        same = all(np.array_equal(a, b) for a, b in zip(layer.get_weights(), shuffled.get_layer(layer.name).get_weights()))
        assert same == (layer.name not in after or not layer.get_weights())

    def image_only(network, image):  # an "explanation" that never asks the network
        return np.asarray(image[..., 0], dtype=np.float64)

    assert similarity(image_only(model, x[0]), image_only(shuffled, x[0])) == pytest.approx(1.0)  # fails the test
    trained = Explainer(model).explain(x[0], target="pneumonia", method="hirescam").heatmap
    repeated = Explainer(model).explain(x[0], target="pneumonia", method="hirescam").heatmap
    randomised_map = Explainer(shuffled).explain(x[0], target="pneumonia", method="hirescam").heatmap
    assert similarity(trained, repeated) == pytest.approx(1.0)  # the same network: the same map
    assert similarity(trained, randomised_map) < 0.9  # the map follows the model


def test_an_ensemble_is_one_model_whose_probability_and_map_come_from_its_members(setup, tmp_path):
    """pneumo.training.model.ensemble: the sigmoid of the members' mean logit, saved as one .keras file; its map
    is the mean of the members' maps (each from its own block5_sepconv2) before the ReLU."""
    from pneumo.bundle import read_bundle
    from pneumo.reading.networks import load_networks
    from pneumo.reading.explain import EnsembleExplainer, explainer_for
    from pneumo.training.model import ensemble
    from pneumo.reading.explain import ensemble_members

    model, x = setup
    keras.utils.set_random_seed(11)
    other = build_model(output_bias=-0.2)
    calibrate_batchnorm(other, x)
    joined = ensemble([model, other])
    joined.save(tmp_path / "pneumonia.keras")
    loaded = keras.saving.load_model(tmp_path / "pneumonia.keras", compile=False)
    assert loaded.count_params() == 2 * 1_321_953 and len(ensemble_members(loaded)) == 2
    p_members = np.stack([m.predict(x[:3], verbose=0)[:, 0] for m in (model, other)])
    expected = 1 / (1 + np.exp(-np.log(p_members / (1 - p_members)).mean(axis=0)))
    np.testing.assert_allclose(loaded.predict(x[:3], verbose=0)[:, 0], expected, rtol=1e-4)

    explainer = explainer_for(loaded)
    assert isinstance(explainer, EnsembleExplainer) and not ensemble_members(model)
    members = [Explainer(m) for m in (model, other)]
    for image, p in zip(x[:2], expected):
        result = explainer.explain(image, target="pneumonia", method="hirescam")
        assert result.probability == pytest.approx(float(p), abs=1e-5)
        raw = np.mean([m.raw_map(image[np.newaxis], "hirescam", 1.0, 0.0, rectify=False)[0] for m in members], axis=0)
        np.testing.assert_allclose(result.heatmap, normalized(np.maximum(raw, 0.0))[0], atol=1e-5)
        for threshold in (float(p) - 1e-3, float(p) + 1e-3):  # the ensemble's probability decides the predicted class
            assert explainer.explain(image, threshold=threshold).explained_class == int(p >= threshold)
    (tmp_path / "metrics.json").write_text('{"threshold": 0.4}')
    engine = load_networks(tmp_path / "pneumonia.keras")
    result = engine.explain(np.round(x[0, ..., 0] * 255).astype(np.uint8))
    assert result.explained_class == int(result.probability >= read_bundle(tmp_path / "pneumonia.keras").threshold)
