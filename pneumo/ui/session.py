"""Per-browser-session results, typed: each readable file is analysed once, under the hash of its
bytes, in st.session_state; a file that cannot be read becomes a Failure with a human message."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import streamlit as st

from pneumo.analysis import PreparedImage, digest_of, prepare
from pneumo.bundle import CLASS_NAMES, predicted_label
from pneumo.imageio import ImageReadError
from pneumo.ui.sidebar import Settings

MAX_CACHED_FILES = 32  # per browser session; the oldest results are dropped first


@dataclass
class Analysis:
    name: str  # as uploaded this time (the same bytes may come back under another name)
    prepared: PreparedImage
    probability: float
    maps: dict[tuple[int, str], Map] = field(default_factory=dict)  # (explained class, method) -> map
    lungs: np.ndarray | None = field(default=None, repr=False)  # boolean 299x299 lung mask (None without a segmenter)

    @property
    def warning(self) -> tuple[str, str] | None:
        """(kind, text): the guard's or the population check's objection to reading it, if any."""
        return self.prepared.warning


@dataclass(frozen=True)
class Map:
    heatmap: np.ndarray  # (299, 299) in [0, 1]
    empty: bool  # no region raised the explained class's score


@dataclass(frozen=True)
class Failure:
    name: str
    message: str


def results_store() -> dict[str, Analysis]:
    return st.session_state.setdefault("results", {})


def analyse(data: bytes, name: str, engine, settings: Settings, guard) -> Analysis | Failure:
    """The probability (once per file) and the heatmap for the current settings (once per file,
    class and method). A file that cannot be read is only checked again (cheap: it fails on its
    header) and reported under its current name."""
    store = results_store()
    key = digest_of(data) + ("" if engine.site is None else "@" + engine.site.key)  # a site's network reads anew
    analysis = store.get(key)
    if analysis is None:
        try:
            prepared = prepare(data, name, guard)
            result = engine.analyze(prepared.gray299, target=settings.target, threshold=settings.threshold, method=settings.method)
            lungs = engine.lungs(prepared.gray299)
        except ImageReadError as error:
            return Failure(name, str(error))
        except Exception as error:  # noqa: BLE001 - whatever a file does, the page keeps working
            return Failure(name, f"{name}: could not be processed ({type(error).__name__}).")
        analysis = Analysis(name, prepared, result.probability, {(result.explained_class, settings.method): Map(result.heatmap, result.empty)},
                            lungs)
        store[key] = analysis
        while len(store) > MAX_CACHED_FILES:
            store.pop(next(iter(store)))
    return dataclasses.replace(analysis, name=name)  # shares the maps dict with the stored one


def map_for(analysis: Analysis, engine, settings: Settings) -> tuple[int, Map]:
    """(explained class, map) for the current settings; computed only when not cached yet."""
    if settings.target == "predicted":
        wanted = predicted_label(analysis.probability, settings.threshold)
    else:
        wanted = int(settings.target == "pneumonia")
    key = (wanted, settings.method)
    if key not in analysis.maps:
        result = engine.analyze(analysis.prepared.gray299, target=CLASS_NAMES[wanted].lower(), method=settings.method)
        analysis.maps[key] = Map(result.heatmap, result.empty)
    return wanted, analysis.maps[key]
