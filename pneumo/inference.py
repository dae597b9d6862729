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


def load_classifier(path: str | Path):
    """(the model at `path`, the lung step its input needs: None for a model that sees the whole frame).
    The lung step is read from the bundle beside the model (pneumo.bundle.Bundle.lung_step)."""
    from pneumo.bundle import read_bundle
    from pneumo.lungs import input_lungs

    model = load_model(path)
    return model, input_lungs(read_bundle(path).lung_step)


def predict_gray(model: keras.Model, gray: np.ndarray, batch_size: int = 32, lungs=None) -> np.ndarray:
    """Probabilities of pneumonia for uint8 grayscale images (N, 299, 299), in batches.

    lungs: the lung step (`pneumo.lungs.LungStep`) of a model trained with one (its bundle says
    which: `load_classifier`); None for a model that sees the whole frame.
    """

    def model_input(batch: np.ndarray) -> np.ndarray:
        return to_model_input(batch) if lungs is None else lungs.model_input(batch)

    probs = [
        np.asarray(model.predict_on_batch(model_input(gray[start : start + batch_size]))).reshape(-1)
        for start in range(0, len(gray), batch_size)
    ]
    return np.concatenate(probs) if probs else np.empty(0, dtype=np.float32)
