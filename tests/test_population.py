"""The population check (pneumo.reading.population): from the DICOM header (every PatientAge form, birth and
study dates, lateral views) and from the image (the shipped image score, its fitting in
pneumo.training.population); the routing of the guard's layout failures; and what the page and the
CLI make of it."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import DICOM_DIR, SUBPROCESS_ENV
from pneumo.reading.decode import decode
from pneumo.reading.population import TRAINING_AGES, age_from_dates, check_header, parse_age
from test_inputs import _dicom


@pytest.mark.parametrize("text,years", [
    ("062Y", 62), ("62Y", 62), ("062y", 62), ("62", 62), (" 5 ", 5), ("018M", 1.5), ("010W", 70 / 365.25), ("005D", 5 / 365.25),
    ("004Y", 4), ("000D", 0.0),
])
def test_every_patient_age_form(text, years):
    assert parse_age(text) == pytest.approx(years)


@pytest.mark.parametrize("text", ["", None, "sixty", "62 years old", "1234Y", "-5Y", "062X"])
def test_ages_that_are_not_ages_are_none(text):
    assert parse_age(text) is None


def test_age_from_birth_and_study_dates():
    assert age_from_dates("20190101", "20220701") == pytest.approx(3.5, abs=0.01)
    assert age_from_dates("1962.03.04", "20240304") == pytest.approx(62, abs=0.01)  # the old dotted form
    assert age_from_dates("20220101", "20190101") is None  # seen before born
    assert age_from_dates("", "20190101") is None and age_from_dates("20190101", None) is None and age_from_dates("2019", "2020") is None


@pytest.mark.parametrize("fields,kind", [
    ({"PatientAge": "062Y"}, "population"),
    ({"PatientAge": "004Y"}, None),
    ({"PatientAge": "018M"}, None),  # 1.5 years
    ({"PatientAge": "010M"}, "population"),  # under one year: outside the training ages too
    ({"PatientAge": "006Y"}, "population"),
    ({"PatientBirthDate": "19620304", "StudyDate": "20240304"}, "population"),  # no PatientAge: the dates
    ({"PatientBirthDate": "20200101", "StudyDate": "20230601"}, None),
    ({"PatientAge": "003Y", "ViewPosition": "LL"}, "lateral"),
    ({"PatientAge": "003Y", "ViewPosition": "RL"}, "lateral"),
    ({"SeriesDescription": "Chest LAT"}, "lateral"),
    ({"ProtocolName": "THORAX LATERAL"}, "lateral"),
    ({"ViewPosition": "PA", "SeriesDescription": "view: PA"}, None),
    ({"ViewPosition": "AP", "ImageLaterality": "L"}, None),  # laterality of a paired organ, not a lateral view
    ({}, None),
])
def test_header_verdicts(fields, kind):
    verdict = check_header(fields)
    assert verdict.kind == kind
    if kind == "population":
        assert verdict.seen.startswith("age ") and "children aged 1 to 5" in verdict.reason
    assert TRAINING_AGES == (1.0, 6.0)


def _image() -> np.ndarray:
    yy, xx = np.mgrid[:300, :300]
    return (((yy - 150) ** 2 + (xx - 150) ** 2 < 100**2) * 150 + 40).astype(np.uint8)


def test_the_birth_date_is_used_but_not_shown():
    decoded = decode(_dicom(_image(), PatientBirthDate="19600101", StudyDate="20240101"), "scan.dcm")
    verdict = check_header(decoded.header)
    assert verdict.kind == "population" and "64 years" in verdict.seen
    assert "1960" not in verdict.reason + verdict.seen and "1960" not in json.dumps(decoded.metadata)


@pytest.mark.skipif(not DICOM_DIR.is_dir(), reason="no shared DICOM files")
def test_the_shared_adult_radiograph_is_outside_the_training_ages():
    decoded = decode((DICOM_DIR / "chest_cr_pa_monochrome2.dcm").read_bytes(), "x")
    verdict = check_header(decoded.header)
    assert verdict.kind == "population" and verdict.age_years == 62


@pytest.mark.skipif(not DICOM_DIR.is_dir(), reason="no shared DICOM files")
def test_the_cli_gives_a_machine_readable_warning_kind(tmp_path, untrained_model_file):
    """The shared real radiograph (which the guard passes) with its header rewritten three ways."""
    import pydicom

    for name, changes in {"adult.dcm": {"PatientAge": "062Y"}, "child.dcm": {"PatientAge": "003Y"},
                          "lateral.dcm": {"PatientAge": "003Y", "ViewPosition": "LL"}}.items():
        ds = pydicom.dcmread(DICOM_DIR / "chest_cr_pa_monochrome2.dcm")
        for key, value in changes.items():
            setattr(ds, key, value)
        ds.save_as(tmp_path / name)
    result = subprocess.run([sys.executable, "-m", "pneumo", "predict", str(tmp_path), "--weights", str(untrained_model_file), "--json",
                             "--csv", str(tmp_path / "out.csv")], capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {json.loads(line)["file"].rsplit("/", 1)[-1]: json.loads(line) for line in result.stdout.splitlines()}
    assert {name: rows[name]["warning_kind"] for name in rows} == {"adult.dcm": "population", "child.dcm": None, "lateral.dcm": "lateral"}
    assert "62 years" in rows["adult.dcm"]["warning"] and rows["child.dcm"]["warning"] is None
    assert all(rows[name]["probability"] is not None for name in rows)  # predicted all the same, with the warning beside
    header = (tmp_path / "out.csv").read_text().splitlines()[0]
    assert header == "file,probability,label,reading,error,warning_kind,population_source,lung_share,map_in_lungs,warning,site"


ADULT_FIXTURES = sorted((Path(__file__).parent / "data" / "adult").glob("*.jpeg"))


def _svm_problem(seed: int = 1, n: int = 160):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 16))
    y = (x[:, 0] + rng.normal(0, 0.3, n) > 0.8).astype(int)
    return x, y


def test_the_image_score_is_the_svm_folded_into_numpy_arrays(tmp_path, monkeypatch):
    """pneumo.training.population.to_image_score: the served score (numpy) equals scikit-learn's
    pipeline on the same thumbnails, and survives saving and loading."""
    import pneumo.training.population as fitting
    from pneumo.reading.preprocess import thumbnails
    from pneumo.reading.population import ImageScore

    monkeypatch.setattr(fitting, "COMPONENTS", 8)
    gray = np.random.default_rng(2).integers(0, 256, size=(60, 299, 299), dtype=np.uint8)
    gray[:20, :, 100:200] = 255  # a class the score can see
    labels = np.r_[np.ones(20, int), np.zeros(40, int)]
    features = thumbnails(gray, 4)
    pipeline = fitting.fit_svm(features, labels, np.ones(60))
    score = fitting.to_image_score(pipeline, threshold=0.1, side=4)
    np.testing.assert_allclose(score.score_features(features), pipeline.decision_function(features), atol=1e-9)
    score.save(tmp_path / "s.npz", note="x")
    loaded = ImageScore.load(tmp_path / "s.npz")
    np.testing.assert_allclose(loaded.score_features(features), score.score_features(features), atol=1e-4)  # stored as float32
    assert loaded.threshold == pytest.approx(0.1)
    assert score.score_features(features[:20]).min() > score.score_features(features[20:]).max()


def test_an_image_score_on_histograms_of_oriented_gradients_is_served_from_its_arrays(tmp_path, monkeypatch):
    """Campaign pop1's features: the served score names its feature recipe, computes it in numpy and
    equals scikit-learn's pipeline on the same features, after saving and loading too."""
    import pneumo.training.population as fitting
    from pneumo.training.guard import image_features
    from pneumo.reading.population import ImageScore

    monkeypatch.setattr(fitting, "COMPONENTS", 8)
    rng = np.random.default_rng(4)
    gray = rng.integers(0, 256, size=(40, 299, 299), dtype=np.uint8)
    gray[:15, :, ::12] = 0  # vertical stripes: edges of one orientation for one class
    labels = np.r_[np.ones(15, int), np.zeros(25, int)]
    features = image_features("hog128", gray)
    pipeline = fitting.fit_svm(features, labels, np.ones(40))
    score = fitting.to_image_score(pipeline, threshold=0.0, features="hog128")
    np.testing.assert_allclose(score.score(gray), pipeline.decision_function(features), atol=1e-9)
    score.save(tmp_path / "s.npz")
    loaded = ImageScore.load(tmp_path / "s.npz")
    assert loaded.features == "hog128"
    np.testing.assert_allclose(loaded.score(gray), score.score(gray), atol=1e-3)


def test_gradient_histograms_see_the_orientation_of_edges_and_each_image_alone():
    from pneumo.reading.preprocess import gradient_histograms

    vertical = np.zeros((299, 299), np.uint8)
    vertical[:, 150:] = 255  # an edge across x: horizontal gradient, orientation bin 0
    horizontal = vertical.T.copy()  # an edge across y: bin 4 of 9 (90 degrees)
    h = gradient_histograms(np.stack([vertical, horizontal]), 128)
    assert h.shape == (2, 7 * 7 * 4 * 9)
    blocks = h.reshape(2, 7, 7, 4, 9)
    assert blocks[0, 3, 3].argmax(axis=-1).tolist() == [0] * 4 and blocks[1, 3, 3].argmax(axis=-1).tolist() == [4] * 4
    many = np.random.default_rng(5).integers(0, 256, size=(300, 299, 299), dtype=np.uint8)  # more than one chunk
    np.testing.assert_allclose(gradient_histograms(many, 64)[290:], np.concatenate([gradient_histograms(g, 64) for g in many[290:]]))
    assert np.isfinite(gradient_histograms(np.zeros((299, 299), np.uint8), 128)).all()  # a blank picture: no division by zero


def test_gradient_histograms_from_tables_are_the_textbook_computation_to_the_bit():
    from PIL import Image

    from pneumo.reading.preprocess import gradient_histograms

    def textbook(gray: np.ndarray, side: int, cell: int = 16, bins: int = 9) -> np.ndarray:  # hypot and arctan2 per pixel
        x = np.asarray(Image.fromarray(gray).resize((side, side), Image.Resampling.BOX), dtype=np.float64)
        gx, gy = np.zeros_like(x), np.zeros_like(x)
        gx[:, 1:-1], gy[1:-1, :] = x[:, 2:] - x[:, :-2], x[2:, :] - x[:-2, :]
        magnitude, cells = np.hypot(gx, gy), side // cell
        orientation = np.minimum((np.arctan2(gy, gx) % np.pi) / np.pi * bins, bins - 1).astype(int)
        hist = np.zeros((cells, cells, bins))
        for i in range(cells * cell):
            for j in range(cells * cell):
                hist[i // cell, j // cell, orientation[i, j]] += magnitude[i, j]
        blocks = np.concatenate([hist[:-1, :-1], hist[1:, :-1], hist[:-1, 1:], hist[1:, 1:]], axis=-1)
        blocks = blocks / np.sqrt((blocks ** 2).sum(axis=-1, keepdims=True) + 1e-6)
        blocks = np.minimum(blocks, 0.2)
        return (blocks / np.sqrt((blocks ** 2).sum(axis=-1, keepdims=True) + 1e-6)).ravel()

    rng = np.random.default_rng(6)
    smooth = np.asarray(Image.fromarray(rng.integers(0, 256, (30, 30), dtype=np.uint8)).resize((299, 299), Image.Resampling.BICUBIC))
    for gray in (rng.integers(0, 256, (299, 299), dtype=np.uint8), smooth, np.full((299, 299), 7, np.uint8)):
        for side in (64, 100):
            np.testing.assert_allclose(gradient_histograms(gray, side)[0], textbook(gray, side), rtol=1e-12, atol=1e-12)
    with pytest.raises(TypeError):
        gradient_histograms(np.zeros((299, 299)), 64)  # the tables hold 8-bit differences only


def test_cross_fitting_leaves_each_fold_out_and_sources_weigh_equally(monkeypatch):
    import pneumo.training.population as fitting

    monkeypatch.setattr(fitting, "COMPONENTS", 8)
    x, y = _svm_problem()
    folds = np.arange(len(y)) % 5
    weights = np.ones(len(y))
    crossed = fitting.cross_fit(x, x, y, folds, weights)
    held = folds == 0
    np.testing.assert_allclose(crossed[held], fitting.fit_svm(x[~held], y[~held], weights[~held]).decision_function(x[held]))
    assert not np.allclose(crossed, fitting.fit_svm(x, y, weights).decision_function(x))  # not the in-sample scores
    w = fitting.source_weights(np.array(["children"] * 4 + ["NIH"] * 9 + ["Hannover"] * 1 + ["web"] * 2))
    assert w[:4].tolist() == [1] * 4
    assert w[4:13].sum() == pytest.approx(w[13]) == pytest.approx(w[14:].sum()) == pytest.approx(12 / 3)


def test_the_threshold_holds_for_each_class_of_children():
    """The higher of the per-class 99th percentiles: neither class's false alarms hide in the pool."""
    from pneumo.training.population import CHILDREN_SHARE, threshold_rule

    rng = np.random.default_rng(3)
    scores = np.r_[rng.normal(1.0, 1.0, 300), rng.normal(-1.0, 1.0, 900)]
    classes = np.r_[np.zeros(300, int), np.ones(900, int)]
    threshold = threshold_rule(scores, classes)
    assert threshold == pytest.approx(np.quantile(scores[:300], CHILDREN_SHARE))
    assert (scores[:300] >= threshold).mean() <= 0.01 + 1e-9 and threshold > np.quantile(scores, CHILDREN_SHARE)


def test_the_choice_rule_takes_the_best_worst_held_out_source_among_those_within_the_validation_limit():
    from pneumo.training.population import choose

    reports = {"K": {"validation_ok": True, "worst_held_out": 0.80}, "L": {"validation_ok": True, "worst_held_out": 0.80},
               "M": {"validation_ok": False, "worst_held_out": 0.99}}
    assert choose(reports) == "K"  # ties to the first listed; M breaks the validation limit
    assert choose({"M": reports["M"]}) is None


def test_changed_children_are_the_same_images_under_the_fixed_acquisition_changes():
    from pneumo.training.population import changed_children

    gray = np.random.default_rng(4).integers(0, 256, size=(40, 299, 299), dtype=np.uint8)
    changed = changed_children(gray)
    assert changed.shape == gray.shape and changed.dtype == np.uint8
    same = [np.array_equal(a, b) for a, b in zip(gray, changed)]
    assert 0 < sum(same) < len(gray)  # identity is one of the seven changes
    np.testing.assert_array_equal(changed, changed_children(gray))  # seeded


@pytest.mark.skipif(not ADULT_FIXTURES, reason="no adult fixtures")
def test_the_shipped_image_score_calls_adult_films_adult_and_training_children_not():
    """The shipped score on two films of each adult source (tests/data/adult, credited there) and on
    the tiny set's training children; the header-less DICOM pixels of a 62-year-old too."""
    from pneumo.reading.guard import load_guard
    from pneumo.reading.preprocess import to_gray299
    from pneumo.reading.decode import read_image_file

    from conftest import TINY_DATA

    score = load_guard().adult_score
    assert score is not None and score.children_share == 0.99
    assert score.features == "hog256"  # campaign pop1's pick O
    adults = np.stack([to_gray299(read_image_file(p)) for p in ADULT_FIXTURES])
    children = np.stack([to_gray299(read_image_file(p)) for p in sorted((TINY_DATA / "train").rglob("*.jpeg"))])
    assert (score.score(adults) >= score.threshold).all()
    assert (score.score(children) < score.threshold).mean() >= 0.9
    verdict = score.check(adults[:1])
    assert verdict.kind == "population" and verdict.source == "image"
    assert "looks like an adult's chest X-ray (score" in verdict.seen and "above what 99% of the training children score" in verdict.seen


@pytest.mark.skipif(not ADULT_FIXTURES, reason="no adult fixtures")
def test_an_icu_film_the_layout_refuses_is_not_refused_but_warned_and_a_photo_still_is():
    """Campaign g8 as shipped: an ICU film that fails the children's layout passes on the second opinion
    (the X-ray check and the population score agree) and carries the population warning; a photo, an
    MRI slice and a document are still "not a chest X-ray"; the two non-X-rays of the 120 it lets
    through are warned, never read in silence."""
    from pneumo.reading.reader import prepare
    from pneumo.reading.guard import load_guard
    from pneumo.outputs.picture import to_png_bytes
    from pneumo.training.synthetic import non_xray_images

    guard = load_guard()
    icu = prepare(next(p for p in ADULT_FIXTURES if p.name == "hannover_00870a9c.jpeg").read_bytes(), "icu.jpeg", guard)
    assert not icu.verdict.layout_passed and icu.verdict.plausible  # the layout refused it, the second opinion let it through
    assert icu.warning_kind == "population" and "adult" in icu.warning
    pictures = dict(non_xray_images())
    for name in ("photo/grace_hopper_gray", "photo/mri_slice", "document/0"):
        assert prepare(to_png_bytes(pictures[name]), "p.png", guard).warning_kind == "not_xray", name
    for name in ("photo/grace_hopper_crop2", "photo/logo2_gray"):  # measured: let through, and warned
        assert prepare(to_png_bytes(pictures[name]), "p.png", guard).warning_kind == "population", name
    alone = load_guard(xray_check=None)  # without the X-ray check, the layout's refusal stands
    assert prepare(to_png_bytes(pictures["photo/logo2_gray"]), "p.png", alone).warning_kind == "not_xray"


@pytest.mark.skipif(not ADULT_FIXTURES, reason="no adult fixtures")
def test_a_film_let_through_by_the_second_opinion_is_warned_whatever_its_header_says():
    """A header's age of 3 puts a film in the population, except one the layout refused: that one passed
    only as an adult's film, and keeps the population warning."""
    from PIL import Image

    from conftest import make_dicom
    from pneumo.reading.reader import prepare
    from pneumo.reading.guard import load_guard

    pixels = np.asarray(Image.open(next(p for p in ADULT_FIXTURES if p.name == "hannover_00870a9c.jpeg")).convert("L"))
    read = prepare(make_dicom(pixels, PatientAge="003Y"), "icu.dcm", load_guard())
    assert not read.verdict.layout_passed and read.warning_kind == "population" and read.population.source == "image"


@pytest.mark.skipif(not ADULT_FIXTURES, reason="no adult fixtures")
def test_a_dicom_age_decides_and_without_one_the_image_does():
    """An adult film as a DICOM: age 3 -> in the population whatever the pixels say; age 62 -> the
    header's warning; no age -> the image score's."""
    from PIL import Image

    from conftest import make_dicom
    from pneumo.reading.reader import prepare
    from pneumo.reading.guard import load_guard

    guard = load_guard()
    pixels = np.asarray(Image.open(next(p for p in ADULT_FIXTURES if p.name.startswith("nih"))).convert("L"))
    child = prepare(make_dicom(pixels, PatientAge="003Y"), "c.dcm", guard)
    assert child.warnings is None and child.population.source == "dicom"
    adult = prepare(make_dicom(pixels, PatientAge="062Y"), "a.dcm", guard)
    assert adult.warning_kind == "population" and adult.population.source == "dicom" and "62 years" in adult.warning
    assert adult.population_source == "dicom"
    ageless = prepare(make_dicom(pixels, PatientBirthDate=""), "n.dcm", guard)
    assert ageless.warning_kind == "population" and ageless.population.source == "image"
    assert ageless.population_source == "image"


@pytest.mark.skipif(not ADULT_FIXTURES, reason="no adult fixtures")
def test_the_cli_says_which_check_decided(tmp_path, untrained_model_file):
    """--json and --csv: population_source "image" for an adult JPEG, "dicom" for a DICOM with an age."""
    from PIL import Image

    from conftest import make_dicom

    jpeg = next(p for p in ADULT_FIXTURES if p.name.startswith("nih"))
    (tmp_path / "adult.jpeg").write_bytes(jpeg.read_bytes())
    (tmp_path / "adult.dcm").write_bytes(make_dicom(np.asarray(Image.open(jpeg).convert("L")), PatientAge="062Y"))
    result = subprocess.run([sys.executable, "-m", "pneumo", "predict", str(tmp_path / "adult.jpeg"), str(tmp_path / "adult.dcm"),
                             "--weights", str(untrained_model_file), "--json", "--csv", str(tmp_path / "out.csv")],
                            capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {Path(json.loads(line)["file"]).name: json.loads(line) for line in result.stdout.splitlines()}
    assert rows["adult.jpeg"]["warning_kind"] == "population" and rows["adult.jpeg"]["population_source"] == "image"
    assert rows["adult.dcm"]["warning_kind"] == "population" and rows["adult.dcm"]["population_source"] == "dicom"
    assert "looks like an adult's chest X-ray" in rows["adult.jpeg"]["warning"]
    import csv

    with open(tmp_path / "out.csv", newline="") as handle:
        table = {Path(r["file"]).name: r for r in csv.DictReader(handle)}
    assert table["adult.jpeg"]["population_source"] == "image" and table["adult.dcm"]["population_source"] == "dicom"


def test_population_measure_counts_the_warnings_the_app_path_gives(tmp_path):
    """pneumo.training.population: each file's warning is the one prepare() gives (guard first, then
    the header, then the image), counted per kind; a child's DICOM pixels without their header lose
    the age and the image score passes them; the card section lists every set as shares."""
    from PIL import Image

    from conftest import TINY_DATA, make_dicom
    from pneumo.reading.decode import read_file
    from pneumo.outputs.picture import to_png_bytes
    from pneumo.training.population import card_text, warnings_on

    xray = sorted((TINY_DATA / "test" / "NORMAL").glob("*.jpeg"))[0]
    colour = tmp_path / "photo.png"
    Image.fromarray(np.dstack([np.full((64, 64), v, np.uint8) for v in (250, 20, 20)])).save(colour)
    adult = tmp_path / "adult.dcm"
    pixels = np.asarray(Image.open(xray).convert("L"))
    adult.write_bytes(make_dicom(pixels, PatientAge="062Y"))
    counts = warnings_on([xray, colour, adult])
    assert counts == {"images": 3, "not_xray": 1, "inverted": 0, "population": 1, "lateral": 0, "none": 1}
    stripped = tmp_path / "adult.png"
    stripped.write_bytes(to_png_bytes(read_file(adult).image))
    assert warnings_on([stripped])["none"] == 1  # the age was in the header only
    report = {"threshold": 0.2, "adult": {"NIH NORMAL": {"images": 3, "called_pneumonia": 1 / 3}}, "warnings": {"NIH NORMAL": counts},
              "dicom": {"a.dcm": {"kind": "population", "seen": "age 62 years", "without_header": None}}}
    text = card_text(report)
    assert "| NIH NORMAL | 3 | 33.3% | 33.3% | 33.3% | 0.0% | 0.0% | 33.3% |" in text and "without the header: no warning" in text
    assert "No image score is shipped" in text
    report["image_score"] = {"held_out": {"NIH": {"flagged": 0.896}, "web": {"flagged": 0.808}}}
    assert "Held out whole (fitted without that source): NIH 89.6%, web 80.8%" in card_text(report)


@pytest.mark.skipif(not ADULT_FIXTURES, reason="no adult fixtures")
def test_no_adult_fixture_is_read_in_silence_and_each_source_gets_the_population_warning():
    """On the app's path (guard, then the population score): every adult film carries a warning, and
    each source's films the population one, the ICU film that fails the layout check included (g8)."""
    from pneumo.reading.reader import prepare
    from pneumo.reading.guard import load_guard

    guard = load_guard()
    kinds = {p.name: prepare(p.read_bytes(), p.name, guard).warnings for p in ADULT_FIXTURES}
    assert all(k is not None for k in kinds.values()), kinds
    for source in ("nih", "hannover", "covidcxnet"):
        assert any(w[0] == "population" for name, w in kinds.items() if name.startswith(source)), (source, kinds)
    assert all(w[0] == "population" for w in kinds.values()), kinds
