"""Loading the shipped model and computing probabilities in batches.

Test-time augmentation (`tta=True`): the probability is the mean over the image and two zoomed
views of it (x0.94 and x1.06 about the centre, inside the training augmentation's zoom range), so a
small difference in framing or scale moves the answer less. Off unless the shipped metrics.json
says `"tta": true`; the CLI, the evaluation and the app all follow that one setting.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pneumo.runtime import configure_tensorflow_env

configure_tensorflow_env()

import keras  # noqa: E402  (after the environment is set)

from pneumo.preprocess import to_model_input  # noqa: E402


def load_model(path: str | Path) -> keras.Model:
    """The saved model, for inference only (no optimizer, not compiled)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}; train one with `python train.py` or pass --weights")
    return keras.saving.load_model(path, compile=False)


TTA_ZOOMS: tuple[float, ...] = (1.0, 0.94, 1.06)


def zoomed(x: np.ndarray, zoom: float) -> np.ndarray:
    """Model inputs (N, H, W, C) magnified by `zoom` about the centre (edge pixels repeated where a
    view shrinks), bilinear, as the training augmentation zooms."""
    if zoom == 1.0:
        return x
    import tensorflow as tf

    from pneumo.augment import apply_transforms

    n, height, width = x.shape[0], x.shape[1], x.shape[2]
    cy, cx, inv = (height - 1) / 2.0, (width - 1) / 2.0, 1.0 / zoom
    transform = tf.constant([[inv, 0.0, cx - inv * cx, 0.0, inv, cy - inv * cy, 0.0, 0.0]] * n, tf.float32)
    return apply_transforms(tf.constant(x, tf.float32), transform).numpy()


def predict_inputs(model: keras.Model, x: np.ndarray, tta: bool = False) -> np.ndarray:
    """Probabilities of pneumonia for one batch of model inputs (N, 299, 299, 3); with tta, the mean
    over the TTA_ZOOMS views (one forward pass over all of them)."""
    if not tta:
        return np.asarray(model.predict_on_batch(x)).reshape(-1)
    views = np.concatenate([zoomed(x, zoom) for zoom in TTA_ZOOMS])
    return np.asarray(model.predict_on_batch(views)).reshape(len(TTA_ZOOMS), len(x)).mean(axis=0)


def predict_gray(model: keras.Model, gray: np.ndarray, batch_size: int = 32, tta: bool = False) -> np.ndarray:
    """Probabilities of pneumonia for uint8 grayscale images (N, 299, 299), in batches."""
    probs = [predict_inputs(model, to_model_input(gray[start : start + batch_size]), tta) for start in range(0, len(gray), batch_size)]
    return np.concatenate(probs) if probs else np.empty(0, dtype=np.float32)
