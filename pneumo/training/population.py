"""How the shipped model reads X-rays from outside its training population, and what the
population check (pneumo.population) says about the shared DICOM radiographs.

    python -m pneumo.training.population [--write]

Prints tables and a JSON line: the share of adult NORMAL and adult COVID-19 X-rays from two other
hospitals (`../shared/data/adult/`, never used for training) that the model calls PNEUMONIA at the
shipped threshold; and which warning the page and the CLI give (pneumo.analysis.prepare, the one
path of both: guard first, then the population check) on every adult file, on the 524 validation
X-rays of the r-series split and the 624 test X-rays (false alarms), and on the shared DICOMs with
and without their headers. With --write it stores those numbers beside the weights
(population.json), where the page reads them to say what the reading is worth there, and puts them
in the model card.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from pneumo.bundle import CARD_FILE, DEFAULT_MODEL, POPULATION_FILE, load_bundle
from pneumo.training.data import DEFAULT_ADULT_DIR, DEFAULT_CACHE_DIR, DEFAULT_DATA_DIR, list_adult, load_images
from pneumo.training.report import set_card_section, write_json

WARNING_KINDS = ("not_xray", "inverted", "population", "lateral")


def warning_kind(data: bytes, name: str, guard) -> str | None:
    """The warning kind a file gets on the app's path (pneumo.analysis.prepare), None for no warning."""
    from pneumo.analysis import prepare

    warning = prepare(data, name, guard).warning
    return warning[0] if warning else None


def warnings_on(paths: list[Path], guard=None) -> dict:
    """How many of these files get each warning kind on the app's path ("none": no warning); the
    shipped guard unless one is given."""
    from pneumo.guard import load_guard

    guard = guard or load_guard()
    counts = dict.fromkeys((*WARNING_KINDS, "none"), 0)
    for path in paths:
        counts[warning_kind(path.read_bytes(), path.name, guard) or "none"] += 1
    return {"images": len(paths)} | counts


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
    from pneumo.guard import load_guard
    from pneumo.overlay import to_png_bytes

    guard = load_guard()
    for dcm in sorted((data_dir.parent / "dicom").glob("*.dcm")):
        decoded = read_file(dcm)
        verdict = check_header(decoded.header)
        # its pixels alone, as a PNG: what an upload of the same picture without the header gets
        report["dicom"][dcm.name] = {"kind": verdict.kind, "seen": verdict.seen,
                                     "without_header": warning_kind(to_png_bytes(decoded.image), dcm.stem + ".png", guard)}
    from pneumo.training.data import optional_test_split, train_val_split

    _, validation = train_val_split(data_dir, 0.1, 42)  # the r-series split (seed 42)
    sets = {f"{source} {label}": [s.path for s in samples if s.source == source and s.label == label]
            for source, label in sorted({(s.source, s.label) for s in samples})}
    sets["validation (pediatric)"] = [s.path for s in validation]
    test = optional_test_split(data_dir)
    if test:
        sets["test (pediatric)"] = [s.path for s in test]
    report["warnings"] = {name: warnings_on(paths, guard) for name, paths in sets.items()}
    return report


def card_text(report: dict) -> str:
    """The model card's section: what the model says on adults, and what the page warns on each set."""
    lines = [
        f"Measured with `python -m pneumo.training.population` at the shipped threshold {report['threshold']:.3f}, on adult X-rays "
        "from two other hospitals (`../shared/data/adult/`, never trained on) and the pediatric validation and test X-rays.",
        "",
        "| set | images | called PNEUMONIA | \"not a chest X-ray\" | inverted | population | no warning |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, w in report.get("warnings", {}).items():
        called = report["adult"].get(name, {}).get("called_pneumonia")
        lines.append(f"| {name} | {w['images']} | {'' if called is None else f'{called:.1%}'} | {w['not_xray']} | {w['inverted']} | "
                     f"{w['population']} | {w['none']} |")
    for name, d in report.get("dicom", {}).items():
        lines.append(f"\nShared DICOM `{name}`: {d['kind'] or 'no population warning'} ({d['seen'] or '-'}); its pixels without the header: "
                     f"{d.get('without_header') or 'no warning'}.")
    lines.append("\nThe population warning comes from the DICOM header (age, view) only: no score from the image passed its "
                 "pre-registered targets (`docs/POPULATION.md`), so an adult's X-ray saved as a JPEG or PNG gets no population warning.")
    return "\n".join(lines)


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
        print(f"{name}: {m['kind'] or 'no population warning'} ({m['seen'] or '-'}); without its header: {m['without_header'] or 'no warning'}")
    print(f"\n{'warnings on the app path':<26} {'images':>7}" + "".join(f"{k:>11}" for k in (*WARNING_KINDS, "none")))
    for name, w in report["warnings"].items():
        print(f"{name:<26} {w['images']:>7}" + "".join(f"{w[k]:>11}" for k in (*WARNING_KINDS, "none")))
    print(json.dumps(report))
    if args.write:
        write_json(Path(args.weights).with_name(POPULATION_FILE), report)
        set_card_section(Path(args.weights).with_name(CARD_FILE), "Outside the training population", card_text(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
