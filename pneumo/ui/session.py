"""Per-browser-session results, typed: each readable file is analysed once, under the hash of its
bytes (and the site profile in use), in st.session_state; a file that cannot be read becomes a
Failure with a human message. One file: probability and map in one pass. Several: read and checked
file by file, then the network and the lungs for each chunk of them in one pass; a row keeps only
what the table shows, and its pictures and map are made again when it is opened. The results kept
are bounded by what they hold, not only by their count."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import streamlit as st

from pneumo.analysis import PreparedImage, digest_of, prepare
from pneumo.bundle import CLASS_NAMES, predicted_label
from pneumo.imageio import ImageReadError
from pneumo.preprocess import IMAGE_SIZE
from pneumo.ui.sidebar import Settings

MAX_CACHED_FILES = 2000  # per browser session; the oldest results are dropped first
MAX_CACHED_BYTES = 400_000_000  # and no more than this in pictures, model inputs, masks and maps
CHUNK = 32  # files read, checked and sent through the network together


@dataclass
class Analysis:
    name: str  # as uploaded this time (the same bytes may come back under another name)
    prepared: PreparedImage
    probability: float
    maps: dict[tuple[int, str], Map] = field(default_factory=dict)  # (explained class, method) -> map
    # the boolean 299x299 lung mask packed eight pixels to a byte (np.packbits): a table of 624 films keeps
    # 7 MB of masks instead of 56 (None without a segmenter)
    lung_bits: np.ndarray | None = field(default=None, repr=False)

    @property
    def lungs(self) -> np.ndarray | None:
        """The boolean 299x299 lung mask (None without a segmenter)."""
        if self.lung_bits is None:
            return None
        return np.unpackbits(self.lung_bits, count=IMAGE_SIZE * IMAGE_SIZE).reshape(IMAGE_SIZE, IMAGE_SIZE).astype(bool)

    @property
    def complete(self) -> bool:
        """Whether it holds its pictures: a table row keeps only what the table shows (`completed`)."""
        return self.prepared.picture is not None

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
    key = _key(data, engine)
    analysis = store.get(key)
    try:
        if analysis is not None:  # read before; a row of an earlier table gets its pictures again
            analysis = completed(analysis, data, engine, guard)
        else:
            prepared = prepare(data, name, guard)
            result = engine.analyze(prepared.gray299, target=settings.target, threshold=settings.threshold, method=settings.method)
            analysis = Analysis(name, prepared, result.probability,
                                {(result.explained_class, settings.method): Map(result.heatmap, result.empty)}, _packed(engine.lungs(prepared.gray299)))
            _keep(store, {key: analysis})
    except Exception as error:  # noqa: BLE001 - whatever a file does, the page keeps working
        return _failure(name, error)
    return dataclasses.replace(analysis, name=name)  # shares the maps dict with the stored one


def _key(data: bytes, engine) -> str:
    return digest_of(data) + ("" if engine.site is None else "@" + engine.site.key)  # a site's network reads anew


def _failure(name: str, error: Exception) -> Failure:
    """A file the page could not read or process, with a message for a person."""
    if isinstance(error, ImageReadError):
        return Failure(name, str(error))
    return Failure(name, f"{name}: could not be processed ({type(error).__name__}).")


def _packed(mask: np.ndarray | None) -> np.ndarray | None:
    return None if mask is None else np.packbits(np.asarray(mask, dtype=bool))


def _size(analysis: Analysis) -> int:
    prepared = analysis.prepared
    maps = sum(m.heatmap.nbytes for m in analysis.maps.values())
    picture = prepared.picture.width * prepared.picture.height if prepared.picture is not None else 0
    model_input = prepared.gray299.nbytes if prepared.gray299 is not None else 0
    view = prepared.view.values.nbytes if prepared.view is not None else 0  # a DICOM's own values at display size: 4 bytes a pixel
    return picture + model_input + view + (analysis.lung_bits.nbytes if analysis.lung_bits is not None else 0) + maps


def _row(prepared: PreparedImage) -> PreparedImage:
    """What a table row keeps of a file: its identity, checks and header fields, not its pictures (a
    full-size film's display picture is about 1 MB, a DICOM's values 4 MB more), so that the store
    holds thousands of rows; `completed` reads the file again when a row is opened or printed."""
    return dataclasses.replace(prepared, picture=None, gray299=None, view=None, dicom=None)


def completed(analysis: Analysis, data: bytes, engine, guard, keep: bool = True) -> Analysis:
    """A table row with its pictures, read again from its file's `data` (the same checks and header
    fields: nothing in reading is random; the row's probability and mask stay). keep: in the store in
    place of the row, maps and all; else a copy whose maps go with it (the PDF of every row)."""
    if analysis.complete:
        return analysis
    full = dataclasses.replace(analysis, prepared=prepare(data, analysis.name, guard), maps=analysis.maps if keep else dict(analysis.maps))
    if keep:
        _keep(results_store(), {_key(data, engine): full})
    return full


def completer(inputs: list[tuple[str, bytes]], engine, guard):
    """`completed` for the rows of these uploads, each found by the hash of its bytes, the uploads of
    its own name tried first (one file hashed, not all of them, for the row a person opens)."""

    def complete(analysis: Analysis, keep: bool = True) -> Analysis:
        if analysis.complete:
            return analysis
        candidates = [data for name, data in inputs if name == analysis.name] + [data for _, data in inputs]
        data = next(data for data in candidates if digest_of(data) == analysis.prepared.digest)
        return completed(analysis, data, engine, guard, keep)

    return complete


def _keep(store: dict, analyses: dict[str, Analysis]) -> None:
    """Keep these results, then drop the oldest while the store holds too many or too much."""
    store.update(analyses)
    total = sum(_size(a) for a in store.values())
    while len(store) > 1 and (len(store) > MAX_CACHED_FILES or total > MAX_CACHED_BYTES):
        total -= _size(store.pop(next(iter(store))))


def analyse_many(inputs: list[tuple[str, bytes]], engine, guard, progress=None) -> list[Analysis | Failure]:
    """Several files for a table: each read and checked (pneumo.analysis.prepare), then per chunk the
    probabilities and the lung masks in one pass each; no map until a row is opened (`map_for`), and
    no pictures kept until then (`completed`). `progress(done, total)` after each chunk. Files
    analysed before are not read again."""
    store = results_store()
    keys = [_key(data, engine) for _, data in inputs]
    todo = [i for i, key in enumerate(keys) if key not in store]
    failures: dict[int, Failure] = {}
    # this call's results and the ones kept from earlier runs: the table shows them all, even those the
    # store's bound drops while this call adds to it
    ready_now: dict[str, Analysis] = {key: store[key] for key in keys if key in store}
    for start in range(0, len(todo), CHUNK):
        ready = []
        for i in todo[start:start + CHUNK]:
            name, data = inputs[i]
            try:
                ready.append((i, prepare(data, name, guard)))
            except Exception as error:  # noqa: BLE001 - whatever a file does, the page keeps working
                failures[i] = _failure(name, error)
        if ready:
            gray = np.stack([prepared.gray299 for _, prepared in ready])
            probabilities, masks = engine.probabilities(gray), engine.lung_masks(gray)
            chunk = {keys[i]: Analysis(inputs[i][0], _row(prepared), float(probabilities[k]), {}, None if masks is None else _packed(masks[k]))
                     for k, (i, prepared) in enumerate(ready)}
            ready_now.update(chunk)
            _keep(store, chunk)
        if progress is not None:
            progress(min(start + CHUNK, len(todo)), len(todo))
    # Not one by one from the store: with more files than its bound holds, each file read again would
    # push out the next one still to be shown, and every file would be read twice.
    return [failures[i] if i in failures else dataclasses.replace(ready_now[key], name=name)
            for i, ((name, _), key) in enumerate(zip(inputs, keys))]


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
