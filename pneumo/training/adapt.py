"""Campaign site1 (docs/SITE.md): label-free adaptation to a new site, under simulated class mixes.

    python -m pneumo.training.adapt --grid development     # every pre-registered setting: development half and validation split
    python -m pneumo.training.adapt --grid holdout --setting B-0.25   # once, after the rule's choice

Each setting re-estimates some of the network's BatchNorm statistics (pneumo.site.reestimate) from
a batch of one half's films drawn at a given class mix, and is read, at the shipped threshold, on the
films of that half not in the batch, beside the unadapted network on the same films. The numbers go
to runs/site1/<grid>.json and a table on stdout; `--grid development` also applies the ship rule.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from pneumo.bundle import DEFAULT_MODEL, load_bundle
from pneumo.site import NORMALISED
from pneumo.training import sets
from pneumo.training.data import DEFAULT_CACHE_DIR, DEFAULT_DATA_DIR, labels_of, load_images

SIZES = (32, 64)
MIXES = (0.10, 0.25, 0.50, 0.75, 0.90)
DRAWS = 5
SENSITIVITY_FILMS, SENSITIVITY_SEED = 512, 0  # per class, from train/
CONV_LAYERS = NORMALISED[:5]
SETTINGS = {"A": ("early", None), **{f"B-{q:.2f}": ("selective", q) for q in (0.10, 0.25, 0.50)},
            **{f"C-{q:.2f}": ("selective-conv", q) for q in (0.10, 0.25, 0.50)}}
FLOOR_SENSITIVITY, FLOOR_SPECIFICITY_DROP, TRAINING_SITE_MOVE, TIE = 0.95, 0.02, 0.01, 0.005


def class_sensitivity(model, gray: np.ndarray, labels: np.ndarray, chunk: int = 64) -> dict[str, np.ndarray]:
    """Per BatchNorm channel, |mean_PNEUMONIA - mean_NORMAL| / sqrt((var_P + var_N) / 2) of its input,
    moments over films (and positions), in the trained network."""
    from pneumo.preprocess import to_model_input
    from pneumo.site import reestimate

    sums: dict[tuple[str, int], list[np.ndarray]] = {}
    counts = {0: 0, 1: 0}
    for label in (0, 1):
        rows = np.flatnonzero(labels == label)
        for start in range(0, len(rows), chunk):
            part = rows[start:start + chunk]
            seen: dict = {}
            reestimate(model, to_model_input(gray[part]), {}, seen)
            for name, (mean, var) in seen.items():  # combine chunks: sums of x and x^2 per channel
                first, second = sums.setdefault((name, label), [np.zeros_like(mean), np.zeros_like(mean)])
                first += mean * len(part)
                second += (var + mean ** 2) * len(part)
            counts[label] += len(part)
    out = {}
    for name in NORMALISED:
        moments = []
        for label in (0, 1):
            first, second = sums[(name, label)]
            mean = first / counts[label]
            moments.append((mean, second / counts[label] - mean ** 2))
        (m0, v0), (m1, v1) = moments
        out[name] = np.abs(m1 - m0) / np.sqrt(np.maximum((v0 + v1) / 2, 1e-12))
    return out


def plan_for(setting: str, sensitivity: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Which channels of which layers the setting re-estimates (docs/SITE.md, candidates A, B, C)."""
    kind, share = SETTINGS[setting]
    if kind == "early":
        return {name: np.ones(len(sensitivity[name]), bool) for name in NORMALISED[:3]}
    plan = {}
    for name in (NORMALISED if kind == "selective" else CONV_LAYERS):
        s = sensitivity[name]
        kept = int(round(share * len(s)))  # the most class-sensitive channels keep their trained statistics
        chosen = np.ones(len(s), bool)
        chosen[np.argsort(-s, kind="stable")[:kept]] = False
        plan[name] = chosen
    return plan


def draw_batch(labels: np.ndarray, size: int, mix: float, seed: int) -> np.ndarray:
    """Indices of a batch of `size` films, round(size * mix) of them pneumonias, without replacement."""
    rng = np.random.default_rng(seed)
    pneumonias = int(round(size * mix))
    return np.r_[rng.choice(np.flatnonzero(labels == 1), pneumonias, replace=False),
                 rng.choice(np.flatnonzero(labels == 0), size - pneumonias, replace=False)]


def rates(labels: np.ndarray, called: np.ndarray) -> tuple[float, float]:
    """(sensitivity, specificity)."""
    return float(called[labels == 1].mean()), float(1 - called[labels == 0].mean())


def run_grid(model, gray: np.ndarray, labels: np.ndarray, threshold: float, plans: dict[str, dict]) -> dict:
    """Every setting over the grid on one set of films: per cell, the mean over its draws of the
    adapted and the unadapted network's sensitivity and specificity on the films not in the batch."""
    from pneumo.inference import predict_gray
    from pneumo.preprocess import to_model_input
    from pneumo.site import reestimate, with_statistics

    unadapted = predict_gray(model, gray) >= threshold
    out: dict = {name: {} for name in plans}
    for size in SIZES:
        for mix in MIXES:
            cell = f"{size}@{round(mix * 100)}%"
            for k in range(DRAWS):
                batch = draw_batch(labels, size, mix, seed=1000 * size + 10 * round(mix * 100) + k)
                rest = np.setdiff1d(np.arange(len(labels)), batch)
                x = to_model_input(gray[batch])
                base = rates(labels[rest], unadapted[rest])
                for name, plan in plans.items():
                    started = time.perf_counter()
                    adapted = with_statistics(model, reestimate(model, x, plan))
                    seconds = time.perf_counter() - started
                    called = predict_gray(adapted, gray[rest]) >= threshold
                    out[name].setdefault(cell, []).append({"adapted": rates(labels[rest], called), "unadapted": base, "seconds": seconds})
    summary = {}
    for name, cells in out.items():
        summary[name] = {cell: {"sensitivity": float(np.mean([d["adapted"][0] for d in draws])),
                                "specificity": float(np.mean([d["adapted"][1] for d in draws])),
                                "unadapted_sensitivity": float(np.mean([d["unadapted"][0] for d in draws])),
                                "unadapted_specificity": float(np.mean([d["unadapted"][1] for d in draws])),
                                "adapt_seconds": float(np.median([d["seconds"] for d in draws])), "draws": len(draws)}
                         for cell, draws in cells.items()}
    return summary


def qualifies(development: dict, validation: dict) -> bool:
    """The ship rule's step 1 for one setting (docs/SITE.md)."""
    safe = all(c["sensitivity"] >= FLOOR_SENSITIVITY and c["specificity"] >= c["unadapted_specificity"] - FLOOR_SPECIFICITY_DROP
               for c in development.values())
    still = all(abs(c["sensitivity"] - c["unadapted_sensitivity"]) <= TRAINING_SITE_MOVE
                and abs(c["specificity"] - c["unadapted_specificity"]) <= TRAINING_SITE_MOVE for c in validation.values())
    return safe and still


def choose(results: dict, plans: dict[str, dict]) -> str | None:
    """Steps 2 and 3: the qualifying setting with the highest worst-cell development specificity;
    within TIE, the one that re-estimates fewer channels; None when none qualifies."""
    worst = {name: min(c["specificity"] for c in results["development"][name].values()) for name in plans
             if qualifies(results["development"][name], results["validation"][name])}
    if not worst:
        return None
    best = max(worst.values())
    close = [name for name, value in worst.items() if value >= best - TIE]
    return min(close, key=lambda name: sum(int(m.sum()) for m in plans[name].values()))


def format_grid(summary: dict) -> str:
    cells = list(next(iter(summary.values())))
    lines = [f"{'setting':<8}" + "".join(f"{cell:>16}" for cell in cells)]
    first = next(iter(summary.values()))
    lines.append(f"{'none':<8}" + "".join(f"{first[c]['unadapted_sensitivity']:>7.3f}/{first[c]['unadapted_specificity']:<8.3f}" for c in cells))
    for name, grid in summary.items():
        lines.append(f"{name:<8}" + "".join(f"{grid[c]['sensitivity']:>7.3f}/{grid[c]['specificity']:<8.3f}" for c in cells))
    return "\n".join(lines) + "\n(sensitivity/specificity, mean of the cell's draws, at the shipped threshold)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo.training.adapt", description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", choices=("development", "holdout"), required=True)
    parser.add_argument("--setting", choices=sorted(SETTINGS), help="with --grid holdout: the setting the rule picked")
    parser.add_argument("--weights", default=str(DEFAULT_MODEL))
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR))
    args = parser.parse_args(argv)
    if args.grid == "holdout" and not args.setting:
        parser.error("--grid holdout reads one setting: the one the development grid picked")
    from pneumo.inference import load_model

    try:
        model, threshold = load_model(args.weights), load_bundle(args.weights).threshold
        training = sets.training(args.data_dir)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    cache = args.cache_dir or None
    rng = np.random.default_rng(SENSITIVITY_SEED)
    labels = labels_of(training)
    chosen = np.sort(np.r_[[rng.choice(np.flatnonzero(labels == c), SENSITIVITY_FILMS, replace=False) for c in (0, 1)]].ravel())
    gray, _ = load_images([training[i] for i in chosen], cache, progress=False)
    sensitivity = class_sensitivity(model, gray, labels[chosen])
    names = list(SETTINGS) if args.grid == "development" else [args.setting]
    plans = {name: plan_for(name, sensitivity) for name in names}
    results: dict = {"threshold": threshold, "plans": {n: {k: int(v.sum()) for k, v in p.items()} for n, p in plans.items()}}
    grids = {"development": sets.site_half("development", args.data_dir), "validation": sets.validation(args.data_dir)} \
        if args.grid == "development" else {"holdout": sets.site_half("holdout", args.data_dir)}
    for name, samples in grids.items():
        films, _ = load_images(samples, cache, progress=False)
        results[name] = run_grid(model, films, labels_of(samples), threshold, plans)
        print(f"\n{name}: {len(samples)} films\n{format_grid(results[name])}", flush=True)
    if args.grid == "development":
        results["qualifies"] = {n: qualifies(results["development"][n], results["validation"][n]) for n in plans}
        results["pick"] = choose(results, plans)
        print(f"\nqualifies: {results['qualifies']}\nthe rule's pick: {results['pick']}")
    out = sets.SITE_LISTS / f"{args.grid}-grid.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
