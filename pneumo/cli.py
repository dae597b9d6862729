"""The `pneumo` command (installed by `pip install .`): one word per job.

    pneumo predict FILES... [--json] [--csv out.csv] [--site site.json]   # = python -m pneumo.predict
    pneumo adapt FILES|DIR --out site.json [--labels labels.csv]          # a site profile (pneumo.adapt)
    pneumo app [streamlit options]                     # the page, on the shipped weights
    pneumo evaluate [--split test]                     # = python -m pneumo.training.evaluate (needs the "train" extra)
"""

from __future__ import annotations

import sys
from pathlib import Path

COMMANDS = {"predict": "predict chest X-ray files or folders (python -m pneumo.predict)",
            "adapt": "fit the model to a site from its own films: a site profile (python -m pneumo.adapt)",
            "app": "start the page (streamlit run) on the shipped weights",
            "evaluate": "evaluate a model on a split of the data set (python -m pneumo.training.evaluate)"}


def _usage() -> str:
    return "usage: pneumo {predict,adapt,app,evaluate} ...\n\n" + "\n".join(f"  {name:<9} {what}" for name, what in COMMANDS.items())


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "predict":
        from pneumo.predict import main as predict

        return predict(rest)
    if command == "adapt":
        from pneumo.adapt import main as adapt

        return adapt(rest)
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
