"""A site profile: what one hospital's films change in the model: its threshold, from labelled films
(campaign site2's rule), or the BatchNorm statistics that label-free adaptation re-estimates from
unlabelled ones (campaign site1's C-0.50; docs/SITE.md).

    stats = reestimate(model, to_model_input(gray), plan)   # {layer: (mean, variance)}
    adapted = with_statistics(model, stats)                 # a copy of the network, folded once
    SiteProfile(...).save("site.json"); SiteProfile.load("site.json", model_file)

A profile is one small JSON file: the model it belongs to (the SHA-256 of its weights file), the
statistics that change, how many films they came from and how many were left out, when, a site
name, and the threshold where a labelled calibration set one. Loading one made for another model,
or one that was corrupted or edited by hand, raises SiteProfileError with a message for a person.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from pneumo.bundle import weights_sha256

FORMAT = "pneumo-site-profile/1"
MAX_PROFILE_BYTES = 2_000_000  # a real profile is under 50 KB; anything far larger is not one, and is not read whole
NORMALISED = ("block1_bn", "block2_bn", "block3_bn", "block4_bn", "block5_bn", "dense1_bn", "dense2_bn", "dense3_bn")


class SiteProfileError(ValueError):
    """A profile that cannot be used, with the reason for a person."""


def normalisation_layers(model) -> list:
    """The network's BatchNormalization layers, in the order the input meets them. ValueError for a
    model that is not one flat network (an ensemble's layers sit inside its members)."""
    import keras

    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if [layer.name for layer in norms] != list(NORMALISED):
        raise ValueError("site adaptation needs the published network itself (one network, its eight BatchNormalization "
                         f"layers by name); this model has {[layer.name for layer in norms] or 'none at the top level'}")
    return norms


def reestimate(model, x: np.ndarray, plan: dict[str, np.ndarray], seen: dict | None = None,
               stop_after: str | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Walk the network over the batch `x` (model inputs, (N, 299, 299, 3)) in inference mode; at each
    BatchNormalization layer named in `plan`, the channels its boolean mask marks take the mean and
    (biased) variance of the layer's input over the batch (and over positions), the others keep the
    trained statistics; the batch then passes on, normalised by them. Returns every layer of the plan
    as (mean, variance). The model itself is not changed. `seen`, when given, receives every layer's
    input moments over the batch as (mean, variance), adapted or not; `stop_after` ends the walk at
    that BatchNorm layer."""
    import keras.ops as ops

    normalisation_layers(model)
    stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    h = ops.convert_to_tensor(np.asarray(x, dtype=np.float32))
    for layer in model.layers[1:]:  # a flat chain after the input layer
        if layer.name not in NORMALISED:
            h = layer(h, training=False)
            continue
        axes = tuple(range(len(h.shape) - 1))
        batch_mean = np.asarray(ops.mean(h, axis=axes), dtype=np.float64)
        batch_var = np.asarray(ops.var(h, axis=axes), dtype=np.float64)
        if seen is not None:
            seen[layer.name] = (batch_mean, batch_var)
        chosen = np.asarray(plan.get(layer.name, False), dtype=bool)
        mean = np.where(chosen, batch_mean, np.asarray(layer.moving_mean, dtype=np.float64))
        variance = np.where(chosen, batch_var, np.asarray(layer.moving_variance, dtype=np.float64))
        if layer.name in plan:
            stats[layer.name] = (mean, variance)
        if layer.name == stop_after:
            break
        scale = np.asarray(layer.gamma) / np.sqrt(variance + layer.epsilon)
        h = h * ops.convert_to_tensor(scale.astype(np.float32)) + ops.convert_to_tensor((np.asarray(layer.beta) - mean * scale).astype(np.float32))
    return stats


def with_statistics(model, stats: dict[str, tuple[np.ndarray, np.ndarray]]):
    """A copy of the network with these layers' moving statistics (the original is not changed)."""
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for name, (mean, variance) in stats.items():
        layer = copy.get_layer(name)
        layer.moving_mean.assign(np.asarray(mean, dtype=np.float32))
        layer.moving_variance.assign(np.asarray(variance, dtype=np.float32))
    return copy


@dataclass
class SiteProfile:
    """What a site changes, for one model."""

    site: str
    model_sha256: str
    method: str  # how the statistics were re-estimated (docs/SITE.md)
    films: int  # films the statistics came from
    left_out: int  # films the guard or the population check flagged, never used
    statistics: dict[str, tuple[np.ndarray, np.ndarray]] = field(repr=False)
    threshold: float | None = None  # a labelled calibration's threshold; None: the shipped one
    band: tuple[float, float] | None = None  # the indeterminate band at that threshold, from the labelled films
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def to_json(self) -> str:
        return json.dumps({
            "format": FORMAT, "site": self.site, "model_sha256": self.model_sha256, "method": self.method, "films": self.films,
            "left_out": self.left_out, "threshold": self.threshold, "band": None if self.band is None else list(self.band),
            "created": self.created,
            "batchnorm": {name: {"mean": [float(v) for v in mean], "variance": [float(v) for v in variance]}
                          for name, (mean, variance) in self.statistics.items()},
        })

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @functools.cached_property
    def key(self) -> str:
        """A short fingerprint of what the profile changes (results computed under it are cached by it);
        worked out once, not for every file read under it."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def check(self, model_file: str | Path) -> None:
        """SiteProfileError unless the profile was made for the weights at `model_file`."""
        if self.model_sha256 != weights_sha256(model_file):
            raise SiteProfileError(f"this site profile (“{self.site}”) was made for another model; make a new one "
                                   "for the weights in use with `pneumo adapt`")

    @property
    def changes(self) -> str:
        """What the profile changes, in words."""
        parts = (["the network's statistics"] if self.statistics else []) + (["the threshold"] if self.threshold is not None else [])
        return " and ".join(parts) or "nothing"

    def describe(self) -> str:
        """One line for a person: which site, from how many films, and the threshold in use."""
        threshold = "" if self.threshold is None else f", threshold {self.threshold:.3f}"
        return f"site profile “{self.site}” ({self.films} films, {self.created[:10]}{threshold})"

    @classmethod
    def from_json(cls, text: str, model, model_file: str | Path) -> "SiteProfile":
        """The profile in `text`, checked against the network it is for. SiteProfileError otherwise."""
        if len(text) > MAX_PROFILE_BYTES:
            raise SiteProfileError(f"this is not a site profile: it is {len(text) / 1e6:.0f} MB, and a profile is under "
                                   f"{MAX_PROFILE_BYTES // 1_000_000} MB")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise SiteProfileError(f"this is not a site profile (not JSON: {error})") from None
        except RecursionError:  # arrays nested thousands deep: the JSON parser gives up before any check can
            raise SiteProfileError("this is not a site profile (its JSON is nested far too deep)") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise SiteProfileError("this is not a pneumo site profile (its format line is missing or unknown)")
        try:
            norms = {layer.name: layer for layer in normalisation_layers(model)}
            statistics = {}
            for name, values in dict(data["batchnorm"]).items():
                mean, variance = (np.asarray(values[k], dtype=np.float64) for k in ("mean", "variance"))
                expected = (int(norms[name].moving_mean.shape[0]),)
                if mean.shape != expected or variance.shape != expected:
                    raise ValueError(f"{name} needs {expected[0]} values")
                if not (np.isfinite(mean).all() and np.isfinite(variance).all() and (variance >= 0).all()):
                    raise ValueError(f"{name} holds values that are not numbers, or a negative variance")
                statistics[name] = (mean, variance)
            threshold = data.get("threshold")
            if threshold is not None and not (isinstance(threshold, (int, float)) and 0.0 < threshold < 1.0 and math.isfinite(threshold)):
                raise ValueError(f"threshold {threshold!r} is not a probability")
            band = data.get("band")
            if band is not None and not (len(band) == 2 and all(isinstance(v, (int, float)) and 0.0 <= v <= 1.0 for v in band)):
                raise ValueError(f"band {band!r} is not two probabilities")
            profile = cls(site=str(data["site"]), model_sha256=str(data["model_sha256"]), method=str(data["method"]),
                          films=int(data["films"]), left_out=int(data["left_out"]), statistics=statistics, threshold=threshold,
                          band=None if band is None else (float(band[0]), float(band[1])), created=str(data["created"]))
        except (KeyError, TypeError, ValueError) as error:
            raise SiteProfileError(f"this site profile is damaged or was edited by hand ({error}); make a new one") from None
        profile.check(model_file)
        return profile

    @classmethod
    def load(cls, path: str | Path, model, model_file: str | Path) -> "SiteProfile":
        path = Path(path)
        if not path.is_file():
            raise SiteProfileError(f"no site profile at {path}")
        size = path.stat().st_size
        if size > MAX_PROFILE_BYTES:  # refused before it is read
            raise SiteProfileError(f"{path.name} is not a site profile: it is {size / 1e6:.0f} MB, and a profile is under "
                                   f"{MAX_PROFILE_BYTES // 1_000_000} MB")
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise SiteProfileError(f"{path.name} is not a site profile (not text)") from None
        return cls.from_json(text, model, model_file)


# --- labelled calibration (docs/SITE.md: the rule was written down before it was measured) -------

MIN_LABELLED = 20  # of each class, for a site threshold
FLOOR_SENSITIVITY = 0.95  # what campaign site2 held every rule to


def sensitivity_upper_bound(hits: int, n: int, level: float = 0.95) -> float:
    """The one-sided Clopper-Pearson upper confidence bound of a sensitivity of hits / n."""
    from scipy.stats import beta

    return 1.0 if hits >= n else float(beta.ppf(level, hits + 1, n - hits))


def site_threshold(pneumonia_probabilities: np.ndarray, shipped_threshold: float, training_pneumonia_logit: float) -> float:
    """Campaign site2's pick (docs/SITE.md, "shift-P+bound"): the shipped threshold moved, on the logit
    scale, by how far the median logit of the site's labelled pneumonias lies from the training site's
    (`training_pneumonia_logit`, the out-of-fold median). It moves below the shipped threshold only
    when the labelled pneumonias show that the shipped one misses too many: the one-sided 95 % upper
    bound of their sensitivity at it below 0.95. A median moves little with one odd film, where the
    rule before (the k-th lowest pneumonia) moved with each."""
    from pneumo.operating import logits

    p = np.asarray(pneumonia_probabilities, dtype=np.float64)
    if len(p) < MIN_LABELLED:
        raise ValueError(f"a site threshold needs at least {MIN_LABELLED} labelled pneumonias, got {len(p)}")
    shipped = float(logits(shipped_threshold))
    moved = shipped + float(np.median(logits(p))) - training_pneumonia_logit
    if moved < shipped and sensitivity_upper_bound(int((p >= shipped_threshold).sum()), len(p)) >= FLOOR_SENSITIVITY:
        moved = shipped  # no evidence that the shipped threshold misses the site's pneumonias: it stays
    return float(1 / (1 + np.exp(-moved)))


def auc(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Area under the ROC curve: the Mann-Whitney statistic (ties count half)."""
    from scipy.stats import rankdata

    positive = np.asarray(labels) == 1
    ranks = rankdata(np.asarray(probabilities, dtype=np.float64))
    n1, n0 = int(positive.sum()), int((~positive).sum())
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def roc(labels: np.ndarray, probabilities: np.ndarray, bootstrap: int = 2000, seed: int = 0) -> dict:
    """The site's ROC: false and true positive rates at every threshold, the AUC and its 95 % interval
    (bootstrap resamples drawn within each class)."""
    labels, probabilities = np.asarray(labels), np.asarray(probabilities, dtype=np.float64)
    thresholds = np.r_[np.inf, np.unique(probabilities)[::-1]]
    tpr = np.array([(probabilities[labels == 1] >= t).mean() for t in thresholds])
    fpr = np.array([(probabilities[labels == 0] >= t).mean() for t in thresholds])
    rng = np.random.default_rng(seed)
    positive, negative = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    draws = []
    for _ in range(bootstrap):
        rows = np.r_[rng.choice(positive, len(positive)), rng.choice(negative, len(negative))]
        draws.append(auc(labels[rows], probabilities[rows]))
    low, high = np.quantile(draws, [0.025, 0.975]) if draws else (float("nan"), float("nan"))
    return {"auc": auc(labels, probabilities), "ci95": [float(low), float(high)], "fpr": fpr, "tpr": tpr, "thresholds": thresholds,
            "normal": len(negative), "pneumonia": len(positive)}
