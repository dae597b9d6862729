"""The not-a-chest-X-ray guard (pneumo.reading.guard), with the shipped fit."""

import numpy as np
import pytest
from PIL import Image

from conftest import DICOM_DIR, FULL_DATA, REPO_ROOT, TINY_DATA, needs_full_data
from pneumo.training.data import list_split, load_images
from pneumo.reading.guard import load_guard
from pneumo.reading.decode import read_file
from pneumo.reading.preprocess import to_gray299
from pneumo.training.synthetic import non_xray_images


@pytest.fixture(scope="module")
def guard():
    guard = load_guard()
    assert guard is not None, "weights/xray_guard.npz is missing: python -m pneumo.training.guard --fit"
    return guard


def _check(guard, image: Image.Image):
    return guard.check(to_gray299(image), image)


def test_shipped_xrays_pass(guard):
    files = [s.path for split in ("train", "test") for s in list_split(TINY_DATA, split)]
    files += sorted((REPO_ROOT / "examples").glob("*/*.jpeg"))
    for path in files:
        verdict = _check(guard, read_file(path).image)
        assert verdict.plausible, (path, verdict)


def test_detects_at_least_95_percent_of_non_xrays(guard):
    samples = non_xray_images()
    assert len(samples) >= 100
    missed = [name for name, image in samples if _check(guard, image).plausible]
    assert len(missed) <= 0.05 * len(samples), missed


def test_reasons_name_what_is_wrong(guard):
    xray = read_file(TINY_DATA / "test" / "PNEUMONIA" / "person100_bacteria_475.jpeg").image.convert("L")
    assert "colour" in _check(guard, Image.merge("RGB", (xray, xray.point(lambda v: v // 2), xray.point(lambda v: 255 - v)))).reason
    assert "blank" in _check(guard, Image.new("L", (512, 512), 250)).reason
    assert "inverted" in _check(guard, xray.point(lambda v: 255 - v)).reason


def test_colourfulness_is_hasler_and_suesstrunks_and_zero_for_gray_stored_in_colour():
    from pneumo.reading.guard import colourfulness

    def formula(image: Image.Image) -> float:
        rgb = np.asarray(image.convert("RGB").resize((128, 128), Image.Resampling.BILINEAR), dtype=np.float64)
        rg, yb = rgb[..., 0] - rgb[..., 1], 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
        return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))

    xray = read_file(TINY_DATA / "test" / "PNEUMONIA" / "person100_bacteria_475.jpeg").image.convert("L")
    gray_rgb = Image.merge("RGB", (xray, xray, xray))
    one_off = np.asarray(gray_rgb).copy()
    one_off[10, 10, 2] ^= 1  # one blue value one step away: no longer gray, the formula decides
    tinted = Image.merge("RGB", (xray, xray, xray.point(lambda v: v // 2)))
    for image in (gray_rgb, gray_rgb.convert("RGBA"), gray_rgb.convert("P"), Image.fromarray(one_off), tinted, tinted.convert("P")):
        assert colourfulness(image) == formula(image)
    assert colourfulness(gray_rgb) == 0.0 and colourfulness(tinted) > 10 and colourfulness(xray) == 0.0


@pytest.mark.skipif(not DICOM_DIR.is_dir(), reason="no shared DICOM files")
def test_real_dicom_passes_and_its_monochrome1_variant_is_called_inverted(guard):
    real = read_file(DICOM_DIR / "chest_cr_pa_monochrome2.dcm").image
    assert _check(guard, real).plausible
    negative = _check(guard, read_file(DICOM_DIR / "chest_cr_pa_monochrome1.dcm").image)
    assert not negative.plausible and "inverted" in negative.reason


@needs_full_data
def test_no_false_alarm_on_the_test_xrays(guard):
    gray, _ = load_images(list_split(FULL_DATA, "test"), None, progress=False)
    flagged = [i for i, g in enumerate(gray) if not guard.check(g).plausible]
    assert flagged == []
    assert sum(not guard.check(255 - g).plausible for g in gray[::10]) == len(gray[::10])  # their negatives are flagged


def test_verdicts_carry_a_kind_for_machines():
    guard = load_guard()
    gray = to_gray299(Image.open(next((TINY_DATA / "test" / "NORMAL").glob("*.jpeg"))))
    assert guard.check(gray).kind is None
    assert guard.check(255 - gray).kind == "inverted"
    assert guard.check(np.full((299, 299), 128, np.uint8)).kind == "not_xray"


def test_the_second_opinion_overrides_only_the_layout_and_needs_both_checks():
    """Campaign g8 as shipped: a layout refusal (not an inverted film) passes only when the X-ray check
    and the population score both agree; the colour, blank and detail checks and the inverted verdict
    stand as they were."""
    from dataclasses import replace
    from pathlib import Path

    from pneumo.reading.guard import load_guard
    from pneumo.reading.decode import read_image_file
    from pneumo.reading.preprocess import to_gray299
    from pneumo.training.synthetic import non_xray_images

    shipped = load_guard()
    layout_only = load_guard(xray_check=None)
    icu = to_gray299(read_image_file(Path(__file__).parent / "data" / "adult" / "hannover_00870a9c.jpeg"))
    assert layout_only.check(icu).check == "layout" and not layout_only.check(icu).plausible
    assert shipped.check(icu).plausible and shipped.check(icu).layout_passed is False
    child_like = load_guard()
    child_like.adult_score = replace(shipped.adult_score, threshold=1e9)  # the population score says child: the refusal stands
    assert not child_like.check(icu).plausible
    not_xray = load_guard()
    not_xray.xray_check = replace(shipped.xray_check, threshold=1e9)  # the X-ray check says no: the refusal stands
    assert not not_xray.check(icu).plausible
    photo = dict(non_xray_images())["photo/china"]
    assert shipped.check(to_gray299(photo), photo).check == "colour"
    child = to_gray299(read_image_file(sorted((Path(__file__).parent / "data" / "chest_xray").rglob("*.jpeg"))[0]))
    assert shipped.check(child).layout_passed and shipped.check(255 - child).kind == "inverted"
