"""Predict pneumonia for chest X-ray files or folders from the command line.

    python -m pneumo.predict xray1.jpeg xray2.png            # one line per file
    python -m pneumo.predict scans/ --csv out.csv            # a folder, recursively, into a CSV
    python -m pneumo.predict xray.jpeg --json                # JSON lines

Files are recognised by content, not name (DICOM included). A file that cannot be read gets its own
error line; the others are still predicted, and the exit status is 1 when any file failed (2 for a
usage error). A picture that does not look like a chest X-ray, a DICOM whose header puts it outside
the training population (age outside 1-5 years, a lateral view), or a picture without such a header
that looks like an adult's chest X-ray (the image score), is predicted with a warning: `warning` for a
person, `warning_kind` (not_xray, inverted, lateral, population) for machines, and for population
and lateral `population_source`: `dicom` (the header decided) or `image` (the image score did).
`reading` is the label, or INDETERMINATE inside the band around the threshold (pneumo.operating).
Where the lung segmenter ships (pneumo.lungs), every file that was read also gets `lung_share` (the
share of the image the lungs cover) and `map_in_lungs` (the share of the default heatmap's mass,
HiResCAM for the predicted class, inside the lungs; empty for an empty map), the maps of a batch in
one pass; `--no-maps` skips both for probabilities and warnings alone. A progress bar goes to stderr.
`--dicom-out DIR` writes, for each DICOM input, the results a PACS files beside the study: a Secondary
Capture of the X-ray with its heatmap, lung outline and caption, and a Structured Report of the
finding (pneumo.dicomout).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pneumo.analysis import model_view, warning_of, warning_source
from pneumo.bundle import DEFAULT_MODEL, label_name
from pneumo.guard import XrayGuard, load_guard
from pneumo.imageio import ImageReadError, read_file
from pneumo.operating import band_at, reading
from pneumo.population import PopulationVerdict
from pneumo.preprocess import to_model_input


@dataclass
class FileResult:
    file: str
    probability: float | None = None
    label: str | None = None  # the threshold's label
    reading: str | None = None  # the label, or INDETERMINATE inside the band (pneumo.operating)
    error: str | None = None
    warning: str | None = None  # for a person: not a chest X-ray, or outside the training population
    warning_kind: str | None = None  # for machines: not_xray, inverted, lateral, population
    population_source: str | None = None  # with a population or lateral warning: "dicom" (the header) or "image" (the image score)
    site: str | None = None  # the site profile in use (--site), for a person; None: the shipped model as it is
    lung_share: float | None = None  # the share of the image the lungs cover (pneumo.lungs)
    map_in_lungs: float | None = None  # the share of the default heatmap's mass inside the lungs


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files as given; folders walked recursively (hidden files skipped), in sorted order."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
        else:
            files.append(path)
    return files


def files_or_say(inputs: list[str]) -> list[Path]:
    """`expand_inputs`, saying on stderr when nothing was found ([] then: the caller exits with 2)."""
    files = expand_inputs(inputs)
    if not files:
        print("error: no files found in " + ", ".join(inputs), file=sys.stderr)
    return files


def _load(path: Path, guard: XrayGuard | None) -> tuple[np.ndarray, dict] | str:
    """(model input as uint8, the warning's fields) or an error message."""
    try:
        decoded = read_file(path)
        gray, verdict, population = model_view(decoded.image, guard, decoded.header)
        return gray, _warning_fields(warning_of(verdict, population), population)
    except ImageReadError as error:
        return str(error)
    except Exception as error:  # noqa: BLE001 - one odd file must not stop the batch
        return f"{path}: could not be processed ({type(error).__name__}: {error})"


def _warning_fields(warning: tuple[str, str] | None, population: PopulationVerdict) -> dict:
    if warning is None:
        return {}
    return {"warning": warning[1], "warning_kind": warning[0], "population_source": warning_source(warning, population)}


@dataclass
class _Chunk:
    """A batch of files as the reading thread hands it over: each file's model view or error, and the
    stacked uint8 images of those read with their model input (pneumo.preprocess.to_model_input)."""
    loaded: list[tuple[np.ndarray, dict] | str]
    good: list[int]
    gray: np.ndarray
    model_input: np.ndarray


def _read_chunk(paths: list[Path], guard: XrayGuard | None) -> _Chunk:
    loaded = [_load(path, guard) for path in paths]
    good = [i for i, item in enumerate(loaded) if not isinstance(item, str)]
    gray = np.stack([loaded[i][0] for i in good]) if good else np.empty((0, 299, 299), np.uint8)
    return _Chunk(loaded, good, gray, to_model_input(gray))


def predict_files(
    model, files: list[Path], threshold: float, batch_size: int = 32, progress: bool = False, guard: XrayGuard | None = None,
    engine=None, maps: bool = True,
) -> list[FileResult]:
    """Read, check, preprocess and predict in batches; with an engine (pneumo.engine) that has a lung
    segmenter and maps on, each file's lung share and the share of its default map inside the lungs
    too, the maps of a whole batch in one pass. One thread reads, checks and prepares the next batch
    while the network works on this one (one thread, not more: on two cores a second reader slowed
    the network more than it read, issue #45)."""
    results: list[FileResult] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(files), unit="img", desc="predicting", file=sys.stderr)
    chunks = [files[start : start + batch_size] for start in range(0, len(files), batch_size)]
    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = reader.submit(_read_chunk, chunks[0], guard) if chunks else None
        for k, paths in enumerate(chunks):
            chunk = pending.result()
            pending = reader.submit(_read_chunk, chunks[k + 1], guard) if k + 1 < len(chunks) else None
            batch_results = [
                FileResult(str(p), error=item) if isinstance(item, str) else FileResult(str(p), **item[1]) for p, item in zip(paths, chunk.loaded)
            ]
            if not chunk.good:
                probs = []
            elif maps and engine is not None and engine.segmenter is not None:  # the heatmap's pass gives the probability too
                probs = _with_lung_fields([batch_results[i] for i in chunk.good], chunk, engine, threshold)
            else:
                probs = np.asarray(model.predict_on_batch(chunk.model_input)).reshape(-1)
            for i, prob in zip(chunk.good, probs):
                batch_results[i].probability = float(prob)
                batch_results[i].label = label_name(prob, threshold)
            results += batch_results
            if bar is not None:
                bar.update(len(paths))
    if bar is not None:
        bar.close()
    return results


def _with_lung_fields(results: list[FileResult], chunk: _Chunk, engine, threshold: float) -> list[float]:
    """Each image's probability from the pass that explains it, with its lung share and the share of
    that map inside the lungs written into its result."""
    from pneumo.lungs import lung_share, map_in_lungs

    probs = []
    masks = engine.lung_masks(chunk.gray, batch_size=len(chunk.gray), equalized=chunk.model_input[..., 0])
    explanations = engine.analyze_batch(chunk.gray, threshold=threshold, model_input=chunk.model_input)
    for result, explanation, mask in zip(results, explanations, masks):
        inside = map_in_lungs(explanation.heatmap, mask)  # None for an empty map (all zeros)
        result.lung_share = round(lung_share(mask), 4)
        result.map_in_lungs = None if inside is None else round(inside, 4)
        probs.append(explanation.probability)
    return probs


def write_dicom_results(results: list[FileResult], engine, guard: XrayGuard | None, threshold: float, out: Path) -> tuple[int, int, list[str]]:
    """For each DICOM input that was read: its Secondary Capture and Structured Report (pneumo.dicomout)
    in `out`, as NAME.sc.dcm and NAME.sr.dcm, stating the reading its row states. Returns (written,
    inputs that were not DICOM, messages for the DICOM inputs that could not be written)."""
    from pneumo.analysis import prepare
    from pneumo.bundle import weights_sha256
    from pneumo.dicomout import Reading, results as dicom_results, to_bytes

    out.mkdir(parents=True, exist_ok=True)
    sha = weights_sha256(engine.bundle.model_file)
    written, not_dicom, problems, used = 0, 0, [], set()
    for r in results:
        if r.error is not None:
            continue
        path = Path(r.file)
        try:
            prepared = prepare(path.read_bytes(), path.name, guard)
            if prepared.dicom is None:
                not_dicom += 1
                continue
            explanation = engine.analyze(prepared.gray299, threshold=threshold)
            reading_ = Reading(probability=r.probability, reading=r.reading, threshold=threshold, warning_kind=r.warning_kind,
                               warning=r.warning, site=r.site, weights_sha256=sha)
            sc, sr = dicom_results(prepared.dicom, prepared.picture, None if explanation.empty else explanation.heatmap,
                                   engine.lungs(prepared.gray299), reading_)
            stem, k = path.stem, 1
            while stem in used:  # the same name in two folders
                k += 1
                stem = f"{path.stem}-{k}"
            used.add(stem)
            (out / f"{stem}.sc.dcm").write_bytes(to_bytes(sc))
            (out / f"{stem}.sr.dcm").write_bytes(to_bytes(sr))
            written += 1
        except Exception as error:  # noqa: BLE001 - one odd header must not stop the others
            problems.append(f"{path}: no DICOM results written ({type(error).__name__}: {error})")
    return written, not_dicom, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", help="image files or folders (searched recursively)")
    parser.add_argument("--weights", default=str(DEFAULT_MODEL), help="saved .keras model (default: the shipped one)")
    parser.add_argument("--threshold", type=float, default=None, help="decision threshold (default: the site profile's, else the shipped one)")
    parser.add_argument("--site", default=None, help="a site profile (pneumo adapt): the model fitted to that site, and its threshold if calibrated")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--no-maps", action="store_true", help="probabilities and warnings alone: no heatmap, no lung share (faster)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per file")
    parser.add_argument("--dicom-out", default=None, metavar="DIR",
                        help="for each DICOM input, a Secondary Capture (the X-ray with heatmap, lung outline and caption) and a "
                             "Structured Report (the finding) in DIR, new series in the source's study, for a PACS to file")
    parser.add_argument("--csv", default=None, help="write file,probability,label,reading,error,warning_kind,population_source,lung_share,map_in_lungs,warning,site rows to this CSV")
    args = parser.parse_args(argv)

    files = files_or_say(args.inputs)
    if not files:
        return 2
    try:
        from pneumo.engine import load_engine

        engine = load_engine(args.weights, site=args.site)
        bundle = engine.bundle
        threshold = engine.threshold if args.threshold is None else float(args.threshold)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results = predict_files(engine.model, files, threshold, args.batch_size, progress=True, guard=load_guard(), engine=engine,
                            maps=not args.no_maps)
    band = band_at(bundle.uncertainty, threshold)
    for r in results:
        if r.probability is not None:
            r.reading = reading(r.probability, threshold, band).label
        r.site = engine.site.describe() if engine.site is not None else None

    if args.csv:
        with open(args.csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["file", "probability", "label", "reading", "error", "warning_kind", "population_source",
                                                        "lung_share", "map_in_lungs", "warning", "site"], extrasaction="ignore")
            writer.writeheader()
            writer.writerows(asdict(r) for r in results)
    if args.json:
        for r in results:
            print(json.dumps({**asdict(r), "threshold": threshold}))
    elif not args.csv:
        for r in results:
            if r.error:
                print(f"{r.file}\tERROR\t{r.error}")
            else:
                shown = r.label if r.reading == r.label else f"{r.reading} (leaning {r.label})"
                print(f"{r.file}\t{shown}\tP(pneumonia)={r.probability:.4f}\t(threshold {threshold:.3f})" + (f"\tWARNING ({r.warning_kind}): {r.warning}" if r.warning else ""))
    failed = sum(r.error is not None for r in results)
    if args.dicom_out:
        written, not_dicom, problems = write_dicom_results(results, engine, load_guard(), threshold, Path(args.dicom_out))
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"wrote DICOM results (Secondary Capture and Structured Report) for {written} file(s) to {args.dicom_out}"
              + (f"; {not_dicom} JPEG/PNG input(s) have no patient or study to file them under, so none for them" if not_dicom else ""),
              file=sys.stderr)
        failed += len(problems)
    if failed:
        print(f"{failed} of {len(results)} file(s) could not be read", file=sys.stderr)
    if args.csv:
        print(f"wrote {len(results)} rows to {args.csv} ({failed} errors)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
