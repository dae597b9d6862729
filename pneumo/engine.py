"""The model, its explainer, the lung segmenter and the bundle shipped beside them, loaded once per
process; with a site profile (pneumo.site), the network fitted to that site and its threshold."""

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
from pneumo.site import SiteProfile


@dataclass
class Engine:
    model: object
    explainer: Explainer | EnsembleExplainer
    bundle: Bundle
    segmenter: LungSegmenter | None = None  # None when no segmenter ships
    site: SiteProfile | None = None  # the site profile in use: its statistics are folded into `model`
    # Streamlit serves each browser session on its own thread; the model and the tf-keras-vis
    # visualisers are shared, and two CPU cores gain nothing from running two passes at once.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def analyze(self, gray299: np.ndarray, target: Target = "predicted", threshold: float | None = None, method: Method = DEFAULT_METHOD) -> Explanation:
        """Probability and heatmap (from one pass for the gradient methods); `target` "predicted"
        explains the class predicted at `threshold` (default: the one in use, `self.threshold`)."""
        with self._lock:
            return self.explainer.explain(to_model_input(gray299), target=target, threshold=self.threshold if threshold is None else threshold,
                                          method=method)

    def probabilities(self, gray299: np.ndarray, batch_size: int = 4) -> np.ndarray:
        """Probabilities of pneumonia for uint8 images (N, 299, 299): the network's forward pass alone
        (a batch table needs no map until a row is opened), `batch_size` at a time: the first
        layers' activations of 32 films would hold about half a gigabyte; 4 at a time kept the page's
        624-film table at 970 MB instead of 1,030 MB at 8, in the same time (issue #45)."""
        from pneumo.inference import predict_gray

        with self._lock:
            return predict_gray(self.model, np.asarray(gray299), batch_size)

    def lung_masks(self, gray299: np.ndarray, batch_size: int = 8, equalized: np.ndarray | None = None) -> np.ndarray | None:
        """The boolean lung masks of uint8 images (N, 299, 299), `batch_size` at a time (None without a
        segmenter); `equalized`: their pneumo.preprocess.equalize where the caller has it already."""
        if self.segmenter is None:
            return None
        gray299 = np.asarray(gray299)
        if not len(gray299):
            return np.zeros(gray299.shape, bool)
        with self._lock:
            return np.concatenate([self.segmenter.masks(gray299[i:i + batch_size], equalized=None if equalized is None else equalized[i:i + batch_size])
                                   for i in range(0, len(gray299), batch_size)])

    def analyze_batch(self, gray299: np.ndarray, threshold: float | None = None, method: Method = DEFAULT_METHOD,
                      model_input: np.ndarray | None = None) -> list[Explanation]:
        """`analyze` (the predicted class) for each of the uint8 images (N, 299, 299): the gradient
        methods in one pass for the whole batch, each map the one `analyze` gives; `model_input`:
        their pneumo.preprocess.to_model_input where the caller has it already."""
        x = to_model_input(np.asarray(gray299)) if model_input is None else model_input
        with self._lock:
            return self.explainer.explain_batch(x, threshold=self.threshold if threshold is None else threshold, method=method)

    @property
    def threshold(self) -> float:
        """The site profile's calibrated threshold where it has one, else the shipped one."""
        return self.site.threshold if self.site is not None and self.site.threshold is not None else self.bundle.threshold

    def lungs(self, gray299: np.ndarray) -> np.ndarray | None:
        """The boolean 299x299 lung mask of one X-ray (None without a segmenter)."""
        if self.segmenter is None:
            return None
        with self._lock:
            return self.segmenter.mask(gray299)


def load_engine(weights: str | Path = DEFAULT_MODEL, warm_up: bool = True, site: str | Path | SiteProfile | None = None) -> Engine:
    """Load the model and its bundle, with a site profile (a path, or one already read) if given;
    run one prediction so the first real one is fast. pneumo.site.SiteProfileError (a ValueError)
    for a profile that cannot be used with these weights."""
    from pneumo.site import with_statistics

    bundle = load_bundle(weights)
    model = load_model(bundle.model_file)
    profile = site if isinstance(site, SiteProfile) or site is None else SiteProfile.load(site, model, bundle.model_file)
    if profile is not None:
        profile.check(bundle.model_file)
        if profile.statistics:
            model = with_statistics(model, profile.statistics)
    engine = Engine(model=model, explainer=explainer_for(model), bundle=bundle, segmenter=load_segmenter(), site=profile)
    if warm_up:
        engine.analyze(np.full((299, 299), 128, dtype=np.uint8))
        engine.lungs(np.full((299, 299), 128, dtype=np.uint8))
    return engine
