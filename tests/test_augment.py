"""The training augmentation: the optional sensor noise, sharpness and local-contrast jitter, JPEG recompression, the range of the low-resolution trip, mixup."""

import numpy as np
import pytest
import tensorflow as tf

from pneumo.training.augment import Augmentation, add_noise, augment_batch, make_dataset, mixup_batch
from pneumo.reading.preprocess import to_model_input


def _gray_batch(n: int = 4) -> np.ndarray:
    rng = np.random.default_rng(0)
    ramp = np.tile(np.linspace(20, 230, 299), (299, 1))
    return np.stack([np.clip(ramp + rng.normal(0, 3, ramp.shape), 0, 255) for _ in range(n)]).astype(np.uint8)


def test_add_noise_has_the_drawn_spread_and_stays_uint8():
    flat = np.full((64, 299, 299), 128, dtype=np.uint8)
    noisy = add_noise(tf.constant(flat), 10.0, tf.constant([1, 2], dtype=tf.int64)).numpy()
    assert noisy.dtype == np.uint8 and noisy.shape == flat.shape
    sigmas = (noisy.astype(float) - 128).std(axis=(1, 2))
    # one sigma per image, uniform in [0, 10]: spread out over the range, none beyond it
    assert sigmas.max() <= 10.5 and sigmas.min() < 2.5 and sigmas.max() > 7.5
    assert np.all(np.abs(noisy.astype(float) - 128).mean(axis=(1, 2)) < 8.5)


def test_add_noise_is_a_function_of_the_seed_and_clips():
    gray = tf.constant(np.array([[[0, 255]]], dtype=np.uint8).repeat(50, axis=1))
    a = add_noise(gray, 50.0, tf.constant([3, 4], dtype=tf.int64)).numpy()
    b = add_noise(gray, 50.0, tf.constant([3, 4], dtype=tf.int64)).numpy()
    c = add_noise(gray, 50.0, tf.constant([3, 5], dtype=tf.int64)).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a[..., 0].max() > 0 and a[..., 1].min() < 255  # moved inward, never wrapped around


def test_noise_goes_in_before_preprocessing():
    gray, labels = _gray_batch(), np.array([0, 1, 0, 1])
    no_geometry = dict(rotation_deg=0.0, shift=0.0, shear=0.0, zoom=0.0, brightness=(1.0, 1.0), degrade_prob=0.0)
    plain = next(iter(make_dataset(gray, labels, 4, augmentation=Augmentation(**no_geometry))))[0].numpy()
    noisy = next(iter(make_dataset(gray, labels, 4, augmentation=Augmentation(noise=8.0, **no_geometry))))[0].numpy()
    np.testing.assert_allclose(plain, to_model_input(gray), atol=1e-5)  # the augmentation without changes is the identity
    assert not np.allclose(noisy, plain)
    assert noisy.min() >= 0.0 and noisy.max() <= 1.0
    np.testing.assert_array_equal(noisy[..., 0], noisy[..., 2])  # still three identical channels


def test_degrade_range_blurs_more_than_the_fixed_trip():
    sharp_image = np.zeros((2, 299, 299), dtype=np.uint8)
    sharp_image[:, :, ::2] = 255  # finest stripes: any trip through fewer pixels smooths them
    x = tf.constant(to_model_input(sharp_image))
    sharp = tf.constant([True, True])
    kw = dict(rotation_deg=0.0, shift=0.0, shear=0.0, zoom=0.0, brightness=(1.0, 1.0), degrade_prob=1.0)
    fixed = augment_batch(x, sharp, Augmentation(**kw), tf.constant([0, 0], dtype=tf.int64)).numpy()
    ranged = [augment_batch(x, sharp, Augmentation(degrade_min_size=120, **kw), tf.constant([0, i], dtype=tf.int64)).numpy() for i in range(8)]
    detail = lambda img: np.abs(np.diff(img[0, 100:200, 100:200, 0], axis=1)).mean()  # noqa: E731
    assert min(detail(r) for r in ranged) < detail(fixed) - 1e-3
    not_sharp = augment_batch(x, tf.constant([False, False]), Augmentation(degrade_min_size=120, **kw), tf.constant([0, 1], dtype=tf.int64)).numpy()
    np.testing.assert_allclose(not_sharp, x.numpy(), atol=1e-5)  # only sharp originals take the trip


@pytest.mark.parametrize("kwargs", [dict(degrade_min_size=0), dict(degrade_min_size=300), dict(noise=-1.0), dict(zoom=1.0), dict(shift=-0.1), dict(mixup=-0.2)])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        Augmentation(**kwargs)


def test_from_config_reads_a_train_config_and_describe_names_every_setting():
    cfg = {"lr": 1e-3, "degrade_prob": 0.5, "contrast": 0.25, "gamma": 0.3, "noise": 10.0, "degrade_min_size": 150, "zoom": 0.2, "mixup": 0.2}
    aug = Augmentation.from_config(cfg)
    assert (aug.contrast, aug.noise, aug.degrade_min_size, aug.zoom, aug.rotation_deg, aug.mixup) == (0.25, 10.0, 150, 0.2, 15.0, 0.2)
    text = aug.describe()
    for part in ("rotation ±15°", "zoom 20 %", "150–224 px", "contrast ×0.75–1.25", "gamma 0.77–1.3", "σ ≤ 10 gray levels", "mixup α 0.2"):
        assert part in text
    assert "noise" not in Augmentation.from_config({}).describe()  # off settings are not listed
    assert "mixup" not in Augmentation.from_config({}).describe()


def test_mixup_blends_images_labels_and_weights_with_one_weight_per_example():
    n = 64
    x = tf.constant(np.arange(n, dtype=np.float32).reshape(n, 1, 1, 1) * np.ones((1, 2, 2, 3), np.float32))
    y = tf.constant(np.arange(n) % 2, dtype=tf.float32)
    w = 2.0 - 1.5 * y  # class weights 2 (NORMAL) and 0.5 (PNEUMONIA)
    xm, ym, wm = (t.numpy() for t in mixup_batch(x, y, w, 0.4, tf.constant([5, 6], dtype=tf.int64)))
    # every example is lam * itself + (1 - lam) * a partner: recover lam from the label and check the rest
    partner_value = {}
    for i in range(n):
        assert np.all(xm[i] == xm[i, 0, 0, 0])  # one blend per image
        assert 0.0 <= ym[i] <= 1.0
        np.testing.assert_allclose(wm[i], 2.0 - 1.5 * ym[i], rtol=1e-5)  # the weight follows the blended label
        partner_value[i] = xm[i, 0, 0, 0]
    lam_is_extreme = np.mean([min(abs(v), abs(1 - v)) < 0.1 for v in ym[np.arange(n) % 2 == 0]])
    assert 0.3 < lam_is_extreme < 1.0  # Beta(0.4, 0.4): mostly near 0 or 1, not always
    assert len(set(np.round(list(partner_value.values()), 4))) > n // 2  # pairs differ from example to example
    again = mixup_batch(x, y, w, 0.4, tf.constant([5, 6], dtype=tf.int64))[0].numpy()
    np.testing.assert_array_equal(again, xm)  # a function of the seed


def test_make_dataset_with_class_weights_yields_weights_and_mixup_blends_them():
    gray, labels = _gray_batch(8), np.array([0, 1] * 4)
    weights = {0: 2.0, 1: 0.5}
    x, y, w = next(iter(make_dataset(gray, labels, 8, augmentation=Augmentation(), shuffle_seed=1, class_weight=weights)))
    np.testing.assert_array_equal(w.numpy(), np.where(y.numpy() == 1, 0.5, 2.0))
    x, y, w = next(iter(make_dataset(gray, labels, 8, augmentation=Augmentation(mixup=1.0), shuffle_seed=1, class_weight=weights)))
    y, w = y.numpy(), w.numpy()
    assert np.any((y > 0.01) & (y < 0.99))  # blended labels
    np.testing.assert_allclose(w, 2.0 - 1.5 * y, rtol=1e-5)
    assert len(next(iter(make_dataset(gray, labels, 8)))) == 2  # no weights asked for: plain (x, y) batches


def test_adjust_sharpness_blurs_or_enhances_edges_by_the_drawn_amount():
    from pneumo.training.augment import adjust_sharpness

    edge = np.zeros((64, 40, 40), dtype=np.uint8)
    edge[:, :, 20:] = 200
    edge[:, :, :20] = 50
    raw = adjust_sharpness(tf.constant(edge), 1.0, tf.constant([5, 6], dtype=tf.int64)).numpy()
    assert raw.dtype == np.uint8 and raw.shape == edge.shape
    out = raw.astype(float)
    step = out[:, 20, 20] - out[:, 20, 19]  # the jump across the edge
    overshoot = out[:, 20, 20:].max(axis=1) - 200  # unsharp masking rings past the bright side
    # one amount per image in [-1, 1]: some images blurred (a smaller jump), some sharpened (overshoot)
    assert step.min() < 150 - 20 and overshoot.max() > 20
    np.testing.assert_array_equal(out[:, :, :5].mean(axis=(1, 2)), 50)  # flat regions untouched
    again = adjust_sharpness(tf.constant(edge), 1.0, tf.constant([5, 6], dtype=tf.int64)).numpy()
    np.testing.assert_array_equal(again, raw)  # a function of the seed


@pytest.mark.parametrize(
    "name, value, words, bad, refusal",
    [
        ("sharpness", 1.0, "sharpness", -0.1, "sharpness must be >= 0"),
        ("local_contrast", 0.7, "local contrast", -0.1, "local_contrast must be >= 0"),
        ("jpeg_quality", 20, "JPEG", 101, "jpeg_quality must be 0"),
    ],
)
def test_pre_processing_jitter_goes_in_before_preprocessing_and_is_described(name, value, words, bad, refusal):
    gray, labels = _gray_batch(), np.array([0, 1, 0, 1])
    no_geometry = dict(rotation_deg=0.0, shift=0.0, shear=0.0, zoom=0.0, brightness=(1.0, 1.0), degrade_prob=0.0)
    plain = next(iter(make_dataset(gray, labels, 4, augmentation=Augmentation(**no_geometry))))[0].numpy()
    jittered = next(iter(make_dataset(gray, labels, 4, augmentation=Augmentation(**{name: value}, **no_geometry))))[0].numpy()
    assert not np.allclose(jittered, plain)
    assert jittered.min() >= 0.0 and jittered.max() <= 1.0
    np.testing.assert_array_equal(jittered[..., 0], jittered[..., 1])
    assert words in Augmentation(**{name: value}).describe() and words not in Augmentation().describe()
    with pytest.raises(ValueError, match=refusal):
        Augmentation(**{name: bad})


def test_local_contrast_scales_the_coarse_band_by_the_drawn_gain():
    from pneumo.training.augment import adjust_sharpness

    # stripes 24 px apart: structure in the band between the ~1.5 px and ~6 px blurs
    stripes = 128 + 40 * np.sin(2 * np.pi * np.arange(96) / 24)
    gray = np.tile(stripes, (64, 96, 1)).astype(np.uint8)
    seed = tf.constant([7, 8], dtype=tf.int64)
    out = adjust_sharpness(tf.constant(gray), 0.0, seed, 0.7).numpy()
    assert out.dtype == np.uint8 and out.shape == gray.shape
    middle = out[:, 48, 24:72].astype(float)  # away from the reflected borders
    ratio = (middle.max(axis=1) - middle.min(axis=1)) / (gray[0, 48, 24:72].max() - gray[0, 48, 24:72].min())
    # one gain per image in [-0.7, 0.7]: stripes flattened in some images, boosted in others, never gone
    assert ratio.min() < 0.85 and ratio.max() > 1.15 and ratio.min() > 0.2
    flat = np.full((4, 96, 96), 90, dtype=np.uint8)
    np.testing.assert_array_equal(adjust_sharpness(tf.constant(flat), 0.0, seed, 0.7).numpy(), flat)
    np.testing.assert_array_equal(adjust_sharpness(tf.constant(gray), 0.0, seed, 0.7).numpy(), out)  # a function of the seed


def test_coarse_blur_has_the_stated_width():
    from pneumo.training.augment import COARSE_SIGMA, _coarse_blur

    step = np.zeros((1, 299, 299), dtype=np.float32)
    step[:, :, 150:] = 1.0
    slope = np.diff(_coarse_blur(tf.constant(step)).numpy()[0, 150])  # the blurred edge's profile
    centre = (slope * np.arange(slope.size)).sum() / slope.sum()
    width = np.sqrt((slope * (np.arange(slope.size) - centre) ** 2).sum() / slope.sum())
    assert abs(width - COARSE_SIGMA) < 0.5



def test_recompress_jpeg_loses_detail_by_the_drawn_quality():
    from pneumo.training.augment import recompress_jpeg

    x = np.arange(96)  # a fine checker-like texture: what a low JPEG quality quantises away
    texture = 128 + 40 * np.sin(2 * np.pi * x / 7)[None, :] * np.cos(2 * np.pi * x / 11)[:, None]
    gray = np.tile(texture, (32, 1, 1)).astype(np.uint8)
    seed = tf.constant([9, 10], dtype=tf.int64)
    out = recompress_jpeg(tf.constant(gray), 10, seed).numpy()
    assert out.dtype == np.uint8 and out.shape == gray.shape
    error = np.abs(out.astype(float) - gray).mean(axis=(1, 2))
    # one quality per image in [10, 100]: some images changed several times more than others,
    # none shifted in brightness
    assert error.max() > 3.0 and error.max() > 3 * error.min()
    assert np.all(np.abs(out.astype(float).mean(axis=(1, 2)) - gray.mean(axis=(1, 2))) < 0.5)
    np.testing.assert_array_equal(recompress_jpeg(tf.constant(gray), 10, seed).numpy(), out)  # a function of the seed
    best = recompress_jpeg(tf.constant(gray[:4]), 100, seed).numpy()  # quality 100: almost lossless
    assert np.abs(best.astype(float) - gray[:4]).mean() < 0.2
