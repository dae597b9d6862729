"""Batch inference and its optional test-time augmentation (the mean over zoomed views)."""

import json

import numpy as np
import pytest

from pneumo.evaluate import shipped_threshold, shipped_tta
from pneumo.inference import TTA_ZOOMS, predict_gray, predict_inputs, zoomed
from pneumo.preprocess import to_model_input


class CentreBrightness:
    """A stand-in model: the probability is the mean model input in the central 100 x 100 pixels."""

    def __init__(self):
        self.batch_sizes = []

    def predict_on_batch(self, x):
        self.batch_sizes.append(len(x))
        return np.asarray(x)[:, 100:200, 100:200].mean(axis=(1, 2, 3))[:, None]


def _disk_images(n=3):
    yy, xx = np.mgrid[:299, :299]
    disk = ((yy - 149) ** 2 + (xx - 149) ** 2 < 60**2).astype(np.uint8) * 200 + 20
    return np.stack([disk] * n)


def test_zoom_magnifies_about_the_centre_and_keeps_the_shape():
    x = to_model_input(_disk_images(2))
    assert zoomed(x, 1.0) is x
    bigger, smaller = zoomed(x, 1.06), zoomed(x, 0.94)
    assert bigger.shape == smaller.shape == x.shape
    area = lambda img: (img[0, ..., 0] > 0.5).sum()  # noqa: E731
    assert area(bigger) == pytest.approx(area(x) * 1.06**2, rel=0.03)
    assert area(smaller) == pytest.approx(area(x) * 0.94**2, rel=0.03)
    np.testing.assert_allclose(bigger[0, 149, 149], x[0, 149, 149])  # the centre stays put


def test_tta_is_the_mean_over_the_views_in_one_pass():
    model, x = CentreBrightness(), to_model_input(_disk_images(3))
    expected = np.mean([model.predict_on_batch(zoomed(x, z)).ravel() for z in TTA_ZOOMS], axis=0)
    model.batch_sizes.clear()
    np.testing.assert_allclose(predict_inputs(model, x, tta=True), expected, rtol=1e-6)
    assert model.batch_sizes == [3 * len(TTA_ZOOMS)]
    np.testing.assert_allclose(predict_inputs(model, x), model.predict_on_batch(x).ravel())


def test_predict_gray_batches_with_and_without_tta():
    model, gray = CentreBrightness(), _disk_images(5)
    plain, tta = predict_gray(model, gray, batch_size=2), predict_gray(model, gray, batch_size=2, tta=True)
    assert plain.shape == tta.shape == (5,)
    assert not np.allclose(plain, tta)  # the window's corners lie past the disk edge: zooming moves them
    assert predict_gray(model, gray[:0], tta=True).shape == (0,)


def test_shipped_settings_come_from_metrics_json_unless_overridden(tmp_path):
    weights = tmp_path / "pneumonia.keras"
    assert (shipped_tta(weights), shipped_threshold(weights)) == (False, 0.5)  # nothing shipped beside it
    (tmp_path / "metrics.json").write_text(json.dumps({"threshold": 0.3, "tta": True}))
    assert (shipped_tta(weights), shipped_threshold(weights)) == (True, 0.3)
    assert (shipped_tta(weights, False), shipped_threshold(weights, 0.7)) == (False, 0.7)
