"""Real-world inputs: DICOM, every image mode and format, corrupt and hostile files.

Fixtures are generated here; the two shared DICOM files are used when present.

Tolerance for "the same model input as the equivalent 8-bit grayscale image":
lossless formats (PNG, BMP, TIFF, lossless WebP, RGB/RGBA/LA copies, 16-bit PNG) are exact (0);
a 256-colour palette (P) within 2/255; lossy JPEG and WebP at quality 95 within a mean absolute
difference of 0.005 and a maximum of 0.08 (1.0 = full scale).
"""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import DICOM_DIR, TINY_DATA, make_dicom as _dicom
from pneumo.reading.decode import MAX_PIXELS, ImageReadError, decode, read_image
from pneumo.reading.preprocess import preprocess

XRAY = TINY_DATA / "train" / "PNEUMONIA" / "person1000_bacteria_2931.jpeg"
needs_dicom = pytest.mark.skipif(not DICOM_DIR.is_dir(), reason=f"no shared DICOM files at {DICOM_DIR}")


@pytest.fixture(scope="module")
def gray() -> Image.Image:
    with Image.open(XRAY) as image:
        return image.convert("L")


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


# ---- every mode and format --------------------------------------------------------------------
def _variants(gray: Image.Image) -> dict[str, tuple[bytes, str]]:
    rgb = gray.convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90 CCW to view": store it turned the other way
    return {
        "L png": (_encode(gray, "PNG"), "exact"),
        "LA png": (_encode(Image.merge("LA", (gray, Image.new("L", gray.size, 255))), "PNG"), "exact"),
        "RGB png": (_encode(rgb, "PNG"), "exact"),
        "RGBA png": (_encode(rgb.convert("RGBA"), "PNG"), "exact"),
        "P png": (_encode(gray.convert("P"), "PNG"), "palette"),
        "I;16 png": (_encode(Image.fromarray(np.asarray(gray, dtype=np.uint16) * 257), "PNG"), "exact"),
        "BMP": (_encode(gray, "BMP"), "exact"),
        "TIFF": (_encode(gray, "TIFF"), "exact"),
        "TIFF 16-bit": (_encode(Image.fromarray(np.asarray(gray, dtype=np.uint16) * 257), "TIFF"), "exact"),
        "WebP lossless": (_encode(rgb, "WEBP", lossless=True), "exact"),
        "WebP": (_encode(rgb, "WEBP", quality=95), "lossy"),
        "JPEG": (_encode(gray, "JPEG", quality=95), "lossy"),
        "progressive JPEG": (_encode(gray, "JPEG", quality=95, progressive=True), "lossy"),
        "CMYK JPEG": (_encode(rgb.convert("CMYK"), "JPEG", quality=95), "lossy"),
        "EXIF-rotated JPEG": (_encode(gray.transpose(Image.Transpose.ROTATE_270), "JPEG", quality=95, exif=exif), "lossy"),
    }


@pytest.mark.parametrize("variant", list(_variants(Image.new("L", (64, 64)))))
def test_every_format_gives_the_model_input_of_the_gray_original(gray, variant):
    data, tolerance = _variants(gray)[variant]
    x = preprocess(read_image(data, f"upload.{variant}"))
    reference = preprocess(gray)
    difference = np.abs(x - reference)
    if tolerance == "exact":
        assert difference.max() == 0.0
    elif tolerance == "palette":
        assert difference.max() <= 2 / 255
    else:
        assert difference.mean() <= 0.005 and difference.max() <= 0.08


def test_the_name_does_not_matter(gray):
    jpeg = _encode(gray, "JPEG", quality=95)
    for name in ("scan.png", "scan.dcm", "scan", "scan.txt"):
        assert decode(jpeg, name).format == "JPEG"


# ---- DICOM ------------------------------------------------------------------------------------
@needs_dicom
def test_shared_dicoms_monochrome1_is_the_negative_of_monochrome2():
    mono2 = decode((DICOM_DIR / "chest_cr_pa_monochrome2.dcm").read_bytes(), "chest_cr_pa_monochrome2.dcm")
    mono1 = decode((DICOM_DIR / "chest_cr_pa_monochrome1.dcm").read_bytes(), "scan")
    a, b = np.asarray(mono2.image), np.asarray(mono1.image)
    assert a.shape == b.shape == (1024, 1024) and a.dtype == np.uint8
    assert np.array_equal(b, a.max() - a)  # pixel-wise negative
    assert mono2.format == "DICOM"
    assert mono2.metadata["modality"] == "CR" and mono2.metadata["view position"] == "PA" and mono2.metadata["body part"] == "CHEST"
    assert mono2.metadata["image size"] == "1024×1024"
    shown = " ".join(mono2.metadata.values())
    for secret in mono2.identifiers.values():
        assert secret not in shown  # identifiers are kept apart from what is shown by default


@needs_dicom
def test_shared_dicom_without_extension_or_preamble(tmp_path):
    data = (DICOM_DIR / "chest_cr_pa_monochrome2.dcm").read_bytes()
    assert decode(data, "IMG0001").format == "DICOM"
    assert decode(data[132:], "IMG0001").format == "DICOM"  # raw data set: no preamble, no "DICM"


def test_dicom_16_bit_rescale_and_window():
    ramp = (np.arange(256 * 256, dtype=np.uint16).reshape(256, 256) % 4096).astype(np.uint16)  # 12-bit values
    plain = np.asarray(decode(_dicom(ramp, BitsStored=12), "ramp.dcm").image)
    assert plain.min() == 0 and plain.max() == 255  # full 12-bit range to 8 bits
    assert plain[0, 1] <= plain[0, 2]
    # rescale slope/intercept then a window of [1000, 2000] in output units: values outside clip.
    windowed = np.asarray(decode(_dicom(ramp, BitsStored=12, RescaleSlope=1, RescaleIntercept=-1024, WindowCenter=500, WindowWidth=1000), "w.dcm").image)
    hu = ramp.astype(np.int32) - 1024
    assert (windowed[hu <= 0] == 0).all() and (windowed[hu >= 1000] == 255).all()
    inside = (hu > 50) & (hu < 950)
    assert 0 < windowed[inside].min() and windowed[inside].max() < 255


def test_dicom_8_bit_and_monochrome1():
    pixels = np.tile(np.arange(256, dtype=np.uint8), (128, 1))
    mono2 = np.asarray(decode(_dicom(pixels), "a.dcm").image)
    mono1 = np.asarray(decode(_dicom(pixels, photometric="MONOCHROME1"), "b.dcm").image)
    assert np.array_equal(mono2, pixels)
    assert np.array_equal(mono1, 255 - pixels)


def test_dicom_without_pixel_data_is_a_clear_error():
    with pytest.raises(ImageReadError, match="no image"):
        decode(_dicom(None), "report.dcm")


def test_dicom_identifiers_are_not_metadata():
    decoded = decode(_dicom(np.full((128, 128), 100, np.uint8)), "x.dcm")
    assert decoded.identifiers == {"patient name": "Doe^Jane", "patient ID": "SECRET-ID-1234", "birth date": "20190101"}
    assert "SECRET-ID-1234" not in repr(decoded) and "Doe" not in str(decoded.metadata)


# ---- bad input ----------------------------------------------------------------------------------
def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1024, 9)) + chunk(b"IEND", b"")


def _gif(frames: int) -> bytes:
    images = [Image.new("L", (128, 128), 40 * i) for i in range(frames)]
    return _encode(images[0], "GIF", save_all=True, append_images=images[1:])


BAD_FILES = {
    "empty.jpg": (lambda g: b"", "empty"),
    "truncated.jpg": (lambda g: _encode(g, "JPEG")[:1500], "damaged or incomplete"),
    "notes.png": (lambda g: b"Findings: none.\nImpression: normal chest.\n", "text file"),
    "report.png": (lambda g: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n", "PDF"),
    "bomb.png": (lambda g: _png_header_only(50_000, 50_000), "megapixels"),
    "tiny.png": (lambda g: _encode(g.resize((40, 32)), "PNG"), "at least 64"),
    "animated.gif": (lambda g: _gif(3), "frames"),
    "random.bin": (lambda g: np.random.default_rng(0).bytes(5000), "not an image"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_files_get_a_specific_message(gray, name):
    make, expected = BAD_FILES[name]
    with pytest.raises(ImageReadError) as caught:
        decode(make(gray), name)
    message = str(caught.value)
    assert message.startswith(name + ":") and expected in message


def test_decompression_bomb_is_refused_before_decoding():
    data = _png_header_only(50_000, 50_000)  # 2.5 gigapixels promised in a few hundred bytes
    assert len(data) < 5_000 and 50_000 * 50_000 > MAX_PIXELS
    tracemalloc.start()
    with pytest.raises(ImageReadError):
        decode(data, "bomb.png")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 10_000_000  # bytes: nothing was decoded


def test_a_single_frame_gif_is_fine(gray):
    assert decode(_encode(gray, "GIF"), "still.gif").format == "GIF"
