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
from pneumo.lungs import LungSegmenter, load_segmenter
from pneumo.preprocess import to_model_input


@dataclass
class Engine:
    model: object
    explainer: Explainer | EnsembleExplainer
    bundle: Bundle
    segmenter: LungSegmenter | None = None  # None when no segmenter ships
    # Streamlit serves each browser session on its own thread; the model and the tf-keras-vis
    # visualisers are shared, and two CPU cores gain nothing from running two passes at once.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def analyze(self, gray299: np.ndarray, target: Target = "predicted", threshold: float | None = None, method: Method = DEFAULT_METHOD) -> Explanation:
        """Probability and heatmap (from one pass for the gradient methods); `target` "predicted"
        explains the class predicted at `threshold` (default: the shipped one)."""
        with self._lock:
            return self.explainer.explain(to_model_input(gray299), target=target, threshold=self.bundle.threshold_or(threshold), method=method)

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
    engine = Engine(model=model, explainer=explainer_for(model), bundle=bundle, segmenter=load_segmenter())
    if warm_up:
        engine.analyze(np.full((299, 299), 128, dtype=np.uint8))
        engine.lungs(np.full((299, 299), 128, dtype=np.uint8))
    return engine
