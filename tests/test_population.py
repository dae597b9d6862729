"""The population check from the DICOM header (pneumo.population): every PatientAge form, birth and
study dates, lateral views; and what the page and the CLI make of it."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import DICOM_DIR, SUBPROCESS_ENV
from pneumo.imageio import decode
from pneumo.population import TRAINING_AGES, age_from_dates, check_header, parse_age
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
    result = subprocess.run([sys.executable, "-m", "pneumo.predict", str(tmp_path), "--weights", str(untrained_model_file), "--json",
                             "--csv", str(tmp_path / "out.csv")], capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {json.loads(line)["file"].rsplit("/", 1)[-1]: json.loads(line) for line in result.stdout.splitlines()}
    assert {name: rows[name]["warning_kind"] for name in rows} == {"adult.dcm": "population", "child.dcm": None, "lateral.dcm": "lateral"}
    assert "62 years" in rows["adult.dcm"]["warning"] and rows["child.dcm"]["warning"] is None
    assert all(rows[name]["probability"] is not None for name in rows)  # predicted all the same, with the warning beside
    header = (tmp_path / "out.csv").read_text().splitlines()[0]
    assert header == "file,probability,label,reading,error,warning_kind,warning"


def test_the_adult_score_folds_components_and_regression_into_one_linear_map():
    """pneumo.training.adultscore: the numpy map equals scikit-learn's pipeline, and cross-fitting
    scores every image from a fit that left its fold out."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from pneumo.training.adultscore import cross_fit, fit, source_weights

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 64))
    y = (x[:, :3].sum(axis=1) + rng.normal(0, 0.5, 300) > 0).astype(int)
    pipeline = make_pipeline(PCA(n_components=8, random_state=42), StandardScaler(),
                             LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000)).fit(x, y)
    np.testing.assert_allclose(fit(x, y, 8, side=8).score(x), pipeline.decision_function(x), atol=1e-8)
    folds = np.arange(300) % 5
    crossed = cross_fit(x, y, folds, 8, side=8)
    for k in range(5):
        held = folds == k
        np.testing.assert_allclose(crossed[held], fit(x[~held], y[~held], 8, side=8).score(x[held]), atol=1e-10)
    assert not np.allclose(crossed, fit(x, y, 8, side=8).score(x))  # not the in-sample scores
    weights = source_weights(np.array(["pediatric"] * 4 + ["NIH"] * 9 + ["Hannover"] * 1))
    assert weights[:4].tolist() == [1] * 4 and weights[4:13].sum() == pytest.approx(weights[13:].sum()) == pytest.approx(5.0)


def test_non_linear_adult_scores_cross_fit_and_models_without_sample_weights_see_the_classes_balanced():
    """adultscore (campaign img3): a non-linear candidate's score is its pipeline's decision function,
    cross-fitting leaves each fold out, and the MLP's repeated rows weigh the classes (and, with source
    weights, the sources) as a class-balanced weighted fit would."""
    from pneumo.training.adultscore import cross_fit, fit, repeated_rows, source_weights

    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 16))
    y = (x[:, 0] + rng.normal(0, 0.3, 120) > 0.8).astype(int)
    fitted = fit(x, y, 8, side=4, model="svm")
    np.testing.assert_allclose(fitted.score(x), fitted.pipeline.decision_function(x))
    assert fitted.score(x[y == 1]).mean() > fitted.score(x[y == 0]).mean()
    folds = np.arange(120) % 5
    crossed = cross_fit(x, y, folds, 8, side=4, model="svm")
    held = folds == 0
    np.testing.assert_allclose(crossed[held], fit(x[~held], y[~held], 8, side=4, model="svm").score(x[held]))
    with pytest.raises(ValueError, match="unknown model"):
        fit(x, y, 8, side=4, model="forest")
    labels = np.r_[np.zeros(40, int), np.ones(10, int)]
    assert np.bincount(labels[repeated_rows(labels, None)]).tolist() == [40, 40]
    source = np.array(["pediatric"] * 40 + ["NIH"] * 8 + ["Hannover"] * 2)
    rows = repeated_rows(labels, source_weights(source))
    counts = {name: int((source[rows] == name).sum()) for name in ("pediatric", "NIH", "Hannover")}
    assert counts["pediatric"] == 40 and counts["NIH"] + counts["Hannover"] == 40 and abs(counts["NIH"] - counts["Hannover"]) <= 2


def test_img4_threshold_holds_per_class_and_per_acquisition_change():
    """adultscore (campaign img4): the threshold is the highest 99.5th percentile over (class, change),
    so neither class's false alarms can hide in the pooled rate; changed images are scored by the
    fold model that left them out."""
    from pneumo.guard import thumbnails
    from pneumo.training.adultscore import PEDIATRIC_QUANTILE, changed_scores, cross_fit, per_class_and_change_threshold
    from pneumo.training.shift import PERTURBATIONS

    classes = np.r_[np.zeros(200, int), np.ones(800, int)]
    rng = np.random.default_rng(3)
    changed = {"identity": np.r_[rng.normal(1.0, 1.0, 200), rng.normal(-1.0, 1.0, 800)],
               "gamma 0.6": np.r_[rng.normal(3.0, 1.0, 200), rng.normal(-1.0, 1.0, 800)]}
    threshold, rates = per_class_and_change_threshold(changed, classes)
    assert threshold == pytest.approx(np.quantile(changed["gamma 0.6"][:200], PEDIATRIC_QUANTILE))
    pooled = np.quantile(changed["identity"], PEDIATRIC_QUANTILE)
    assert threshold > pooled and (changed["identity"][:200] >= pooled).mean() > 0.005  # the pooled rule lets NORMALs through
    assert max(rates.values()) <= 0.005 + 1e-9 and set(rates) == {f"{c} / {n}" for c in ("NORMAL", "PNEUMONIA") for n in changed}

    gray = rng.integers(0, 256, size=(20, 299, 299), dtype=np.uint8)
    gray[:10, :, 100:200] = 255  # a bright band: a class the score can see
    features = thumbnails(gray, 4)
    labels = np.r_[np.ones(10, int), np.zeros(10, int)]
    folds = np.arange(20) % 5
    crossed, models = cross_fit(features, labels, folds, 4, side=4, model="svm", keep_models=True)
    scores = changed_scores(gray, folds, models, side=4, chunk=7)
    assert set(scores) == set(PERTURBATIONS)
    np.testing.assert_allclose(scores["identity"], crossed)  # unchanged images: the cross-fitted scores
    assert not np.allclose(scores["gamma 1.6"], crossed)


def test_population_measure_counts_the_warnings_the_app_path_gives(tmp_path):
    """pneumo.training.population: each file's warning is the one prepare() gives (guard first, then
    the header), counted per kind; a DICOM's pixels without their header lose the age; the card
    section lists every set."""
    from PIL import Image

    from conftest import TINY_DATA, make_dicom
    from pneumo.imageio import read_file
    from pneumo.overlay import to_png_bytes
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
    assert "| NIH NORMAL | 3 | 33.3% | 1 | 0 | 1 | 1 |" in text and "without the header: no warning" in text
