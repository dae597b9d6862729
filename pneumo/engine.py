"""The model, its explainer, the lung segmenter and the bundle shipped beside them, loaded once per process."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pneumo.bundle import DEFAULT_MODEL, Bundle, load_bundle
from pneumo.explain import Explainer, EnsembleExplainer, Explanation, Method, Target, explainer_for
from pneumo.heatmaps import DEFAULT_METHOD
from pneumo.inference import load_model
from pneumo.lungs import LungSegmenter, LungStep, input_lungs, load_segmenter, map_to_frame
from pneumo.preprocess import to_model_input


@dataclass
class Engine:
    model: object
    explainer: Explainer | EnsembleExplainer
    bundle: Bundle
    segmenter: LungSegmenter | None = None  # None when no segmenter ships
    input_lungs: LungStep | None = None  # a model with the lung step: the step (on the segmenter above), else None
    # Streamlit serves each browser session on its own thread; the model and the tf-keras-vis
    # visualisers are shared, and two CPU cores gain nothing from running two passes at once.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def analyze(self, gray299: np.ndarray, target: Target = "predicted", threshold: float | None = None, method: Method = DEFAULT_METHOD) -> Explanation:
        """Probability and heatmap (from one pass for the gradient methods); `target` "predicted"
        explains the class predicted at `threshold` (default: the shipped one)."""
        with self._lock:
            x, box = (to_model_input(gray299), None) if self.input_lungs is None else self.input_lungs.frame_input(gray299)
            explanation = self.explainer.explain(x, target=target, threshold=self.bundle.threshold_or(threshold), method=method)
        # A cropped input's map goes back to where the crop came from, so the overlay and the lungs' share read it over the frame.
        return explanation if box is None else dataclasses.replace(explanation, heatmap=map_to_frame(explanation.heatmap, box))

    def model_input(self, gray299: np.ndarray) -> np.ndarray:
        """What the model sees: the one preprocessing function, with the lung step if the model has one."""
        return to_model_input(gray299) if self.input_lungs is None else self.input_lungs.model_input(np.asarray(gray299)[np.newaxis])[0]

    def model_saw(self, gray299: np.ndarray) -> str | None:
        """For a model with the lung step: "lungs" when its input was darkened away from (or cropped to)
        the lungs it found, "whole frame" when it found no plausible lungs (the fallback); None for other models."""
        if self.input_lungs is None:
            return None
        with self._lock:
            return "lungs" if self.input_lungs.found(gray299) else "whole frame"

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
    step = None
    if bundle.lung_step != "none":  # without a segmenter: a clear error now, not at the first X-ray
        step = input_lungs(bundle.lung_step) if segmenter is None else LungStep(segmenter, bundle.lung_step)
    engine = Engine(model=model, explainer=explainer_for(model), bundle=bundle, segmenter=segmenter, input_lungs=step)
    if warm_up:
        engine.analyze(np.full((299, 299), 128, dtype=np.uint8))
        engine.lungs(np.full((299, 299), 128, dtype=np.uint8))
    return engine
