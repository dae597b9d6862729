"""The reading room: window/level as DICOM states it, zoom, the indeterminate band, PPV and NPV
against hand computations, the PDF and CSV reports, the teaching gallery; and through AppTest,
that the viewing controls redraw without the model and a DICOM opens in its own window."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
import json
import math

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from conftest import REPO_ROOT, make_dicom
from pneumo import bundle as shipped
from pneumo.operating import INDETERMINATE, band_at, operating_point, ppv_npv, reading
from pneumo.outputs.viewing import GRAY8, ViewSource, Window, apply_window, presets, render, zoom_box, zoomed

APP = str(REPO_ROOT / "streamlit_app.py")
JPEG = REPO_ROOT / "examples" / "PNEUMONIA" / "person101_virus_187.jpeg"


# ---- window / level -------------------------------------------------------------------------------
def test_window_maps_values_as_dicom_states_it():
    c, w = 1000.0, 401.0  # below c - 0.5 - (w-1)/2 = 799.5 black, above c - 0.5 + (w-1)/2 = 1199.5 white
    values = np.array([0.0, 799.5, 800.0, 999.5, 1100.0, 1199.5, 1200.0, 4095.0])
    expected = [0, 0, round((800 - 999.5) / 400 * 255 + 127.5), 128, round((1100 - 999.5) / 400 * 255 + 127.5), 255, 255, 255]
    np.testing.assert_array_equal(apply_window(values, Window(c, w)), expected)
    step = apply_window(np.array([9.0, 9.6, 10.0]), Window(10.0, 1.0))  # width 1: a step at c - 0.5
    np.testing.assert_array_equal(step, [0, 255, 255])


def test_the_default_window_of_a_plain_picture_is_the_identity_and_invert_flips():
    gray = np.arange(256, dtype=np.float32).reshape(16, 16)
    source = ViewSource(gray, GRAY8)
    np.testing.assert_array_equal(np.asarray(render(source, source.default_window)), gray.astype(np.uint8))
    np.testing.assert_array_equal(np.asarray(render(source, source.default_window, invert=True)), 255 - gray.astype(np.uint8))
    narrow = np.asarray(render(source, Window(128, 64)))
    assert narrow.min() == 0 and narrow.max() == 255 and (narrow == 0).sum() > 90  # more contrast: values clip


def test_a_dicom_opens_in_its_own_window_in_its_own_values():
    from pneumo.reading.reader import prepare

    pixels = (np.linspace(0, 4095, 256 * 256).reshape(256, 256)).astype(np.uint16)
    data = make_dicom(pixels, BitsStored=12, WindowCenter=1500, WindowWidth=1000, RescaleSlope=1, RescaleIntercept=-1024)
    from pneumo.ui.viewer import source_of

    source = source_of(prepare(data, "x.dcm"))
    assert source.file_window == Window(1500.0, 1000.0) and source.unit.startswith("stored value")
    assert source.low == pytest.approx(-1024) and source.high == pytest.approx(4095 - 1024)  # after the rescale
    assert next(iter(presets(source))) == "The file's own window"
    shown = np.asarray(render(source, source.default_window))
    assert shown[0, 0] == 0 and shown[-1, -1] == 255  # the file's window clips both ends of the ramp
    mono1 = source_of(prepare(make_dicom(pixels, "MONOCHROME1", BitsStored=12), "y.dcm"))
    assert mono1.bright_is_low and np.asarray(render(mono1, mono1.default_window))[0, 0] == 255  # lowest value white


def test_presets_follow_screen_brightness_for_monochrome1():
    values = np.arange(1000, dtype=np.float32).reshape(10, 100)
    mono2, mono1 = presets(ViewSource(values, "v")), presets(ViewSource(values, "v", bright_is_low=True))
    lungs = "Lungs (the darker 60 %)"
    assert mono2[lungs].center < 500 < mono1[lungs].center  # dark on screen: low values, or high ones in MONOCHROME1


def test_zoom_crops_inside_the_picture_and_enlarges_back():
    assert zoom_box((400, 300), 1.0) == (0, 0, 400, 300)
    assert zoom_box((400, 300), 2.0) == (100, 75, 300, 225)
    assert zoom_box((400, 300), 4.0, 0.0, 1.0) == (0, 225, 100, 300)  # pushed back inside at the corner
    picture = Image.fromarray(np.arange(300 * 400, dtype=np.uint32).reshape(300, 400).astype(np.uint8))
    assert zoomed(picture, zoom_box(picture.size, 3.0)).size == picture.size


# ---- what a reading is worth --------------------------------------------------------------------
def test_ppv_and_npv_by_hand():
    ppv, npv = ppv_npv(0.9, 0.8, 0.1)
    assert ppv == pytest.approx(0.09 / (0.09 + 0.18)) and npv == pytest.approx(0.72 / (0.72 + 0.01))
    assert ppv_npv(1.0, 1.0, 0.3) == (1.0, 1.0)
    assert math.isnan(ppv_npv(0.0, 1.0, 0.5)[0])


def _uncertainty(shares: list[float], logits: list[float], level: float = 0.1) -> dict:
    return {"logit_grid": logits, "pneumonia_share": shares, "level": level, "neighbours": 10, "source": "made up"}


def test_the_band_is_the_run_around_the_threshold_where_local_errors_exceed_the_level():
    logits = [-3, -2, -1, -0.5, 0, 0.5, 1, 2, 3]
    shares = [0.0, 0.05, 0.3, 0.4, 0.5, 0.7, 0.95, 0.95, 1.0]  # the share of pneumonia among the neighbours
    band = band_at(_uncertainty(shares, logits), 0.5)  # threshold at logit 0
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    # below: errors are the shares (0.4, 0.3 > 0.1; 0.05 stops); above: 1 - share (0.5, 0.3 > 0.1; 0.05 stops)
    assert band.low == pytest.approx(sig(-1)) and band.high == pytest.approx(sig(0.5))
    assert reading(sig(-0.7), 0.5, band) .label == INDETERMINATE and reading(sig(-0.7), 0.5, band).leaning == "NORMAL"
    assert reading(sig(1.5), 0.5, band).label == "PNEUMONIA" and reading(sig(-2.5), 0.5, band).label == "NORMAL"
    separable = [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert band_at(_uncertainty(separable, logits), 0.5) is None  # no error next to the threshold: no band
    assert band_at(None, 0.5) is None


def test_local_shares_count_the_nearest_validation_scores():
    from pneumo.training.uncertainty import local_shares

    probabilities = np.array([0.01, 0.02, 0.03, 0.6, 0.97, 0.98, 0.99])
    labels = np.array([0, 0, 1, 0, 1, 1, 1])
    grid, share = local_shares(probabilities, labels, neighbours=3, points=5)
    assert grid[0] == pytest.approx(math.log(0.01 / 0.99)) and share[0] == pytest.approx(1 / 3)  # 0.01, 0.02, 0.03
    assert share[-1] == pytest.approx(1.0)


def test_the_shipped_band_is_what_its_rule_gives_at_the_shipped_threshold():
    bundle = shipped.read_bundle()
    assert bundle.uncertainty, "weights/uncertainty.json is shipped (python -m pneumo.training.uncertainty)"
    band = band_at(bundle.uncertainty, bundle.threshold)
    assert [round(band.low, 6), round(band.high, 6)] == bundle.uncertainty["band"]
    assert band.low < bundle.threshold < band.high and bundle.uncertainty["level"] == 0.10


# ---- reports ---------------------------------------------------------------------------------------
def _result(name: str, probability: float, warning=None, site=None, read=None):
    """A result as the reader gives it (`read`: the checks of a real file), read at the shipped threshold."""
    from pneumo.reading import Result
    from pneumo.reading.guard import Verdict

    bundle = shipped.read_bundle()
    verdict = None if warning is None else Verdict(False, warning[1], float("nan"), 0.0, kind=warning[0])
    base = read or Result(name=name, format="JPEG", size=Image.open(JPEG).size, verdict=verdict)
    return dataclasses.replace(base, name=name, probability=probability, threshold=bundle.threshold,
                               band=band_at(bundle.uncertainty, bundle.threshold), site=site)


def _study(name: str, probability: float, warning=None, identifiers=None, site=None, read=None):
    from pneumo.outputs.report import Study

    picture = Image.open(JPEG).convert("L")
    result = _result(name, probability, warning, site, read)
    return Study(result, picture, result.threshold, result.outcome(), overlay=picture.convert("RGB"), method="HiResCAM",
                 method_measures="something.", explained="PNEUMONIA", where="The map's weight is somewhere.",
                 warning=warning if read is None else result.warnings, identifiers=identifiers or {})


def test_the_pdf_holds_each_study_its_numbers_version_and_statement():
    import pypdf

    from pneumo.outputs.report import model_version, report_pdf

    bundle = shipped.read_bundle()
    band = band_at(bundle.uncertainty, bundle.threshold)
    studies = [_study("first ü.jpeg", 0.9432), _study("second.dcm", 0.0123, warning=("population", "Age 62 years from the DICOM header."))]
    data = report_pdf(studies, bundle, operating_point(bundle, bundle.threshold), 0.25, band)
    pages = [" ".join(page.extract_text().split()) for page in pypdf.PdfReader(io.BytesIO(data)).pages]
    assert len(pages) == 2
    assert "first ü.jpeg" in pages[0] and "94.3%" in pages[0] and "PNEUMONIA" in pages[0]
    assert "not a medical device" in pages[0] and "HiResCAM" in pages[0]
    ppv, npv = ppv_npv(bundle.test["sensitivity"], bundle.test["specificity"], 0.25)
    assert f"{ppv:.1%} of all X-rays it reads PNEUMONIA would have pneumonia (PPV)" in pages[0] and f"{npv:.1%}" in pages[0]
    assert "prevalence of 25.0%" in pages[0] and "Chance of pneumonia for this X-ray at a prevalence of 25.0%" in pages[0]
    assert model_version(bundle)["weights_sha256"][:16] in pages[0].replace("\n", "")
    # a flagged picture: its warning, no reading and no probability (the page withholds them too)
    assert "Age 62" in pages[1] and "outside the population the model learned from" in pages[1] and "Reading: withheld" in pages[1]
    assert "1.2%" not in pages[1] and "Chance of pneumonia" not in pages[1] and "INDETERMINATE" not in pages[1]
    assert "Doe" not in "".join(pages)  # no identifiers unless switched on
    with_ids = report_pdf([_study("x.dcm", 0.5, identifiers={"patient name": "Doe^Jane"})], bundle, None, 0.1, None)
    assert "Doe^Jane" in pypdf.PdfReader(io.BytesIO(with_ids)).pages[0].extract_text()


def test_a_flagged_picture_shown_anyway_is_reported_as_shown_at_a_persons_request():
    import dataclasses

    import pypdf

    from pneumo.outputs.report import report_pdf

    bundle = shipped.read_bundle()
    study = _study("second.dcm", 0.0123, warning=("population", "Age 62 years from the DICOM header."))
    study.result = dataclasses.replace(study.result, shown_anyway=True)
    text = " ".join(pypdf.PdfReader(io.BytesIO(report_pdf([study], bundle, None, 0.1, None))).pages[0].extract_text().split())
    assert "Shown at the user's request despite this warning" in text and "1.2%" in text and "Reading: withheld" not in text


def test_the_pdf_says_what_an_image_based_population_warning_saw_and_what_the_reading_is_worth_on_adults():
    import pypdf

    from pneumo.reading.reader import prepare
    from pneumo.reading.guard import load_guard
    from pneumo.outputs.report import report_pdf
    from pneumo.ui.analyze import _report_warning

    bundle = shipped.read_bundle()
    read = prepare((Path(__file__).parent / "data" / "adult" / "nih_rsna_Normal-1.jpeg").read_bytes(), "adult.jpeg", load_guard())
    study = _study("adult.jpeg", 0.7, read=read)
    study.warning = _report_warning(study.result, bundle)
    assert study.result.population_source == "image"
    text = " ".join(pypdf.PdfReader(io.BytesIO(report_pdf([study], bundle, None, 0.1, None))).pages[0].extract_text().split())
    share = bundle.adult_normal_called_pneumonia
    assert "Warning: outside the population the model learned from, seen in the image" in text
    assert "looks like an adult's chest X-ray (score" in text and "python -m" not in text
    assert f"calls {share:.0%} PNEUMONIA" in text and "**" not in text


def test_the_results_csv_has_one_row_per_study():
    import csv

    from pneumo.outputs.report import results_csv

    results = [_result("a.jpeg", 0.2), _result("b,c.png", 0.99, ("not_xray", "No."))]  # the second flagged: no reading in the CSV
    rows = list(csv.DictReader(io.StringIO(results_csv(results, results[0].threshold, results[0].band).decode())))
    assert [r["file"] for r in rows] == ["a.jpeg", "b,c.png"]
    assert list(rows[0]) == ["file", "probability", "threshold", "label", "reading", "warning_kind", "population_source", "warning", "site"]
    assert float(rows[0]["probability"]) == pytest.approx(0.2) and float(rows[0]["threshold"]) == pytest.approx(results[0].threshold)
    assert rows[0]["reading"] == INDETERMINATE and rows[0]["label"] == "NORMAL" and rows[1]["warning_kind"] == "not_xray"
    assert rows[1]["population_source"] == "" and rows[0]["site"] == ""
    assert rows[1]["probability"] == "" and rows[1]["label"] == "" and rows[1]["reading"] == "withheld" and rows[1]["warning"] == "No."


def test_a_site_profile_in_use_is_named_in_the_csv_and_the_pdf():
    import csv

    import pypdf

    from pneumo.bundle import read_bundle
    from pneumo.outputs.report import report_pdf, results_csv

    study = _study("a.jpeg", 0.4, site="site profile “Ward 7” (48 films, 2026-12-04, threshold 0.310)")
    rows = list(csv.DictReader(io.StringIO(results_csv([study.result], study.threshold, study.result.band).decode())))
    assert "Ward 7" in rows[0]["site"]
    text = " ".join(pypdf.PdfReader(io.BytesIO(report_pdf([study], read_bundle(), None, 0.1, None))).pages[0].extract_text().split())
    assert "Site: site profile “Ward 7”" in text
    plain = " ".join(pypdf.PdfReader(io.BytesIO(report_pdf([_study("b.jpeg", 0.4)], read_bundle(), None, 0.1, None))).pages[0]
                     .extract_text().split())
    assert "Site: none (the shipped model as trained)" in plain


# ---- the teaching gallery ----------------------------------------------------------------------------
def test_the_shipped_gallery_holds_every_test_mistake_of_the_shipped_weights_and_is_small():
    from pneumo.outputs.report import weights_sha256

    bundle = shipped.read_bundle()
    gallery = json.loads(bundle.file(shipped.GALLERY_FILE).read_text())
    assert gallery["weights_sha256"] == weights_sha256(bundle.model_file), "rebuild with python -m pneumo.training.gallery"
    confusion = bundle.test["confusion_matrix"]
    kinds = [i["kind"] for i in gallery["items"]]
    assert kinds.count("false_positive") == confusion["fp"] and kinds.count("false_negative") == confusion["fn"]
    files = [bundle.file(shipped.GALLERY_DIR) / i["image"] for i in gallery["items"]]
    assert all(f.is_file() for f in files) and sum(f.stat().st_size for f in files) < 1_000_000
    assert sorted(p.name for p in bundle.file(shipped.GALLERY_DIR).iterdir()) == sorted(f.name for f in files)  # nothing stale
    assert "CC BY 4.0" in gallery["credit"]


# ---- the page -------------------------------------------------------------------------------------------
@pytest.fixture
def explain_calls(monkeypatch):
    import pneumo.reading.explain

    calls = []
    original = pneumo.reading.explain.Explainer.explain

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pneumo.reading.explain.Explainer, "explain", counting)
    return calls


def _app_with(*files: tuple[str, bytes]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.file_uploader[0].set_value([(name, data, "application/octet-stream") for name, data in files])
    at.run()
    assert not at.exception, at.exception
    return at


def _view_key(data: bytes, name: str) -> str:
    """The key of one viewing control of the X-ray with these bytes (pneumo.ui.viewer)."""
    from pneumo.reading import digest_of

    return f"view-{name}-{digest_of(data)[:16]}"


def test_viewing_controls_redraw_without_the_model_and_a_dicom_opens_in_its_window(explain_calls):
    pixels = (np.linspace(0, 4095, 320 * 320).reshape(320, 320)).astype(np.uint16)
    data = make_dicom(pixels, BitsStored=12, WindowCenter=1500, WindowWidth=1000, PatientAge="003Y")
    at = _app_with(("ramp.dcm", data))
    calls = len(explain_calls)
    assert at.slider(key=_view_key(data, "center")).value == 1500 and at.slider(key=_view_key(data, "width")).value == 1000
    at.slider(key=_view_key(data, "width")).set_value(400).run()
    at.toggle(key=_view_key(data, "invert")).set_value(True).run()
    at.select_slider(key=_view_key(data, "zoom")).set_value(2.0).run()
    at.selectbox(key=_view_key(data, "preset")).set_value("Full range").run()
    assert not at.exception, at.exception
    assert len(explain_calls) == calls  # display only: no new probability or map
    assert at.slider(key=_view_key(data, "width")).value == pytest.approx(4096)  # the preset set the window
    captions = [image.proto.imgs[0].caption for image in at.get("image")]
    assert any("zoom 2×" in c and "inverted" in c for c in captions), captions


def test_the_page_shows_ppv_npv_at_the_set_prevalence_and_the_band():
    at = _app_with(("x.jpeg", JPEG.read_bytes()))
    at.number_input(key="prevalence").set_value(25.0).run()
    bundle = shipped.read_bundle()
    ppv, npv = ppv_npv(bundle.test["sensitivity"], bundle.test["specificity"], 0.25)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["PPV"] == f"{ppv:.1%}" and metrics["NPV"] == f"{npv:.1%}"
    band = band_at(bundle.uncertainty, bundle.threshold)
    # this X-ray's chance at the set prevalence, and the network's own probability beside it, said as such
    from pneumo.operating import at_prevalence

    caption = next(c.value for c in at.caption if c.value.startswith("The network says"))
    probability = float(caption.split("The network says ")[1].split("%")[0]) / 100
    chance = float(metrics["Chance of pneumonia at 25% prevalence"].rstrip("%")) / 100
    assert chance == pytest.approx(at_prevalence(probability, 0.25, bundle.uncertainty["calibration"]["trained_at"]), abs=2e-3)
    assert "PPV and NPV describe the threshold over all X-rays" in " ".join(c.value for c in at.caption)
    at.slider(key="threshold").set_value(round(probability + 0.01, 3)).run()  # the reading now sits right below the threshold
    assert any(m.value == "## :orange[INDETERMINATE]" for m in at.markdown)
    assert any(m.value.startswith("Leaning **NORMAL**") for m in at.markdown)
    assert band is not None and [b.label for b in at.get("download_button")][0] == "Download report (PDF)"


def test_a_card_section_is_replaced_not_repeated(tmp_path):
    from pneumo.training.report import set_card_section

    card = tmp_path / "MODEL_CARD.md"
    card.write_text("# Card\n\n## Results\nr\n\n## Known limits\n- l\n")
    set_card_section(card, "Indeterminate band", "first")
    set_card_section(card, "Indeterminate band", "second")
    text = card.read_text()
    assert text.count("## Indeterminate band") == 1 and "second" in text and "first" not in text
    assert text.index("## Results") < text.index("## Indeterminate band") < text.index("## Known limits") and "- l" in text


def test_the_cli_gives_the_reading_beside_the_label(tmp_path):
    import subprocess
    import sys

    from conftest import SUBPROCESS_ENV

    bundle = shipped.read_bundle()
    band = band_at(bundle.uncertainty, bundle.threshold)
    out = subprocess.run([sys.executable, "-m", "pneumo", "predict", str(JPEG), "--json"], capture_output=True, text=True,
                         env=SUBPROCESS_ENV, cwd=REPO_ROOT, timeout=300)
    row = json.loads(out.stdout.splitlines()[0])
    assert row["label"] in ("NORMAL", "PNEUMONIA")
    assert row["reading"] == (INDETERMINATE if band.contains(row["probability"]) else row["label"])
    low = subprocess.run([sys.executable, "-m", "pneumo", "predict", str(JPEG), "--json", "--threshold", f"{row['probability'] + 0.01:.4f}"],
                         capture_output=True, text=True, env=SUBPROCESS_ENV, cwd=REPO_ROOT, timeout=300)
    assert json.loads(low.stdout.splitlines()[0])["reading"] == INDETERMINATE  # right below a threshold: inside its band
