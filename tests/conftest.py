"""Shared fixtures. Tests that need the full data set skip cleanly when ../shared/data is absent."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import io

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from pneumo.reading.runtime import configure_tensorflow_env  # noqa: E402

configure_tensorflow_env()

TINY_DATA = REPO_ROOT / "tests" / "data" / "chest_xray"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
FULL_DATA = SHARED_DATA / "chest_xray"
DICOM_DIR = SHARED_DATA / "dicom"
# A subprocess sees the repository's package and a quiet TensorFlow.
SUBPROCESS_ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}

needs_full_data = pytest.mark.skipif(not FULL_DATA.is_dir(), reason=f"the full data set is not at {FULL_DATA}")


@pytest.fixture(scope="session")
def untrained_model_file(tmp_path_factory) -> Path:
    """An untrained model saved like the shipped one (no optimizer), for CLI plumbing tests."""
    from pneumo.training.model import build_model

    path = tmp_path_factory.mktemp("model") / "pneumonia.keras"
    build_model(output_bias=0.3).save(path)
    return path


def make_dicom(pixels: np.ndarray | None, photometric: str = "MONOCHROME2", preamble: bool = True, **elements) -> bytes:
    """A small DICOM file (digital X-ray, chest PA, with made-up identifiers); `elements` are set on the data set."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # digital X-ray
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("generated", {}, file_meta=meta, preamble=b"\0" * 128 if preamble else None)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.ViewPosition, ds.BodyPartExamined = "DX", "PA", "CHEST"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Doe^Jane", "SECRET-ID-1234", "20190101"
    if pixels is not None:
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
        bits = 8 if pixels.dtype == np.uint8 else 16
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, elements.pop("BitsStored", bits), bits - 1, 0
        ds.PixelData = pixels.tobytes()
    for key, value in elements.items():
        setattr(ds, key, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=preamble)
    return buffer.getvalue()
