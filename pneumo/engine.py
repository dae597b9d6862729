"""The model, its explainer, the lung segmenter and the bundle shipped beside them, loaded once per process."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pneumo.bundle import DEFAULT_MODEL, Bundle, load_bundle
from pneumo.explain import Explainer, EnsembleExplainer, Explanation, Method, Target, explainer_for
from pneumo.heatmaps import DEFAULT_METHOD
from pneumo.inference import load_model
from pneumo.lungs import LungSegmenter, input_lungs, load_segmenter
from pneumo.preprocess import to_model_input


@dataclass
class Engine:
    model: object
    explainer: Explainer | EnsembleExplainer
    bundle: Bundle
    segmenter: LungSegmenter | None = None  # None when no segmenter ships
    input_lungs: LungSegmenter | None = None  # the segmenter again for a model with the lung step, else None
    # Streamlit serves each browser session on its own thread; the model and the tf-keras-vis
    # visualisers are shared, and two CPU cores gain nothing from running two passes at once.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def analyze(self, gray299: np.ndarray, target: Target = "predicted", threshold: float | None = None, method: Method = DEFAULT_METHOD) -> Explanation:
        """Probability and heatmap (from one pass for the gradient methods); `target` "predicted"
        explains the class predicted at `threshold` (default: the shipped one)."""
        with self._lock:
            x = self.model_input(gray299)
            return self.explainer.explain(x, target=target, threshold=self.bundle.threshold_or(threshold), method=method)

    def model_input(self, gray299: np.ndarray) -> np.ndarray:
        """What the model sees: the one preprocessing function, with the lung step if the model has one."""
        weights = None if self.input_lungs is None else self.input_lungs.weights(np.asarray(gray299)[np.newaxis])[0]
        return to_model_input(gray299, weights)

    def model_saw(self, gray299: np.ndarray) -> str | None:
        """For a model with the lung step: "lungs" when its input was darkened away from the lungs it
        found, "whole frame" when it found no plausible lungs (the fallback); None for other models."""
        if self.input_lungs is None:
            return None
        with self._lock:
            weights = self.input_lungs.weights(np.asarray(gray299)[np.newaxis])[0]
        return "whole frame" if (weights == 255).all() else "lungs"

    def lungs(self, gray299: np.ndarray) -> np.ndarray | None:
        """The boolean 299x299 lung mask of one X-ray (None without a segmenter)."""
        if self.segmenter is None:
            return None
        with self._lock:
            return self.segmenter.mask(gray299)


def load_engine(weights: str | Path = DEFAULT_MODEL, warm_up: bool = True) -> Engine:
    """Load the model and its bundle; run one prediction so the first real one is fast."""
    bundle = load_bundle(weights)
    model = load_model(bundle.model_file)
    segmenter = load_segmenter()
    input_lungs(bundle.lung_step)  # a model with the lung step and no segmenter: a clear error now, not at the first X-ray
    engine = Engine(model=model, explainer=explainer_for(model), bundle=bundle, segmenter=segmenter,
                    input_lungs=None if bundle.lung_step == "none" else segmenter)
    if warm_up:
        engine.analyze(np.full((299, 299), 128, dtype=np.uint8))
        engine.lungs(np.full((299, 299), 128, dtype=np.uint8))
    return engine
