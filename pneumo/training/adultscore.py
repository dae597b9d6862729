"""An image score for adult chest X-rays (campaigns img1-img4, docs/POPULATION.md): does a picture
without a DICOM header look like an adult's X-ray rather than one of the children the model learned from?

    python -m pneumo.training.adultscore [--campaign img1|img2|img3|img4]  # cross-fit a campaign's candidates: a table and a JSON line
    python -m pneumo.training.adultscore --campaign img3 --test-read        # img3's one test read, as it ran

Features do not depend on the classifier: the model's 299x299 grayscale input box-downscaled to a
thumbnail, standardised (pneumo.guard.thumbnails), principal components, then a standardised logistic
regression (img1, img2) or a non-linear model (img3, img4: gradient boosting, an RBF SVM, a small MLP).
The threshold is the 99.5th percentile of the cross-fitted scores of the training X-rays (img4: the
highest such percentile per class and per fixed acquisition change); nothing is chosen on the test
split. img1's and img2's picks flagged under 97 % of the Hannover films; img3's (the SVM) reached
99.2 % NIH and 97.8 % Hannover but flagged 18 of the 624 test X-rays (2.9 %, over the 1 % allowed);
img4 (the same SVM held to 0.5 % of each class) flagged 70 % of Hannover. So nothing ships and the
page's population check stays the DICOM header's.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pneumo.guard import thumbnails
from pneumo.training.data import (DEFAULT_ADULT_DIR, DEFAULT_CACHE_DIR, DEFAULT_DATA_DIR, adult_folds, labels_of, list_adult,
                                  list_split, load_images, patient_folds)

# name: (thumbnail side, components, adult weight split equally between the sources, model). Campaign
# img1 tried A-C, img2 D-F (linear), img3 G-I (non-linear) (docs/POPULATION.md).
CAMPAIGNS = {
    "img1": {"A": (32, 64, False, "logistic"), "B": (64, 128, False, "logistic"), "C": (64, 256, False, "logistic")},
    "img2": {"D": (16, 32, False, "logistic"), "E": (32, 32, False, "logistic"), "F": (32, 64, True, "logistic")},
    "img3": {"G": (32, 64, True, "boosting"), "H": (32, 64, True, "svm"), "I": (32, 64, True, "mlp")},
    "img4": {"J": (32, 64, True, "svm")},  # H unchanged; only the threshold rule differs
}
# img1-img3: the 99.5th percentile of the pooled training X-rays' cross-fitted scores. img4: the
# highest of those percentiles per class (NORMAL, PNEUMONIA) and per fixed acquisition change of
# pneumo.training.shift, so neither class's rate can hide in the pool and an intake change is budgeted.
PER_CLASS_AND_CHANGE = {"img4"}
MODELS = ("logistic", "boosting", "svm", "mlp")  # simplest first: the choice rule's tie order
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

    def score(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(features) @ self.weights + self.bias


@dataclass(frozen=True)
class NonLinearScore:
    """A scikit-learn pipeline (components, scaling, a non-linear model); score = its decision
    function, or the log-odds of its probability where it has none."""

    side: int
    pipeline: object

    def score(self, features: np.ndarray) -> np.ndarray:
        if hasattr(self.pipeline, "decision_function"):
            return np.asarray(self.pipeline.decision_function(features), dtype=np.float64)
        p = np.clip(self.pipeline.predict_proba(features)[:, 1], 1e-12, 1 - 1e-12)
        return np.log(p / (1 - p))


def repeated_rows(labels: np.ndarray, weights: np.ndarray | None, seed: int = SEED) -> np.ndarray:
    """Row indices that make each class (and, with source weights, each source) weigh as a
    class-balanced weighted fit would, for a model without sample weights: every row once, each class
    brought to the larger class's count by whole copies plus a seeded draw for the remainder."""
    rng = np.random.default_rng(seed)
    w = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)
    counts = np.bincount(labels, minlength=2)
    target = counts.max()
    rows = []
    for c in (0, 1):
        idx = np.flatnonzero(labels == c)
        share = w[idx] / w[idx].sum() * target  # how many rows each image should count for
        whole = np.floor(share).astype(int)
        rows.append(np.repeat(idx, whole))
        remainder = int(round(target - whole.sum()))
        if remainder > 0:
            frac = share - whole
            rows.append(rng.choice(idx, size=remainder, replace=False, p=frac / frac.sum()))
    return np.sort(np.concatenate(rows))


def fit_nonlinear(features: np.ndarray, labels: np.ndarray, components: int, side: int, model: str,
                  weights: np.ndarray | None = None) -> NonLinearScore:
    from sklearn.decomposition import PCA
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    pca = PCA(n_components=components, random_state=SEED)
    if model == "boosting":
        pipeline = make_pipeline(pca, HistGradientBoostingClassifier(max_iter=300, learning_rate=0.1, class_weight="balanced",
                                                                     random_state=SEED))
        pipeline.fit(features, labels, histgradientboostingclassifier__sample_weight=weights)
    elif model == "svm":
        pipeline = make_pipeline(pca, StandardScaler(), SVC(kernel="rbf", C=1.0, gamma="scale", class_weight="balanced"))
        pipeline.fit(features, labels, svc__sample_weight=weights)
    elif model == "mlp":
        rows = repeated_rows(labels, weights)
        pipeline = make_pipeline(pca, StandardScaler(), MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-3, max_iter=500,
                                                                      early_stopping=False, random_state=SEED))
        pipeline.fit(features[rows], labels[rows])
    else:
        raise ValueError(f"unknown model {model!r}; one of {MODELS}")
    return NonLinearScore(side, pipeline)


def fit(features: np.ndarray, labels: np.ndarray, components: int, side: int, weights: np.ndarray | None = None,
        model: str = "logistic") -> AdultScore | NonLinearScore:
    """Principal components then a standardised, class-balanced logistic regression, folded into one
    linear map of the thumbnail (score = x @ weights + bias), so serving needs numpy only; or, for
    another model, the fitted scikit-learn pipeline."""
    if model != "logistic":
        return fit_nonlinear(features, labels, components, side, model, weights)
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
              weights: np.ndarray | None = None, model: str = "logistic", keep_models: bool = False):
    """Each image's score from a model fitted without its fold (its patient); with keep_models,
    (scores, the fold models) so that changed copies of the images can be scored the same way."""
    scores = np.empty(len(labels))
    models = []
    for k in range(FOLDS):
        held = folds == k
        fitted = fit(features[~held], labels[~held], components, side, None if weights is None else weights[~held], model)
        scores[held] = fitted.score(features[held])
        models.append(fitted)
    return (scores, models) if keep_models else scores


def changed_scores(gray: np.ndarray, folds: np.ndarray, models: list, side: int, chunk: int = 256) -> dict[str, np.ndarray]:
    """Cross-fitted scores of the images under each fixed acquisition change of pneumo.training.shift
    (applied to the 299 px image before the thumbnail), each image by the fold model that never saw it."""
    from pneumo.training.shift import PERTURBATIONS

    out = {}
    for name, change in PERTURBATIONS.items():
        thumbs = np.concatenate([thumbnails(change(gray[i:i + chunk]), side) for i in range(0, len(gray), chunk)])
        s = np.empty(len(gray))
        for k, fitted in enumerate(models):
            held = folds == k
            s[held] = fitted.score(thumbs[held])
        out[name] = s
    return out


def per_class_and_change_threshold(changed: dict[str, np.ndarray], classes: np.ndarray) -> tuple[float, dict]:
    """img4's rule: the highest 99.5th percentile over (class, change); and the false-alarm rate of
    each (class, change) at it."""
    quantiles = {(c, name): float(np.quantile(s[classes == c], PEDIATRIC_QUANTILE)) for name, s in changed.items() for c in (0, 1)}
    threshold = max(quantiles.values())
    rates = {f"{'NORMAL' if c == 0 else 'PNEUMONIA'} / {name}": float((changed[name][classes == c] >= threshold).mean())
             for (c, name) in quantiles}
    return threshold, rates


def run(data_dir: Path, adult_dir: Path, cache_dir: str | None, candidates: dict, per_class_and_change: bool = False) -> dict:
    return cross_fitted(data_dir, adult_dir, cache_dir, candidates, per_class_and_change)[0]


def cross_fitted(data_dir: Path, adult_dir: Path, cache_dir: str | None, candidates: dict,
                 per_class_and_change: bool = False) -> tuple[dict, dict]:
    """(report per candidate, the data and cross-fitted scores behind it). The threshold is the
    pooled 99.5th percentile (img1-img3) or, with per_class_and_change, img4's rule."""
    pediatric = list_split(data_dir, "train")
    adults = list_adult(adult_dir)
    gray_ped, _ = load_images(pediatric, cache_dir, progress=False)
    gray_adult, _ = load_images(adults, cache_dir, progress=False)
    labels = np.r_[np.zeros(len(pediatric), int), np.ones(len(adults), int)]
    folds = np.r_[patient_folds(pediatric, FOLDS, SEED), adult_folds(adults, FOLDS, SEED)]
    source = np.array(["pediatric"] * len(pediatric) + [s.source for s in adults])
    report, scores, features_of = {}, {}, {}
    for name, (side, components, balanced_sources, model) in candidates.items():
        features = features_of[name] = np.r_[thumbnails(gray_ped, side), thumbnails(gray_adult, side)]
        weights = source_weights(source) if balanced_sources else None
        s, models = cross_fit(features, labels, folds, components, side, weights, model, keep_models=True)
        scores[name] = s
        extra = {}
        if per_class_and_change:
            ped = labels == 0
            changed = changed_scores(gray_ped, folds[ped], models, side)
            threshold, rates = per_class_and_change_threshold(changed, labels_of(pediatric))
            extra = {"threshold_rule": "per class and change", "false_alarms_per_class_and_change": rates}
        else:
            threshold = float(np.quantile(s[labels == 0], PEDIATRIC_QUANTILE))
        flagged = {src: float((s[source == src] >= threshold).mean()) for src in ("NIH", "Hannover")}
        report[name] = {"side": side, "components": components, "sources_balanced": balanced_sources, "model": model,
                        "threshold": threshold,
                        "pediatric_false_alarms": float((s[labels == 0] >= threshold).mean()), "flagged": flagged,
                        "worst_source": min(flagged.values())} | extra
    return report, {"pediatric": pediatric, "labels": labels, "source": source, "features": features_of, "scores": scores}


def test_read(data_dir: Path, adult_dir: Path, cache_dir: str | None, campaign: str = "img3") -> dict:
    """Campaign img3's ship step (docs/POPULATION.md), as it ran once: the pick, if it qualified
    cross-fitted, refitted on all the data with its cross-fitted threshold, then the one read of the
    test split (false alarms at most 1 % or nothing ships), the 524 validation X-rays of the r-series
    split (cross-fitted) and the shared DICOMs' pixels without their headers. It missed (18 of 624
    test X-rays flagged), so nothing ships and nothing is written."""
    from pneumo.imageio import decode
    from pneumo.preprocess import to_gray299
    from pneumo.training.data import optional_test_split, train_val_split

    candidates = CAMPAIGNS[campaign]
    report, data = cross_fitted(data_dir, adult_dir, cache_dir, candidates, campaign in PER_CLASS_AND_CHANGE)
    pick = choose(report)
    result: dict = {"campaign": campaign, "pick": pick, "cross_fitted": report[pick], "ships": False}
    if report[pick]["worst_source"] < TARGET_FLAGGED:
        result["why_not"] = "the pick flags under 97 % of one source, cross-fitted"
        return result
    side, components, balanced_sources, model = candidates[pick]
    pediatric, labels, crossed, features = data["pediatric"], data["labels"], data["scores"][pick], data["features"][pick]
    weights = source_weights(data["source"]) if balanced_sources else None
    threshold = report[pick]["threshold"]
    _, validation = train_val_split(data_dir, 0.1, SEED)
    in_validation = np.isin([str(s.path) for s in pediatric], [str(s.path) for s in validation])
    scorer = fit(features, labels, components, side, weights, model)
    test = optional_test_split(data_dir)
    gray_test, _ = load_images(test, cache_dir, progress=False)
    test_flagged = scorer.score(thumbnails(gray_test, side)) >= threshold
    dicoms = {}
    for path in sorted((data_dir.parent / "dicom").glob("*.dcm")):
        score = float(scorer.score(thumbnails(to_gray299(decode(path.read_bytes(), path.name).image), side))[0])
        dicoms[path.name] = {"score": score, "flagged": score >= threshold}
    result |= {
        "threshold": threshold,
        "validation": {"images": int(in_validation.sum()), "false_alarms": int((crossed[:len(pediatric)][in_validation] >= threshold).sum())},
        "test": {"images": len(test), "false_alarms": int(test_flagged.sum()), "files": [s.path.name for s, f in zip(test, test_flagged) if f]},
        "dicom_without_header": dicoms,
    }
    result["ships"] = bool(result["test"]["false_alarms"] <= 0.01 * len(test))
    if not result["ships"]:
        result["why_not"] = "over 1 % of the test X-rays flagged"
    elif campaign in PER_CLASS_AND_CHANGE and result["validation"]["false_alarms"] > 0.01 * result["validation"]["images"]:
        result["ships"], result["why_not"] = False, "over 1 % of the validation X-rays flagged"  # img4's rule asks both
    return result


def choose(report: dict) -> str:
    """The rule: the highest flagged share of the worse source; ties to fewer features, then the simpler model."""
    return max(report, key=lambda n: (report[n]["worst_source"], -report[n]["side"] ** 2, -report[n]["components"],
                                      -MODELS.index(report[n]["model"])))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo.training.adultscore", description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaign", default="img3", choices=sorted(CAMPAIGNS), help="which pre-registered candidates")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--adult-dir", default=str(DEFAULT_ADULT_DIR))
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR))
    parser.add_argument("--test-read", action="store_true", help="img3's ship step as it ran once: refit the pick and "
                        "report the test split's false alarms (it missed; nothing is written)")
    args = parser.parse_args(argv)
    try:
        if args.test_read:
            print(json.dumps(test_read(Path(args.data_dir), Path(args.adult_dir), args.cache_dir or None, args.campaign)))
            return 0
        report = run(Path(args.data_dir), Path(args.adult_dir), args.cache_dir or None, CAMPAIGNS[args.campaign],
                     args.campaign in PER_CLASS_AND_CHANGE)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{'candidate':<10}{'model':>9}{'thumb':>6}{'comp':>6}{'threshold':>11}{'ped. FA':>9}{'NIH':>8}{'Hannover':>10}")
    for name, r in report.items():
        print(f"{name:<10}{r['model']:>9}{r['side']:>6}{r['components']:>6}{r['threshold']:>11.3f}{r['pediatric_false_alarms']:>9.2%}"
              f"{r['flagged']['NIH']:>8.2%}{r['flagged']['Hannover']:>10.2%}")
    pick = choose(report)
    qualifies = report[pick]["worst_source"] >= TARGET_FLAGGED
    result = {"candidates": report, "pick": pick, "qualifies": qualifies}
    print(f"rule's pick: {pick} ({'qualifies' if qualifies else 'below the 97 % asked for one source: not shipped'})")
    for name, r in report.items():
        for where, rate in r.get("false_alarms_per_class_and_change", {}).items():
            print(f"  {name} pediatric false alarms, {where}: {rate:.2%}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
