"""Measuring explanation methods: empty maps, concentration, deletion and insertion against a
random ranking, the model-parameter randomisation test, and time per map. docs/EXPLANATIONS.md
has the rule that picks the page's default from these numbers.

    python -m lab.bench explanations [--per-class 100]
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter, zoom
from scipy.stats import spearmanr

from pneumo.training.model import build_model
from pneumo.reading.explain import GRADCAM_LAYER

STEPS = 20  # deletion / insertion in steps of 5 % of the pixels
BLUR_SIGMA = 10.0  # px at 299: what a removed pixel is replaced by
MAP_GRID = 9  # block5_sepconv2's spatial size: random rankings are made as coarse as the maps


def concentration(heatmap: np.ndarray) -> float:
    """Share of the frame at or above half the map's maximum (1.0 for an empty map: nothing is singled out)."""
    peak = float(heatmap.max())
    return 1.0 if peak <= 0 else float((heatmap >= 0.5 * peak).mean())


def blurred(x: np.ndarray) -> np.ndarray:
    """The model input (H, W, C) blurred per channel: what deleted pixels become."""
    return np.stack([gaussian_filter(x[..., c], BLUR_SIGMA) for c in range(x.shape[-1])], axis=-1).astype(np.float32)


def ranking(heatmap: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pixel indices from the map's highest to its lowest; ties (an empty map is all ties) in random order."""
    return np.lexsort((rng.random(heatmap.size), -heatmap.ravel()))


def random_map(rng: np.random.Generator, size: int = 299) -> np.ndarray:
    """A ranking made like a map: 9x9 uniform noise, upsampled bilinearly."""
    return zoom(rng.random((MAP_GRID, MAP_GRID)), size / MAP_GRID, order=1)[:size, :size]


def curves(model, x: np.ndarray, order: np.ndarray, explained: int, steps: int = STEPS) -> tuple[np.ndarray, np.ndarray]:
    """(deletion, insertion) curves: the explained class's probability as the top-ranked pixels of x
    are replaced by its blurred copy, or revealed on it, in `steps` equal steps (steps + 1 points)."""
    h, w, _ = x.shape
    base = blurred(x)
    counts = np.linspace(0, h * w, steps + 1).round().astype(int)
    masks = np.zeros((steps + 1, h * w), dtype=np.float32)
    for i, n in enumerate(counts):
        masks[i, order[:n]] = 1.0
    masks = masks.reshape(steps + 1, h, w, 1)
    deleted = x * (1.0 - masks) + base * masks
    inserted = base * (1.0 - masks) + x * masks
    p = np.asarray(model.predict_on_batch(np.concatenate([deleted, inserted]))).reshape(-1)
    score = p if explained == 1 else 1.0 - p
    return score[: steps + 1], score[steps + 1 :]


def area(curve: np.ndarray) -> float:
    """Area under a curve sampled at equal steps over [0, 1]."""
    return float(np.trapezoid(curve, dx=1.0 / (len(curve) - 1)))


RANDOMISED_STAGES = {
    "head": lambda names: names[names.index(GRADCAM_LAYER) + 1 :],
    "head+block5": lambda names: names[names.index("block5_sepconv1") :],
}


def randomised(model, stage: str, seed: int = 0):
    """A copy of `model` with the layers of `stage` re-initialised (a fresh build's weights)."""
    import keras

    keras.utils.set_random_seed(seed)
    fresh = build_model()
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    names = [layer.name for layer in copy.layers]
    for name in RANDOMISED_STAGES[stage](names):
        copy.get_layer(name).set_weights(fresh.get_layer(name).get_weights())
    return copy


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (every 4th pixel; nan when either is constant)."""
    a, b = a[::4, ::4].ravel(), b[::4, ::4].ravel()
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def bootstrap_mean(values: np.ndarray, n: int = 2000, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    means = [values[rng.integers(0, len(values), len(values))].mean() for _ in range(n)]
    return [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))]


@dataclass
class MethodMeasures:
    empty: int
    concentration: list[float]
    deletion: list[float]
    insertion: list[float]
    similarity: dict[str, list[float]]
    seconds: list[float]


def measure_methods(model, inputs: np.ndarray, methods: tuple[str, ...], threshold: float, timing_images: int = 24,
                    progress: bool = True) -> dict:
    """Every measure of docs/EXPLANATIONS.md for each method on the model inputs (N, 299, 299, 3)."""
    from pneumo.reading.explain import Explainer

    explainer = Explainer(model)
    randomised_explainers = {stage: Explainer(randomised(model, stage)) for stage in RANDOMISED_STAGES}
    rng = np.random.default_rng(0)
    random_deletion, random_insertion = [], []
    explained_classes = []
    for x in inputs:  # the random ranking's curves, once per image, for the class the model predicts
        p = float(np.asarray(model.predict_on_batch(x[np.newaxis])).reshape(-1)[0])
        explained = int(p >= threshold)
        explained_classes.append(explained)
        d, i = curves(model, x, ranking(random_map(rng), rng), explained)
        random_deletion.append(area(d))
        random_insertion.append(area(i))
    report: dict = {"images": len(inputs), "pneumonia_explained": int(sum(explained_classes)), "methods": {}}
    iterator = methods
    if progress:
        from tqdm import tqdm

        iterator = tqdm(methods, desc="methods")
    for method in iterator:
        m = MethodMeasures(0, [], [], [], {stage: [] for stage in RANDOMISED_STAGES}, [])
        for x, explained in zip(inputs, explained_classes):
            target = "pneumonia" if explained else "normal"
            result = explainer.explain(x, target=target, threshold=threshold, method=method)
            m.empty += int(result.empty)
            m.concentration.append(concentration(result.heatmap))
            d, i = curves(model, x, ranking(result.heatmap, rng), explained)
            m.deletion.append(area(d))
            m.insertion.append(area(i))
            for stage, other in randomised_explainers.items():
                shuffled = other.explain(x, target=target, threshold=threshold, method=method)
                m.similarity[stage].append(0.0 if shuffled.empty and not result.empty else similarity(result.heatmap, shuffled.heatmap))
        for x in inputs[:timing_images]:  # the app's path: probability and map in one call, warm
            t0 = time.perf_counter()
            explainer.explain(x, threshold=threshold, method=method)
            m.seconds.append(time.perf_counter() - t0)
        deletion_gain = np.array(random_deletion) - np.array(m.deletion)
        insertion_gain = np.array(m.insertion) - np.array(random_insertion)
        report["methods"][method] = {
            "empty": m.empty,
            "concentration_median": float(np.median(m.concentration)),
            "deletion_area": float(np.mean(m.deletion)), "random_deletion_area": float(np.mean(random_deletion)),
            "insertion_area": float(np.mean(m.insertion)), "random_insertion_area": float(np.mean(random_insertion)),
            "deletion_gain": float(deletion_gain.mean()), "deletion_gain_ci95": bootstrap_mean(deletion_gain),
            "insertion_gain": float(insertion_gain.mean()), "insertion_gain_ci95": bootstrap_mean(insertion_gain),
            "randomisation_similarity_median": {s: float(np.nanmedian(v)) if np.isfinite(v).any() else float("nan") for s, v in m.similarity.items()},
            "randomisation_undefined": {s: int(np.isnan(v).sum()) for s, v in m.similarity.items()},
            "seconds_per_map_median": float(np.median(m.seconds)),
        }
    return report


def qualifies(measures: dict, max_seconds: float = 0.1) -> bool:
    """docs/EXPLANATIONS.md's conditions for the page's default."""
    return (
        measures["empty"] == 0
        and all(v <= 0.3 for v in measures["randomisation_similarity_median"].values())
        and measures["deletion_gain_ci95"][0] > 0
        and measures["insertion_gain_ci95"][0] > 0
        and measures["seconds_per_map_median"] <= max_seconds
    )


def choose_default(report: dict) -> str | None:
    """The qualifying method with the largest insertion + deletion gain; within 0.01, the faster."""
    eligible = {name: m for name, m in report["methods"].items() if qualifies(m)}
    if not eligible:
        return None
    gain = {name: m["insertion_gain"] + m["deletion_gain"] for name, m in eligible.items()}
    best = max(gain.values())
    close = [name for name in eligible if gain[name] >= best - 0.01]
    return min(close, key=lambda name: eligible[name]["seconds_per_map_median"])


def format_table(report: dict) -> str:
    header = (f"{'method':<10} {'empty':>5} {'conc.':>6} {'del.':>6} {'rand':>6} {'del.gain (95% CI)':>22} {'ins.':>6} {'rand':>6} "
              f"{'ins.gain (95% CI)':>22} {'rnd head':>8} {'rnd b5':>7} {'s/map':>7} qualifies")
    lines = [header]
    for name, m in report["methods"].items():
        sim = m["randomisation_similarity_median"]
        lines.append(
            f"{name:<10} {m['empty']:>5} {m['concentration_median']:>6.3f} {m['deletion_area']:>6.3f} {m['random_deletion_area']:>6.3f} "
            f"{m['deletion_gain']:>7.3f} ({m['deletion_gain_ci95'][0]:.3f}–{m['deletion_gain_ci95'][1]:.3f}) {m['insertion_area']:>6.3f} "
            f"{m['random_insertion_area']:>6.3f} {m['insertion_gain']:>7.3f} ({m['insertion_gain_ci95'][0]:.3f}–{m['insertion_gain_ci95'][1]:.3f}) "
            f"{sim['head']:>8.3f} {sim['head+block5']:>7.3f} {m['seconds_per_map_median']:>7.3f} {'yes' if qualifies(m) else 'no'}"
        )
    return "\n".join(lines)


def in_lungs(model, gray: np.ndarray, groups: np.ndarray, segmenter, methods: tuple[str, ...], threshold: float) -> dict:
    """Per group and method: the mean share of the map's mass inside the predicted lungs (maps of
    the class the model predicts; empty maps left out and counted), beside the mean share of the
    image the lungs cover (what a flat map would give)."""
    from pneumo.reading.explain import Explainer
    from pneumo.reading.lungs import lung_share, map_in_lungs
    from pneumo.reading.preprocess import to_model_input

    explainer = Explainer(model)
    masks = np.concatenate([segmenter.masks(gray[i:i + 64]) for i in range(0, len(gray), 64)])
    out: dict = {"groups": {}}
    for group in dict.fromkeys(groups):
        rows = np.flatnonzero(groups == group)
        out["groups"][str(group)] = {"images": len(rows), "lung_share": float(np.mean([lung_share(masks[i]) for i in rows])), "methods": {}}
    for method in methods:
        shares: dict[str, list[float]] = {g: [] for g in out["groups"]}
        empty = dict.fromkeys(out["groups"], 0)
        for g, mask, group in zip(gray, masks, groups):
            heatmap = explainer.explain(to_model_input(g), threshold=threshold, method=method).heatmap
            inside = map_in_lungs(heatmap, mask)
            if inside is None:
                empty[str(group)] += 1
            else:
                shares[str(group)].append(inside)
        for group, values in shares.items():
            out["groups"][group]["methods"][method] = {"map_in_lungs": float(np.mean(values)) if values else float("nan"),
                                                       "empty": empty[group]}
    return out


def format_in_lungs(report: dict) -> str:
    methods = list(next(iter(report["groups"].values()))["methods"])
    lines = [f"{'map mass inside the lungs':<30} {'images':>6} {'lungs':>6}" + "".join(f"{m:>11}" for m in methods)]
    for group, g in report["groups"].items():
        lines.append(f"{group:<30} {g['images']:>6} {g['lung_share']:>6.2f}" + "".join(f"{g['methods'][m]['map_in_lungs']:>11.2f}" for m in methods))
    return "\n".join(lines)
