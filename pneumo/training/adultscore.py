"""An image score for adult chest X-rays (campaign img1, docs/POPULATION.md): does a picture without
a DICOM header look like an adult's X-ray rather than one of the children the model learned from?

    python -m pneumo.training.adultscore [--campaign img1|img2]   # cross-fit a campaign's candidates: a table and a JSON line

Features do not depend on the classifier: the model's 299x299 grayscale input box-downscaled to a
thumbnail, standardised (pneumo.guard.thumbnails), principal components, a standardised logistic
regression. The threshold is the 99.5th percentile of the cross-fitted scores of the training
X-rays; nothing is chosen on the test split. Neither campaign's pick flagged 97 % of the Hannover
films, so nothing ships (docs/POPULATION.md); the page's population check stays the DICOM header's.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pneumo.guard import thumbnails
from pneumo.training.data import (DEFAULT_ADULT_DIR, DEFAULT_CACHE_DIR, DEFAULT_DATA_DIR, adult_folds, list_adult, list_split,
                                  load_images, patient_folds)

# name: (thumbnail side, components, adult weight split equally between the sources). Campaign img1
# tried A-C, img2 D-F (docs/POPULATION.md).
CAMPAIGNS = {
    "img1": {"A": (32, 64, False), "B": (64, 128, False), "C": (64, 256, False)},
    "img2": {"D": (16, 32, False), "E": (32, 32, False), "F": (32, 64, True)},
}
FOLDS, SEED = 5, 42
PEDIATRIC_QUANTILE = 0.995  # the threshold: 0.5 % of the training X-rays' cross-fitted scores above it
TARGET_FLAGGED = 0.97


@dataclass(frozen=True)
class AdultScore:
    """One linear map of the thumbnail (principal components and the logistic regression folded
    together): score = thumbnail @ weights + bias."""

    side: int
    weights: np.ndarray
    bias: float

    def linear(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(features) @ self.weights + self.bias


def fit(features: np.ndarray, labels: np.ndarray, components: int, side: int, weights: np.ndarray | None = None) -> AdultScore:
    """Principal components then a standardised, class-balanced logistic regression, folded into one
    linear map of the thumbnail (score = x @ weights + bias), so serving needs numpy only."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    pca = PCA(n_components=components, random_state=SEED).fit(features)
    z = pca.transform(features)
    scaler = StandardScaler().fit(z)
    regression = LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000).fit(scaler.transform(z), labels, sample_weight=weights)
    # score = ((x - m) @ P.T - z_mean) / z_scale @ w + b
    per_component = regression.coef_[0] / scaler.scale_
    weights = pca.components_.T @ per_component
    bias = float(regression.intercept_[0] - (pca.mean_ @ pca.components_.T + scaler.mean_) @ per_component)
    return AdultScore(side, weights, bias)


def source_weights(source: np.ndarray) -> np.ndarray:
    """Sample weights giving each adult source half of the adult class (the pediatric ones stay 1;
    the class weight balances the classes on top)."""
    weights = np.ones(len(source))
    adult = source != "pediatric"
    for name in ("NIH", "Hannover"):
        mask = source == name
        weights[mask] = adult.sum() / (2 * mask.sum())
    return weights


def cross_fit(features: np.ndarray, labels: np.ndarray, folds: np.ndarray, components: int, side: int,
              weights: np.ndarray | None = None) -> np.ndarray:
    """Each image's score from a model fitted without its fold (its patient)."""
    scores = np.empty(len(labels))
    for k in range(FOLDS):
        held = folds == k
        fitted = fit(features[~held], labels[~held], components, side, None if weights is None else weights[~held])
        scores[held] = fitted.linear(features[held])
    return scores


def run(data_dir: Path, adult_dir: Path, cache_dir: str | None, candidates: dict) -> dict:
    pediatric = list_split(data_dir, "train")
    adults = list_adult(adult_dir)
    gray_ped, _ = load_images(pediatric, cache_dir, progress=False)
    gray_adult, _ = load_images(adults, cache_dir, progress=False)
    labels = np.r_[np.zeros(len(pediatric), int), np.ones(len(adults), int)]
    folds = np.r_[patient_folds(pediatric, FOLDS, SEED), adult_folds(adults, FOLDS, SEED)]
    source = np.array(["pediatric"] * len(pediatric) + [s.source for s in adults])
    report = {}
    for name, (side, components, balanced_sources) in candidates.items():
        features = np.r_[thumbnails(gray_ped, side), thumbnails(gray_adult, side)]
        weights = source_weights(source) if balanced_sources else None
        s = cross_fit(features, labels, folds, components, side, weights)
        threshold = float(np.quantile(s[labels == 0], PEDIATRIC_QUANTILE))
        flagged = {src: float((s[source == src] >= threshold).mean()) for src in ("NIH", "Hannover")}
        report[name] = {"side": side, "components": components, "sources_balanced": balanced_sources, "threshold": threshold,
                        "pediatric_false_alarms": float((s[labels == 0] >= threshold).mean()), "flagged": flagged,
                        "worst_source": min(flagged.values())}
    return report


def choose(report: dict) -> str:
    """The rule: the highest flagged share of the worse source; ties to fewer features."""
    return max(report, key=lambda n: (report[n]["worst_source"], -report[n]["side"] ** 2, -report[n]["components"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo.training.adultscore", description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaign", default="img2", choices=sorted(CAMPAIGNS), help="which pre-registered candidates")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--adult-dir", default=str(DEFAULT_ADULT_DIR))
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR))
    args = parser.parse_args(argv)
    try:
        report = run(Path(args.data_dir), Path(args.adult_dir), args.cache_dir or None, CAMPAIGNS[args.campaign])
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{'candidate':<10}{'thumb':>6}{'comp':>6}{'threshold':>11}{'ped. FA':>9}{'NIH':>8}{'Hannover':>10}")
    for name, r in report.items():
        print(f"{name:<10}{r['side']:>6}{r['components']:>6}{r['threshold']:>11.3f}{r['pediatric_false_alarms']:>9.2%}"
              f"{r['flagged']['NIH']:>8.2%}{r['flagged']['Hannover']:>10.2%}")
    pick = choose(report)
    qualifies = report[pick]["worst_source"] >= TARGET_FLAGGED
    result = {"candidates": report, "pick": pick, "qualifies": qualifies}
    print(f"rule's pick: {pick} ({'qualifies' if qualifies else 'below the 97 % asked for one source: not shipped'})")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
