"""Do the Python API and the CLI give the same probability and warning on every file?

    python -m lab.agree FOLDER [FOLDER ...]     # one JSON line: files, largest difference, disagreements

Each file is read three ways: `pneumo.load().predict` one at a time, `predict_many` (the reader's
batches), and `pneumo predict --csv` in a subprocess. The batched API and the CLI run the same passes,
so they should agree exactly; a single read runs a batch of one, which may move a probability in its
last float32 digits.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    folders = list(sys.argv[1:] if argv is None else argv)
    import pneumo
    from pneumo.reading import expand_inputs

    files = expand_inputs(folders)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cli.csv"
        subprocess.run([sys.executable, "-m", "pneumo", "predict", *folders, "--csv", str(out)], check=False, capture_output=True)
        cli = {row["file"]: row for row in csv.DictReader(out.open())}
    model = pneumo.load()
    many = {r.name: r for r in model.predict_many(files)}
    worst_single, worst_many, disagree = 0.0, 0.0, []
    for path in files:
        row, batched = cli[str(path)], many[str(path)]
        try:
            single = model.predict(path)
        except ValueError as error:  # a file neither can read: both must say so
            if not row["error"]:
                disagree.append(f"{path}: the API could not read it ({error}), the CLI could")
            continue
        if row["error"]:
            disagree.append(f"{path}: the CLI could not read it, the API could")
            continue
        cli_probability = float(row["probability"])
        worst_single = max(worst_single, abs(single.probability - cli_probability))
        worst_many = max(worst_many, abs(batched.probability - cli_probability))
        for name, result in (("predict", single), ("predict_many", batched)):
            if (result.warning_kind or "") != row["warning_kind"] or result.label != row["label"]:
                disagree.append(f"{path}: {name} {result.label}/{result.warning_kind}, CLI {row['label']}/{row['warning_kind']}")
    print(json.dumps({"files": len(files), "max_probability_difference_predict": worst_single,
                      "max_probability_difference_predict_many": worst_many, "disagreements": disagree}))
    return 1 if disagree else 0


if __name__ == "__main__":
    sys.exit(main())
