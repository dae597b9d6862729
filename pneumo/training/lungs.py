"""Train and measure the lung segmenter (pneumo.reading.lungs serves it).

    python -m pneumo.training.lungs --fit         # train on the children's masks -> weights/lungs.keras, lungs.json
    python -m pneumo.training.lungs --measure     # Dice per source of the shipped segmenter, and its speed

Data: `../shared/data/lungmasks/` (its README). What ships is trained on the pediatric masks only
(V7 Labs, CC BY 4.0, of the Kermany training children; the terms of the adult sets do not allow
shipping a model trained on them), on 80 % of those children's patients; the other 20 % (grouped by
patient, seed 42) and each adult source (JSRT, Montgomery, Shenzhen: three hospitals, held out whole)
measure it. Dice is computed on the 299x299 frame the classifier sees (image and mask squashed alike).

The network: a U-Net (four levels, BatchNorm, ReLU; bilinear upsampling) on the equalised input at
pneumo.reading.lungs.LUNG_SIZE px; loss binary cross-entropy + soft Dice; joint flips, rotations, zooms and
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
from pneumo.reading.lungs import LUNG_SIZE, LUNGS_FILE, clean_mask, lung_input, stray_pieces
from pneumo.reading.preprocess import to_gray299
from pneumo.training.sets import SHARED_DATA

DEFAULT_MASK_DIR = SHARED_DATA / "lungmasks"
SOURCES = ("children", "JSRT", "Montgomery", "Shenzhen")
_SOURCE_NAMES = {"pediatric": "children", "jsrt": "JSRT", "montgomery": "Montgomery", "shenzhen": "Shenzhen"}
HELD_OUT_CHILDREN, SEED = 0.2, 42
RETIRED_INFO = ("field_limits", "guard", "g4", "g5")  # the lung-field guard campaigns' numbers, which docs/LUNGS.md keeps


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
    from pneumo.reading.decode import read_image_file

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


def network_masks(segmenter, images: np.ndarray) -> np.ndarray:
    """The network's own masks (before pneumo.reading.lungs.clean_mask), in batches."""
    return np.concatenate([segmenter.masks(images[i:i + 32], clean=False) for i in range(0, len(images), 32)])


def measure(segmenter, images: np.ndarray, masks: np.ndarray, sources: np.ndarray) -> dict:
    """Per source: Dice of the shipped (cleaned) masks, mean and 5th percentile, the network's own
    masks' mean Dice before cleaning, the masks with stray pieces before cleaning, and the images."""
    raw = network_masks(segmenter, images)
    predicted = np.stack([clean_mask(m) for m in raw])
    scores, before = dice(predicted, masks), dice(raw, masks)
    stray = np.array([stray_pieces(m) > 0 for m in raw])
    # predicted over true lung area: above 1 where the prediction includes lung the reference leaves out
    # (the children's masks include the lung behind the heart; the adult sets' do not)
    ratio = predicted.reshape(len(predicted), -1).sum(axis=1) / np.maximum(masks.reshape(len(masks), -1).sum(axis=1), 1)
    return {s: {"images": int((sources == s).sum()), "dice_mean": float(scores[sources == s].mean()),
                "dice_p5": float(np.quantile(scores[sources == s], 0.05)),
                "dice_mean_before_cleaning": float(before[sources == s].mean()),
                "stray_before_cleaning": int(stray[sources == s].sum()),
                "area_ratio_median": float(np.median(ratio[sources == s]))} for s in SOURCES if (sources == s).any()}


def stray_on_validation(segmenter, data_dir: Path, cache_dir: str | None) -> dict:
    """How many of the validation children's masks have stray pieces, from the network and as shipped (cleaned)."""
    from pneumo.training import sets
    from pneumo.training.data import load_images

    gray, _ = load_images(sets.validation(data_dir), cache_dir, progress=False)
    raw = network_masks(segmenter, gray)
    return {"images": len(gray), "network": int(sum(stray_pieces(m) > 0 for m in raw)),
            "shipped": int(sum(stray_pieces(clean_mask(m)) > 0 for m in raw))}


def speed(segmenter, image: np.ndarray, repeats: int = 30) -> float:
    """Warm seconds per X-ray for one mask (the page's path: one image at a time)."""
    segmenter.mask(image)
    start = time.perf_counter()
    for _ in range(repeats):
        segmenter.mask(image)
    return (time.perf_counter() - start) / repeats


def fit(mask_dir: Path, out: Path, epochs: int, batch_size: int, learning_rate: float, seed: int) -> dict:
    import keras

    from pneumo.reading.lungs import LungSegmenter

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
                 "the adults' lower Dice is that difference of definition (docs/LUNGS.md). Each half of the image keeps its "
                 "largest piece of the mask, with holes filled: the Dice above is of those cleaned masks.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo.training.lungs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--fit", action="store_true", help="train on the children's masks and write the segmenter")
    parser.add_argument("--measure", action="store_true", help="Dice per source of the shipped segmenter, and its speed")
    parser.add_argument("--data-dir", default=str(SHARED_DATA / "chest_xray"))
    parser.add_argument("--cache-dir", default=str(REPO_ROOT / ".cache"))
    parser.add_argument("--mask-dir", default=str(DEFAULT_MASK_DIR))
    parser.add_argument("--out", default=str(LUNGS_FILE))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    try:
        if args.fit:
            report = fit(Path(args.mask_dir), Path(args.out), args.epochs, args.batch_size, args.learning_rate, args.seed)
        elif args.measure:
            from pneumo.reading.lungs import load_segmenter

            segmenter = load_segmenter(args.out)
            if segmenter is None:
                raise FileNotFoundError(f"no segmenter at {args.out}; train one with --fit")
            pairs = list_pairs(args.mask_dir)
            chosen = [p for p, trained in zip(pairs, training_pairs(pairs)) if not trained]
            images, masks = load_pairs(chosen)
            report = {"held_out": measure(segmenter, images, masks, np.array([p.source for p in chosen])),
                      "warm_seconds_per_xray": speed(segmenter, images[0])}
            if (Path(args.data_dir) / "train").is_dir():
                report["validation_stray"] = stray_on_validation(segmenter, Path(args.data_dir), args.cache_dir or None)
            info_file = Path(args.out).with_suffix(".json")
            info = json.loads(info_file.read_text()) if info_file.is_file() else {}
            info = {k: v for k, v in info.items() if k not in RETIRED_INFO} | report | {"file_bytes": Path(args.out).stat().st_size}
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
              f"  predicted/true area {m.get('area_ratio_median', float('nan')):.3f}"
              f"  before cleaning: Dice mean {m['dice_mean_before_cleaning']:.4f}, {m['stray_before_cleaning']} with stray pieces")
    if "validation_stray" in report:
        v = report["validation_stray"]
        print(f"validation children's masks with stray pieces: {v['network']} of {v['images']} from the network, {v['shipped']} as shipped")
    print(f"warm: {report['warm_seconds_per_xray'] * 1000:.1f} ms per X-ray")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
