"""Train and measure the lung segmenter (pneumo.lungs serves it).

    python -m pneumo.training.lungs --fit         # train on the children's masks -> weights/lungs.keras, lungs.json
    python -m pneumo.training.lungs --measure     # Dice per source of the shipped segmenter, and its speed

Data: `../shared/data/lungmasks/` (its README). What ships is trained on the pediatric masks only
(V7 Labs, CC BY 4.0, of the Kermany training children; the terms of the adult sets do not allow
shipping a model trained on them), on 80 % of those children's patients; the other 20 % (grouped by
patient, seed 42) and each adult source (JSRT, Montgomery, Shenzhen: three hospitals, held out whole)
measure it. Dice is computed on the 299x299 frame the classifier sees (image and mask squashed alike).

The network: a U-Net (four levels, BatchNorm, ReLU; bilinear upsampling) on the equalised input at
pneumo.lungs.LUNG_SIZE px; loss binary cross-entropy + soft Dice; joint flips, rotations, zooms and
shifts of image and mask, and gamma/contrast/noise on the image; a fixed number of epochs (no
selection on any held-out set).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pneumo.bundle import REPO_ROOT
from pneumo.lungs import EVIDENCE_VALUES, FIELD_VALUES, LUNG_SIZE, LUNGS_FILE, lung_input
from pneumo.preprocess import to_gray299

DEFAULT_MASK_DIR = REPO_ROOT.parent / "shared" / "data" / "lungmasks"
SOURCES = ("children", "JSRT", "Montgomery", "Shenzhen")
_SOURCE_NAMES = {"pediatric": "children", "jsrt": "JSRT", "montgomery": "Montgomery", "shenzhen": "Shenzhen"}
HELD_OUT_CHILDREN, SEED = 0.2, 42


@dataclass(frozen=True)
class LungPair:
    source: str  # "children", "JSRT", "Montgomery" or "Shenzhen"
    image: Path
    mask: Path
    group: str  # the patient (children: from the file name; adults: each file its own)


def list_pairs(mask_dir: str | Path = DEFAULT_MASK_DIR) -> list[LungPair]:
    """The lungmasks MANIFEST.csv, as (source, image, mask, patient)."""
    from pneumo.training.data import patient_id

    mask_dir = Path(mask_dir)
    manifest = mask_dir / "MANIFEST.csv"
    if not manifest.is_file():
        raise FileNotFoundError(f"no lung masks at {mask_dir} (expected {manifest})")
    pairs = []
    with open(manifest, newline="") as handle:
        for row in csv.DictReader(handle):
            source = _SOURCE_NAMES[row["source"]]
            image = (mask_dir / row["image"]).resolve()
            label = 1 if "PNEUMONIA" in row["image"] else 0
            group = f"children/{patient_id(image.name, label)}" if source == "children" else f"{source}/{image.name}"
            pairs.append(LungPair(source, image, mask_dir / row["mask"], group))
    return pairs


def held_out_children(pairs: list[LungPair], fraction: float = HELD_OUT_CHILDREN, seed: int = SEED) -> np.ndarray:
    """True for the children held out (about `fraction` of them, whole patients, seeded)."""
    groups = sorted({p.group for p in pairs if p.source == "children"})
    rng = np.random.default_rng(seed)
    held = set(rng.choice(groups, size=int(round(fraction * len(groups))), replace=False))
    return np.array([p.source == "children" and p.group in held for p in pairs])


def training_pairs(pairs: list[LungPair]) -> np.ndarray:
    """True for the pairs the shipped segmenter is trained on: the children not held out; the rest measure it."""
    return np.array([p.source == "children" for p in pairs]) & ~held_out_children(pairs)


def load_pair(pair: LungPair) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 299x299 image as the classifier sees it, boolean 299x299 mask squashed the same way)."""
    from pneumo.imageio import read_image_file

    gray = to_gray299(read_image_file(pair.image))
    mask = Image.open(pair.mask).convert("L").resize((299, 299), Image.Resampling.BILINEAR)
    return gray, np.asarray(mask) >= 128


def load_pairs(pairs: list[LungPair]) -> tuple[np.ndarray, np.ndarray]:
    loaded = [load_pair(p) for p in pairs]
    return np.stack([g for g, _ in loaded]), np.stack([m for _, m in loaded])


def dice(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Dice of each (N, H, W) boolean mask pair (1 when both are empty)."""
    p, t = np.asarray(predicted, bool).reshape(len(predicted), -1), np.asarray(truth, bool).reshape(len(truth), -1)
    both = (p & t).sum(axis=1)
    total = p.sum(axis=1) + t.sum(axis=1)
    return np.where(total == 0, 1.0, 2 * both / np.maximum(total, 1))


def build_unet(size: int = LUNG_SIZE, filters: tuple[int, ...] = (8, 16, 32, 64), bottleneck: int = 96):
    """A small U-Net: per level two 3x3 convolutions with BatchNorm and ReLU, max-pooling down,
    bilinear upsampling and skip connections up, a sigmoid 1x1 output."""
    import keras
    from keras import layers

    def block(x, n: int, name: str):
        for i in (1, 2):
            x = layers.Conv2D(n, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
            x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
            x = layers.ReLU(name=f"{name}_relu{i}")(x)
        return x

    inputs = keras.Input((size, size, 1), name="equalised")
    x, skips = inputs, []
    for level, n in enumerate(filters):
        x = block(x, n, f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(name=f"pool{level}")(x)
    x = block(x, bottleneck, "bottom")
    for level, n in reversed(list(enumerate(filters))):
        x = layers.UpSampling2D(interpolation="bilinear", name=f"up{level}")(x)
        x = layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = block(x, n, f"dec{level}")
    outputs = layers.Conv2D(1, 1, activation="sigmoid", name="lungs")(x)
    return keras.Model(inputs, outputs, name="lung_unet")


def dice_bce_loss(y_true, y_pred):
    import keras.ops as ops

    bce = ops.mean(ops.binary_crossentropy(y_true, y_pred))
    inter = ops.sum(y_true * y_pred, axis=(1, 2, 3))
    soft = 1 - (2 * inter + 1) / (ops.sum(y_true, axis=(1, 2, 3)) + ops.sum(y_pred, axis=(1, 2, 3)) + 1)
    return bce + ops.mean(soft)


def training_dataset(images: np.ndarray, masks: np.ndarray, batch_size: int, seed: int):
    """tf.data of (equalised image, mask) at LUNG_SIZE, shuffled, with joint geometric augmentation
    (both through the same random layers, stacked as channels) and intensity changes on the image."""
    import tensorflow as tf
    from keras import layers

    x = lung_input(images)
    y = np.stack([np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize((LUNG_SIZE, LUNG_SIZE), Image.Resampling.BILINEAR))
                  for m in masks])[..., np.newaxis].astype(np.float32) / 255.0
    geometric = [layers.RandomFlip("horizontal", seed=seed), layers.RandomRotation(0.04, fill_mode="constant", seed=seed + 1),
                 layers.RandomZoom((-0.2, 0.25), fill_mode="constant", seed=seed + 2),
                 layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=seed + 3)]

    def augment(image, mask):
        both = tf.concat([image, mask], axis=-1)
        for layer in geometric:
            both = layer(both, training=True)
        image, mask = both[..., :1], tf.cast(both[..., 1:] >= 0.5, tf.float32)
        gamma = tf.exp(tf.random.uniform([tf.shape(image)[0], 1, 1, 1], -0.4, 0.4))
        image = tf.clip_by_value(image, 0.0, 1.0) ** gamma
        contrast = tf.random.uniform([tf.shape(image)[0], 1, 1, 1], 0.7, 1.3)
        mean = tf.reduce_mean(image, axis=(1, 2, 3), keepdims=True)
        image = (image - mean) * contrast + mean + tf.random.normal(tf.shape(image), 0.0, 0.02)
        return tf.clip_by_value(image, 0.0, 1.0), mask

    data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return data.batch(batch_size).map(augment, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


def save_for_serving(model, out: Path) -> None:
    """The weights in a fresh, uncompiled copy of the network: no optimizer state in the file (a third of the size)."""
    clean = build_unet(int(model.input_shape[1]))
    clean.set_weights(model.get_weights())
    clean.save(out)


def measure(segmenter, images: np.ndarray, masks: np.ndarray, sources: np.ndarray) -> dict:
    """Dice per source: mean, 5th percentile, and the images."""
    predicted = np.concatenate([segmenter.masks(images[i:i + 32]) for i in range(0, len(images), 32)])
    scores = dice(predicted, masks)
    # predicted over true lung area: above 1 where the prediction includes lung the reference leaves out
    # (the children's masks include the lung behind the heart; the adult sets' do not)
    ratio = predicted.reshape(len(predicted), -1).sum(axis=1) / np.maximum(masks.reshape(len(masks), -1).sum(axis=1), 1)
    return {s: {"images": int((sources == s).sum()), "dice_mean": float(scores[sources == s].mean()),
                "dice_p5": float(np.quantile(scores[sources == s], 0.05)),
                "area_ratio_median": float(np.median(ratio[sources == s]))} for s in SOURCES if (sources == s).any()}


def speed(segmenter, image: np.ndarray, repeats: int = 30) -> float:
    """Warm seconds per X-ray for one mask (the page's path: one image at a time)."""
    segmenter.mask(image)
    start = time.perf_counter()
    for _ in range(repeats):
        segmenter.mask(image)
    return (time.perf_counter() - start) / repeats


# --- guard campaigns g4 and g5 (docs/LUNGS.md): a chest X-ray by its lungs -------------------------

LIMIT_QUANTILES, LIMIT_MARGIN = (0.001, 0.999), 0.25


def field_limits(fields: list, keys: tuple[str, ...]) -> dict[str, list[float]]:
    """Each value's 0.1st-99.9th percentile range over the training children's lung fields, widened
    by 25 % of that range on both sides."""
    from pneumo.lungs import field_values

    values = [field_values(f) for f in fields]
    limits = {}
    for key in keys:
        column = np.array([v[key] for v in values], dtype=np.float64)
        low, high = np.nanquantile(column, LIMIT_QUANTILES)
        limits[key] = [float(low - LIMIT_MARGIN * (high - low)), float(high + LIMIT_MARGIN * (high - low))]
    return limits


def guard_outcomes(guard, gray: np.ndarray, fields: list, limits: dict, pictures: list | None = None) -> dict[str, np.ndarray]:
    """The warning kind ("" for none) each picture gets from today's guard and from variants R and S."""
    from pneumo.lungs import plausible_fields

    today, rescue, substitute = [], [], []
    for i, (g, f) in enumerate(zip(gray, fields)):
        verdict = guard.check(g, pictures[i] if pictures is not None else None)
        lungs_ok = plausible_fields(f, limits)
        kind = "" if verdict.plausible else verdict.kind
        today.append(kind)
        rescue.append("" if (verdict.check == "layout" and verdict.kind == "not_xray" and lungs_ok) else kind)
        if verdict.check in ("colour", "blank", "detail"):
            substitute.append(kind)
        elif not guard._fits(g)[0] and guard._fits(255 - g)[0]:
            substitute.append("inverted")
        else:
            substitute.append("" if lungs_ok else "not_xray")
    return {"today": np.array(today), "R": np.array(rescue), "S": np.array(substitute)}


CAMPAIGNS = {"g4": (FIELD_VALUES, ("R", "S")), "g5": (EVIDENCE_VALUES, ("R",))}


def lung_guard_campaign(campaign: str, data_dir: Path, mask_dir: Path, cache_dir: str | None) -> dict:
    """Campaign g4 or g5 as docs/LUNGS.md pre-registered it: limits on the training children, then
    every count for today's guard and the campaign's variants, and the rule's pick."""
    from pneumo.guard import load_guard
    from pneumo.imageio import read_file
    from pneumo.lungs import lung_fields, load_segmenter, upsampled
    from pneumo.training.data import list_adult_sources, list_split, load_images, optional_test_split, train_val_split
    from pneumo.training.synthetic import non_xray_images

    keys, variants = CAMPAIGNS[campaign]
    segmenter = load_segmenter()
    guard = load_guard(adult_score=None)

    def fields_of(gray: np.ndarray) -> list:
        out = []
        for i in range(0, len(gray), 64):
            probability = upsampled(segmenter.probabilities(gray[i:i + 64]))
            out += [lung_fields(p >= 0.5, g, p) for g, p in zip(gray[i:i + 64], probability)]
        return out

    children = list_split(data_dir, "train")
    gray_children, _ = load_images(children, cache_dir, progress=False)
    children_fields = fields_of(gray_children)
    limits = field_limits(children_fields, keys)
    sets: dict[str, tuple[np.ndarray, list, list | None]] = {}
    adults = list_adult_sources()
    gray_adults, _ = load_images(adults, cache_dir, progress=False)
    source = np.array([a.source for a in adults])
    for name in ("NIH", "Hannover", "web"):
        sets[name] = (gray_adults[source == name], fields_of(gray_adults[source == name]), None)
    pairs = [p for p in list_pairs(mask_dir) if p.source != "children"]
    gray_pairs = np.stack([load_pair(p)[0] for p in pairs])
    pair_source = np.array([p.source for p in pairs])
    for name in ("JSRT", "Montgomery", "Shenzhen"):
        sets[name] = (gray_pairs[pair_source == name], fields_of(gray_pairs[pair_source == name]), None)
    pictures = [image for _, image in non_xray_images()]
    gray_non = np.stack([to_gray299(p) for p in pictures])
    sets["non-X-rays"] = (gray_non, fields_of(gray_non), pictures)
    test = optional_test_split(data_dir)
    gray_test, _ = load_images(test, cache_dir, progress=False)
    sets["test"] = (gray_test, fields_of(gray_test), None)
    sets["test inverted"] = (255 - gray_test, fields_of(255 - gray_test), None)
    _, validation = train_val_split(data_dir, 0.1, SEED)
    in_validation = np.flatnonzero(np.isin([str(s.path) for s in children], [str(s.path) for s in validation]))
    sets["validation"] = (gray_children[in_validation], [children_fields[i] for i in in_validation], None)
    dicoms = sorted((data_dir.parent / "dicom").glob("*.dcm"))
    decoded = [read_file(d).image for d in dicoms]
    gray_dicom = np.stack([to_gray299(d) for d in decoded])
    sets["DICOMs"] = (gray_dicom, fields_of(gray_dicom), decoded)
    counts: dict = {}
    for name, (gray, fields, pics) in sets.items():
        outcomes = {v: k for v, k in guard_outcomes(guard, gray, fields, limits, pics).items() if v == "today" or v in variants}
        counts[name] = {variant: {"images": len(kinds), "not_xray": int((kinds == "not_xray").sum()),
                                  "inverted": int((kinds == "inverted").sum()), "passed": int((kinds == "").sum())}
                        for variant, kinds in outcomes.items()}
        if name == "DICOMs":
            for variant, kinds in outcomes.items():
                counts[name][variant]["kinds"] = {d.name: k or None for d, k in zip(dicoms, kinds)}
    adult_sets = ("NIH", "Hannover", "web", "JSRT", "Montgomery", "Shenzhen")

    def meets(v: str) -> bool:
        c = {name: counts[name][v] for name in counts}
        return (all(c[a]["not_xray"] <= 0.01 * c[a]["images"] for a in adult_sets)
                and c["non-X-rays"]["passed"] == 0 and c["test"]["passed"] == c["test"]["images"]
                and c["validation"]["passed"] == c["validation"]["images"]
                and c["test inverted"]["inverted"] == c["test inverted"]["images"]
                and c["DICOMs"]["kinds"] == counts["DICOMs"]["today"]["kinds"])

    def as_good(v: str) -> bool:  # at least as well as today's on every count
        c, t = {n: counts[n][v] for n in counts}, {n: counts[n]["today"] for n in counts}
        return (all(c[a]["not_xray"] + c[a]["inverted"] <= t[a]["not_xray"] + t[a]["inverted"] for a in adult_sets)
                and c["non-X-rays"]["passed"] <= t["non-X-rays"]["passed"] and c["test"]["passed"] >= t["test"]["passed"]
                and c["validation"]["passed"] >= t["validation"]["passed"]
                and c["test inverted"]["inverted"] >= t["test inverted"]["inverted"] and c["DICOMs"]["kinds"] == t["DICOMs"]["kinds"])

    pick = next((v for v in variants if meets(v)), None) or next((v for v in variants if as_good(v)), None)
    from pneumo.lungs import plausible_fields

    missed = [name for (name, _), f in zip(non_xray_images(), sets["non-X-rays"][1]) if plausible_fields(f, limits)]
    return {"campaign": campaign, "limits": limits, "counts": counts, "meets_targets": {v: meets(v) for v in variants},
            "as_good_as_today": {v: as_good(v) for v in variants}, "pick": pick, "non_xrays_with_plausible_lungs": missed}


def print_campaign(result: dict) -> None:
    variants = list(next(iter(result["counts"].values())))
    print(f"{'set':<14}" + "".join(f"{v + ' not_xray':>14}{v + ' inverted':>13}{v + ' passed':>11}" for v in variants))
    for name, c in result["counts"].items():
        print(f"{name:<14}" + "".join(f"{c[v]['not_xray']:>14}{c[v]['inverted']:>13}{c[v]['passed']:>11}" for v in variants)
              + f"   of {c['today']['images']}")
    print(f"non-X-rays with plausible lungs: {result['non_xrays_with_plausible_lungs']}")
    print(f"meets every target: {result['meets_targets']}; at least as good as today: {result['as_good_as_today']}; pick: {result['pick']}")


def fit(mask_dir: Path, out: Path, epochs: int, batch_size: int, learning_rate: float, seed: int) -> dict:
    import keras

    from pneumo.lungs import LungSegmenter

    keras.utils.set_random_seed(seed)
    pairs = list_pairs(mask_dir)
    sources = np.array([p.source for p in pairs])
    trained = training_pairs(pairs)
    train = np.flatnonzero(trained)
    print(f"loading {len(pairs)} pairs ({len(train)} training children)", flush=True)
    images, masks = load_pairs(pairs)
    model = build_unet()
    steps = int(np.ceil(len(train) / batch_size)) * epochs
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.02)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=dice_bce_loss)
    started = time.time()
    backup = out.parent / "lungs-checkpoint"
    model.fit(training_dataset(images[train], masks[train], batch_size, seed), epochs=epochs, verbose=2,
              callbacks=[keras.callbacks.BackupAndRestore(str(backup))])  # resumes an interrupted --fit
    seconds = time.time() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    save_for_serving(model, out)
    evaluated = ~trained
    segmenter = LungSegmenter(model)
    report = {
        "trained_on": f"{len(train)} lung masks of {len({pairs[i].group for i in train})} training children (Kermany et al. 2018 "
                      "images; V7 Labs masks, CC BY 4.0, which include the lung behind the heart), 80 % of the children's patients",
        "terms": "CC BY 4.0 (images: Kermany et al. 2018; masks: V7 Labs, v7labs/covid-19-xray-dataset)",
        "size": LUNG_SIZE, "parameters": int(model.count_params()), "file_bytes": out.stat().st_size,
        "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate, "seed": seed, "train_seconds": round(seconds),
        "held_out": measure(segmenter, images[evaluated], masks[evaluated], sources[evaluated]),
        "warm_seconds_per_xray": speed(segmenter, images[0]),
        "command": "python -m pneumo.training.lungs --fit",
    }
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def card_text(info: dict) -> str:
    """The model card's section on the lung segmenter: what it was trained on, under which terms, how it measures."""
    lines = [f"A U-Net ({info.get('parameters', 0):,} parameters, {info.get('file_bytes', 0) / 1e6:.1f} MB, {info.get('size')} px) "
             f"outlines the lungs for the page's \"share of the map inside the lungs\" and the lung outline. Trained on "
             f"{info.get('trained_on')}; terms: {info.get('terms')}. Held out (`python -m pneumo.training.lungs --measure`):", "",
             "| held out | images | Dice mean | Dice 5th percentile |", "|---|---|---|---|"]
    for source, m in info.get("held_out", {}).items():
        lines.append(f"| {source} | {m['images']} | {m['dice_mean']:.3f} | {m['dice_p5']:.3f} |")
    lines.append("\nThe adult sets' masks leave out the lung behind the heart, which the children's masks include: part of "
                 "the adults' lower Dice is that difference of definition (docs/LUNGS.md). The guard does not use the lungs yet "
                 "(campaigns g4 and g5 let non-X-rays through).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo.training.lungs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--fit", action="store_true", help="train on the children's masks and write the segmenter")
    parser.add_argument("--measure", action="store_true", help="Dice per source of the shipped segmenter, and its speed")
    parser.add_argument("--guard", choices=sorted(CAMPAIGNS), help="a lung-field guard campaign: its limits and every count (docs/LUNGS.md)")
    parser.add_argument("--data-dir", default=str(REPO_ROOT.parent / "shared" / "data" / "chest_xray"))
    parser.add_argument("--cache-dir", default=str(REPO_ROOT / ".cache"))
    parser.add_argument("--mask-dir", default=str(DEFAULT_MASK_DIR))
    parser.add_argument("--out", default=str(LUNGS_FILE))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    try:
        if args.guard:
            result = lung_guard_campaign(args.guard, Path(args.data_dir), Path(args.mask_dir), args.cache_dir or None)
            print_campaign(result)
            print(json.dumps(result))
            # The limits ship whatever the outcome (the page and tests use them); the guard uses them only if g4 picked a variant.
            info_file = Path(args.out).with_suffix(".json")
            info = json.loads(info_file.read_text()) if info_file.is_file() else {}
            info |= {"field_limits": result["limits"], "guard": result["pick"],
                     args.guard: {k: result[k] for k in ("counts", "meets_targets", "as_good_as_today", "pick")}}
            info_file.write_text(json.dumps(info, indent=2) + "\n")
            return 0
        if args.fit:
            report = fit(Path(args.mask_dir), Path(args.out), args.epochs, args.batch_size, args.learning_rate, args.seed)
        elif args.measure:
            from pneumo.lungs import load_segmenter

            segmenter = load_segmenter(args.out)
            if segmenter is None:
                raise FileNotFoundError(f"no segmenter at {args.out}; train one with --fit")
            pairs = list_pairs(args.mask_dir)
            chosen = [p for p, trained in zip(pairs, training_pairs(pairs)) if not trained]
            images, masks = load_pairs(chosen)
            report = {"held_out": measure(segmenter, images, masks, np.array([p.source for p in chosen])),
                      "warm_seconds_per_xray": speed(segmenter, images[0])}
            info_file = Path(args.out).with_suffix(".json")
            info = json.loads(info_file.read_text()) if info_file.is_file() else {}
            info = info | report | {"file_bytes": Path(args.out).stat().st_size}
            info_file.write_text(json.dumps(info, indent=2) + "\n")
            from pneumo.bundle import CARD_FILE
            from pneumo.training.report import set_card_section

            set_card_section(Path(args.out).with_name(CARD_FILE), "Lung segmenter", card_text(info))
        else:
            parser.print_help()
            return 2
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for source, m in report["held_out"].items():
        print(f"{source:<12} {m['images']:>5} images  Dice mean {m['dice_mean']:.4f}  5th percentile {m['dice_p5']:.4f}"
              f"  predicted/true area {m.get('area_ratio_median', float('nan')):.3f}")
    print(f"warm: {report['warm_seconds_per_xray'] * 1000:.1f} ms per X-ray")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
