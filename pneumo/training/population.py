"""The population check: fit the image score that tells an adult's chest X-ray from a training
child's, and measure what every set gets on the app's path.

    python -m pneumo.training.population --fit     # campaign pop1: fit, hold each adult source out, choose, ship weights/adult_score.npz
    python -m pneumo.training.population [--write] # the warnings every set gets on the app path -> population.json, model card
    python -m pneumo.training.population --fit-xray-check   # the guard's X-ray check (campaign g8) -> weights/xray_check.npz

--fit runs a campaign as docs/POPULATION.md pre-registered it: pop1 (the shipped score) on histograms
of oriented gradients (pneumo.training.guard.FEATURES), img5 (the one before) on the guard's 32x32
thumbnail; both then take 64 principal components, standardised, and an RBF support-vector
machine; children (the 5,216 training X-rays) against adults (NIH, Hannover, web; each source a
third of the adult weight), patients kept apart in 5 folds. The threshold is the higher of the
per-class 99th percentiles of the children's cross-fitted scores. Each adult source is also held
out whole (fit without it, report the share of it flagged). The rule picks a candidate; it is
refitted on everything (threshold kept), folded into numpy arrays (pneumo.reading.population.ImageScore) and
written; then, once, the test X-rays, the children from other hospitals and the shared DICOMs
without their header are read and reported. The guard campaigns g6, g7 and g8 (a second opinion for pictures
the layout refuses) live in lab/population_campaigns.py; none shipped.

Without --fit: the share of adult NORMAL X-rays the model calls PNEUMONIA at the shipped threshold,
and which warning the page and the CLI give (the reader: guard, image score, header) on
every adult source, the pediatric validation and test X-rays, the shared DICOMs with and without
their header, and the children from other hospitals. --write stores it beside the weights
(population.json, where the page reads what a reading is worth on adults) and in the model card.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from pneumo.bundle import ADULT_SCORE_FILE, CARD_FILE, DEFAULT_MODEL, POPULATION_FILE, XRAY_CHECK_FILE, read_bundle
from pneumo.reading.preprocess import thumbnails
from pneumo.reading.population import ImageScore
from pneumo.training import sets
from pneumo.training.data import DEFAULT_CACHE_DIR, DEFAULT_DATA_DIR, labels_of, load_images, patient_folds
from pneumo.training.sets import ADULT_SOURCES, DEFAULT_ADULT_DIR, DEFAULT_OTHER_CHILDREN_DIR, DEFAULT_WEB_DIR, adult_folds
from pneumo.training.report import set_card_section, write_json

WARNING_KINDS = ("not_xray", "inverted", "population", "lateral")
# Campaign img5 (docs/POPULATION.md, pre-registered 2026-12-03 03:07 UTC). K: img3's H with three sources;
# L: K with each child's fitting image under one of the fixed acquisition changes of pneumo.training.shift.
CANDIDATES = {"K": {"changed_children": False}, "L": {"changed_children": True}}
SIDE, COMPONENTS = 32, 64
FOLDS, SEED = 5, 42
CHILDREN_SHARE = 0.99  # the threshold: above what 99 % of the training children of either class score (cross-fitted)
VALIDATION_LIMIT = 0.02  # the ship rule: at most 2 % of the validation X-rays flagged, overall and per class


# --- fitting -------------------------------------------------------------------------------------

def source_weights(source: np.ndarray) -> np.ndarray:
    """Sample weights giving each adult source an equal share of the adult class (children stay 1;
    the class weight balances the classes on top)."""
    weights = np.ones(len(source))
    adult = source != "children"
    names = sorted(set(source[adult]))
    for name in names:
        mask = source == name
        weights[mask] = adult.sum() / (len(names) * mask.sum())
    return weights


def fit_svm(features: np.ndarray, labels: np.ndarray, weights: np.ndarray):
    """Principal components, standardisation, then the RBF SVM (scikit-learn), as img3's H."""
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    pipeline = make_pipeline(PCA(n_components=COMPONENTS, random_state=SEED), StandardScaler(),
                             SVC(kernel="rbf", C=1.0, gamma="scale", class_weight="balanced"))
    return pipeline.fit(features, labels, svc__sample_weight=weights)


def to_image_score(pipeline, threshold: float, side: int = SIDE, features: str = "") -> ImageScore:
    """The fitted pipeline folded into numpy arrays (the app needs no scikit-learn):
    z = ((x - mean) @ components.T - scaler_mean) / scaler_scale = x @ projection + offset."""
    pca, scaler, svm = pipeline.steps[0][1], pipeline.steps[1][1], pipeline.steps[2][1]
    projection = pca.components_.T / scaler.scale_
    offset = -(pca.mean_ @ pca.components_.T + scaler.mean_) / scaler.scale_
    return ImageScore(side=side, projection=projection, offset=offset, support=svm.support_vectors_, dual=svm.dual_coef_[0],
                      intercept=float(svm.intercept_[0]), gamma=float(svm._gamma), threshold=float(threshold), children_share=CHILDREN_SHARE,
                      features=features)


def changed_children(gray: np.ndarray, seed: int = SEED) -> np.ndarray:
    """Each child's image under one fixed acquisition change of pneumo.training.shift (identity
    included), drawn per image with `seed` (candidate L's fitting images)."""
    from pneumo.training.shift import PERTURBATIONS

    changes = list(PERTURBATIONS.values())
    draw = np.random.default_rng(seed).integers(0, len(changes), size=len(gray))
    out = gray.copy()
    for k, change in enumerate(changes):
        rows = np.flatnonzero(draw == k)
        if len(rows):
            out[rows] = change(gray[rows])
    return out


def threshold_rule(children_scores: np.ndarray, classes: np.ndarray) -> float:
    """The higher of the per-class CHILDREN_SHARE quantiles of the children's cross-fitted scores."""
    return max(float(np.quantile(children_scores[classes == c], CHILDREN_SHARE)) for c in (0, 1) if (classes == c).any())


def cross_fit(fitting: np.ndarray, scoring: np.ndarray, labels: np.ndarray, folds: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each row's score (on `scoring`, the unchanged images) from a fit (on `fitting`) that left its fold out."""
    scores = np.empty(len(labels))
    for k in np.unique(folds):
        held = folds == k
        scores[held] = fit_svm(fitting[~held], labels[~held], weights[~held]).decision_function(scoring[held])
    return scores


def evaluate_candidate(data: dict, fitting: np.ndarray, scoring: np.ndarray | None = None) -> dict:
    """One candidate on its features (`fitting`: what the SVM is fitted on; `scoring`: what it scores,
    the unchanged images, by default the same): cross-fitted with every source in, and each adult
    source held out whole."""
    labels, source, folds, classes = data["labels"], data["source"], data["folds"], data["classes"]
    scoring = fitting if scoring is None else scoring
    children = labels == 0
    crossed = cross_fit(fitting, scoring, labels, folds, source_weights(source))
    threshold = threshold_rule(crossed[children], classes[children])
    validation = data["validation"]
    report = {
        "threshold": threshold,
        "cross_fitted": {s: float((crossed[source == s] >= threshold).mean()) for s in ADULT_SOURCES},
        "children_false_alarms": {name: float((crossed[children & (classes == c)] >= threshold).mean())
                                  for c, name in ((0, "NORMAL"), (1, "PNEUMONIA"))},
        "validation": {name: {"images": int((validation & (classes == c)).sum()),
                              "flagged": int((crossed[validation & (classes == c)] >= threshold).sum())}
                       for c, name in ((0, "NORMAL"), (1, "PNEUMONIA"))},
        "held_out": {},
    }
    flagged = sum(v["flagged"] for v in report["validation"].values())
    images = sum(v["images"] for v in report["validation"].values())
    report["validation"]["all"] = {"images": images, "flagged": flagged}
    report["validation_ok"] = all(v["flagged"] <= VALIDATION_LIMIT * v["images"] for v in report["validation"].values())
    for held in ADULT_SOURCES:
        keep = source != held
        inner = cross_fit(fitting[keep], scoring[keep], labels[keep], folds[keep], source_weights(source[keep]))
        inner_threshold = threshold_rule(inner[children[keep]], classes[keep][children[keep]])
        pipeline = fit_svm(fitting[keep], labels[keep], source_weights(source[keep]))
        scores = pipeline.decision_function(scoring[source == held])
        report["held_out"][held] = {"images": int((source == held).sum()), "threshold": inner_threshold,
                                    "flagged": float((scores >= inner_threshold).mean())}
    report["worst_held_out"] = min(v["flagged"] for v in report["held_out"].values())
    report["_crossed"] = crossed
    return report


def choose(reports: dict) -> str | None:
    """img5's rule: among candidates whose validation false alarms are within the limit (overall and
    per class), the highest flagged share of the worst held-out source; ties to the first listed."""
    qualified = [name for name in reports if reports[name]["validation_ok"]]
    return max(qualified, key=lambda n: (reports[n]["worst_held_out"], -list(reports).index(n))) if qualified else None


def fitting_data(data_dir: Path, adult_dir: Path, web_dir: Path, cache_dir: str | None) -> dict:
    children = sets.training(data_dir)
    adults = sets.adults(adult_dir, web_dir)
    gray_children, _ = load_images(children, cache_dir, progress=False)
    gray_adults, _ = load_images(adults, cache_dir, progress=False)
    return {
        "children": children, "adults": adults, "gray_children": gray_children, "gray_adults": gray_adults,
        "features": np.r_[thumbnails(gray_children, SIDE), thumbnails(gray_adults, SIDE)],
        "changed_features": np.r_[thumbnails(changed_children(gray_children), SIDE), thumbnails(gray_adults, SIDE)],
        "labels": np.r_[np.zeros(len(children), int), np.ones(len(adults), int)],
        "classes": np.r_[labels_of(children), np.full(len(adults), -1)],
        "source": np.array(["children"] * len(children) + [s.source for s in adults]),
        "folds": np.r_[patient_folds(children, FOLDS, SEED), adult_folds(adults, FOLDS, SEED)],
        "validation": np.r_[sets.in_validation(children, data_dir), np.zeros(len(adults), bool)],
    }


def non_xrays_told(guard) -> dict:
    """How many of the 120 generated non-X-rays the app's path (guard, then the image score) stops."""
    from pneumo.outputs.picture import to_png_bytes
    from pneumo.reading.reader import prepare

    non_xrays = sets.non_xrays()
    results = [prepare(to_png_bytes(image), name, guard) for name, image in non_xrays]
    verdicts = [result.verdict for result in results]
    missed = [name for (name, _), v in zip(non_xrays, verdicts) if v is None or v.plausible]
    warned = sum(result.population.kind is not None for (name, _), result in zip(non_xrays, results) if name in missed)
    return {"images": len(non_xrays), "not_xray": len(non_xrays) - len(missed), "missed": missed, "missed_warned": int(warned)}






def one_read(score: ImageScore, data_dir: Path, other_dir: Path, cache_dir: str | None, test_gray: np.ndarray, test) -> dict:
    """After the choice, once: the test X-rays, the children from other hospitals, the shared DICOMs'
    pixels without their header; reported whatever they give."""
    from pneumo.reading.decode import read_file
    from pneumo.reading.preprocess import to_gray299

    result: dict = {}
    test_scores = score.score(test_gray) if len(test_gray) else np.empty(0)
    test_classes = labels_of(test) if test else np.empty(0, int)
    result["test"] = {name: {"images": int((test_classes == c).sum()), "flagged": int((test_scores[test_classes == c] >= score.threshold).sum())}
                      for c, name in ((0, "NORMAL"), (1, "PNEUMONIA"))}
    others = sets.other_children(other_dir)
    other_gray = load_images(others, cache_dir, progress=False)[0] if others else []
    result["children_elsewhere"] = [{"file": s.path.name, "age": s.age, "score": round(float(v), 3), "flagged": bool(v >= score.threshold)}
                                    for s, v in zip(others, score.score(np.asarray(other_gray)))] if others else []
    result["dicom_pixels"] = {p.name: round(float(score.score(to_gray299(read_file(p).image))[0]), 3) for p in sets.dicoms(data_dir)}
    return result


# Campaign pop1 (docs/POPULATION.md, pre-registered 2026-12-04 19:58 UTC): img5's procedure on
# histograms of oriented gradients (pneumo.reading.preprocess.FEATURES), in the tie order.
POP1 = {"M": "hog128", "N": "thumbnail32+hog128", "O": "hog256"}
SHIPPED_WORST_HELD_OUT = 0.789  # K (img5): Hannover held out; the pick must beat it to replace K


def pop1(data_dir: Path, adult_dir: Path, web_dir: Path, other_dir: Path, cache_dir: str | None, out: Path) -> dict:
    """Campaign pop1 end to end: the candidates, the choice, the ship rule, the one read."""
    from pneumo.reading.guard import load_guard
    from pneumo.training.guard import image_features

    data = fitting_data(data_dir, adult_dir, web_dir, cache_dir)
    gray = np.r_[data["gray_children"], data["gray_adults"]]
    features = {name: image_features(kind, gray) for name, kind in POP1.items()}
    reports = {name: evaluate_candidate(data, features[name]) for name in POP1}
    pick = choose(reports)
    result: dict = {"campaign": "pop1", "candidates": {n: {k: v for k, v in r.items() if not k.startswith("_")} for n, r in reports.items()},
                    "pick": pick, "ships": False}
    test = sets.test(data_dir, required=False)
    test_gray = load_images(test, cache_dir, progress=False)[0] if test else np.empty((0, 299, 299), np.uint8)
    if pick is not None:
        chosen = reports[pick]
        score = to_image_score(fit_svm(features[pick], data["labels"], source_weights(data["source"])), chosen["threshold"],
                               features=POP1[pick])
        guard = load_guard(adult_score=None)
        guard.adult_score = score
        result["non_xrays_as_shipped"] = non_xrays_told(guard)
        result["beats_shipped"] = chosen["worst_held_out"] > SHIPPED_WORST_HELD_OUT
        result["ships"] = bool(chosen["validation_ok"] and not result["non_xrays_as_shipped"]["missed"] and result["beats_shipped"])
        if result["ships"]:
            result |= one_read(score, data_dir, other_dir, cache_dir, test_gray, test)
            summary = {k: result[k] for k in ("pick", "test", "non_xrays_as_shipped")} | {
                k: chosen[k] for k in ("threshold", "cross_fitted", "held_out", "validation", "children_false_alarms")}
            score.save(out, campaign="pop1", **summary)
    return result












def print_fit(result: dict) -> None:
    print(f"{'candidate':<10}{'threshold':>10}{'FA NORMAL':>11}{'FA PNEU':>9}{'val. flagged':>14}" + "".join(f"{'in: ' + s:>14}" for s in ADULT_SOURCES)
          + "".join(f"{'held out: ' + s:>20}" for s in ADULT_SOURCES))
    for name, r in result["candidates"].items():
        v = r["validation"]["all"]
        print(f"{name:<10}{r['threshold']:>10.3f}{r['children_false_alarms']['NORMAL']:>11.2%}{r['children_false_alarms']['PNEUMONIA']:>9.2%}"
              f"{v['flagged']:>7}/{v['images']:<6}" + "".join(f"{r['cross_fitted'][s]:>14.1%}" for s in ADULT_SOURCES)
              + "".join(f"{r['held_out'][s]['flagged']:>20.1%}" for s in ADULT_SOURCES))
    print(f"rule's pick: {result['pick']}; ships: {result['ships']}")
    if "non_xrays_as_shipped" in result:
        print(f"non-X-rays told not_xray on the app path as shipped: {result['non_xrays_as_shipped']['not_xray']}/"
              f"{result['non_xrays_as_shipped']['images']}")
    if "g3" in result:
        g3 = result["g3"]
        for s, t in g3["adults_told"].items():
            print(f"g3 {s}: {t['not_xray']} not_xray, {t['inverted']} inverted, {t['routed']} routed to population, of {t['images']}")
        print(f"g3 ships: {g3['ships']}")
        print(f"g3 non-X-rays told not_xray: {g3['non_xrays']['not_xray']}/{g3['non_xrays']['images']}; inverted test X-rays: "
              f"{g3['test_inverted']['inverted']}/{g3['test_inverted']['images']}; guard false alarms: test {g3['test_guard_false_alarms']}, "
              f"validation {g3['validation_guard_false_alarms']}/{g3['validation_images']}")
    for name, t in result.get("test", {}).items():
        print(f"test {name}: {t['flagged']} of {t['images']} flagged")
    for child in result.get("children_elsewhere", []):
        print(f"child elsewhere {child['file']} age {child['age']}: score {child['score']:.3f} {'FLAGGED' if child['flagged'] else ''}")
    for name, value in result.get("dicom_pixels", {}).items():
        print(f"{name} pixels without header: score {value:.3f}")




# --- measuring what every set gets ---------------------------------------------------------------

def warning_kind(data: bytes, name: str, guard) -> str | None:
    """The warning kind a file gets on the reader's path, None for no warning."""
    from pneumo.reading.reader import prepare

    return prepare(data, name, guard).warning_kind


def warnings_on(paths: list[Path], guard=None) -> dict:
    """How many of these files get each warning kind on the app's path ("none": no warning); the
    shipped guard and image score unless a guard is given."""
    from pneumo.reading.guard import load_guard

    guard = guard or load_guard()
    counts = dict.fromkeys((*WARNING_KINDS, "none"), 0)
    for path in paths:
        counts[warning_kind(path.read_bytes(), path.name, guard) or "none"] += 1
    return {"images": len(paths)} | counts


def measure(weights: Path, adult_dir: Path, web_dir: Path, other_dir: Path, data_dir: Path, cache_dir: str | None) -> dict:
    from pneumo.reading.guard import load_guard
    from pneumo.reading.decode import read_file
    from pneumo.reading.networks import load_model, predict_gray
    from pneumo.outputs.picture import to_png_bytes
    from pneumo.reading.population import check_header

    shipped = read_bundle(weights)
    samples = sets.adults(adult_dir, web_dir)
    gray, _ = load_images(samples, cache_dir, progress=False)
    prob = predict_gray(load_model(weights), gray)
    called = prob >= shipped.threshold
    report: dict = {"weights": weights.name, "threshold": shipped.threshold, "adult": {}}
    groups = sorted({(s.source, s.label) for s in samples}, key=lambda g: (ADULT_SOURCES.index(g[0]), g[1]))
    for source, label in groups:
        mask = np.array([s.source == source and s.label == label for s in samples])
        report["adult"][f"{source} {label}"] = {"images": int(mask.sum()), "called_pneumonia": float(called[mask].mean())}
    normal = np.array([s.label == "NORMAL" for s in samples])
    report["adult_normal_called_pneumonia"] = float(called[normal].mean())
    report["adult_normal_images"] = int(normal.sum())
    guard = load_guard()
    report["dicom"] = {}
    for dcm in sets.dicoms(data_dir):
        decoded = read_file(dcm)
        verdict = check_header(decoded.header)
        # its pixels alone, as a PNG: what an upload of the same picture without the header gets
        report["dicom"][dcm.name] = {"kind": warning_kind(dcm.read_bytes(), dcm.name, guard), "seen": verdict.seen,
                                     "without_header": warning_kind(to_png_bytes(decoded.image), dcm.stem + ".png", guard)}
    files = {f"{source} {label}": [s.path for s in samples if s.source == source and s.label == label] for source, label in groups}
    files["validation (pediatric)"] = [s.path for s in sets.validation(data_dir)]
    test = sets.test(data_dir, required=False)
    if test:
        files["test (pediatric)"] = [s.path for s in test]
    others = sets.other_children(other_dir)
    if others:
        files["children elsewhere"] = [s.path for s in others]
        report["children_elsewhere"] = [{"file": s.path.name, "age": s.age, "warning": warning_kind(s.path.read_bytes(), s.path.name, guard)}
                                        for s in others]
    files["DICOMs with header"] = sets.dicoms(data_dir)
    report["warnings"] = {name: warnings_on(paths, guard) for name, paths in files.items()}
    report["warnings"]["DICOMs without header"] = {"images": len(report["dicom"])} | {
        k: sum((d["without_header"] or "none") == k for d in report["dicom"].values()) for k in (*WARNING_KINDS, "none")}
    if guard is not None and guard.adult_score is not None:
        with np.load(ADULT_SCORE_FILE) as f:
            report["image_score"] = json.loads(str(f["info"]))
    return report


# --- the guard's X-ray check (campaign g8, docs/POPULATION.md): a second opinion on pictures the layout refuses ---

XRAY_CHECK_FEATURES = "hog256"  # pop1's pick O
XRAY_CHECK_ADULT_FOLDS = 2  # adults of folds 0-2 are fitted on; folds 3-4 measure it (held out)


def fit_xray_check(data: dict) -> tuple:
    """The shipped X-ray check: an RBF SVM on HOG features of X-rays (the training children and the
    adults of adult folds 0-2) against generated non-X-rays disjoint from the 120 measured ones; its
    threshold the highest cross-fitted score of a fitting non-X-ray (no fitting non-X-ray would pass).
    `data` is pneumo.training.population.fitting_data's. Returns (ImageScore, what to record)."""
    from pneumo.reading.preprocess import to_gray299
    from pneumo.training.guard import image_features
    from pneumo.training.synthetic import fitting_non_xrays

    adult = data["labels"] == 1
    in_fit = data["folds"][adult] <= XRAY_CHECK_ADULT_FOLDS
    xrays = np.r_[data["gray_children"], data["gray_adults"][in_fit]]
    xray_folds = np.r_[data["folds"][~adult], data["folds"][adult][in_fit]]
    others = fitting_non_xrays()
    groups = sorted({group for _, group, _ in others})
    other_folds = np.array([groups.index(group) % FOLDS for _, group, _ in others])  # a picture and its variants in one fold
    other_gray = np.stack([to_gray299(picture) for _, _, picture in others])
    features = np.r_[image_features(XRAY_CHECK_FEATURES, xrays), image_features(XRAY_CHECK_FEATURES, other_gray)]
    labels = np.r_[np.ones(len(xrays), int), np.zeros(len(others), int)]
    weights = np.ones(len(labels))
    crossed = cross_fit(features, features, labels, np.r_[xray_folds, other_folds], weights)
    threshold = float(crossed[labels == 0].max())
    score = to_image_score(fit_svm(features, labels, weights), threshold, features=XRAY_CHECK_FEATURES)
    info = {"campaign": "g8", "features": XRAY_CHECK_FEATURES, "xrays": int(len(xrays)), "non_xrays_fitted": len(others),
            "threshold": threshold, "xrays_below_threshold_cross_fitted": float((crossed[labels == 1] < threshold).mean())}
    return score, info



def card_text(report: dict) -> str:
    """The model card's section: what the model says on adults, and what the page warns on each set."""
    lines = [
        f"Measured with `python -m pneumo.training.population` at the shipped threshold {report['threshold']:.3f}, on adult X-rays "
        "from other hospitals (`../shared/data/adult/`: NIH, Hannover; `adult_web/`: films from the web; never trained on), the "
        "pediatric validation and test X-rays, the shared DICOMs and 16 children from other hospitals. Each file as the page reads it.",
        "",
        "| set | images | called PNEUMONIA | population | \"not a chest X-ray\" | inverted | lateral | no warning |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, w in report.get("warnings", {}).items():
        called = report["adult"].get(name, {}).get("called_pneumonia")
        n = max(w["images"], 1)
        lines.append(f"| {name} | {w['images']} | {'' if called is None else f'{called:.1%}'} | {w['population'] / n:.1%} | "
                     f"{w['not_xray'] / n:.1%} | {w['inverted'] / n:.1%} | {w['lateral'] / n:.1%} | {w['none'] / n:.1%} |")
    for name, d in report.get("dicom", {}).items():
        lines.append(f"\nShared DICOM `{name}`: {d['kind'] or 'no warning'} ({d['seen'] or '-'}); its pixels without the header: "
                     f"{d.get('without_header') or 'no warning'}.")
    score = report.get("image_score")
    if score:
        held = ", ".join(f"{s} {v['flagged']:.1%}" for s, v in score["held_out"].items())
        lines.append(f"\nThe adult sources were in the image score's fit, so their rows above are in-sample. Held out whole (fitted "
                     f"without that source): {held}. The score sees histograms of oriented gradients (edges: ribs, clavicles, "
                     f"the heart's border) at 256 px; campaign {score.get('campaign', 'img5')}, `docs/POPULATION.md`.")
    else:
        lines.append("\nNo image score is shipped: an adult's X-ray saved as a JPEG or PNG gets no population warning.")
    lines.append("\nA film the guard's layout refuses passes when the X-ray check and the population score agree that it is an adult's "
                 "chest X-ray (campaign g8, `docs/POPULATION.md`), and always carries the population warning. The adults of folds 0–2 "
                 "were in that check's fit; on the held-out folds 3–4 it told NIH 0 of 800, Hannover 0 of 92 and web 1 of 106 \"not a "
                 "chest X-ray\", and let 2 of 120 non-X-rays through, both warned (`python -m lab.population_campaigns g8`).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo.training.population", description=__doc__.split("\n\n")[0])
    parser.add_argument("--fit", action="store_true", help=f"fit, choose and ship the image score ({ADULT_SCORE_FILE.name}) by a campaign's rule")
    parser.add_argument("--weights", default=str(DEFAULT_MODEL))
    parser.add_argument("--adult-dir", default=str(DEFAULT_ADULT_DIR))
    parser.add_argument("--web-dir", default=str(DEFAULT_WEB_DIR))
    parser.add_argument("--other-children-dir", default=str(DEFAULT_OTHER_CHILDREN_DIR))
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR))
    parser.add_argument("--out", default=str(ADULT_SCORE_FILE), help="where --fit writes the image score")
    parser.add_argument("--write", action="store_true", help=f"store the numbers beside the weights ({POPULATION_FILE})")
    parser.add_argument("--fit-xray-check", action="store_true",
                        help=f"fit the guard's X-ray check (campaign g8) and write {XRAY_CHECK_FILE.name}")
    args = parser.parse_args(argv)
    dirs = Path(args.adult_dir), Path(args.web_dir), Path(args.other_children_dir)
    try:
        if args.fit_xray_check:
            score, info = fit_xray_check(fitting_data(Path(args.data_dir), *dirs[:2], args.cache_dir or None))
            score.save(XRAY_CHECK_FILE, **info)
            print(f"X-ray check: {info}; wrote {XRAY_CHECK_FILE}")
            return 0
        if args.fit:
            result = pop1(Path(args.data_dir), *dirs, args.cache_dir or None, Path(args.out))
            print_fit(result)
            print(json.dumps(result))
            return 0
        report = measure(Path(args.weights), *dirs, Path(args.data_dir), args.cache_dir or None)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{'set':<24} {'images':>7} {'called PNEUMONIA':>17}   (threshold {report['threshold']:.4f})")
    for name, m in report["adult"].items():
        print(f"{name:<24} {m['images']:>7} {m['called_pneumonia']:>17.3f}")
    print(f"adult NORMAL called PNEUMONIA: {report['adult_normal_called_pneumonia']:.3f} of {report['adult_normal_images']}")
    for name, m in report["dicom"].items():
        print(f"{name}: {m['kind'] or 'no warning'} ({m['seen'] or '-'}); without its header: {m['without_header'] or 'no warning'}")
    print(f"\n{'warnings on the app path':<26} {'images':>7}" + "".join(f"{k:>11}" for k in (*WARNING_KINDS, "none")))
    for name, w in report["warnings"].items():
        print(f"{name:<26} {w['images']:>7}" + "".join(f"{w[k]:>11}" for k in (*WARNING_KINDS, "none")))
    for child in report.get("children_elsewhere", []):
        print(f"child elsewhere {child['file']:<28} age {child['age']:>5}: {child['warning'] or 'no warning'}")
    print(json.dumps(report))
    if args.write:
        write_json(Path(args.weights).with_name(POPULATION_FILE), report)
        set_card_section(Path(args.weights).with_name(CARD_FILE), "Outside the training population", card_text(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
