"""Bytes -> decoded picture, recognised by content rather than file name.

The one place uploads and files are read: JPEG (baseline, progressive, CMYK, EXIF-rotated), PNG
(8 and 16 bit), BMP, TIFF, WebP, single-frame GIF and DICOM (with or without the .dcm extension or
the 128-byte preamble; compressed transfer syntaxes through Pillow). Everything else, and anything
damaged, hostile or too small, raises ImageReadError with a message meant for a person.

Privacy: DICOM patient identifiers are kept apart from the harmless metadata, are shown only on
request, and are never logged. Nothing here writes to disk.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from pneumo.reading import jpeg

# Refuse images whose header promises more pixels than this, before decoding them (a
# decompression bomb is a few KB that decodes to gigabytes). Real radiographs are < 50 Mpx.
MAX_PIXELS = 60_000_000
# Below this a picture cannot carry the detail of a chest X-ray.
MIN_SIDE = 64
# Pillow's own bomb check fires at 2x this; keep it in line with ours.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

SUPPORTED = "JPEG, PNG, BMP, TIFF, WebP or DICOM"
_DICOM_METADATA = {  # harmless fields shown beside a DICOM image
    "Modality": "modality",
    "ViewPosition": "view position",
    "BodyPartExamined": "body part",
    "PhotometricInterpretation": "photometric interpretation",
    "BitsStored": "bits stored",
}
_DICOM_IDENTIFIERS = {"PatientName": "patient name", "PatientID": "patient ID", "PatientBirthDate": "birth date"}
# Read for the population check (pneumo.reading.population), never shown as they are.
_DICOM_POPULATION = ("PatientAge", "PatientBirthDate", "StudyDate", "AcquisitionDate", "ContentDate", "SeriesDate", "ViewPosition",
                     "ImageLaterality", "SeriesDescription", "ProtocolName", "StudyDescription")


jpeg.use()  # JPEG baseline, 12-bit extended and lossless through imagecodecs (BSD-licensed), not a GPL decoder


class ImageReadError(ValueError):
    """A file that is not a usable image; the message is meant for a person."""


@dataclass
class DecodedImage:
    image: Image.Image
    format: str  # "JPEG", "PNG", "DICOM", ...
    metadata: dict[str, str] = field(default_factory=dict)  # harmless, may be shown
    identifiers: dict[str, str] = field(default_factory=dict, repr=False)  # patient data: only on request
    header: dict[str, str] = field(default_factory=dict, repr=False)  # DICOM age, dates, view: for pneumo.reading.population
    # For the viewer's window/level (pneumo.outputs.viewing), DICOM only: the stored values after the modality
    # LUT, the file's own first WindowCenter/WindowWidth, and whether the lowest value is white.
    values: np.ndarray | None = field(default=None, repr=False)
    window: tuple[float, float] | None = None
    bright_is_low: bool = False
    # DICOM only: the data set without its pixel data, for results filed beside it (pneumo.outputs.dicom).
    dataset: Any = field(default=None, repr=False)


def _check_size(name: str, width: int, height: int, frames: int = 1) -> None:
    if width * height * frames > MAX_PIXELS:
        raise ImageReadError(
            f"{name}: the image claims to be {width}×{height} pixels"
            + (f" × {frames} frames" if frames > 1 else "")
            + f", more than the {MAX_PIXELS // 1_000_000} megapixels this tool accepts; it was not decoded."
        )
    if min(width, height) < MIN_SIDE:
        raise ImageReadError(
            f"{name}: the image is only {width}×{height} pixels; a chest X-ray needs at least {MIN_SIDE} pixels a side."
        )


def _looks_like_dicom(data: bytes) -> bool:
    if data[128:132] == b"DICM":
        return True
    # No preamble (a raw data set): it starts with a group 0002 or 0008 element's tag, then an explicit
    # VR (two letters) in either byte order, or (implicit VR, little endian) a length inside the file.
    if len(data) <= 8:
        return False
    if data[:2] in (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08") and data[4:6].isalpha():
        return True
    return data[:2] == b"\x08\x00" and data[3] == 0 and int.from_bytes(data[4:8], "little") < len(data)


def _syntax(ds) -> str:
    """The transfer syntax a person can look up: its name and UID."""
    uid = getattr(ds, "file_meta", {}).get("TransferSyntaxUID")
    return f"{uid.name} ({uid})" if uid else "a transfer syntax the file does not state"


def _decoding_failure(error: Exception) -> str:
    """Why the pixel data could not be decoded, in a line: the decoders' own reasons, shortened."""
    text = str(error)
    if "missing dependencies" in text or "no pixel data decoders" in text.lower():
        return "no decoder for it is installed"
    reasons = [line.strip() for line in text.splitlines()[1:] if line.strip()] or [text.strip()]
    return "the pixel data is damaged, cut short or does not follow the standard (" + "; ".join(reasons)[:300] + ")"


def _not_an_image_message(data: bytes, name: str) -> str:
    head = data[:1024]
    if head.startswith(b"%PDF"):
        return f"{name}: this is a PDF document, not an image (export the X-ray as {SUPPORTED})."
    if head[:4] == b"PK\x03\x04":
        return f"{name}: this is a ZIP archive or an Office document, not an image (expected {SUPPORTED})."
    try:
        head.decode("utf-8")
        if b"\x00" not in head:
            return f"{name}: this is a text file, not an image (expected {SUPPORTED})."
    except UnicodeDecodeError:
        pass
    return f"{name}: the content is not an image this tool can read ({SUPPORTED})."


def _first_window(ds) -> tuple[float, float] | None:
    """The first of a DICOM's WindowCenter / WindowWidth pairs (the one it recommends first)."""
    from pydicom.multival import MultiValue

    def first(value):
        return value[0] if isinstance(value, MultiValue) and len(value) else value

    try:
        center, width = float(first(ds.get("WindowCenter"))), float(first(ds.get("WindowWidth")))
    except (TypeError, ValueError):
        return None
    return (center, width) if np.isfinite(center) and np.isfinite(width) and width >= 1 else None


def _decode_dicom(data: bytes, name: str) -> DecodedImage:
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns about harmless deviations in real files
            ds = pydicom.dcmread(io.BytesIO(data), force=data[128:132] != b"DICM")
    except (InvalidDicomError, EOFError, ValueError, KeyError, OSError) as error:
        raise ImageReadError(f"{name}: a damaged DICOM file that cannot be read ({type(error).__name__}).") from None
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise ImageReadError(f"{name}: this DICOM file holds no image (no pixel data; perhaps a report or a study index).")
    try:
        rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError) as error:
        raise ImageReadError(f"{name}: a damaged DICOM header: the image size cannot be read ({error}).") from None
    if rows == 0 or columns == 0:
        raise ImageReadError(f"{name}: this DICOM file holds no image (its header gives no image size).")
    _check_size(name, columns, rows, frames)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pixels = ds.pixel_array
    except Exception as error:  # noqa: BLE001 - pydicom raises many types for bad or unsupported pixel data
        raise ImageReadError(f"{name}: the DICOM pixel data, stored as {_syntax(ds)}, cannot be decoded: {_decoding_failure(error)}.") from None
    if frames > 1:
        pixels = pixels[0]  # a radiograph is one frame; a cine loop's first frame is what we can judge
    stored = None
    if photometric in ("MONOCHROME1", "MONOCHROME2"):
        stored = np.asarray(apply_modality_lut(pixels, ds), dtype=np.float32)  # rescale slope / intercept
        values = apply_voi_lut(stored, ds) if ("WindowCenter" in ds or "VOILUTSequence" in ds) else stored
        values = np.asarray(values, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        gray = np.zeros(values.shape, np.uint8) if high <= low else np.round((values - low) / (high - low) * 255.0).astype(np.uint8)
        if photometric == "MONOCHROME1":  # lowest value is white: invert so bone is bright
            gray = 255 - gray
        image = Image.fromarray(gray)
    else:  # colour (RGB, or YBR which pydicom converts to RGB): rare for radiographs
        colour = np.asarray(pixels)
        if colour.dtype != np.uint8:
            colour = np.round(colour / max(1.0, float(colour.max())) * 255.0).astype(np.uint8)
        image = Image.fromarray(colour).convert("RGB")
    metadata = {label: str(ds.get(key)) for key, label in _DICOM_METADATA.items() if ds.get(key) not in (None, "")}
    metadata["image size"] = f"{columns}×{rows}" + (f", {frames} frames (first shown)" if frames > 1 else "")
    identifiers = {label: str(ds.get(key)) for key, label in _DICOM_IDENTIFIERS.items() if ds.get(key) not in (None, "")}
    header = {key: str(ds.get(key)) for key in _DICOM_POPULATION if ds.get(key) not in (None, "")}
    for pixel_data in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
        if pixel_data in ds:
            del ds[pixel_data]
    return DecodedImage(image=image, format="DICOM", metadata=metadata, identifiers=identifiers, header=header, values=stored,
                        window=_first_window(ds) if stored is not None else None, bright_is_low=photometric == "MONOCHROME1", dataset=ds)


def _decode_raster(data: bytes, name: str) -> DecodedImage:
    try:
        with Image.open(io.BytesIO(data)) as probe:
            _check_size(name, *probe.size)  # from the header, before any pixel is decoded
            frames = getattr(probe, "n_frames", 1)
            if frames > 1:
                kind = "an animation" if probe.format in ("GIF", "PNG", "WEBP") else "a multi-page file"
                raise ImageReadError(f"{name}: the file holds {frames} frames ({kind}), not a single still X-ray.")
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                probe.load()
            image, image_format = probe.copy(), probe.format or "image"
            image.info.update(probe.info)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(_not_an_image_message(data, name)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageReadError(
            f"{name}: the image claims far more than the {MAX_PIXELS // 1_000_000} megapixels this tool accepts "
            "(a decompression bomb?); it was not decoded."
        ) from None
    except Exception as error:  # noqa: BLE001 - truncated or corrupt data surfaces as many exception types
        detail = "it is cut short" if "truncated" in str(error).lower() else f"{type(error).__name__}"
        raise ImageReadError(f"{name}: the image is damaged or incomplete and cannot be decoded ({detail}).") from None
    return DecodedImage(image=image, format=image_format)


def decode(data: bytes, name: str = "file") -> DecodedImage:
    """Decode one file's bytes. Raises ImageReadError with a human message when it is not usable."""
    if not data:
        raise ImageReadError(f"{name}: the file is empty.")
    return _decode_dicom(data, name) if _looks_like_dicom(data) else _decode_raster(data, name)


def read_image(data: bytes, name: str = "file") -> Image.Image:
    """The decoded picture only (see `decode`)."""
    return decode(data, name).image


def read_file(path: str | Path) -> DecodedImage:
    """Read and decode one file from disk (see `decode`)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ImageReadError(f"{path}: is a folder, not a file.") from None
    except OSError as error:
        raise ImageReadError(f"{path}: cannot read the file ({error.strerror or error}).") from None
    return decode(data, name=str(path))


def read_image_file(path: str | Path) -> Image.Image:
    """Read and decode one image file from disk (see `decode`)."""
    return read_file(path).image
