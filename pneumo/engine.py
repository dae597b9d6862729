"""The model, its Grad-CAM explainer and the shipped operating point, loaded once per process."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pneumo import paths
from pneumo.explain import Explainer, Method, Target
from pneumo.inference import load_model, predict_inputs
from pneumo.preprocess import to_model_input


@dataclass
class Result:
    probability: float
    heatmap: np.ndarray  # (299, 299) in [0, 1]
    explained_class: int  # 1 PNEUMONIA, 0 NORMAL


@dataclass
class Engine:
    model: object
    explainer: Explainer
    metrics: dict = field(default_factory=dict)
    history: dict | None = None
    # Streamlit serves each browser session on its own thread; the model and the tf-keras-vis
    # visualisers are shared, and two CPU cores gain nothing from running two passes at once.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def threshold(self) -> float:
        return float(self.metrics.get("threshold", 0.5))

    @property
    def tta(self) -> bool:
        """Whether the shipped probabilities average zoomed views (pneumo.inference)."""
        return bool(self.metrics.get("tta", False))

    def analyze(self, gray299: np.ndarray, target: Target = "predicted", threshold: float | None = None, method: Method = "gradcam") -> Result:
        x = to_model_input(gray299)
        threshold = self.threshold if threshold is None else threshold
        with self._lock:
            if not self.tta:  # probability and heatmap from one pass
                probability, heatmap, explained = self.explainer.explain(x, target=target, threshold=threshold, method=method)
            else:  # the probability as the CLI computes it; the heatmap explains the unzoomed image
                probability = float(predict_inputs(self.model, x[np.newaxis], tta=True)[0])
                if target == "predicted":
                    target = "pneumonia" if probability >= threshold else "normal"
                _, heatmap, explained = self.explainer.explain(x, target=target, threshold=threshold, method=method)
        return Result(probability, heatmap, explained)


def load_engine(weights: str | Path = paths.DEFAULT_MODEL, warm_up: bool = True) -> Engine:
    """Load the model and everything shipped beside it; run one prediction so the first real one is fast."""
    weights = Path(weights)
    model = load_model(weights)
    metrics_file, history_file = weights.with_name(paths.METRICS_FILE), weights.with_name(paths.HISTORY_FILE)
    engine = Engine(
        model=model,
        explainer=Explainer(model),
        metrics=json.loads(metrics_file.read_text()) if metrics_file.is_file() else {},
        history=json.loads(history_file.read_text()) if history_file.is_file() else None,
    )
    if warm_up:
        engine.analyze(np.full((299, 299), 128, dtype=np.uint8))
    return engine
