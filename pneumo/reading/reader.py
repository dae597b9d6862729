"""The one reader: a path, bytes, a PIL image or an array in; one Result out.

    reader = Reader()                                   # the shipped weights; Reader(weights, site=..., threshold=...)
    result = reader.read("xray.dcm")                    # decode, check, probability, heatmap, lungs
    for result in reader.read_many(paths, maps=False):  # the same, batched; a bad file gives a Result with .error
        ...

One file goes: bytes -> decoded picture (pneumo.reading.decode) -> the model's 299 px view
(pneumo.reading.preprocess) -> the checks (is it a chest X-ray: pneumo.reading.guard; is it from the
training population: pneumo.reading.population) -> the networks (probability, heatmap, lung mask:
pneumo.reading.networks). The page, the CLI, the Python API, the PDF, the CSV and the DICOM outputs
all take the Result; nothing else in serving decodes, checks or runs the networks. TensorFlow is
imported when a Reader is made, not when this module is.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pneumo.bundle import CLASS_NAMES, DEFAULT_METHOD, DEFAULT_MODEL, label_name, weights_sha256
from pneumo.operating import Band, Reading, band_at, reading
from pneumo.reading.decode import ImageReadError, decode
from pneumo.reading.guard import Verdict, XrayGuard, load_guard
from pneumo.reading.lungs import lung_share, map_in_lungs
from pneumo.reading.population import IN_POPULATION, PopulationVerdict, population_of
from pneumo.reading.preprocess import IMAGE_SIZE, display_image, to_gray299, to_model_input

Input = str | Path | bytes | Image.Image | np.ndarray


@dataclass(frozen=True)
class Map:
    heatmap: np.ndarray  # (299, 299) in [0, 1]
    empty: bool  # no region raised the explained class's score


@dataclass
class Result:
    """One file, read. `error` is set (and the rest empty) when it could not be read.

    The picture fields (`picture`, `gray299`, `values`, `dicom`) are None in a light copy (`light()`):
    a table row keeps what the table shows, and gets its pictures back from the file (`Reader.reread`)."""

    name: str
    digest: str = ""  # sha256 of the bytes
    format: str = ""  # JPEG, PNG, DICOM, ...
    size: tuple[int, int] = (0, 0)  # the original's width, height
    picture: Image.Image | None = field(default=None, repr=False)  # upright 8-bit gray, at most 1024 px a side
    gray299: np.ndarray | None = field(default=None, repr=False)  # what the networks see, uint8
    values: np.ndarray | None = field(default=None, repr=False)  # a DICOM's own values at the picture's size (window/level)
    window: tuple[float, float] | None = None  # a DICOM's own WindowCenter/WindowWidth
    bright_is_low: bool = False  # DICOM MONOCHROME1
    dicom: Any = field(default=None, repr=False)  # a DICOM's data set without pixels: results are filed beside it
    metadata: dict[str, str] = field(default_factory=dict)  # harmless header fields (DICOM: modality, view, ...)
    identifiers: dict[str, str] = field(default_factory=dict, repr=False)  # patient data: shown only on request
    verdict: Verdict | None = None  # the guard's (None where no guard ships)
    population: PopulationVerdict = IN_POPULATION
    probability: float | None = None  # of pneumonia
    threshold: float | None = None  # the one in use when read
    band: Band | None = field(default=None, repr=False)  # the indeterminate band around it
    lung_bits: np.ndarray | None = field(default=None, repr=False)  # the 299 px lung mask, eight pixels to a byte
    maps: dict[tuple[int, str], Map] = field(default_factory=dict, repr=False)  # (explained class, method) -> map
    explained_class: int | None = None  # the class of the map read with it (the default method's)
    site: str | None = None  # the site profile in use, for a person (None: the shipped model as it is)
    weights_sha256: str = field(default="", repr=False)
    error: str | None = None
    shown_anyway: bool = False  # a person asked to see the reading despite its warning (the page's "Show anyway")

    # --- the reading ----------------------------------------------------------------------------
    def outcome(self, threshold: float | None = None, band: Band | None | bool = True) -> Reading:
        """The label, or INDETERMINATE inside the band, at `threshold` (default: the one read with)
        and `band` (default: the one read with; None: no band)."""
        return reading(self.probability, self.threshold if threshold is None else threshold, self.band if band is True else band)

    @property
    def label(self) -> str | None:
        """PNEUMONIA or NORMAL at the threshold."""
        return None if self.probability is None else label_name(self.probability, self.threshold)

    @property
    def reading(self) -> str | None:
        """The label, or INDETERMINATE inside the band around the threshold."""
        return None if self.probability is None else self.outcome().label

    # --- the checks -------------------------------------------------------------------------------
    @property
    def warnings(self) -> tuple[str, str] | None:
        """(kind, text) of what speaks against reading it, the guard first, then the population
        check; None when nothing does. Kinds: not_xray, inverted, lateral, population."""
        if self.verdict is not None and not self.verdict.plausible:
            return self.verdict.kind, self.verdict.reason
        if not self.population.in_population:
            return self.population.kind, self.population.reason
        return None

    @property
    def withheld(self) -> bool:
        """Whether what a person takes away withholds the reading: a warning, and nobody asked to see
        it anyway. The API and the CLI keep the probability beside the warning for researchers."""
        return self.warnings is not None and not self.shown_anyway

    @property
    def warning_kind(self) -> str | None:
        return None if self.warnings is None else self.warnings[0]

    @property
    def warning(self) -> str | None:
        """The warning for a person (None: nothing against reading it)."""
        return None if self.warnings is None else self.warnings[1]

    @property
    def population_source(self) -> str | None:
        """What decided a population or lateral warning: "dicom" (the header) or "image" (the image score)."""
        return self.population.source if self.warning_kind in ("population", "lateral") else None

    # --- the map and the lungs --------------------------------------------------------------------
    @property
    def default_map(self) -> Map | None:
        return None if self.explained_class is None else self.maps.get((self.explained_class, DEFAULT_METHOD))

    @property
    def heatmap(self) -> np.ndarray | None:
        """The 299x299 map in [0, 1] of the default method for the predicted class (None: not computed)."""
        return None if self.default_map is None else self.default_map.heatmap

    @property
    def heatmap_empty(self) -> bool | None:
        return None if self.default_map is None else self.default_map.empty

    @property
    def explained(self) -> str | None:
        """The class the heatmap explains."""
        return None if self.explained_class is None else CLASS_NAMES[self.explained_class]

    @property
    def lungs(self) -> np.ndarray | None:
        """The boolean 299x299 lung mask (None without a segmenter, or not computed)."""
        if self.lung_bits is None:
            return None
        return np.unpackbits(self.lung_bits, count=IMAGE_SIZE * IMAGE_SIZE).reshape(IMAGE_SIZE, IMAGE_SIZE).astype(bool)

    @property
    def lung_share(self) -> float | None:
        """The share of the image the lungs cover."""
        return None if self.lung_bits is None else lung_share(self.lungs)

    def map_share_in_lungs(self, heat: Map | None) -> float | None:
        """The share of this map's mass inside the lungs (None for an empty map or without lungs)."""
        return None if self.lung_bits is None or heat is None else map_in_lungs(heat.heatmap, self.lungs)

    @property
    def map_in_lungs(self) -> float | None:
        """The share of the default map's mass inside the lungs."""
        return self.map_share_in_lungs(self.default_map)

    # --- what each output takes -------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        """Whether it holds its pictures (a light copy does not)."""
        return self.picture is not None

    def light(self) -> "Result":
        """A copy without its pictures (a full-size film's display picture is about 1 MB, a DICOM's values
        4 MB more), for a table of thousands of rows; `Reader.reread` gives them back."""
        return dataclasses.replace(self, picture=None, gray299=None, values=None, dicom=None)

    def nbytes(self) -> int:
        """What it holds in memory, roughly: pictures, model input, values, mask and maps."""
        maps = sum(m.heatmap.nbytes for m in self.maps.values())
        picture = self.picture.width * self.picture.height if self.picture is not None else 0
        held = (self.gray299, self.values, self.lung_bits)
        return picture + maps + sum(a.nbytes for a in held if a is not None)

    def row(self) -> dict:
        """The CLI's CSV and JSON fields (the shares to four places)."""
        share, inside = self.lung_share, self.map_in_lungs
        return {"file": self.name, "probability": self.probability, "label": self.label, "reading": self.reading, "error": self.error,
                "warning": self.warning, "warning_kind": self.warning_kind, "population_source": self.population_source, "site": self.site,
                "lung_share": None if share is None else round(share, 4), "map_in_lungs": None if inside is None else round(inside, 4)}

    def overlay(self, opacity: float = 0.45) -> Image.Image:
        """The X-ray with its heatmap blended over it (at the picture's own size and aspect ratio)."""
        from pneumo.outputs.picture import overlay

        if self.error is not None or self.picture is None or self.heatmap is None:
            raise ValueError(f"{self.name}: no picture to draw ({self.error or 'no heatmap'})")
        return overlay(self.picture, self.heatmap, opacity)

    def to_dicom(self) -> tuple:
        """(Secondary Capture, Structured Report) as pydicom data sets, for a DICOM input: the X-ray with
        its heatmap, lung outline and caption, and the finding, each a new series in the source's study
        (pneumo.outputs.dicom; save with `.save_as(path)`). pneumo.outputs.dicom.NotDicom for a JPEG or
        PNG input, ValueError for a result without a reading."""
        from pneumo.outputs.dicom import results

        if self.error is not None or self.picture is None or self.probability is None:
            raise ValueError(f"{self.name}: no reading to report ({self.error or 'nothing read'})")
        return results(self)


def import_networks() -> None:
    """Import TensorFlow and the networks' code, configured for serving: what making a Reader does
    first (the page does it early, on a background thread)."""
    import pneumo.reading.networks  # noqa: F401


def failed(name: str, error: Exception) -> Result:
    """The Result of a file that could not be read or processed, with a message for a person."""
    if isinstance(error, ImageReadError):
        return Result(name=name, error=str(error))
    return Result(name=name, error=f"{name}: could not be processed ({type(error).__name__}: {error})")


def as_bytes(item: Input, name: str | None = None) -> tuple[bytes, str]:
    """(the file's bytes, a name) for any input the reader takes."""
    if isinstance(item, (str, Path)):
        path = Path(item)
        try:
            return path.read_bytes(), name or path.name
        except FileNotFoundError:
            raise ImageReadError(f"{path}: no such file.") from None
        except IsADirectoryError:
            raise ImageReadError(f"{path}: is a folder, not a file.") from None
        except OSError as error:
            raise ImageReadError(f"{path}: cannot read the file ({error.strerror or error}).") from None
    if isinstance(item, (bytes, bytearray)):
        return bytes(item), name or "upload"
    if isinstance(item, Image.Image):
        return _png(item), name or "image"
    if isinstance(item, np.ndarray):
        if item.ndim != 2:
            raise ImageReadError(f"an array must be 2-D (height, width), not of shape {item.shape}.")
        array = item
        if array.dtype != np.uint8:  # any range -> 0..255, as a display would
            array = np.asarray(array, dtype=np.float64)
            low, high = np.nanmin(array), np.nanmax(array)
            array = np.zeros(item.shape) if high <= low else (array - low) / (high - low) * 255
            array = np.nan_to_num(array).round().astype(np.uint8)
        return _png(Image.fromarray(array)), name or "array"
    raise ImageReadError(f"cannot read a {type(item).__name__}: give a path, bytes, a PIL image or a 2-D array.")


def _png(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _packed(mask: np.ndarray | None) -> np.ndarray | None:
    return None if mask is None else np.packbits(np.asarray(mask, dtype=bool))


def checks(image: Image.Image, header: dict[str, str], guard: XrayGuard | None) -> tuple[np.ndarray, Verdict | None, PopulationVerdict]:
    """A decoded picture as the networks see it (uint8 299x299), the guard's verdict on it (None without
    a guard) and the population verdict (the header's where it gives an age or a view, else the image
    score's)."""
    gray299 = to_gray299(image)
    verdict = guard.check(gray299, image) if guard is not None else None
    score = guard.adult_score if guard is not None else None
    by_image = score.check(gray299) if score is not None else None
    population = population_of(header, by_image)
    if verdict is not None and not verdict.layout_passed and population.in_population:
        population = by_image  # let through only as an adult's film: warned as one, whatever age a header gives
    return gray299, verdict, population


def prepare(data: bytes, name: str, guard: XrayGuard | None = None) -> Result:
    """Decode and check one file with `guard` (None: no guard): everything but the networks; a Reader's
    `prepare` adds what it reads with. ImageReadError with a message for a person."""
    decoded = decode(data, name)
    gray299, verdict, population = checks(decoded.image, decoded.header, guard)
    picture = display_image(decoded.image)
    values = decoded.values
    if values is not None:  # a DICOM's own values, at the display picture's size (the viewer windows them)
        values = np.asarray(values, dtype=np.float32)
        if values.shape[::-1] != picture.size:
            values = np.asarray(Image.fromarray(values).resize(picture.size, Image.Resampling.BILINEAR), dtype=np.float32)
    return Result(name=name, digest=digest_of(data), format=decoded.format, size=decoded.image.size, picture=picture, gray299=gray299,
                  values=values, window=decoded.window, bright_is_low=decoded.bright_is_low, dicom=decoded.dataset,
                  metadata=decoded.metadata, identifiers=decoded.identifiers, verdict=verdict, population=population)


class Reader:
    """The networks, the guard and the threshold in use, and the one path from a file to its Result."""

    def __init__(self, weights: str | Path = DEFAULT_MODEL, site=None, threshold: float | None = None, networks=None, guard=None):
        """`site`: a site profile (a path, or a pneumo.reading.siteprofile.SiteProfile) made for these weights;
        `threshold`: instead of the profile's or the shipped one; `networks`: already loaded ones to share
        (pneumo.reading.networks.Networks: the page loads them once per process)."""
        from pneumo.reading.networks import load_networks  # TensorFlow: only when a reader is made

        self.networks = networks if networks is not None else load_networks(weights, site=site)
        self.guard: XrayGuard | None = guard if guard is not None else load_guard()
        self.bundle = self.networks.bundle
        self.site = self.networks.site
        self.threshold = self.networks.threshold if threshold is None else float(threshold)
        self.band = self.band_at(self.threshold)
        self.site_words = self.site.describe() if self.site is not None else None
        self.weights_sha256 = weights_sha256(self.bundle.model_file)

    def band_at(self, threshold: float) -> Band | None:
        """The indeterminate band at `threshold`: the site profile's, from its labelled films, at its own
        threshold; else the shipped one, from the training folder's validation scores."""
        site = self.site
        if site is not None and site.band is not None and site.threshold is not None and abs(threshold - site.threshold) < 1e-9:
            return Band(site.band[0], site.band[1], 0.10, 0, f"the labelled films of “{site.site}”")
        return band_at(self.bundle.uncertainty, threshold)

    @property
    def key(self) -> str:
        """What a result read by this reader depends on beyond the file: the site profile in use."""
        return "" if self.site is None else "@" + self.site.key

    def profile_from_json(self, text: str):
        """A site profile's JSON checked against this reader's network: a pneumo.reading.SiteProfile, or
        SiteProfileError (a ValueError) with a message for a person."""
        from pneumo.reading.siteprofile import SiteProfile

        return SiteProfile.from_json(text, self.networks.model, self.bundle.model_file)

    # --- one file -------------------------------------------------------------------------------
    def prepare(self, data: bytes, name: str) -> Result:
        """Decode and check one file: everything but the networks. ImageReadError with a message for a person."""
        return dataclasses.replace(prepare(data, name, self.guard), threshold=self.threshold, band=self.band, site=self.site_words,
                                   weights_sha256=self.weights_sha256)

    def read(self, item: Input, name: str | None = None, target: str = "predicted", method: str = DEFAULT_METHOD,
             threshold: float | None = None) -> Result:
        """One file: its checks, probability, heatmap (for `target`: "predicted" at `threshold`, default
        the one in use; "pneumonia" or "normal"; by `method`) and lung mask. Raises pneumo.reading.ImageReadError, with a message for a person,
        when it cannot be read."""
        data, name = as_bytes(item, name)
        result = self.prepare(data, name)
        explanation = self.networks.explain(result.gray299, target=target, threshold=self.threshold if threshold is None else threshold,
                                            method=method)
        result.probability = explanation.probability
        result.maps[(explanation.explained_class, method)] = Map(explanation.heatmap, explanation.empty)
        result.explained_class = explanation.explained_class if method == DEFAULT_METHOD and target == "predicted" and threshold is None else None
        result.lung_bits = _packed(self.networks.lungs(result.gray299))
        return result

    def reread(self, result: Result, data: bytes) -> Result:
        """A light Result with its pictures again, from its file's bytes (the same checks and header
        fields: nothing in reading is random); its probability, mask and maps stay."""
        if result.complete:
            return result
        again = self.prepare(data, result.name)
        return dataclasses.replace(result, picture=again.picture, gray299=again.gray299, values=again.values, dicom=again.dicom)

    def heatmap(self, result: Result, explained_class: int, method: str = DEFAULT_METHOD) -> Map:
        """The map of `method` for class `explained_class` (0 NORMAL, 1 PNEUMONIA), computed once per
        result and kept in it. The result must hold its pictures."""
        key = (explained_class, method)
        if key not in result.maps:
            explanation = self.networks.explain(result.gray299, target=CLASS_NAMES[explained_class].lower(), method=method)
            result.maps[key] = Map(explanation.heatmap, explanation.empty)
        return result.maps[key]

    # --- many files -----------------------------------------------------------------------------
    def read_many(self, items: Iterable[Input | tuple[str, bytes]], maps: bool = True, lungs: bool | None = None,
                  pictures: bool = True, batch_size: int = 32, network_batch: int | None = None,
                  progress: Callable[[int], None] | None = None) -> Iterator[Result]:
        """`read` for many files, in order, a chunk of `batch_size` at a time: one thread decodes and
        checks the next chunk while the networks work on this one (one thread: on two cores a second
        reader slowed the networks more than it read). An item is a path, bytes, a PIL image, an array,
        or a (name, bytes) pair; one that cannot be read gives a Result with `error`, and the rest go on.

        maps: each file's default heatmap for the predicted class, the probability from the same pass
        (else the forward pass alone, `network_batch` films at a time: default the whole chunk).
        lungs: the lung masks (default: with the maps). pictures: keep each file's pictures (else a
        light Result). progress(files done) after each chunk."""
        lungs = maps if lungs is None else lungs
        items = list(items)
        chunks = [items[start:start + batch_size] for start in range(0, len(items), batch_size)]
        done = 0
        with ThreadPoolExecutor(max_workers=1) as worker:
            pending = worker.submit(self._prepare_chunk, chunks[0], 0, pictures) if chunks else None
            for k, chunk in enumerate(chunks):
                results = pending.result()
                pending = worker.submit(self._prepare_chunk, chunks[k + 1], done + len(chunk), pictures) if k + 1 < len(chunks) else None
                self._run_networks([r for r in results if r.error is None], maps, lungs, network_batch)
                done += len(chunk)
                for result in results:
                    yield result if pictures or result.error is not None else result.light()
                if progress is not None:
                    progress(done)

    def _prepare_chunk(self, chunk: list, offset: int, pictures: bool) -> list[Result]:
        """Each item decoded and checked; without `pictures`, only what the networks still need is kept."""
        prepared = []
        for i, item in enumerate(chunk):
            name = item[0] if isinstance(item, tuple) else str(item) if isinstance(item, (str, Path)) else f"item {offset + i}"  # a path as given
            try:
                data = item[1] if isinstance(item, tuple) else as_bytes(item)[0]
                result = self.prepare(data, name)
                prepared.append(result if pictures else dataclasses.replace(result, picture=None, values=None, dicom=None))
            except Exception as error:  # noqa: BLE001 - one odd file must not stop the rest
                prepared.append(failed(name, error))
        return prepared

    def _run_networks(self, results: list[Result], maps: bool, lungs: bool, network_batch: int | None) -> None:
        if not results:
            return
        gray = np.stack([r.gray299 for r in results])
        if maps:  # the lungs share the equalised input with the explaining pass
            model_input = to_model_input(gray)
            masks = self.networks.lung_masks(gray, batch_size=len(gray), equalized=model_input[..., 0]) if lungs else None
            explanations = self.networks.explain_batch(model_input, threshold=self.threshold)
            probabilities = [e.probability for e in explanations]
            for result, e in zip(results, explanations):
                result.maps[(e.explained_class, DEFAULT_METHOD)] = Map(e.heatmap, e.empty)
                result.explained_class = e.explained_class
        else:
            masks = self.networks.lung_masks(gray) if lungs else None
            probabilities = self.networks.probabilities(gray, network_batch or len(gray))
        for k, result in enumerate(results):
            result.probability = float(probabilities[k])
            result.lung_bits = None if masks is None else _packed(masks[k])


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files as given; folders walked recursively (hidden files skipped), in sorted order."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
        else:
            files.append(path)
    return files


def files_or_say(inputs: list[str]) -> list[Path]:
    """`expand_inputs`, saying on stderr when nothing was found ([] then: the caller exits with 2)."""
    files = expand_inputs(inputs)
    if not files:
        print("error: no files found in " + ", ".join(inputs), file=sys.stderr)
    return files
