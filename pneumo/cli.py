"""The `pneumo` command (installed by `pip install .`; `python -m pneumo` in a checkout): one word per job.

    pneumo predict FILES... [--csv out.csv | --json] [--no-maps] [--site site.json] [--dicom-out DIR]
    pneumo adapt FILES|DIR --out site.json [--labels labels.csv]   # a site profile from a site's own films
    pneumo app [streamlit options]                                  # the page, on the shipped weights
    pneumo listen --port 11112 --send-to AET@HOST:PORT              # a DICOM node (pneumo.node)
    pneumo evaluate [--split test]                                  # needs the "train" extra and the data set

`predict` recognises files by content (DICOM included). A file that cannot be read gets its own error
line; the others are still read, and the exit status is 1 when any file failed (2 for a usage error).
A picture the checks flag (not a chest X-ray, inverted, a lateral view, outside the training
population) is read with a warning: `warning` for a person, `warning_kind` (not_xray, inverted,
lateral, population) for machines, and for population and lateral `population_source` (dicom: the
header decided; image: the image score did). `reading` is the label, or INDETERMINATE inside the band
around the threshold. Where the lung segmenter ships, every file read also gets `lung_share` (the
share of the image the lungs cover) and `map_in_lungs` (the share of the default heatmap's mass
inside them); `--no-maps` skips both. `--dicom-out DIR` writes, for each DICOM input, a Secondary
Capture and a Structured Report a PACS files beside the study (pneumo.outputs.dicom).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from pneumo.bundle import DEFAULT_MODEL

COMMANDS = {"predict": "read chest X-ray files or folders: a line, a CSV row or a JSON object per file",
            "adapt": "fit the model to a site from its own films: a site profile",
            "app": "start the page (streamlit run) on the shipped weights",
            "listen": "a DICOM node: read the images a PACS sends, send back a Secondary Capture and a report",
            "evaluate": "evaluate a model on a split of the data set (needs the training extra)"}
CSV_FIELDS = ["file", "probability", "label", "reading", "error", "warning_kind", "population_source", "lung_share", "map_in_lungs",
              "warning", "site"]


def _usage() -> str:
    return "usage: pneumo {predict,adapt,app,listen,evaluate} ...\n\n" + "\n".join(f"  {name:<9} {what}" for name, what in COMMANDS.items())


def predict(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pneumo predict", description="Read chest X-ray files or folders (folders recursively).")
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
    parser.add_argument("--sr", choices=("comprehensive-3d", "comprehensive"), default="comprehensive-3d",
                        help="the Structured Report's SOP class: Comprehensive 3D SR (IHE AI Results, default) or Comprehensive SR, "
                             "for receivers that take no 3D SR")
    parser.add_argument("--csv", default=None, help="write " + ",".join(CSV_FIELDS) + " rows to this CSV")
    args = parser.parse_args(argv)

    from pneumo.reading import files_or_say

    files = files_or_say(args.inputs)
    if not files:
        return 2
    try:
        from pneumo.reading import Reader

        reader = Reader(args.weights, site=args.site, threshold=args.threshold)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from tqdm import tqdm

    bar = tqdm(total=len(files), unit="img", desc="predicting", file=sys.stderr)
    dicom_out = Path(args.dicom_out) if args.dicom_out else None
    written, not_dicom, problems, used = 0, 0, [], set()
    rows = []
    for result in reader.read_many(files, maps=not args.no_maps, pictures=dicom_out is not None, batch_size=args.batch_size,
                                   progress=lambda done: bar.update(done - bar.n)):
        if dicom_out is not None and result.error is None:
            outcome = _write_dicom(result, dicom_out, used, comprehensive=args.sr == "comprehensive")
            written, not_dicom = written + (outcome is True), not_dicom + (outcome is False)
            if isinstance(outcome, str):
                problems.append(outcome)
        rows.append(result.row())  # what is printed or written; the pictures go with the result
    bar.close()

    threshold = reader.threshold
    if args.csv:
        with open(args.csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    if args.json:
        for row in rows:
            print(json.dumps({**row, "threshold": threshold}))
    elif not args.csv:
        for r in rows:
            if r["error"]:
                print(f"{r['file']}\tERROR\t{r['error']}")
            else:
                shown = r["label"] if r["reading"] == r["label"] else f"{r['reading']} (leaning {r['label']})"
                print(f"{r['file']}\t{shown}\tP(pneumonia)={r['probability']:.4f}\t(threshold {threshold:.3f})"
                      + (f"\tWARNING ({r['warning_kind']}): {r['warning']}" if r["warning"] else ""))
    failed = sum(r["error"] is not None for r in rows)
    if dicom_out is not None:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"wrote DICOM results (Secondary Capture and Structured Report) for {written} file(s) to {args.dicom_out}"
              + (f"; {not_dicom} JPEG/PNG input(s) have no patient or study to file them under, so none for them" if not_dicom else ""),
              file=sys.stderr)
        failed += len(problems)
    if failed:
        print(f"{failed} of {len(rows)} file(s) could not be read", file=sys.stderr)
    if args.csv:
        print(f"wrote {len(rows)} rows to {args.csv} ({failed} errors)", file=sys.stderr)
    return 1 if failed else 0


def _write_dicom(result, out: Path, used: set[str], comprehensive: bool = False) -> bool | str:
    """A DICOM input's Secondary Capture and Structured Report in `out`, as NAME.sc.dcm and NAME.sr.dcm:
    True; False for a JPEG or PNG; a message for a person when they could not be written."""
    from pneumo.outputs.dicom import as_comprehensive_sr, to_bytes

    if result.dicom is None:
        return False
    path = Path(result.name)
    try:
        sc, sr = result.to_dicom()
        sr = as_comprehensive_sr(sr) if comprehensive else sr
        stem, k = path.stem, 1
        while stem in used:  # the same name in two folders
            k += 1
            stem = f"{path.stem}-{k}"
        used.add(stem)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{stem}.sc.dcm").write_bytes(to_bytes(sc))
        (out / f"{stem}.sr.dcm").write_bytes(to_bytes(sr))
        return True
    except Exception as error:  # noqa: BLE001 - one odd header must not stop the others
        return f"{path}: no DICOM results written ({type(error).__name__}: {error})"


def adapt(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pneumo adapt", description="Fit the model to a site from its own films: a site profile.")
    parser.add_argument("inputs", nargs="+", help="the site's films: files or folders (NORMAL/ and PNEUMONIA/ folders give labels)")
    parser.add_argument("--out", required=True, help="where to write the site profile (JSON)")
    parser.add_argument("--labels", default=None, help="a CSV with the columns file and label (NORMAL or PNEUMONIA)")
    parser.add_argument("--name", default=None, help="the site's name (default: the first input's name)")
    parser.add_argument("--weights", default=str(DEFAULT_MODEL), help="the model the profile is for (default: the shipped one)")
    args = parser.parse_args(argv)
    from pneumo.reading import files_or_say

    files = files_or_say(args.inputs)
    if not files:
        return 2
    try:
        from pneumo.reading import Reader, fit_files, read_labels

        labels = read_labels(args.labels) if args.labels else None
        profile, report, films = fit_files(Reader(args.weights), files, args.name or Path(args.inputs[0]).resolve().name, labels)
        profile.save(args.out)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for film, why in films.left_out:
        print(f"left out: {film}: {why}", file=sys.stderr)
    from pneumo.reading import describe_fit

    print("\n".join(describe_fit(report, profile)))
    print(f"wrote {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "predict":
        return predict(rest)
    if command == "adapt":
        return adapt(rest)
    if command == "listen":
        from pneumo.node import main as listen

        return listen(rest)
    if command == "app":
        from streamlit.web import cli as streamlit

        sys.argv = ["streamlit", "run", str(Path(__file__).with_name("app.py")), *rest]
        return streamlit.main()
    if command == "evaluate":
        try:
            from pneumo.training.evaluate import main as evaluate
        except ImportError as error:
            print(f"error: evaluating needs the training extra (pip install \"pneumo[train]\"): {error}", file=sys.stderr)
            return 2
        return evaluate(rest)
    print(f"error: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
