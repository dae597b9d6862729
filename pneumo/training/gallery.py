"""The teaching gallery: every test X-ray the shipped model misreads at the shipped threshold (false
positives and false negatives), as small thumbnails of the X-ray beside its heatmap, with its
probability. Built offline from the shipped weights through the reader (pneumo.reading,
pneumo.reading.networks, the default method explaining the class the model predicted), and kept small
(JPEG, 128 px high) in the bundle's gallery/ folder with gallery.json; the page's Model section shows it.

    python -m pneumo.training.gallery            # rebuild weights/gallery/ for the shipped weights

The test split is only reported here, never used to choose anything. The images are the data
set's (Kermany et al. 2018, CC BY 4.0).
"""

from __future__ import annotations

import argparse
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from pneumo.bundle import CARD_FILE, CLASS_NAMES, DEFAULT_MODEL, GALLERY_DIR, GALLERY_FILE
from pneumo.bundle import DEFAULT_METHOD, METHOD_NAMES
from pneumo.training.data import DEFAULT_DATA_DIR, list_split
from pneumo.training.report import set_card_section

THUMB_HEIGHT = 128
CREDIT = "Kermany et al., Cell 2018 (CC BY 4.0): test split of the Kaggle chest_xray layout"


def thumbnail(picture: Image.Image, blended: Image.Image, height: int = THUMB_HEIGHT) -> Image.Image:
    """The X-ray and its overlay side by side, `height` pixels high."""
    width = max(1, round(picture.width * height / picture.height))
    pair = Image.new("RGB", (2 * width + 2, height), (255, 255, 255))
    pair.paste(picture.convert("RGB").resize((width, height), Image.Resampling.LANCZOS), (0, 0))
    pair.paste(blended.convert("RGB").resize((width, height), Image.Resampling.LANCZOS), (width + 2, 0))
    return pair


def build(weights: Path, data_dir: Path, method: str = DEFAULT_METHOD, opacity: float = 0.4) -> dict:
    from pneumo.bundle import sha256_of
    from pneumo.outputs.picture import overlay
    from pneumo.reading import Reader

    reader = Reader(weights)
    threshold = reader.threshold
    folder = weights.with_name(GALLERY_DIR)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    samples = list_split(data_dir, "test")
    items = []
    for sample in tqdm(samples, desc="test split", unit="img"):
        result = reader.read(sample.path, method=method)
        heat = result.maps[next(iter(result.maps))]
        called = int(result.probability >= threshold)
        if called == sample.label:
            continue
        kind = "false_positive" if called == 1 else "false_negative"
        name = f"{kind}-{sample.path.stem}.jpg"
        blended = result.picture if heat.empty else overlay(result.picture, heat.heatmap, opacity)
        thumbnail(result.picture, blended).save(folder / name, quality=70, optimize=True)
        items.append({"file": sample.path.name, "truth": CLASS_NAMES[sample.label], "called": CLASS_NAMES[called],
                      "kind": kind, "probability": round(float(result.probability), 5), "empty_map": bool(heat.empty),
                      "image": name})
    items.sort(key=lambda i: (i["kind"], -i["probability"] if i["kind"] == "false_positive" else i["probability"]))
    gallery = {
        "weights_sha256": sha256_of(weights), "threshold": threshold, "method": method, "method_name": METHOD_NAMES[method],
        "test_images": len(samples), "built": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m pneumo.training.gallery", "credit": CREDIT, "items": items,
    }
    (weights.with_name(GALLERY_FILE)).write_text(json.dumps(gallery, indent=1) + "\n")
    return gallery


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo.training.gallery", description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--method", default=DEFAULT_METHOD, choices=sorted(METHOD_NAMES))
    args = parser.parse_args(argv)
    if not (args.data_dir / "test").is_dir():
        raise SystemExit(f"no test split at {args.data_dir / 'test'}")
    gallery = build(args.weights, args.data_dir, args.method)
    counts = {k: sum(i["kind"] == k for i in gallery["items"]) for k in ("false_positive", "false_negative")}
    size = sum(p.stat().st_size for p in args.weights.with_name(GALLERY_DIR).iterdir())
    set_card_section(args.weights.with_name(CARD_FILE), "Teaching gallery",
                     f"The page's Model section shows every test X-ray misread at the shipped threshold {gallery['threshold']:.3f}: "
                     f"{counts['false_positive']} false positives and {counts['false_negative']} false negatives of {gallery['test_images']}, "
                     f"each beside its {gallery['method_name']} map (`{gallery['command']}`, {size / 1024:.0f} KB in `{GALLERY_DIR}/`).")
    print(f"{counts['false_positive']} false positives, {counts['false_negative']} false negatives of {gallery['test_images']} "
          f"test X-rays at threshold {gallery['threshold']:.4f}; {size / 1024:.0f} KB in {args.weights.with_name(GALLERY_DIR)}")
    print(json.dumps({"threshold": gallery["threshold"], **counts, "kilobytes": round(size / 1024)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
