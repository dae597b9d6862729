"""Per-browser-session results: each readable file is read once by the reader (pneumo.reading), under
the hash of its bytes and the site profile in use, in st.session_state. One file: the reader's `read`
(probability and map in one pass). Several: the reader's `read_many`, without maps and pictures: a
row keeps only what the table shows, and gets its pictures and map back when it is opened. The
results kept are bounded by what they hold, not only by their count."""

from __future__ import annotations

import dataclasses

import streamlit as st

from pneumo.bundle import predicted_label
from pneumo.reading import Map, Reader, Result, digest_of
from pneumo.ui.sidebar import Settings

MAX_CACHED_FILES = 2000  # per browser session; the oldest results are dropped first
MAX_CACHED_BYTES = 400_000_000  # and no more than this in pictures, model inputs, masks and maps
CHUNK = 32  # files read, checked and sent through the network together
TABLE_NETWORK_BATCH = 4  # films through the network at once for a table: 970 MB for 624 films instead of 1,030 MB at 8


def results_store() -> dict[str, Result]:
    return st.session_state.setdefault("results", {})


def _key(data: bytes, reader: Reader) -> str:
    return digest_of(data) + reader.key  # a site's network reads anew


def read_one(data: bytes, name: str, reader: Reader, settings: Settings) -> Result:
    """One file, with the map for the current settings (once per file, class and method). A file
    that cannot be read is only checked again (cheap: it fails on its header) and reported under its
    current name, as a Result with `error`."""
    store = results_store()
    key = _key(data, reader)
    result = store.get(key)
    try:
        if result is not None:  # read before; a row of an earlier table gets its pictures again
            result = completed(result, data, reader)
        else:
            result = reader.read(data, name, target=settings.target, method=settings.method, threshold=settings.threshold)
            _keep(store, {key: result})
    except Exception as error:  # noqa: BLE001 - whatever a file does, the page keeps working
        from pneumo.reading import failed

        return failed(name, error)
    return dataclasses.replace(result, name=name)  # shares the maps dict with the stored one


def completed(result: Result, data: bytes, reader: Reader, keep: bool = True) -> Result:
    """A table row with its pictures, read again from its file's `data` (its probability, mask and maps
    stay). keep: in the store in place of the row, maps and all; else a copy whose maps go with it
    (the PDF of every row)."""
    if result.complete:
        return result
    full = reader.reread(result, data)
    if keep:
        _keep(results_store(), {_key(data, reader): full})
    else:
        full = dataclasses.replace(full, maps=dict(result.maps))
    return full


def completer(inputs: list[tuple[str, bytes]], reader: Reader):
    """`completed` for the rows of these uploads, each found by the hash of its bytes, the uploads of
    its own name tried first (one file hashed, not all of them, for the row a person opens)."""

    def complete(result: Result, keep: bool = True) -> Result:
        if result.complete:
            return result
        candidates = [data for name, data in inputs if name == result.name] + [data for _, data in inputs]
        data = next(data for data in candidates if digest_of(data) == result.digest)
        return completed(result, data, reader, keep)

    return complete


def _keep(store: dict, results: dict[str, Result]) -> None:
    """Keep these results, then drop the oldest while the store holds too many or too much."""
    store.update(results)
    total = sum(r.nbytes() for r in store.values())
    while len(store) > 1 and (len(store) > MAX_CACHED_FILES or total > MAX_CACHED_BYTES):
        total -= store.pop(next(iter(store))).nbytes()


def read_table(inputs: list[tuple[str, bytes]], reader: Reader, progress=None) -> list[Result]:
    """Several files for a table: the reader's batches, with probabilities and lung masks, no map
    until a row is opened (`map_for`) and no pictures kept until then (`completed`).
    `progress(done, total)` after each chunk. Files read before are not read again."""
    store = results_store()
    keys = [_key(data, reader) for _, data in inputs]
    todo = [i for i, key in enumerate(keys) if key not in store]
    failures: dict[int, Result] = {}
    # this call's results and the ones kept from earlier runs: the table shows them all, even those the
    # store's bound drops while this call adds to it
    ready_now: dict[str, Result] = {key: store[key] for key in keys if key in store}
    fresh: dict[str, Result] = {}
    results = reader.read_many([inputs[i] for i in todo], maps=False, lungs=True, pictures=False, batch_size=CHUNK,
                               network_batch=TABLE_NETWORK_BATCH, progress=None if progress is None else lambda done: progress(done, len(todo)))
    for i, result in zip(todo, results):
        if result.error is not None:
            failures[i] = result
            continue
        fresh[keys[i]] = result
        if len(fresh) >= CHUNK:
            ready_now.update(fresh)
            _keep(store, fresh)
            fresh = {}
    ready_now.update(fresh)
    _keep(store, fresh)
    # Not one by one from the store: with more files than its bound holds, each file read again would
    # push out the next one still to be shown, and every file would be read twice.
    return [failures[i] if i in failures else dataclasses.replace(ready_now[key], name=name)
            for i, ((name, _), key) in enumerate(zip(inputs, keys))]


def map_for(result: Result, reader: Reader, settings: Settings) -> tuple[int, Map]:
    """(explained class, map) for the current settings; computed only when not cached yet."""
    if settings.target == "predicted":
        wanted = predicted_label(result.probability, settings.threshold)
    else:
        wanted = int(settings.target == "pneumonia")
    return wanted, reader.heatmap(result, wanted, settings.method)
