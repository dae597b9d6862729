"""tf.data pipelines over cached uint8 images, with the training augmentation.

Every batch goes through `pneumo.reading.preprocess.to_model_input` (the one preprocessing function);
augmentation then acts on the [0, 1] float images, training batches only (defaults; train.py's flags
set them): rotation +-15 deg, width/height shift 10%, shear factor 0.1, zoom 10%, brightness x[0.95, 1.05],
no flips (the heart is on the left), and, for sharp originals, a random trip through 224 px so the
model sees both resolutions of the data set (the 224 px copies are blurrier). Optional contrast and
gamma jitter (off by default) imitate other exposures and scanners; optional sensor noise (off by
default) is added to the uint8 image *before* the preprocessing function, where a noisier detector
would put it (histogram equalisation amplifies noise in flat regions, so adding it afterwards would
be a different, milder change); an optional lower bound on the size of the trip makes it a range.
Optional sharpness jitter (off by default) blurs or unsharp-masks the uint8 image before the
preprocessing function, by a random amount per image: scanners and their software differ in the
edge enhancement they apply, and histogram equalisation keeps such differences. Optional local-contrast
jitter (off by default) does the same one scale coarser, to the band between that blur and a ~6 px one:
radiograph processing boosts or flattens this band (multi-frequency processing) by different amounts.
Optional JPEG recompression (off by default) re-encodes each uint8 image at a random quality, last
before the preprocessing function: uploads and exports are JPEGs of unknown quality, and the 8x8
block artefacts of a low quality survive histogram equalisation.
Optional mixup (off by default) blends each augmented image with another of the batch, and their
labels and class weights alike, which keeps the scores of ambiguous images away from 0 and 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

from pneumo.reading.preprocess import IMAGE_SIZE, to_model_input

if TYPE_CHECKING:
    import tensorflow as tf
# TensorFlow is imported inside the functions that use it: train.py and the model card read the
# settings (Augmentation) before TensorFlow may load (train.py decodes images in forked workers first).


@dataclass(frozen=True)
class Augmentation:
    rotation_deg: float = 15.0
    shift: float = 0.1
    shear: float = 0.1
    zoom: float = 0.1
    brightness: tuple[float, float] = (0.95, 1.05)
    degrade_prob: float = 0.5  # chance that a sharp original is passed through a lower resolution
    degrade_size: int = 224
    degrade_min_size: int = 224  # trip size uniform in [degrade_min_size, degrade_size], one per batch
    contrast: float = 0.0  # contrast x[1 - c, 1 + c] about the image mean (0: off)
    gamma: float = 0.0  # gamma in [1/(1 + g), 1 + g], log-uniform (0: off): exposure differences
    noise: float = 0.0  # Gaussian noise, sigma uniform in [0, noise] gray levels per image (0: off)
    sharpness: float = 0.0  # unsharp-mask amount uniform in [-sharpness, sharpness] per image, -1 at most (0: off)
    local_contrast: float = 0.0  # gain of the 1.5-6 px band uniform in [-l, l] per image, -1 at most (0: off)
    jpeg_quality: int = 0  # each image re-encoded as JPEG at a quality uniform in [jpeg_quality, 100] (0: off)
    mixup: float = 0.0  # mixup alpha: pairs of images and their labels blended, weight ~ Beta(a, a) (0: off)

    def __post_init__(self) -> None:
        if not 1 <= self.degrade_min_size <= self.degrade_size:
            raise ValueError(f"degrade_min_size must be in [1, {self.degrade_size}], got {self.degrade_min_size}")
        for name in ("rotation_deg", "shift", "shear", "zoom", "contrast", "gamma", "noise", "sharpness", "local_contrast", "mixup"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be 0 (off) or a JPEG quality 1-100, got {self.jpeg_quality}")
        for name in ("zoom", "contrast"):  # factors 1 +- x must stay positive
            if getattr(self, name) >= 1:
                raise ValueError(f"{name} must be below 1, got {getattr(self, name)}")

    @classmethod
    def from_config(cls, cfg: dict) -> Augmentation:
        """The augmentation of a train.py run, from its recorded config (settings it lacks: defaults)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if k == "brightness" else v for k, v in cfg.items() if k in known})

    def describe(self) -> str:
        """One line for the model card, e.g. "rotation ±15°, shift 10 %, ..."."""
        trip = f"{self.degrade_min_size}–{self.degrade_size}" if self.degrade_min_size < self.degrade_size else f"{self.degrade_size}"
        parts = [
            f"rotation ±{self.rotation_deg:g}°",
            f"shift {self.shift * 100:g} %",
            f"shear {self.shear:g}",
            f"zoom {self.zoom * 100:g} %",
            f"brightness ×{self.brightness[0]:g}–{self.brightness[1]:g}",
            "no flips",
            f"originals passed through {trip} px with probability {self.degrade_prob:g}",
        ]
        if self.contrast:
            parts.append(f"contrast ×{1 - self.contrast:g}–{1 + self.contrast:g}")
        if self.gamma:
            parts.append(f"gamma {1 / (1 + self.gamma):.2f}–{1 + self.gamma:g}")
        if self.noise:
            parts.append(f"Gaussian noise σ ≤ {self.noise:g} gray levels before preprocessing")
        if self.sharpness:
            parts.append(f"sharpness: unsharp-mask amount −{self.sharpness:g} to +{self.sharpness:g} (−1 = Gaussian blur σ {SHARPNESS_SIGMA:g} px) before preprocessing")
        if self.local_contrast:
            parts.append(f"local contrast: gain of the {SHARPNESS_SIGMA:g}–{COARSE_SIGMA:g} px band −{self.local_contrast:g} to +{self.local_contrast:g} (−1 removes it) before preprocessing")
        if self.jpeg_quality:
            parts.append(f"JPEG recompression at quality {self.jpeg_quality}–100 before preprocessing")
        if self.mixup:
            parts.append(f"mixup α {self.mixup:g} (images and labels of random pairs blended)")
        return ", ".join(parts)


def _model_input_batch(gray: tf.Tensor) -> tf.Tensor:
    import tensorflow as tf

    batch = tf.numpy_function(to_model_input, [gray], tf.float32, stateful=False)
    batch.set_shape([None, IMAGE_SIZE, IMAGE_SIZE, 3])
    return batch


def add_noise(gray: tf.Tensor, max_sigma: float, seed: tf.Tensor) -> tf.Tensor:
    """uint8 images (N, H, W) plus Gaussian noise of sigma ~ U(0, max_sigma) gray levels each, rounded
    and clipped back to uint8 (what a noisier detector gives before any processing)."""
    import tensorflow as tf

    s_sigma, s_noise = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    n = tf.shape(gray)[0]
    sigma = tf.random.stateless_uniform([n, 1, 1], s_sigma, 0.0, max_sigma)
    noisy = tf.cast(gray, tf.float32) + sigma * tf.random.stateless_normal(tf.shape(gray), s_noise)
    return tf.cast(tf.clip_by_value(tf.round(noisy), 0.0, 255.0), tf.uint8)


SHARPNESS_SIGMA = 1.5  # px at 299 px: the scale of edge enhancement and of a mild blur


def _gaussian_blur(images: tf.Tensor, sigma: float) -> tf.Tensor:
    """float images (N, H, W) blurred by a separable Gaussian, edges reflected.

    The images travel as the channels of one depthwise convolution: 0.17 s per batch of 32 on one
    CPU core, against 1.1 s for a one-channel conv2d over the batch.
    """
    import tensorflow as tf

    radius = int(math.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = tf.constant(taps / taps.sum(), tf.float32)
    n = tf.shape(images)[0]
    x = tf.transpose(images, [1, 2, 0])[None]  # (1, H, W, N)
    x = tf.pad(x, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="REFLECT")
    for kernel_shape in ([1, -1, 1, 1], [-1, 1, 1, 1]):  # along the width, then the height
        kernel = tf.tile(tf.reshape(taps, kernel_shape), tf.stack([1, 1, n, 1]))
        x = tf.nn.depthwise_conv2d(x, kernel, strides=[1, 1, 1, 1], padding="VALID")
    return tf.transpose(x[0], [2, 0, 1])


COARSE_FACTOR = 4  # the coarse blur: area-downsample by this, Gaussian SHARPNESS_SIGMA, bilinear back
COARSE_SIGMA = 6.0  # px at 299 px: about the width of that coarse blur (measured, tests/test_augment.py)


def _coarse_blur(images: tf.Tensor) -> tf.Tensor:
    """float images (N, H, W) blurred at about COARSE_SIGMA px, computed at a quarter of the size:
    a 37-tap Gaussian at full size would cost about three times the 11-tap fine blur."""
    import tensorflow as tf

    size = tf.shape(images)[1:3]
    small = tf.image.resize(images[..., None], size // COARSE_FACTOR, method="area")[..., 0]
    small = _gaussian_blur(small, SHARPNESS_SIGMA)
    return tf.image.resize(small[..., None], size, method="bilinear")[..., 0]


def adjust_sharpness(gray: tf.Tensor, max_amount: float, seed: tf.Tensor, max_band_gain: float = 0.0) -> tf.Tensor:
    """uint8 images (N, H, W) unsharp-masked by amount a ~ U(-max_amount, max_amount) each:
    image + a * (image - blurred), so a > 0 enhances edges and a < 0 blurs (a = -1: the Gaussian
    blur itself; amounts below -1 are taken as -1). With max_band_gain, the coarser band between
    that blur and the ~6 px one (_coarse_blur) is scaled too, by 1 + b, b ~ U(-max_band_gain,
    max_band_gain) (at least -1): local contrast boosted or flattened. Rounded, clipped to uint8."""
    import tensorflow as tf

    s_fine, s_band = tf.unstack(tf.random.experimental.stateless_split(seed, 2)) if max_band_gain > 0 else (seed, None)
    n = tf.shape(gray)[0]
    image = tf.cast(gray, tf.float32)
    fine = _gaussian_blur(image, SHARPNESS_SIGMA)
    amount = tf.maximum(tf.random.stateless_uniform([n, 1, 1], s_fine, -max_amount, max_amount), -1.0)
    adjusted = image + amount * (image - fine)
    if max_band_gain > 0:
        gain = tf.maximum(tf.random.stateless_uniform([n, 1, 1], s_band, -max_band_gain, max_band_gain), -1.0)
        adjusted += gain * (fine - _coarse_blur(image))
    return tf.cast(tf.clip_by_value(tf.round(adjusted), 0.0, 255.0), tf.uint8)


def _recompress_jpeg_numpy(gray: np.ndarray, quality: np.ndarray) -> np.ndarray:
    import io

    from PIL import Image

    out = np.empty_like(gray)
    for i, (image, q) in enumerate(zip(gray, quality)):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=int(q))
        out[i] = np.asarray(Image.open(buffer))
    return out


def recompress_jpeg(gray: tf.Tensor, min_quality: int, seed: tf.Tensor) -> tf.Tensor:
    """uint8 images (N, H, W), each encoded as a JPEG at a quality drawn uniformly from
    [min_quality, 100] and decoded again (block artefacts and lost fine detail, as in an export).
    Pillow does the coding, as it decodes uploads (TensorFlow's variable-quality encoder darkened
    by half a gray level, and at quality 100 changed pixels by 0.8 gray levels on average, Pillow 0.07)."""
    import tensorflow as tf

    quality = tf.random.stateless_uniform([tf.shape(gray)[0]], seed, min_quality, 101, dtype=tf.int32)
    out = tf.numpy_function(_recompress_jpeg_numpy, [gray, quality], tf.uint8, stateful=False)
    out.set_shape(gray.shape)
    return out


def apply_transforms(images: tf.Tensor, transforms: tf.Tensor) -> tf.Tensor:
    """Resample a float batch (N, H, W, C) by per-image output->input maps (N, 8): bilinear, edge
    pixels repeated. The one resampling of training augmentation and test-time augmentation alike."""
    import tensorflow as tf

    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=list(images.shape[1:3]),  # static: the batches keep their known 299x299 shape
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="NEAREST",
    )


def _affine_transforms(n: tf.Tensor, aug: Augmentation, seed: tf.Tensor) -> tf.Tensor:
    """Per-image output->input maps for ImageProjectiveTransformV3, about the image centre."""
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, 5)

    def uniform(i: int, low: float, high: float) -> tf.Tensor:
        return tf.random.stateless_uniform([n], seeds[i], low, high)

    angle = uniform(0, -aug.rotation_deg, aug.rotation_deg) * (math.pi / 180.0)
    shear = uniform(1, -aug.shear, aug.shear)
    zoom = tf.random.stateless_uniform([n, 2], seeds[2], 1.0 - aug.zoom, 1.0 + aug.zoom)
    shift = tf.random.stateless_uniform([n, 2], seeds[3], -aug.shift, aug.shift) * IMAGE_SIZE
    cos, sin = tf.cos(angle), tf.sin(angle)
    # M = rotation @ shear @ diag(1/zoom): maps an output offset from the centre to an input offset.
    a00 = cos / zoom[:, 0]
    a01 = (cos * shear - sin) / zoom[:, 1]
    a10 = sin / zoom[:, 0]
    a11 = (sin * shear + cos) / zoom[:, 1]
    c = (IMAGE_SIZE - 1) / 2.0
    a02 = c - a00 * c - a01 * c + shift[:, 0]
    a12 = c - a10 * c - a11 * c + shift[:, 1]
    zeros = tf.zeros_like(a00)
    return tf.stack([a00, a01, a02, a10, a11, a12, zeros, zeros], axis=1)


def augment_batch(images: tf.Tensor, sharp: tf.Tensor, aug: Augmentation, seed: tf.Tensor) -> tf.Tensor:
    """Random geometric, brightness and resolution augmentation of a float batch (N, 299, 299, 3).

    The three channels are identical (see pneumo.reading.preprocess), so the work is done on one and the
    result is tiled back: a third of the cost, the same images.
    """
    import tensorflow as tf

    channels = images.shape[-1]
    images = images[..., :1]
    n = tf.shape(images)[0]
    s_degrade, s_affine, s_bright, s_contrast, s_gamma = tf.unstack(tf.random.experimental.stateless_split(seed, 5))
    if aug.degrade_prob > 0:
        size = tf.constant(aug.degrade_size)
        if aug.degrade_min_size < aug.degrade_size:
            size_seed = tf.random.experimental.stateless_fold_in(s_degrade, 1)
            size = tf.random.stateless_uniform([], size_seed, aug.degrade_min_size, aug.degrade_size + 1, dtype=tf.int32)
        small = tf.image.resize(images, tf.stack([size, size]), method="area")
        degraded = tf.image.resize(small, [IMAGE_SIZE] * 2, method="bilinear")
        pick = sharp & (tf.random.stateless_uniform([n], s_degrade) < aug.degrade_prob)
        images = tf.where(pick[:, None, None, None], degraded, images)
    images = apply_transforms(images, _affine_transforms(n, aug, s_affine))
    if aug.contrast > 0:
        c = tf.random.stateless_uniform([n, 1, 1, 1], s_contrast, 1.0 - aug.contrast, 1.0 + aug.contrast)
        mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
        images = tf.clip_by_value((images - mean) * c + mean, 0.0, 1.0)
    if aug.gamma > 0:
        log_g = tf.random.stateless_uniform([n, 1, 1, 1], s_gamma, -math.log1p(aug.gamma), math.log1p(aug.gamma))
        images = tf.pow(tf.maximum(images, 1e-6), tf.exp(log_g))
    factor = tf.random.stateless_uniform([n, 1, 1, 1], s_bright, *aug.brightness)
    return tf.tile(tf.clip_by_value(images * factor, 0.0, 1.0), [1, 1, 1, channels])


def mixup_batch(
    x: tf.Tensor, y: tf.Tensor, weight: tf.Tensor, alpha: float, seed: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Blend each example with a random partner of the same batch: x, label and sample weight alike,
    with a mixing weight lam ~ Beta(alpha, alpha) per example (Zhang et al. 2018, "mixup")."""
    import tensorflow as tf

    s_partner, s_a, s_b = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    n = tf.shape(x)[0]
    partner = tf.argsort(tf.random.stateless_uniform([n], s_partner))
    # Beta(a, a) as G_a / (G_a + G_b) with two Gamma(a) draws (TF has no stateless Beta).
    g_a = tf.random.stateless_gamma([n], s_a, alpha)
    g_b = tf.random.stateless_gamma([n], s_b, alpha)
    lam = g_a / tf.maximum(g_a + g_b, 1e-12)

    def blend(t: tf.Tensor) -> tf.Tensor:
        lam_t = tf.reshape(lam, [-1] + [1] * (len(t.shape) - 1))
        return lam_t * t + (1.0 - lam_t) * tf.gather(t, partner)

    return blend(x), blend(y), blend(weight)


_TENSORS: dict[int, tuple[np.ndarray, tf.Tensor]] = {}


def _tensor(array: np.ndarray) -> tf.Tensor:
    """One tensor per array for the process: train.py makes a dataset per epoch over the same arrays, and
    a fresh copy each time stayed alive (run lung1-a grew by ~0.9 GB an epoch and was killed at 24 GB)."""
    import tensorflow as tf

    held = _TENSORS.get(id(array))
    if held is None or held[0] is not array:
        held = _TENSORS[id(array)] = (array, tf.constant(array))
    return held[1]


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    sharp: np.ndarray | None = None,
    augmentation: Augmentation | None = None,
    shuffle_seed: int | None = None,
    class_weight: dict[int, float] | None = None,
) -> tf.data.Dataset:
    """Batches of (model input, label), or (model input, label, sample weight) when class_weight is
    given (then pass none to fit()). The class weight follows the label. Shuffled when
    shuffle_seed is given, augmented when augmentation is given; the randomness is a pure function of
    shuffle_seed and the batch index."""
    import tensorflow as tf

    mixup = augmentation.mixup if augmentation is not None else 0.0
    if mixup and class_weight is None:
        class_weight = {0: 1.0, 1: 1.0}  # mixup blends the weights too, so they travel with the batch

    sharp = np.zeros(len(images), dtype=bool) if sharp is None else np.asarray(sharp, dtype=bool)
    index = np.arange(len(images))
    if shuffle_seed is not None:
        index = np.random.default_rng(shuffle_seed).permutation(index)
    ds = tf.data.Dataset.from_tensor_slices(index).batch(batch_size).enumerate()
    images_t, labels_t, sharp_t = _tensor(images), tf.constant(labels.astype(np.float32)), tf.constant(sharp)
    y_t = labels_t
    if class_weight is not None:
        weights_t = tf.constant([class_weight.get(0, 1.0), class_weight.get(1, 1.0)], dtype=tf.float32)

    def load(batch_number: tf.Tensor, idx: tf.Tensor):
        gray = tf.gather(images_t, idx)
        seed = tf.stack([tf.cast(shuffle_seed or 0, tf.int64), batch_number])
        if augmentation is not None and augmentation.noise > 0:
            gray = add_noise(gray, augmentation.noise, tf.random.experimental.stateless_fold_in(seed, 1))
        if augmentation is not None and (augmentation.sharpness > 0 or augmentation.local_contrast > 0):
            gray = adjust_sharpness(
                gray, augmentation.sharpness, tf.random.experimental.stateless_fold_in(seed, 3), augmentation.local_contrast
            )
        if augmentation is not None and augmentation.jpeg_quality > 0:  # last: the export of a processed image
            gray = recompress_jpeg(gray, augmentation.jpeg_quality, tf.random.experimental.stateless_fold_in(seed, 4))
        x = _model_input_batch(gray)
        if augmentation is not None:
            x = augment_batch(x, tf.gather(sharp_t, idx), augmentation, seed)
        y = tf.gather(y_t, idx)
        if class_weight is None:
            return x, y
        weight = tf.gather(weights_t, tf.cast(tf.gather(labels_t, idx), tf.int32))
        if mixup:
            x, y, weight = mixup_batch(x, y, weight, mixup, tf.random.experimental.stateless_fold_in(seed, 2))
        return x, y, weight

    return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(2)
