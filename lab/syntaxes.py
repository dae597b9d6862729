"""One real chest DICOM re-encoded in every transfer syntax that can be written here, so that each
decoder the serving wing relies on is checked on a chest film, not only on pydicom's test corpus.

    python -m lab.syntaxes --measure    # full size: each syntax's probability against the uncompressed file
    python -m lab.syntaxes --fixtures   # the small copies in tests/data/dicom/ (256 px a side)

The source is `../shared/data/dicom/chest_cr_pa_monochrome2.dcm` (JPEG baseline, 8-bit, 1024 px). It
is decoded once into an uncompressed file (Explicit VR Little Endian), the reference; every other
file is encoded from the reference's pixels. JPEG lossless (process 14), 12-bit JPEG extended and
big-endian cannot be written with these libraries: pydicom's own test corpus covers their decoding
(tests/test_dicom.py).
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEG2000,
    JPEG2000Lossless,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from pneumo.training.sets import SHARED_DATA

SOURCE = "dicom/chest_cr_pa_monochrome2.dcm"  # under the shared data folder (pneumo.training.sets.dicoms)
FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "data" / "dicom"
FIXTURE_SIDE = 256

# file stem -> (transfer syntax, encoder options, lossless?)
SYNTAXES: dict[str, tuple[str, dict, bool]] = {
    "uncompressed": (ExplicitVRLittleEndian, {}, True),
    "rle": (RLELossless, {}, True),
    "j2k_lossless": (JPEG2000Lossless, {}, True),
    "j2k_lossy": (JPEG2000, {"j2k_cr": [15]}, False),  # about 15:1
    "jpegls_lossless": (JPEGLSLossless, {}, True),
    "jpegls_near": (JPEGLSNearLossless, {"jls_error": 2}, False),  # each value within 2
    "deflated": (DeflatedExplicitVRLittleEndian, {}, True),
}


def reference(source: Path, side: int | None = None) -> pydicom.Dataset:
    """The source decoded into an uncompressed data set (resized to `side` px a side if given), its
    header kept as it is apart from the image's own elements."""
    ds = pydicom.dcmread(source)
    pixels = ds.pixel_array
    if side is not None:
        spacing = [float(v) * pixels.shape[0] / side for v in ds.PixelSpacing] if "PixelSpacing" in ds else None
        pixels = np.asarray(Image.fromarray(pixels).resize((side, side), Image.LANCZOS))
        if spacing:
            ds.PixelSpacing = [f"{v:.6g}" for v in spacing]
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    for element in ("LossyImageCompressionRatio",):
        ds.pop(element, None)
    return ds


def encoded(ref: pydicom.Dataset, syntax: str, options: dict) -> bytes:
    """The reference written in `syntax`, as file bytes."""
    ds = pydicom.dcmread(io.BytesIO(_bytes(ref)))  # a fresh copy
    if syntax in (ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian):
        ds.file_meta.TransferSyntaxUID = syntax
    else:
        ds.compress(syntax, generate_instance_uid=False, **options)
    return _bytes(ds)


def _bytes(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def write_fixtures(shared_dir: Path, out: Path = FIXTURES) -> list[Path]:
    ref = reference(shared_dir / SOURCE, FIXTURE_SIDE)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, (syntax, options, _) in SYNTAXES.items():
        path = out / f"chest_{stem}.dcm"
        path.write_bytes(encoded(ref, syntax, options))
        written.append(path)
    return written


def measure(shared_dir: Path) -> list[dict]:
    """Each syntax at full size: bytes, whether the decoded pixels equal the reference's, and the
    probability against the uncompressed file's."""
    import pneumo
    from pneumo.reading.decode import decode

    ref = reference(shared_dir / SOURCE)
    model = pneumo.load()
    base = _bytes(ref)
    p0 = model.predict(base).probability
    rows = []
    for stem, (syntax, options, lossless) in SYNTAXES.items():
        data = encoded(ref, syntax, options)
        same = bool(np.array_equal(np.asarray(decode(data).image), np.asarray(decode(base).image)))
        p = model.predict(data).probability
        rows.append({"syntax": stem, "uid": syntax, "lossless": lossless, "bytes": len(data), "pixels_equal": same,
                     "probability": round(p, 6), "difference": round(abs(p - p0), 6)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared-dir", type=Path, default=SHARED_DATA, help="the shared data folder (holds dicom/)")
    job = parser.add_mutually_exclusive_group(required=True)
    job.add_argument("--measure", action="store_true", help="full size: every syntax against the uncompressed file")
    job.add_argument("--fixtures", action="store_true", help=f"write the {FIXTURE_SIDE}-px copies into tests/data/dicom/")
    args = parser.parse_args(argv)
    if not (args.shared_dir / SOURCE).is_file():
        parser.error(f"{args.shared_dir / SOURCE} is missing")
    if args.fixtures:
        for path in write_fixtures(args.shared_dir):
            print(f"{path.relative_to(FIXTURES.parents[2])}  {path.stat().st_size:,} bytes")
    else:
        for row in measure(args.shared_dir):
            print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
