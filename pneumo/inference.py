"""Loading a saved model and computing probabilities of pneumonia in batches."""

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


def predict_gray(model: keras.Model, gray: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Probabilities of pneumonia for uint8 grayscale images (N, 299, 299), in batches."""
    probs = [
        np.asarray(model.predict_on_batch(to_model_input(gray[start : start + batch_size]))).reshape(-1)
        for start in range(0, len(gray), batch_size)
    ]
    return np.concatenate(probs) if probs else np.empty(0, dtype=np.float32)
