"""What the page loads once per server process: the reader (the networks, the checks and the threshold,
on a background thread, so the page draws at once), the shipped bundle, the examples and the figures."""

from __future__ import annotations

import gc
import json
import threading
from pathlib import Path

import streamlit as st

from pneumo.bundle import DEFAULT_MODEL, EXAMPLES_DIR, Bundle, read_bundle

EXAMPLE_SUFFIXES = (".jpeg", ".jpg", ".png")


@st.cache_resource(show_spinner="Loading the model (once per server start)…")
def get_reader():
    from pneumo.reading import Reader  # TensorFlow is imported when a reader is made: only here, behind the cache

    return Reader(DEFAULT_MODEL)


@st.cache_resource(show_spinner="Fitting the model to the site profile (once per profile)…", max_entries=4)
def get_site_reader(profile_json: str):
    """The reader fitted to one site profile (its JSON text is the key): a copy of the network with the
    profile's statistics folded in, and its threshold. pneumo.reading.SiteProfileError for a bad profile."""
    from pneumo.reading import Reader

    return Reader(DEFAULT_MODEL, site=get_reader().profile_from_json(profile_json))


@st.cache_resource(show_spinner=False)
def start_loading_reader() -> threading.Thread | None:
    """Once per process: import TensorFlow and warm the model up on a background thread while the
    page renders (or, from `pneumo app`, while the server starts), so a first upload waits for
    little or nothing (get_reader's cache lock makes the page wait for this load instead of
    starting a second one). None without shipped weights: the page says so itself."""
    if not DEFAULT_MODEL.is_file():
        return None

    def load() -> None:
        try:
            from pneumo.reading import import_networks

            import_networks()  # TensorFlow and Keras, configured for serving
            spare_keras_between_runs()
            get_reader()
            # The networks live as long as the process: out of the collector's sight, a full
            # collection walks only what the page makes, not the half-million objects of TensorFlow.
            gc.collect()
            gc.freeze()
        except Exception:  # noqa: BLE001 - the page calls get_reader again and shows the error
            pass

    thread = threading.Thread(target=load, name="pneumo-reader-loader", daemon=True)
    thread.start()
    return thread


def spare_keras_between_runs() -> None:
    """Streamlit calls keras.backend.clear_session() after every run of the page, for apps that build
    models as the script runs. This page builds its networks once per process and shares them, and
    the clearing empties TensorFlow's kernel caches and collects all garbage: the next reading paid
    100-250 ms for it, twice (network, lungs; measured in the page's thread). In this process the call is
    skipped when it comes from a page run; anywhere else (tests, a notebook) it clears as before."""
    import keras
    from streamlit.runtime import scriptrunner

    clear_session = keras.backend.clear_session
    if getattr(clear_session, "spares_page_runs", False):
        return

    def clear_unless_a_page_run(*args, **kwargs):
        if scriptrunner.get_script_run_ctx(suppress_warning=True) is None:
            return clear_session(*args, **kwargs)
        return None

    clear_unless_a_page_run.spares_page_runs = True
    keras.backend.clear_session = clear_unless_a_page_run




@st.cache_resource(show_spinner=False)
def get_bundle() -> Bundle:
    """The metrics and history shipped beside the model, for the sections that do not need the model."""
    return read_bundle(DEFAULT_MODEL)


@st.cache_data(show_spinner=False)
def example_files() -> dict[str, Path]:
    examples = {}
    for folder in ("NORMAL", "PNEUMONIA"):
        files = sorted(p for p in (EXAMPLES_DIR / folder).glob("*") if p.suffix.lower() in EXAMPLE_SUFFIXES)
        examples |= {f"{folder.title()} {i}": p for i, p in enumerate(files, start=1)}
    return examples


@st.cache_data(show_spinner=False)
def legend_png() -> bytes:
    from pneumo.outputs.picture import colorbar_png

    return colorbar_png()


@st.cache_data(show_spinner=False)
def figure_png(kind: str, data_json: str) -> bytes:
    """A matplotlib figure rendered once per content (every section is drawn on every rerun)."""
    from pneumo.outputs import plots

    data = json.loads(data_json)
    fig = plots.training_curves(data) if kind == "curves" else plots.confusion_matrix_figure(data)
    return plots.png_bytes(fig)
