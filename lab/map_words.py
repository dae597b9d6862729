"""What the page says about where each map lies, counted over a folder: the map's weight in the lungs
against the lungs' share (drawn to them, even, drawn away), where its hottest part lies, and how
often that part lies on a mark burned into the film.

    python -m lab.map_words ../shared/data/chest_xray/test ../shared/data/adult_web   # one JSON line per folder
"""

from __future__ import annotations

import json
import sys
from collections import Counter

from pneumo.outputs.words import EVEN, hottest_region, on_a_mark
from pneumo.reading import Reader, expand_inputs


def count(reader: Reader, folder: str) -> dict:
    tally: dict[str, Counter] = {"in_lungs": Counter(), "hottest": Counter()}
    on_marks, maps, examples = 0, 0, []
    for result in reader.read_many(expand_inputs([folder]), maps=True):
        if result.error or result.heatmap_empty or result.heatmap is None or result.lungs is None:
            continue
        maps += 1
        ratio = (result.map_in_lungs or 0.0) / max(result.lung_share, 1e-9)
        tally["in_lungs"]["drawn to the lungs" if ratio >= EVEN[1] else "drawn away" if ratio <= EVEN[0] else "even"] += 1
        tally["hottest"][hottest_region(result.heatmap, result.lungs) or "no lungs"] += 1
        if on_a_mark(result.heatmap, result.gray299):
            on_marks += 1
            examples.append(result.name.rsplit("/", 1)[-1])
    return {"folder": folder, "maps": maps, "on_a_mark": on_marks, "on_a_mark_share": round(on_marks / max(maps, 1), 4),
            "in_lungs": dict(tally["in_lungs"]), "hottest": dict(tally["hottest"]), "on_a_mark_examples": examples[:12]}


def main(argv: list[str] | None = None) -> int:
    reader = Reader()
    for folder in (sys.argv[1:] if argv is None else argv):
        print(json.dumps(count(reader, folder)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
