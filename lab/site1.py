"""Campaign site1 (docs/SITE.md): label-free adaptation to a new site, under simulated class mixes.

    python -m lab.site1 --grid development     # every pre-registered setting: development half and validation split
    python -m lab.site1 --grid holdout --setting B-0.25   # once, after the rule's choice
    python -m lab.site1 --distance          # the site distance's reference, and every set's distance (lab/runs/site1/distance.json)
    python -m lab.site1 --labelled [--setting S]   # what 20+20, 50+50, 100+100 labelled development films buy on the holdout half

Each setting re-estimates some of the network's BatchNorm statistics (pneumo.reading.siteprofile.reestimate) from
a batch of one half's films drawn at a given class mix, and is read, at the shipped threshold, on the
films of that half not in the batch, beside the unadapted network on the same films. The numbers go
to lab/runs/site1/<grid>.json and a table on stdout; `--grid development` also applies the ship rule.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from pneumo.bundle import DEFAULT_MODEL, read_bundle
from pneumo.bundle import SITE_FILE
from pneumo.reading.siteprofile import NORMALISED, reestimate
from pneumo.training import sets
from pneumo.training.data import DEFAULT_CACHE_DIR, DEFAULT_DATA_DIR, labels_of, load_images

SIZES = (32, 64)
MIXES = (0.10, 0.25, 0.50, 0.75, 0.90)
DRAWS = 5
SENSITIVITY_FILMS, SENSITIVITY_SEED = 512, 0  # per class, from train/
CONV_LAYERS = NORMALISED[:5]
SETTINGS = {"A": ("early", None), **{f"B-{q:.2f}": ("selective", q) for q in (0.10, 0.25, 0.50)},
            **{f"C-{q:.2f}": ("selective-conv", q) for q in (0.10, 0.25, 0.50)}}
FLOOR_SENSITIVITY, FLOOR_SPECIFICITY_DROP, TIE = 0.95, 0.02, 0.005


def class_sensitivity(model, gray: np.ndarray, labels: np.ndarray, chunk: int = 64) -> dict[str, np.ndarray]:
    """Per BatchNorm channel, |mean_PNEUMONIA - mean_NORMAL| / sqrt((var_P + var_N) / 2) of its input,
    moments over films (and positions), in the trained network."""
    from pneumo.reading.preprocess import to_model_input
    from pneumo.reading.siteprofile import reestimate

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


def draw_batch(labels: np.ndarray, size: int, mix: float | None, seed: int) -> np.ndarray:
    """Indices of a batch of `size` films, round(size * mix) of them pneumonias, without replacement;
    mix None: drawn from all films alike (the set's natural mix)."""
    rng = np.random.default_rng(seed)
    if mix is None:
        return rng.choice(len(labels), size, replace=False)
    pneumonias = int(round(size * mix))
    return np.r_[rng.choice(np.flatnonzero(labels == 1), pneumonias, replace=False),
                 rng.choice(np.flatnonzero(labels == 0), size - pneumonias, replace=False)]


def rates(labels: np.ndarray, called: np.ndarray) -> tuple[float, float]:
    """(sensitivity, specificity)."""
    return float(called[labels == 1].mean()), float(1 - called[labels == 0].mean())


def run_grid(model, gray: np.ndarray, labels: np.ndarray, threshold: float, plans: dict[str, dict], natural: bool = False) -> dict:
    """Every setting over the grid on one set of films: per cell, the mean over its draws of the
    adapted and the unadapted network's sensitivity and specificity on the films not in the batch.
    natural: a cell per size at the set's own mix too (the holdout read's, for the README)."""
    from pneumo.reading.networks import predict_gray
    from pneumo.reading.preprocess import to_model_input
    from pneumo.reading.siteprofile import reestimate, with_statistics

    unadapted = predict_gray(model, gray) >= threshold
    out: dict = {name: {} for name in plans}
    for size in SIZES:
        for mix in (*MIXES, None) if natural else MIXES:
            cell = f"{size}@{'natural' if mix is None else str(round(mix * 100)) + '%'}"
            for k in range(DRAWS):
                batch = draw_batch(labels, size, mix, seed=1000 * size + (999 if mix is None else 10 * round(mix * 100)) + k)
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


def safe(grid: dict) -> bool:
    """The safety floor in every cell: sensitivity at least FLOOR_SENSITIVITY, specificity no more than
    FLOOR_SPECIFICITY_DROP below the unadapted network's on the same films."""
    return all(c["sensitivity"] >= FLOOR_SENSITIVITY and c["specificity"] >= c["unadapted_specificity"] - FLOOR_SPECIFICITY_DROP
               for c in grid.values())


def training_sensitivity(model, training: list, cache: str | None) -> dict[str, np.ndarray]:
    """`class_sensitivity` on SENSITIVITY_FILMS training films of each class, drawn with SENSITIVITY_SEED."""
    rng = np.random.default_rng(SENSITIVITY_SEED)
    labels = labels_of(training)
    chosen = np.sort(np.r_[[rng.choice(np.flatnonzero(labels == c), SENSITIVITY_FILMS, replace=False) for c in (0, 1)]].ravel())
    gray, _ = load_images([training[i] for i in chosen], cache, progress=False)
    return class_sensitivity(model, gray, labels[chosen])


def qualifies(development: dict, validation: dict) -> bool:
    """The ship rule's step 1 for one setting: the safety floor in every cell of both grids (the owner's
    decision of issue #53 held the training site to the new site's floor; docs/SITE.md)."""
    return safe(development) and safe(validation)


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


# --- the site distance: how far a batch lies from the training site (served until issue #53; it did not
# separate the test folder from the training site, docs/SITE.md) ---

DISTANCE_LAYERS = NORMALISED[:3]  # the early blocks: acquisition (exposure, processing, scanner), little of the class


def batch_distance(model, x: np.ndarray) -> float:
    """How far a batch's early activations lie from the training site's: per channel of the first
    three BatchNorm layers, the batch mean's distance from the trained mean in trained standard
    deviations; the root mean square over each layer's channels, averaged over the layers."""
    seen: dict = {}
    reestimate(model, x, {}, seen, stop_after=DISTANCE_LAYERS[-1])
    return distance_of_means(model, {name: seen[name][0] for name in DISTANCE_LAYERS})


def distance_of_means(model, means: dict[str, np.ndarray]) -> float:
    """`batch_distance` from a batch's channel means at the inputs of DISTANCE_LAYERS."""
    per_layer = []
    for name in DISTANCE_LAYERS:
        layer = model.get_layer(name)
        z = (means[name] - np.asarray(layer.moving_mean)) / np.sqrt(np.asarray(layer.moving_variance) + layer.epsilon)
        per_layer.append(float(np.sqrt(np.mean(z ** 2))))
    return float(np.mean(per_layer))


DISTANCE_SIZES, DISTANCE_DRAWS = (16, 32, 64, 128), 200


def film_means(model, gray: np.ndarray, chunk: int = 32) -> dict[str, np.ndarray]:
    """Per film, the mean of each early BatchNorm layer's input channels (DISTANCE_LAYERS),
    in the trained network: a batch's channel means are the mean of its films' (all are 299 px)."""
    import keras

    from pneumo.reading.preprocess import to_model_input

    inputs = keras.Model(model.input, [model.get_layer(name).input for name in DISTANCE_LAYERS])
    out: dict[str, list] = {name: [] for name in DISTANCE_LAYERS}
    for start in range(0, len(gray), chunk):
        for name, h in zip(DISTANCE_LAYERS, inputs.predict_on_batch(to_model_input(gray[start:start + chunk]))):
            out[name].append(np.asarray(h, dtype=np.float64).mean(axis=(1, 2)))
    return {name: np.concatenate(v) for name, v in out.items()}


def distance_of(model, means: dict[str, np.ndarray], rows: np.ndarray) -> float:
    """`batch_distance` of the batch `rows`, from its films' channel means."""
    return distance_of_means(model, {name: film_means[rows].mean(axis=0) for name, film_means in means.items()})


def distances(model, data_dir: str, cache: str | None) -> dict:
    """The reference (the training site's own batches: DISTANCE_DRAWS random batches of each size from
    the validation split) and, for each set, the distance of random batches of 64 of its films."""
    from pneumo.training.data import load_images as load

    validation, _ = load(sets.validation(data_dir), cache, progress=False)
    reference_means = film_means(model, validation)
    rng = np.random.default_rng(0)
    reference = {}
    for size in DISTANCE_SIZES:
        values = [distance_of(model, reference_means, rng.choice(len(validation), size, replace=False)) for _ in range(DISTANCE_DRAWS)]
        reference[str(size)] = {"median": float(np.median(values)), "p95": float(np.quantile(values, 0.95)), "draws": DISTANCE_DRAWS}
    groups = {"validation (the training site)": sets.validation(data_dir), "test folder": sets.test(data_dir),
              "children elsewhere": sets.other_children()}
    for source in sets.ADULT_SOURCES:
        groups[f"adults {source}"] = sets.adults(sources=(source,))
    measured = {}
    for name, samples in groups.items():
        gray, _ = load(samples, cache, progress=False)
        means = reference_means if name.startswith("validation") else film_means(model, gray)
        size = min(64, len(gray) - len(gray) % 16)
        values = [distance_of(model, means, rng.choice(len(gray), size, replace=False)) for _ in range(50)]
        measured[name] = {"films": len(gray), "batch": size, "median": float(np.median(values)),
                          "relative": float(np.median(values) / reference[str(size)]["median"])}
    return {"reference": reference, "sets": measured}


def write_shipped(weights: str, **entries) -> None:
    """Merge entries into the site file shipped beside the weights (pneumo.reading.siteprofile.SITE_FILE)."""
    path = Path(weights).with_name(SITE_FILE)
    shipped = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps(shipped | entries, indent=1) + "\n")


LABELLED_BUDGETS, LABELLED_DRAWS, UNLABELLED_FILMS = (20, 50, 100), 5, 64


def kth_lowest(pneumonia_probabilities: np.ndarray) -> float:
    """The site threshold rule of 2026-12-04 (replaced by campaign site2's): the k-th lowest labelled
    pneumonia, k = floor(0.025 n) + 1."""
    return float(np.sort(pneumonia_probabilities)[int(np.floor(0.025 * len(pneumonia_probabilities)))])


def labelled_calibration(model, setting: str | None, plan: dict | None, development: list, holdout: list, cache: str | None,
                         threshold: float) -> dict:
    """docs/SITE.md, labelled calibration: per budget and draw, the site threshold from that many
    labelled development films of each class, read on the whole holdout half; without adaptation,
    and after the label-free pick (from 64 unlabelled development films at the natural mix) if any."""
    from pneumo.reading.networks import predict_gray
    from pneumo.reading.preprocess import to_model_input
    from pneumo.reading.siteprofile import reestimate, with_statistics

    dev_gray, _ = load_images(development, cache, progress=False)
    hold_gray, _ = load_images(holdout, cache, progress=False)
    dev_labels, hold_labels = labels_of(development), labels_of(holdout)
    networks = {"unadapted": model}
    if plan is not None:
        unlabelled = np.random.default_rng(0).choice(len(dev_gray), UNLABELLED_FILMS, replace=False)
        networks[f"adapted ({setting})"] = with_statistics(model, reestimate(model, to_model_input(dev_gray[unlabelled]), plan))
    out: dict = {"shipped_threshold": threshold}
    for name, network in networks.items():
        dev_p, hold_p = predict_gray(network, dev_gray), predict_gray(network, hold_gray)
        out[name] = {"at the shipped threshold": dict(zip(("sensitivity", "specificity"), rates(hold_labels, hold_p >= threshold)))}
        for budget in LABELLED_BUDGETS:
            draws = []
            for seed in range(LABELLED_DRAWS):
                rng = np.random.default_rng(seed)
                pneumonias = rng.choice(np.flatnonzero(dev_labels == 1), budget, replace=False)
                rng.choice(np.flatnonzero(dev_labels == 0), budget, replace=False)  # the labelled normals: drawn, not used by the rule
                t = kth_lowest(dev_p[pneumonias])
                sensitivity, specificity = rates(hold_labels, hold_p >= t)
                draws.append({"threshold": t, "sensitivity": sensitivity, "specificity": specificity})
            out[name][f"{budget}+{budget}"] = {
                key: {"mean": float(np.mean([d[key] for d in draws])), "min": float(min(d[key] for d in draws)),
                      "max": float(max(d[key] for d in draws))} for key in ("threshold", "sensitivity", "specificity")}
    return out


def plan_measured(holdout: dict, validation: dict) -> dict:
    """What a site is told about the shipped plan: the range over cells of its holdout grid and of its
    validation grid (the training site), adapted and unadapted."""
    def ranges(grid: dict) -> dict:
        return {key: [round(min(c[key] for c in grid.values()), 4), round(max(c[key] for c in grid.values()), 4)]
                for key in ("sensitivity", "specificity", "unadapted_sensitivity", "unadapted_specificity")}

    return {"holdout": ranges(holdout), "training_site": ranges(validation),
            "how": "python -m lab.site1 --grid holdout --setting S; the validation grid of --grid development (docs/SITE.md)"}


def format_grid(summary: dict) -> str:
    cells = list(next(iter(summary.values())))
    lines = [f"{'setting':<8}" + "".join(f"{cell:>16}" for cell in cells)]
    first = next(iter(summary.values()))
    lines.append(f"{'none':<8}" + "".join(f"{first[c]['unadapted_sensitivity']:>7.3f}/{first[c]['unadapted_specificity']:<8.3f}" for c in cells))
    for name, grid in summary.items():
        lines.append(f"{name:<8}" + "".join(f"{grid[c]['sensitivity']:>7.3f}/{grid[c]['specificity']:<8.3f}" for c in cells))
    return "\n".join(lines) + "\n(sensitivity/specificity, mean of the cell's draws, at the shipped threshold)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.site1", description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", choices=("development", "holdout"))
    parser.add_argument("--distance", action="store_true", help="the site distance's reference (validation batches) and every set's distance")
    parser.add_argument("--labelled", action="store_true", help="what labelled development films buy on the holdout half (after the pick)")
    parser.add_argument("--setting", choices=sorted(SETTINGS), help="with --grid holdout: the setting the rule picked")
    parser.add_argument("--weights", default=str(DEFAULT_MODEL))
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR))
    args = parser.parse_args(argv)
    if args.grid == "holdout" and not args.setting:
        parser.error("--grid holdout reads one setting: the one the development grid picked")
    if not (args.grid or args.distance or args.labelled):
        parser.error("give --grid development, --grid holdout --setting S, --distance or --labelled [--setting S]")
    from pneumo.reading.networks import load_model

    try:
        model, threshold = load_model(args.weights), read_bundle(args.weights).threshold
        training = sets.training(args.data_dir)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    cache = args.cache_dir or None
    if args.distance:
        result = distances(model, args.data_dir, cache)
        for size, r in result["reference"].items():
            print(f"training site, batches of {size:>3}: median {r['median']:.3f}, 95th percentile {r['p95']:.3f}")
        for name, r in result["sets"].items():
            print(f"{name:<32} {r['films']:>5} films, batches of {r['batch']}: distance {r['median']:.3f} ({r['relative']:.1f}x the training site's)")
        (sets.SITE_LISTS / "distance.json").write_text(json.dumps(result, indent=1) + "\n")
        return 0
    if args.labelled:  # without --setting (no label-free pick): the labels alone
        plan = plan_for(args.setting, training_sensitivity(model, training, cache)) if args.setting else None
        result = labelled_calibration(model, args.setting, plan, sets.site_half("development", args.data_dir),
                                      sets.site_half("holdout", args.data_dir), cache, threshold)
        print(json.dumps(result, indent=1))
        (sets.SITE_LISTS / "labelled.json").write_text(json.dumps(result, indent=1) + "\n")
        return 0
    sensitivity = training_sensitivity(model, training, cache)
    names = list(SETTINGS) if args.grid == "development" else [args.setting]
    plans = {name: plan_for(name, sensitivity) for name in names}
    results: dict = {"threshold": threshold, "plans": {n: {k: int(v.sum()) for k, v in p.items()} for n, p in plans.items()}}
    grids = {"development": sets.site_half("development", args.data_dir), "validation": sets.validation(args.data_dir)} \
        if args.grid == "development" else {"holdout": sets.site_half("holdout", args.data_dir)}
    for name, samples in grids.items():
        films, _ = load_images(samples, cache, progress=False)
        results[name] = run_grid(model, films, labels_of(samples), threshold, plans, natural=name == "holdout")
        print(f"\n{name}: {len(samples)} films\n{format_grid(results[name])}", flush=True)
    if args.grid == "development":
        results["qualifies"] = {n: qualifies(results["development"][n], results["validation"][n]) for n in plans}
        results["pick"] = choose(results, plans)
        print(f"\nqualifies: {results['qualifies']}\nthe rule's pick: {results['pick']}")
    else:  # the one holdout read: the safety floor and the target, judged whatever they give; the plan ships only if safe
        grid = results["holdout"][args.setting]
        results["safe"] = safe(grid)
        results["target_met"] = all(c["sensitivity"] >= FLOOR_SENSITIVITY and c["specificity"] >= 0.80 for c in grid.values())
        print(f"\nholdout: safety floor held in every cell: {results['safe']}; target met in every cell: {results['target_met']}")
        if results["safe"]:
            plan = plans[args.setting]
            validation = json.loads((sets.SITE_LISTS / "development-grid.json").read_text())["validation"][args.setting]
            write_shipped(args.weights, plan={"setting": args.setting, "layers": {k: v.tolist() for k, v in plan.items()},
                                              "campaign": "site1 (docs/SITE.md)", "measured": plan_measured(grid, validation)})
            print(f"the plan ships: {Path(args.weights).with_name(SITE_FILE)}")
    out = sets.SITE_LISTS / f"{args.grid}-grid.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
