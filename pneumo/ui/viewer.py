"""The viewing controls of one X-ray: window/level with presets (a DICOM opens in its own window),
invert and zoom. Display only: they redraw the picture and the overlay from what is already in the
session, without the model (pneumo.outputs.viewing says how the values are mapped)."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
from PIL import Image

from pneumo.reading import Result
from pneumo.outputs.viewing import GRAY8, ViewSource, Window, presets, render, view_source_of, zoom_box, zoomed


@dataclass(frozen=True)
class View:
    window: Window
    invert: bool
    zoom: float
    center_x: float  # fractions of the width and height
    center_y: float

    def show(self, source: ViewSource) -> Image.Image:
        """The picture windowed and inverted, not zoomed (the report and the overlay start from it)."""
        return render(source, self.window, self.invert)

    def caption(self, source: ViewSource) -> str:
        """What the view changes, for the images' captions ("" for the default view)."""
        parts = ([] if self.window == source.default_window else [f"window {self.window.center:g}/{self.window.width:g}"]) \
            + (["inverted"] if self.invert else []) + ([f"zoom {self.zoom:g}×"] if self.zoom > 1 else [])
        return f" ({', '.join(parts)})" if parts else ""

    def zoom_in(self, picture: Image.Image) -> Image.Image:
        return zoomed(picture, zoom_box(picture.size, self.zoom, self.center_x, self.center_y))


def source_of(result: Result) -> ViewSource:
    """The values the viewer windows: a DICOM's own (at display size), else the picture's gray values."""
    window = Window(*result.window) if result.window else None
    return view_source_of(result.values, result.picture, window, result.bright_is_low)


def _keys(digest: str) -> dict[str, str]:
    return {name: f"view-{name}-{digest[:16]}" for name in ("preset", "center", "width", "invert", "zoom", "x", "y")}


def _steps(source: ViewSource) -> float:
    span = source.high - source.low
    return 1.0 if source.unit == GRAY8 or span >= 200 else max(span / 500.0, 1e-3)


def _reset(digest: str, source: ViewSource, preset: str | None = None) -> None:
    keys, offered = _keys(digest), presets(source)
    name = preset or st.session_state.get(keys["preset"]) or next(iter(offered))
    window = offered.get(name, source.default_window)
    st.session_state[keys["center"]] = float(window.center)
    st.session_state[keys["width"]] = float(window.width)


def default_view(result: Result) -> View:
    """The picture as its file asks to be shown: its default window, upright, whole."""
    return View(source_of(result).default_window, False, 1.0, 0.5, 0.5)


def current_view(result: Result) -> View:
    """This X-ray's view as its controls last left it (the default view before they are drawn)."""
    source, keys, state = source_of(result), _keys(result.digest), st.session_state
    if keys["center"] not in state:
        window = source.default_window
    else:
        window = Window(state[keys["center"]], state[keys["width"]])
    return View(window, bool(state.get(keys["invert"], False)), float(state.get(keys["zoom"], 1.0)),
                state.get(keys["x"], 50) / 100, state.get(keys["y"], 50) / 100)


def view_controls(result: Result) -> View:
    """Draw the controls (window preset, center, width, invert, zoom and where to zoom) and return the view."""
    source, keys = source_of(result), _keys(result.digest)
    offered = presets(source)
    if keys["center"] not in st.session_state:
        _reset(result.digest, source, next(iter(offered)))
    span = source.high - source.low
    step = _steps(source)
    # Sliders snap to their step; keep the stored window on it so Streamlit accepts it as a value.
    low, high = source.low - span / 2, source.high + span / 2
    for key, bounds in ((keys["center"], (low, high)), (keys["width"], (1.0, 2.0 * span + 2.0))):
        st.session_state[key] = float(min(max(st.session_state[key], bounds[0]), bounds[1]))
    number = "%.0f" if step >= 1 else "%.3g"
    with st.container(border=True):
        top = st.columns(3)
        top[0].selectbox("Window preset", list(offered), key=keys["preset"], on_change=_reset, args=(result.digest, source),
                         help="A DICOM opens in its own WindowCenter/WindowWidth. Radiograph values are not calibrated like CT's, "
                              "so the other presets come from this picture's own histogram.")
        top[1].slider("Window center", low, high, key=keys["center"], step=step, format=number,
                      help=f"The value shown mid-gray (DICOM's linear window/level), in {source.unit}s.")
        top[2].slider("Window width", 1.0, 2.0 * span + 2.0, key=keys["width"], step=step, format=number,
                      help="The range of values spread from black to white; narrower is more contrast.")
        bottom = st.columns(3)
        zoom = bottom[0].select_slider("Zoom", options=[1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0], value=1.0, key=keys["zoom"],
                                       format_func=lambda z: f"{z:g}×", help="Applies to the X-ray and the overlay alike.")
        bottom[1].slider("Zoom center, left → right (%)", 0, 100, 50, key=keys["x"], disabled=zoom == 1.0)
        bottom[2].slider("Zoom center, top → bottom (%)", 0, 100, 50, key=keys["y"], disabled=zoom == 1.0)
        last = st.columns([1, 1, 1])
        last[0].toggle("Invert", key=keys["invert"], help="Black for white. Display only: the model's input does not change.")
        last[2].button("Reset view", key=f"reset-{result.digest[:16]}", on_click=_forget, args=(result.digest,), width="stretch")
    return current_view(result)


def _forget(digest: str) -> None:
    for key in _keys(digest).values():
        st.session_state.pop(key, None)
