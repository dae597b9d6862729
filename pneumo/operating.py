"""What a reading at a threshold is worth: sensitivity and specificity (measured on the test split
and shipped in metrics.json), PPV and NPV at a prevalence the user sets, and the indeterminate
band around the threshold (from validation data, shipped in uncertainty.json).

PPV and NPV follow from sensitivity (se), specificity (sp) and prevalence (p) by Bayes' rule:

    PPV = se·p / (se·p + (1 − sp)·(1 − p))        NPV = sp·(1 − p) / (sp·(1 − p) + (1 − se)·p)

The band: around probability q, the validation X-rays whose logits are nearest q's (the shipped
uncertainty.json says how many) give the share that is pneumonia there; the label the threshold
gives at q is wrong for that share (q below the threshold) or the rest (q at or above it). The band
is the run of probabilities on both sides of the threshold where that local error rate exceeds the
shipped level; a reading inside it is shown as INDETERMINATE, not as a label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pneumo.bundle import Bundle, label_name

DEFAULT_PREVALENCE = 0.10  # an assumed share of pneumonia among the X-rays read; the user sets theirs


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    sensitivity: float
    specificity: float
    exact: bool  # measured at this very threshold (the shipped one), not at the nearest of a curve
    source: str  # where the two numbers come from, in words


def operating_point(bundle: Bundle, threshold: float) -> OperatingPoint | None:
    """Sensitivity and specificity at `threshold` on the test split: exact at the shipped threshold,
    else from the nearest point of the shipped test curve; None when the weights ship neither."""
    test, shipped = bundle.test, bundle.metrics.get("threshold")
    if test and shipped is not None and abs(threshold - shipped) < 1e-9:
        return OperatingPoint(threshold, test["sensitivity"], test["specificity"], True,
                              f"the {test['counts']['total']}-image test split at the shipped threshold")
    curve = bundle.metrics.get("test_operating_points")
    if not curve:
        return None
    i = min(range(len(curve["threshold"])), key=lambda k: abs(curve["threshold"][k] - threshold))
    return OperatingPoint(threshold, curve["sensitivity"][i], curve["specificity"][i], False,
                          f"the test split, nearest measured threshold {curve['threshold'][i]:.3f}")


def ppv_npv(sensitivity: float, specificity: float, prevalence: float) -> tuple[float, float]:
    """(PPV, NPV) by Bayes' rule (module docstring); nan where a denominator is zero."""
    se, sp, p = float(sensitivity), float(specificity), float(prevalence)
    positive, negative = se * p + (1 - sp) * (1 - p), sp * (1 - p) + (1 - se) * p
    return (se * p / positive if positive > 0 else math.nan, sp * (1 - p) / negative if negative > 0 else math.nan)


@dataclass(frozen=True)
class Band:
    low: float  # probabilities; a reading q with low <= q <= high is indeterminate
    high: float
    level: float  # the local validation error rate that makes a reading indeterminate
    neighbours: int
    source: str  # which validation data, in words

    def contains(self, probability: float) -> bool:
        return self.low <= probability <= self.high

    def describe(self) -> str:
        nearest = f"the {self.neighbours} validation X-rays" if self.neighbours else "the films"
        return (f"between {self.low:.3f} and {self.high:.3f}, where more than {self.level:.0%} of {nearest} nearest in score were "
                f"misread at this threshold ({self.source})")


def _logit(p: float) -> float:
    p = min(max(float(p), 1e-7), 1 - 1e-7)
    return math.log(p / (1 - p))


def logits(probabilities: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def local_shares(probabilities: np.ndarray, labels: np.ndarray, neighbours: int, points: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """(logit grid, share of pneumonia among the `neighbours` labelled X-rays nearest each point): what
    the band is drawn from."""
    z = logits(probabilities)
    grid = np.linspace(z.min(), z.max(), points)
    k = min(neighbours, len(z))
    nearest = np.argsort(np.abs(z[None, :] - grid[:, None]), axis=1)[:, :k]
    return grid, np.asarray(labels)[nearest].mean(axis=1)


def band_at(uncertainty: dict | None, threshold: float) -> Band | None:
    """The indeterminate band around `threshold` from the shipped local pneumonia shares (module
    docstring); None without uncertainty.json or where even next to the threshold the local error
    rate stays at or below the level (then no reading is indeterminate)."""
    if not uncertainty:
        return None
    grid = np.asarray(uncertainty["logit_grid"], dtype=np.float64)
    share = np.asarray(uncertainty["pneumonia_share"], dtype=np.float64)
    level = float(uncertainty["level"])
    cut = _logit(threshold)
    error = np.where(grid < cut, share, 1.0 - share)  # the label at grid point g is PNEUMONIA iff g >= cut
    below, above = np.flatnonzero(grid < cut), np.flatnonzero(grid >= cut)
    low = high = None
    for i in below[::-1]:  # walk down from the threshold while the error rate stays above the level
        if error[i] <= level:
            break
        low = grid[i]
    for i in above:
        if error[i] <= level:
            break
        high = grid[i]
    if low is None and high is None:
        return None
    sigmoid = lambda g: 1.0 / (1.0 + math.exp(-g))  # noqa: E731
    return Band(sigmoid(low) if low is not None else threshold, sigmoid(high) if high is not None else threshold, level,
                int(uncertainty["neighbours"]), uncertainty.get("source", "validation data"))


@dataclass(frozen=True)
class Reading:
    """What the page calls a probability: the threshold's label, or INDETERMINATE inside the band."""

    label: str  # PNEUMONIA, NORMAL or INDETERMINATE
    leaning: str  # the threshold's own label (the same as `label` outside the band)

    @property
    def indeterminate(self) -> bool:
        return self.label == INDETERMINATE


INDETERMINATE = "INDETERMINATE"


def reading(probability: float, threshold: float, band: Band | None) -> Reading:
    leaning = label_name(probability, threshold)
    return Reading(INDETERMINATE if band is not None and band.contains(probability) else leaning, leaning)


def at_prevalence(probability: float, prevalence: float, trained_at: float) -> float:
    """The network's probability moved from the class mix it was trained on (`trained_at`, the share of
    pneumonia) to `prevalence` by Bayes' rule: the same likelihood ratio, other prior odds."""
    odds = math.exp(_logit(probability) - _logit(trained_at) + _logit(prevalence))
    return odds / (1.0 + odds)


def calibration_at(calibration: dict | None, prevalence: float) -> dict | None:
    """The measured reliability (uncertainty.json's "calibration") at the measured prevalence nearest
    to `prevalence`: {"prevalence", "ece", "worst_bin"}; None where none was measured."""
    if not calibration:
        return None
    rows = calibration.get("at_prevalence") or []
    return min(rows, key=lambda row: abs(row["prevalence"] - prevalence)) if rows else None
