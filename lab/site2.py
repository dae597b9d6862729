"""Campaign site2 (docs/SITE.md, issue #53): a labelled fit that never does harm.

    python -m lab.site2 --simulate      # every registered rule, 1,000 draws per size, on the development half; the pick
    python -m lab.site2 --holdout       # once, after the pick: the pick on the holdout half, five draws per size
    python -m lab.site2 --write         # the pick and what sites can expect (the simulation) -> weights/site.json

Each rule sets a site threshold from n labelled pneumonias and n labelled normals of one half; the
threshold is read on the rest of that half beside the shipped threshold. Scores are the shipped
network's (no adaptation), computed once per half and kept in lab/runs/site2/<half>-scores.csv.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from lab.site1 import kth_lowest
from pneumo.bundle import DEFAULT_MODEL, SITE_FILE, read_bundle
from pneumo.operating import logits as logit
from pneumo.reading.siteprofile import sensitivity_upper_bound
from pneumo.training import sets
from pneumo.training.data import DEFAULT_CACHE_DIR, DEFAULT_DATA_DIR, labels_of, load_images

RUNS = Path(__file__).resolve().parent / "runs" / "site2"
OOF = Path(__file__).resolve().parent / "runs" / "cv5" / "oof.csv"
SIZES, SIMULATED_DRAWS, HOLDOUT_DRAWS = (20, 30, 50, 100), 1000, 5
FLOOR_SENSITIVITY, FLOOR_SPECIFICITY_DROP, SHARE, TIE = 0.95, 0.02, 0.95, 0.005
Z, PRIOR_FILMS = 1.969, 50  # binormal: the out-of-fold sensitivity at t0 (0.9755) of a normal curve; shrunk: the prior's weight


def oof_medians(path: Path = OOF) -> dict[str, float]:
    """The training site's per-class median logit (out-of-fold scores of the five fold networks)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    scores = {c: logit([float(r["probability"]) for r in rows if r["label"] == c]) for c in ("NORMAL", "PNEUMONIA")}
    return {"normal": float(np.median(scores["NORMAL"])), "pneumonia": float(np.median(scores["PNEUMONIA"]))}


def make_rules(l0: float, medians: dict[str, float]) -> dict:
    """Every registered rule: (pneumonia logits, normal logits) -> threshold logit."""

    def kth(p, n):
        return kth_lowest(p)  # an order statistic: the same film on the logit scale as on the probability one

    def shift_p(p, n):
        return l0 + float(np.median(p)) - medians["pneumonia"]

    def shift_both(p, n):
        return l0 + 0.5 * ((float(np.median(p)) - medians["pneumonia"]) + (float(np.median(n)) - medians["normal"]))

    def binormal(p, n):
        return float(np.mean(p) - Z * np.std(p, ddof=1))

    def shrunk(p, n):
        return (len(p) * binormal(p, n) + PRIOR_FILMS * l0) / (len(p) + PRIOR_FILMS)

    def bounded(rule):
        def rule_with_bound(p, n):
            t = rule(p, n)
            if t >= l0:
                return t
            return t if sensitivity_upper_bound(int((p >= l0).sum()), len(p)) < FLOOR_SENSITIVITY else l0
        return rule_with_bound

    rules = {"shipped": lambda p, n: l0, "kth": kth, "shift-P": shift_p, "shift-both": shift_both, "binormal": binormal, "shrunk": shrunk}
    for name in ("kth", "shift-P", "shift-both", "binormal", "shrunk"):
        rules[f"{name}+bound"] = bounded(rules[name])
    return rules


def half_scores(half: str, weights: str, data_dir: str, cache: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) of one half by the shipped network, computed once and kept."""
    path = RUNS / f"{half}-scores.csv"
    samples = sets.site_half(half, data_dir)
    names = [f"{s.path.parent.name}/{s.path.name}" for s in samples]
    if path.is_file():
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        if [r["file"] for r in rows] == names:
            return np.array([int(r["label"]) for r in rows]), np.array([float(r["probability"]) for r in rows])
    from pneumo.reading.networks import load_model, predict_gray

    gray, _ = load_images(samples, cache, progress=False)
    probabilities = predict_gray(load_model(weights), gray)
    labels = labels_of(samples)
    RUNS.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label", "probability"])
        writer.writerows((n, int(y), f"{p:.6f}") for n, y, p in zip(names, labels, probabilities))
    return labels, np.round(probabilities, 6)


def simulate(labels: np.ndarray, logits: np.ndarray, rules: dict, l0: float, draws: int) -> dict:
    """Per size and rule, every draw's (sensitivity, specificity, shipped specificity, threshold logit)
    on the films of the half not drawn."""
    out: dict = {}
    positive, negative = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    for n in SIZES:
        rows = {name: [] for name in rules}
        for d in range(draws):
            rng = np.random.default_rng(10_000 * n + d)
            chosen_p = rng.choice(positive, n, replace=False)
            chosen_n = rng.choice(negative, n, replace=False)
            rest = np.setdiff1d(np.arange(len(labels)), np.r_[chosen_p, chosen_n])
            rest_labels, rest_logits = labels[rest], logits[rest]
            shipped_specificity = float((rest_logits[rest_labels == 0] < l0).mean())
            for name, rule in rules.items():
                t = rule(logits[chosen_p], logits[chosen_n])
                rows[name].append((float((rest_logits[rest_labels == 1] >= t).mean()), float((rest_logits[rest_labels == 0] < t).mean()),
                                   shipped_specificity, t))
        out[n] = {name: np.array(r) for name, r in rows.items()}
    return out


def judged(draws: np.ndarray) -> np.ndarray:
    """Per draw: the floor held (sensitivity at least 0.95, specificity no more than 0.02 below the shipped threshold's)."""
    return (draws[:, 0] >= FLOOR_SENSITIVITY) & (draws[:, 1] >= draws[:, 2] - FLOOR_SPECIFICITY_DROP)


def summary(draws: np.ndarray) -> dict:
    def spread(v):
        return {"mean": float(v.mean()), "p5": float(np.quantile(v, 0.05)), "p95": float(np.quantile(v, 0.95)),
                "min": float(v.min()), "max": float(v.max())}

    return {"sensitivity": spread(draws[:, 0]), "specificity": spread(draws[:, 1]), "shipped_specificity": spread(draws[:, 2]),
            "threshold": spread(1 / (1 + np.exp(-draws[:, 3]))), "floor_held": float(judged(draws).mean()), "draws": len(draws)}


def pick(results: dict, rules: dict) -> str:
    """The qualifying rule (the floor in at least 95 % of draws at every size) with the highest mean
    specificity over every draw; within TIE, the one registered first."""
    qualifying = [name for name in rules if all(judged(results[n][name]).mean() >= SHARE for n in SIZES)]
    mean = {name: float(np.mean([results[n][name][:, 1].mean() for n in SIZES])) for name in qualifying}
    best = max(mean.values())
    return next(name for name in rules if name in mean and mean[name] >= best - TIE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.site2", description=__doc__.split("\n\n")[0])
    parser.add_argument("--simulate", action="store_true", help="every rule on the development half; the pick")
    parser.add_argument("--holdout", action="store_true", help="once, after the pick: the pick on the holdout half")
    parser.add_argument("--write", action="store_true", help="ship the pick beside the weights (after the holdout read)")
    parser.add_argument("--weights", default=str(DEFAULT_MODEL))
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR))
    args = parser.parse_args(argv)
    if args.simulate + args.holdout + args.write != 1:
        parser.error("give --simulate, --holdout or --write")
    if args.write:
        simulation = json.loads((RUNS / "simulation.json").read_text())
        chosen = simulation["pick"]
        if chosen != "shift-P+bound":
            parser.error(f"serving implements shift-P+bound (pneumo.reading.siteprofile.site_threshold), not {chosen}")
        rule = {"rule": chosen, "training_pneumonia_logit": simulation["oof_medians"]["pneumonia"],
                "source": "campaign site2 (docs/SITE.md): the development half of the test folder, "
                          f"{simulation['draws']} draws per size, read on the films not drawn",
                "expected": {n: {key: {k: round(cell[key][k], 4) for k in ("mean", "p5", "p95")}
                                 for key in ("sensitivity", "specificity", "shipped_specificity")}
                             for n, per_rule in simulation["table"].items() for name, cell in per_rule.items() if name == chosen}}
        path = Path(args.weights).with_name(SITE_FILE)
        shipped = json.loads(path.read_text()) if path.is_file() else {}
        path.write_text(json.dumps(shipped | {"labelled_rule": rule}, indent=1) + "\n")
        print(f"wrote the labelled rule {chosen} to {path}")
        return 0
    t0 = read_bundle(args.weights).threshold
    l0 = float(logit(t0))
    rules = make_rules(l0, oof_medians())
    cache = args.cache_dir or None
    if args.simulate:
        labels, probabilities = half_scores("development", args.weights, args.data_dir, cache)
        results = simulate(labels, logit(probabilities), rules, l0, SIMULATED_DRAWS)
        table = {str(n): {name: summary(d) for name, d in per_rule.items()} for n, per_rule in results.items()}
        chosen = pick(results, rules)
        print(f"development half: {int((labels == 0).sum())} NORMAL, {int((labels == 1).sum())} PNEUMONIA; shipped threshold {t0:.4f}; "
              f"{SIMULATED_DRAWS} draws per size")
        print(f"{'rule':<18}" + "".join(f"{f'{n}+{n}':>40}" for n in SIZES))
        for name in rules:
            cells = []
            for n in SIZES:
                s = table[str(n)][name]
                cells.append(f"{s['sensitivity']['mean']:.3f}/{s['specificity']['mean']:.3f} floor {s['floor_held']:.3f} "
                             f"t {s['threshold']['mean']:.2f}")
            print(f"{name:<18}" + "".join(f"{c:>40}" for c in cells))
        print("(mean sensitivity / mean specificity on the rest of the half; share of draws where the floor held; mean threshold)")
        print(f"the rule's pick: {chosen}")
        out = {"shipped_threshold": t0, "oof_medians": oof_medians(), "draws": SIMULATED_DRAWS, "table": table, "pick": chosen}
        RUNS.mkdir(parents=True, exist_ok=True)
        (RUNS / "simulation.json").write_text(json.dumps(out, indent=1) + "\n")
        return 0
    chosen = json.loads((RUNS / "simulation.json").read_text())["pick"]
    labels, probabilities = half_scores("holdout", args.weights, args.data_dir, cache)
    results = simulate(labels, logit(probabilities), {chosen: rules[chosen]}, l0, HOLDOUT_DRAWS)
    out = {"rule": chosen, "shipped_threshold": t0, "sizes": {}}
    print(f"holdout half, the pick {chosen}, {HOLDOUT_DRAWS} draws per size, read on the rest of the half:")
    for n in SIZES:
        d = results[n][chosen]
        out["sizes"][str(n)] = {"draws": [dict(zip(("sensitivity", "specificity", "shipped_specificity", "threshold"),
                                                    (*map(float, row[:3]), float(1 / (1 + np.exp(-row[3])))))) for row in d],
                                "floor_held": int(judged(d).sum())}
        print(f"{n}+{n}: sensitivity {d[:, 0].mean():.3f} ({d[:, 0].min():.3f}-{d[:, 0].max():.3f}), specificity {d[:, 1].mean():.3f} "
              f"({d[:, 1].min():.3f}-{d[:, 1].max():.3f}), shipped threshold's specificity {d[:, 2].mean():.3f}; floor held in "
              f"{int(judged(d).sum())} of {len(d)} draws")
    (RUNS / "holdout.json").write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
