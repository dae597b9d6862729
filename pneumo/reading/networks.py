"""The networks, loaded once per process: the classifier (with a site profile's statistics folded in
where one is in use), its explainer and the lung segmenter, and the passes the reader runs through
them. Only pneumo.reading.reader calls these; TensorFlow is imported here, not at package import."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pneumo.reading.runtime import configure_tensorflow_env

configure_tensorflow_env()

import keras  # noqa: E402  (after the environment is set)

from pneumo.bundle import DEFAULT_METHOD, DEFAULT_MODEL, Bundle, read_bundle  # noqa: E402
from pneumo.reading.explain import EnsembleExplainer, Explainer, Explanation, Method, Target, explainer_for  # noqa: E402
from pneumo.reading.lungs import LungSegmenter, load_segmenter  # noqa: E402
from pneumo.reading.preprocess import to_model_input  # noqa: E402
from pneumo.reading.siteprofile import SiteProfile, with_statistics  # noqa: E402


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


@dataclass
class Networks:
    model: object
    explainer: Explainer | EnsembleExplainer
    bundle: Bundle
    segmenter: LungSegmenter | None = None  # None when no segmenter ships
    site: SiteProfile | None = None  # the site profile in use: its statistics are folded into `model`
    # Streamlit serves each browser session on its own thread; the model and the tf-keras-vis
    # visualisers are shared, and two CPU cores gain nothing from running two passes at once.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def threshold(self) -> float:
        """The site profile's threshold where it has one, else the shipped one."""
        return self.site.threshold if self.site is not None and self.site.threshold is not None else self.bundle.threshold

    def explain(self, gray299: np.ndarray, target: Target = "predicted", threshold: float | None = None,
                method: Method = DEFAULT_METHOD) -> Explanation:
        """Probability and heatmap of one uint8 image (from one pass for the gradient methods); `target`
        "predicted" explains the class predicted at `threshold` (default: the one in use)."""
        with self._lock:
            return self.explainer.explain(to_model_input(gray299), target=target, threshold=self.threshold if threshold is None else threshold,
                                          method=method)

    def explain_batch(self, model_input: np.ndarray, threshold: float | None = None, method: Method = DEFAULT_METHOD) -> list[Explanation]:
        """`explain` (the predicted class) of each of a batch of model inputs: the gradient methods in one
        pass for the whole batch, each map the one `explain` gives."""
        with self._lock:
            return self.explainer.explain_batch(model_input, threshold=self.threshold if threshold is None else threshold, method=method)

    def probabilities(self, gray299: np.ndarray, batch_size: int) -> np.ndarray:
        """Probabilities of pneumonia of uint8 images (N, 299, 299): the forward pass alone, `batch_size`
        at a time, each slice made into model inputs only when its turn comes (the first layers'
        activations of 32 films hold about half a gigabyte; the page's table runs 4 at a time: 970 MB
        for 624 films instead of 1,030 MB at 8, in the same time)."""
        with self._lock:
            parts = [np.asarray(self.model.predict_on_batch(to_model_input(gray299[i:i + batch_size]))).reshape(-1)
                     for i in range(0, len(gray299), batch_size)]
        return np.concatenate(parts) if parts else np.empty(0, np.float32)

    def lung_masks(self, gray299: np.ndarray, batch_size: int = 8, equalized: np.ndarray | None = None) -> np.ndarray | None:
        """The boolean lung masks of uint8 images (N, 299, 299), `batch_size` at a time (None without a
        segmenter); `equalized`: their pneumo.reading.preprocess.equalize where the caller has it already."""
        if self.segmenter is None:
            return None
        gray299 = np.asarray(gray299)
        if not len(gray299):
            return np.zeros(gray299.shape, bool)
        with self._lock:
            return np.concatenate([self.segmenter.masks(gray299[i:i + batch_size], equalized=None if equalized is None else equalized[i:i + batch_size])
                                   for i in range(0, len(gray299), batch_size)])

    def lungs(self, gray299: np.ndarray) -> np.ndarray | None:
        """The boolean 299x299 lung mask of one X-ray (None without a segmenter)."""
        if self.segmenter is None:
            return None
        with self._lock:
            return self.segmenter.mask(gray299)


def load_networks(weights: str | Path = DEFAULT_MODEL, site: str | Path | SiteProfile | None = None, warm_up: bool = True) -> Networks:
    """The classifier and its bundle, with a site profile (a path, or one already read) if given, its
    explainer and the lung segmenter; one pass through each so the first real one is fast.
    pneumo.reading.siteprofile.SiteProfileError (a ValueError) for a profile that cannot be used with these weights."""
    bundle = read_bundle(weights)
    model = load_model(bundle.model_file)
    profile = site if isinstance(site, SiteProfile) or site is None else SiteProfile.load(site, model, bundle.model_file)
    if profile is not None:
        profile.check(bundle.model_file)
        if profile.statistics:
            model = with_statistics(model, profile.statistics)
    networks = Networks(model=model, explainer=explainer_for(model), bundle=bundle, segmenter=load_segmenter(), site=profile)
    if warm_up:
        networks.explain(np.full((299, 299), 128, dtype=np.uint8))
        networks.lungs(np.full((299, 299), 128, dtype=np.uint8))
    return networks
