"""The one-call Python API: the page's own path, so the numbers are the page's.

    import pneumo
    model = pneumo.load()                          # the shipped weights, or pneumo.load("path/to/pneumonia.keras")
    model = pneumo.load(site="site.json")          # fitted to a site (pneumo adapt): its statistics and threshold
    result = model.predict("xray.dcm")             # a path, bytes, a PIL image or a 2-D array
    result.probability, result.label, result.reading, result.warning_kind, result.warning
    result.heatmap                                 # 299x299 float map of the default method (HiResCAM)
    result.overlay()                               # PIL image: the X-ray with its map
    sc, sr = result.to_dicom()                     # a DICOM input: Secondary Capture and Structured Report (pydicom data sets)
    model.predict_many(paths)                      # a list of results; a bad file gives a result with .error

Each input goes bytes -> pneumo.analysis.prepare (decode, the guard, the population check) ->
pneumo.engine (probability and heatmap in one pass) -> the lungs (pneumo.lungs), at the shipped
threshold and indeterminate band (pneumo.operating).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from pneumo.bundle import DEFAULT_MODEL, label_name, weights_sha256
from pneumo.imageio import ImageReadError

Input = str | Path | bytes | Image.Image | np.ndarray


@dataclass
class Result:
    """One X-ray's reading. `error` is set (and the rest empty) when the input could not be read."""

    name: str
    probability: float | None = None  # of pneumonia
    label: str | None = None  # PNEUMONIA or NORMAL at the threshold
    reading: str | None = None  # the label, or INDETERMINATE inside the band around the threshold
    threshold: float | None = None
    warning_kind: str | None = None  # not_xray, inverted, lateral, population (None: nothing against reading it)
    warning: str | None = None  # for a person
    population_source: str | None = None  # with a population or lateral warning: "dicom" or "image"
    site: str | None = None  # the site profile in use, for a person (None: the shipped model as it is)
    heatmap: np.ndarray | None = field(default=None, repr=False)  # (299, 299) in [0, 1], the default method's
    heatmap_empty: bool | None = None  # no region raised the explained class's score
    explained: str | None = None  # the class the heatmap explains (the predicted one)
    lung_share: float | None = None  # the share of the image the lungs cover (None without a segmenter)
    map_in_lungs: float | None = None  # the share of the heatmap's mass inside the lungs
    error: str | None = None
    picture: Image.Image | None = field(default=None, repr=False)  # the decoded X-ray, upright gray
    lungs: np.ndarray | None = field(default=None, repr=False)  # the 299x299 lung mask (None without a segmenter)
    dicom: object | None = field(default=None, repr=False)  # a DICOM input's data set, without pixels (None otherwise)
    weights_sha256: str = field(default="", repr=False)  # the model's version, for the DICOM report

    def overlay(self, opacity: float = 0.45) -> Image.Image:
        """The X-ray with its heatmap blended over it (at the picture's own size and aspect ratio)."""
        from pneumo.overlay import overlay

        if self.error is not None or self.picture is None or self.heatmap is None:
            raise ValueError(f"{self.name}: no picture to draw ({self.error or 'no heatmap'})")
        return overlay(self.picture, self.heatmap, opacity)

    def to_dicom(self) -> tuple:
        """(Secondary Capture, Structured Report) as pydicom data sets, for a DICOM input: the X-ray
        with its heatmap, lung outline and caption, and the finding, each a new series in the
        source's study (pneumo.dicomout; save with `.save_as(path)`). pneumo.dicomout.NotDicom for a
        JPEG or PNG input, ValueError for a result without a reading."""
        from pneumo.dicomout import Reading, results

        if self.error is not None or self.picture is None or self.probability is None:
            raise ValueError(f"{self.name}: no reading to report ({self.error or 'nothing read'})")
        reading = Reading(probability=self.probability, reading=self.reading or self.label, threshold=self.threshold,
                          warning_kind=self.warning_kind, warning=self.warning, site=self.site, weights_sha256=self.weights_sha256)
        return results(self.dicom, self.picture, None if self.heatmap_empty else self.heatmap, self.lungs, reading)


def _as_bytes(item: Input) -> tuple[bytes, str]:
    """(the file's bytes, a name) for any input the API takes."""
    from pneumo.overlay import to_png_bytes

    if isinstance(item, (str, Path)):
        path = Path(item)
        if not path.is_file():
            raise ImageReadError(f"{path}: no such file.")
        return path.read_bytes(), path.name
    if isinstance(item, (bytes, bytearray)):
        return bytes(item), "upload"
    if isinstance(item, Image.Image):
        return to_png_bytes(item), "image"
    if isinstance(item, np.ndarray):
        if item.ndim != 2:
            raise ImageReadError(f"an array must be 2-D (height, width), not of shape {item.shape}.")
        array = item
        if array.dtype != np.uint8:  # any range -> 0..255, as a display would
            array = np.asarray(array, dtype=np.float64)
            low, high = np.nanmin(array), np.nanmax(array)
            array = np.zeros(item.shape) if high <= low else (array - low) / (high - low) * 255
            array = np.nan_to_num(array).round().astype(np.uint8)
        return to_png_bytes(Image.fromarray(array)), "array"
    raise ImageReadError(f"cannot read a {type(item).__name__}: give a path, bytes, a PIL image or a 2-D array.")


class Model:
    """The shipped model (or another bundle) with the page's checks; see the module's docstring."""

    def __init__(self, weights: str | Path = DEFAULT_MODEL, site: str | Path | None = None):
        from pneumo.engine import load_engine
        from pneumo.guard import load_guard
        from pneumo.operating import band_at

        self.engine = load_engine(weights, site=site)
        self.guard = load_guard()
        self.threshold = self.engine.threshold
        self.band = band_at(self.engine.bundle.uncertainty, self.threshold)

    def _read(self, data: bytes, name: str) -> Result:
        from pneumo.analysis import prepare
        from pneumo.lungs import lung_share, map_in_lungs
        from pneumo.operating import reading

        prepared = prepare(data, name, self.guard)
        explanation = self.engine.analyze(prepared.gray299, threshold=self.threshold)
        warning = prepared.warning
        result = Result(
            name=name, probability=explanation.probability, label=label_name(explanation.probability, self.threshold),
            reading=reading(explanation.probability, self.threshold, self.band).label, threshold=self.threshold,
            warning_kind=warning[0] if warning else None, warning=warning[1] if warning else None,
            population_source=prepared.warning_source,
            heatmap=explanation.heatmap, heatmap_empty=explanation.empty, explained=("NORMAL", "PNEUMONIA")[explanation.explained_class],
            picture=prepared.picture, site=self.engine.site.describe() if self.engine.site is not None else None,
            dicom=prepared.dicom, weights_sha256=weights_sha256(self.engine.bundle.model_file),
        )
        lungs = self.engine.lungs(prepared.gray299)
        result.lungs = lungs
        if lungs is not None:
            result.lung_share = lung_share(lungs)
            result.map_in_lungs = map_in_lungs(explanation.heatmap, lungs)  # None for an empty map (all zeros)
        return result

    def predict(self, item: Input) -> Result:
        """One X-ray. Raises pneumo.imageio.ImageReadError, with a message for a person, when it cannot be read."""
        data, name = _as_bytes(item)
        return self._read(data, name)

    def predict_many(self, items: list[Input]) -> list[Result]:
        """Several X-rays, in order; an input that cannot be read gives a Result with `error` set."""
        results = []
        for i, item in enumerate(items):
            name = str(item) if isinstance(item, (str, Path)) else f"item {i}"  # a path as given, like the CLI's "file"
            try:
                data, _ = _as_bytes(item)
                results.append(self._read(data, name))
            except ImageReadError as error:
                results.append(Result(name=name, error=str(error)))
            except Exception as error:  # noqa: BLE001 - one odd input must not stop the rest
                results.append(Result(name=name, error=f"{name}: could not be processed ({type(error).__name__}: {error})"))
        return results

    def __call__(self, item: Input) -> Result:
        return self.predict(item)


def load(weights: str | Path | None = None, site: str | Path | None = None) -> Model:
    """The shipped model (default) or the bundle beside `weights` (a .keras file); with `site`, a site
    profile made by `pneumo adapt` for those weights (pneumo.site.SiteProfileError, a ValueError with
    a message for a person, when it cannot be used)."""
    path = Path(weights) if weights is not None else DEFAULT_MODEL
    if not path.is_file():
        raise FileNotFoundError(f"no model at {path}; train one with `python train.py` or give the path of a .keras file")
    return Model(path, site)
