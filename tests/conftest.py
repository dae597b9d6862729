"""Shared fixtures. Tests that need the full data set skip cleanly when ../shared/data is absent."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from pneumo.runtime import configure_tensorflow_env  # noqa: E402

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
    from pneumo.model import build_model

    path = tmp_path_factory.mktemp("model") / "pneumonia.keras"
    build_model(output_bias=0.3).save(path)
    return path
