"""What the viewer does to the picture on the screen: window/level, invert, zoom. Display only:
the model input (pneumo.reading.preprocess) never passes through here.

Window/level is DICOM's linear VOI function (PS3.3 C.11.2.1.2.1): a stored value x becomes

    0                                          if x <= c - 0.5 - (w - 1) / 2
    255                                        if x >  c - 0.5 + (w - 1) / 2
    ((x - (c - 0.5)) / (w - 1) + 0.5) * 255    otherwise

for window center c and width w. A DICOM is windowed in its own values (after RescaleSlope and
RescaleIntercept), with its WindowCenter/WindowWidth as the default; any other picture in its 8-bit
gray values, where the default window (center 128, width 256) leaves every value as it is.

Radiograph values are not calibrated like CT's Hounsfield units, so the presets come from the
picture's own histogram (percentiles), not from fixed numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Window:
    center: float
    width: float


@dataclass(frozen=True)
class ViewSource:
    """The values a picture is windowed in, at display size, and what its file said about them."""

    values: np.ndarray  # float32 (height, width)
    unit: str  # what the values are, for the controls' labels
    file_window: Window | None = None  # the DICOM's own WindowCenter/WindowWidth, if any
    bright_is_low: bool = False  # DICOM MONOCHROME1: the lowest value is shown white

    @property
    def low(self) -> float:
        return float(self.values.min())

    @property
    def high(self) -> float:
        return float(self.values.max())

    @property
    def default_window(self) -> Window:
        if self.file_window is not None:
            return self.file_window
        if self.unit == GRAY8:
            return Window(128.0, 256.0)  # the identity: the picture as stored
        return full_range(self.values)


GRAY8 = "8-bit gray value"


def apply_window(values: np.ndarray, window: Window) -> np.ndarray:
    """DICOM's linear window (module docstring): any values -> uint8."""
    center, width = float(window.center), max(float(window.width), 1.0)
    if width == 1.0:  # the standard's degenerate case: a step at the center
        return np.where(np.asarray(values) > center - 0.5, 255, 0).astype(np.uint8)
    scaled = ((np.asarray(values, dtype=np.float64) - (center - 0.5)) / (width - 1.0) + 0.5) * 255.0
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def render(source: ViewSource, window: Window, invert: bool = False) -> Image.Image:
    """The picture as the viewer shows it: windowed, bright bone (MONOCHROME1 flipped), optionally inverted."""
    shown = apply_window(source.values, window)
    if source.bright_is_low != invert:
        shown = 255 - shown
    return Image.fromarray(shown)


def full_range(values: np.ndarray) -> Window:
    low, high = float(np.min(values)), float(np.max(values))
    return Window((low + high + 1.0) / 2.0, max(high - low + 1.0, 1.0))  # low -> 0, high -> 255


def _percentile_window(values: np.ndarray, low_pct: float, high_pct: float, bright_is_low: bool) -> Window:
    if bright_is_low:  # percentiles of brightness on the screen, not of the stored value
        low_pct, high_pct = 100.0 - high_pct, 100.0 - low_pct
    low, high = (float(v) for v in np.percentile(values, [low_pct, high_pct]))
    return Window((low + high) / 2.0, max(high - low, 1.0))


# name -> (low, high) percentile of on-screen brightness; "As stored" and "Full range" apart.
PERCENTILE_PRESETS = {
    "Auto contrast (1st–99th percentile)": (1.0, 99.0),
    "Lungs (the darker 60 %)": (0.5, 60.0),
    "Mediastinum and bone (the brighter 50 %)": (50.0, 99.5),
}


def presets(source: ViewSource) -> dict[str, Window]:
    """The windows the viewer offers for this picture, the default first."""
    default_name = "The file's own window" if source.file_window is not None else "As stored"
    offered = {default_name: source.default_window, "Full range": full_range(source.values)}
    for name, (low, high) in PERCENTILE_PRESETS.items():
        offered[name] = _percentile_window(source.values, low, high, source.bright_is_low)
    return offered


def zoom_box(size: tuple[int, int], zoom: float, center_x: float = 0.5, center_y: float = 0.5) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) crop of a picture of `size` that `zoom` times enlarges around
    (center_x, center_y), given as fractions of the width and height; kept inside the picture."""
    width, height = size
    zoom = max(float(zoom), 1.0)
    crop_w, crop_h = max(1, round(width / zoom)), max(1, round(height / zoom))
    left = min(max(round(center_x * width - crop_w / 2), 0), width - crop_w)
    top = min(max(round(center_y * height - crop_h / 2), 0), height - crop_h)
    return left, top, left + crop_w, top + crop_h


def zoomed(picture: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """The crop, enlarged back to the picture's size (so the screen shows real pixels, smoothly)."""
    if box == (0, 0, *picture.size):
        return picture
    return picture.crop(box).resize(picture.size, Image.Resampling.LANCZOS)


def view_source_of(values: np.ndarray | None, picture: Image.Image, file_window: Window | None = None,
                   bright_is_low: bool = False) -> ViewSource:
    """The picture's ViewSource: a DICOM's own values resized to the display picture's size, or
    else the display picture's 8-bit gray values."""
    if values is None:
        return ViewSource(np.asarray(picture.convert("L"), dtype=np.float32), GRAY8)
    values = np.asarray(values, dtype=np.float32)
    if values.shape[::-1] != picture.size:
        values = np.asarray(Image.fromarray(values).resize(picture.size, Image.Resampling.BILINEAR), dtype=np.float32)
    return ViewSource(values, "stored value (after rescale slope and intercept)", file_window, bright_is_low)
