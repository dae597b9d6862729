"""How the shipped model reads X-rays from outside its training population, and what the
population check (pneumo.population) says about the shared DICOM radiographs.

    python -m pneumo.training.population [--write]

Prints a table and a JSON line: the share of adult NORMAL and adult COVID-19 X-rays from two other
hospitals (`../shared/data/adult/`, never used for training) that the model calls PNEUMONIA at the
shipped threshold. With --write it stores those numbers beside the
weights (population.json), where the page reads them to say what the reading is worth there.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from pneumo.bundle import DEFAULT_MODEL, POPULATION_FILE, load_bundle
from pneumo.training.data import DEFAULT_ADULT_DIR, DEFAULT_CACHE_DIR, DEFAULT_DATA_DIR, list_adult, load_images
from pneumo.training.report import write_json


def measure(weights: Path, adult_dir: Path, data_dir: Path, cache_dir: str | None) -> dict:
    from pneumo.imageio import read_file
    from pneumo.inference import load_model, predict_gray
    from pneumo.population import check_header

    shipped = load_bundle(weights)
    samples = list_adult(adult_dir)
    gray, _ = load_images(samples, cache_dir, progress=False)
    prob = predict_gray(load_model(weights), gray)
    called = prob >= shipped.threshold
    report: dict = {"weights": weights.name, "threshold": shipped.threshold, "adult": {}}
    for source, label in sorted({(s.source, s.label) for s in samples}):
        mask = np.array([s.source == source and s.label == label for s in samples])
        report["adult"][f"{source} {label}"] = {"images": int(mask.sum()), "called_pneumonia": float(called[mask].mean())}
    normal = np.array([s.label == "NORMAL" for s in samples])
    report["adult_normal_called_pneumonia"] = float(called[normal].mean())
    report["adult_normal_images"] = int(normal.sum())
    report["dicom"] = {}
    for dcm in sorted((data_dir.parent / "dicom").glob("*.dcm")):
        verdict = check_header(read_file(dcm).header)
        report["dicom"][dcm.name] = {"kind": verdict.kind, "seen": verdict.seen}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo.training.population", description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=str(DEFAULT_MODEL))
    parser.add_argument("--adult-dir", default=str(DEFAULT_ADULT_DIR))
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR))
    parser.add_argument("--write", action="store_true", help=f"store the numbers beside the weights ({POPULATION_FILE})")
    args = parser.parse_args(argv)
    try:
        report = measure(Path(args.weights), Path(args.adult_dir), Path(args.data_dir), args.cache_dir or None)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{'set':<20} {'images':>7} {'called PNEUMONIA':>17}   (threshold {report['threshold']:.4f})")
    for name, m in report["adult"].items():
        print(f"{name:<20} {m['images']:>7} {m['called_pneumonia']:>17.3f}")
    print(f"adult NORMAL called PNEUMONIA: {report['adult_normal_called_pneumonia']:.3f} of {report['adult_normal_images']}")
    for name, m in report["dicom"].items():
        print(f"{name}: {m['kind'] or 'no population warning'} ({m['seen'] or '-'})")
    print(json.dumps(report))
    if args.write:
        write_json(Path(args.weights).with_name(POPULATION_FILE), report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
