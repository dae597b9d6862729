"""The page logic, through Streamlit's AppTest (no browser): the shipped weights, the examples,
the threshold control, and that a result is computed once per file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from conftest import REPO_ROOT
from pneumo import bundle
from pneumo.bundle import DEFAULT_METHOD, METHOD_NAMES

APP = str(REPO_ROOT / "streamlit_app.py")
NORMAL_EXAMPLE = REPO_ROOT / "examples" / "NORMAL" / "IM-0156-0001.jpeg"
PNEUMONIA_EXAMPLE = REPO_ROOT / "examples" / "PNEUMONIA" / "person101_virus_187.jpeg"


@pytest.fixture
def explain_calls(monkeypatch):
    """Counts every probability/heatmap computation the page asks for."""
    import pneumo.reading.explain

    calls = []
    original = pneumo.reading.explain.Explainer.explain

    def counting(self, *args, **kwargs):
        calls.append(kwargs.get("method", args[3] if len(args) > 3 else "gradcam"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pneumo.reading.explain.Explainer, "explain", counting)
    return calls


def _app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    return at


def _label(at: AppTest) -> str:
    """The label the threshold gives: the headline, or its leaning when the headline is INDETERMINATE."""
    labels = [m.value for m in at.markdown if m.value.startswith("## :")]
    assert len(labels) == 1, labels
    if "INDETERMINATE" in labels[0]:
        leaning = [m.value for m in at.markdown if m.value.startswith("Leaning **")]
        assert len(leaning) == 1, leaning
        return leaning[0].split("**")[1]
    return "PNEUMONIA" if "PNEUMONIA" in labels[0] else "NORMAL"


def _probability(at: AppTest) -> float:
    """The network's own probability, as the page words it beside this X-ray's chance at the set prevalence."""
    caption = next(c.value for c in at.caption if c.value.startswith("The network says "))
    return float(caption.split("The network says ")[1].split("%")[0]) / 100


def _probabilities_shown(at: AppTest) -> int:
    return sum(m.label.startswith(("Chance of pneumonia", "The network's probability")) for m in at.metric)


def _open_row(at: AppTest, row: int) -> None:
    """A click on a row of the batch table (Streamlit keeps the selection under the table's key)."""
    at.session_state["table"] = {"selection": {"rows": [row], "columns": []}}
    at.run()


def _upload(at: AppTest, *files: tuple[str, bytes]) -> None:
    at.file_uploader[0].set_value([(name, data, "application/octet-stream") for name, data in files])
    at.run()
    assert not at.exception, at.exception


def test_page_frames_itself_honestly_and_has_three_tabs():
    at = _app()
    text = " ".join(w.value for w in at.warning)
    assert "not a medical device" in text and "pediatric" in text and "single hospital" in text
    assert [t.label for t in at.tabs] == ["Analyze", "Your site", "Training curves", "Model"]
    assert len(at.button) == 6  # the example X-rays
    assert at.slider(key="threshold").value == pytest.approx(__import__("json").loads((bundle.DEFAULT_MODEL.parent / "metrics.json").read_text())["threshold"])


def test_example_gives_the_same_probability_as_the_cli_path():
    from pneumo.reading.decode import read_image_file
    from pneumo.reading.networks import load_model, predict_gray
    from pneumo.reading.preprocess import to_gray299

    at = _app()
    at.button(key="example-Pneumonia 1").click()
    at.run()
    assert not at.exception
    expected = float(predict_gray(load_model(bundle.DEFAULT_MODEL), to_gray299(read_image_file(PNEUMONIA_EXAMPLE))[None])[0])
    assert _probability(at) == pytest.approx(expected, abs=6e-4)  # shown rounded to 0.1 %
    assert at.session_state["results"]  # kept per session, keyed by content hash


def test_threshold_control_moves_the_label():
    at = _app()
    _upload(at, ("scan.jpeg", PNEUMONIA_EXAMPLE.read_bytes()))
    probability = _probability(at)
    at.slider(key="threshold").set_value(min(1.0, round(probability + 0.01, 3)))
    at.run()
    assert _label(at) == "NORMAL"
    at.slider(key="threshold").set_value(max(0.0, round(probability - 0.01, 3)))
    at.run()
    assert _label(at) == "PNEUMONIA"


def test_result_is_computed_once_per_file(explain_calls):
    at = _app()
    data = NORMAL_EXAMPLE.read_bytes()
    _upload(at, ("a.jpeg", data))
    assert len(explain_calls) == 1  # probability and heatmap from one pass
    at.slider(key="opacity").set_value(0.7)  # opacity: a redraw, no new computation
    at.run()
    assert len(explain_calls) == 1
    at.radio(key="method").set_value("Grad-CAM++")  # a new method: one heatmap more
    at.run()
    assert explain_calls[-1] == "gradcam++" and len(explain_calls) == 2
    at.radio(key="method").set_value(METHOD_NAMES[DEFAULT_METHOD])  # back to the default: cached
    at.run()
    _upload(at, ("same-content-other-name.png", data))
    assert len(explain_calls) == 2


def test_several_files_summary_sorted_and_a_bad_file_does_not_stop_the_rest():
    at = _app()
    _upload(
        at,
        ("normal.jpeg", NORMAL_EXAMPLE.read_bytes()),
        ("notes.png", b"this is a text file, not an image"),
        ("pneumonia.jpeg", PNEUMONIA_EXAMPLE.read_bytes()),
    )
    assert any("notes.png" in e.value and "not an image" in e.value for e in at.error)
    table = at.dataframe[0].value
    assert list(table["file"]) == sorted(table["file"], key=lambda f: -float(table.set_index("file").loc[f, "network's probability"]))
    assert set(table["file"]) == {"normal.jpeg", "pneumonia.jpeg"}
    _open_row(at, 1)
    assert not at.exception
    assert any(m.value == f"#### {table['file'].iloc[1]}" for m in at.markdown)


def test_heatmap_overlay_keeps_the_original_aspect_ratio():
    from pneumo.reading.reader import prepare
    from pneumo.outputs.picture import overlay

    prepared = prepare(PNEUMONIA_EXAMPLE.read_bytes(), "x.jpeg")
    assert prepared.picture.size == Image.open(PNEUMONIA_EXAMPLE).size  # 388x320, not square
    heat = np.zeros((299, 299), dtype=np.float32)
    heat[:, :150] = 1.0  # the left half of the squashed model input
    blended = np.asarray(overlay(prepared.picture, heat, opacity=1.0))
    assert blended.shape[:2] == (320, 388)
    # jet: 1.0 is dark red, 0.0 dark blue; the boundary lands mid-width of the original picture.
    assert blended[160, 100, 0] > 100 and blended[160, 100, 2] < 50
    assert blended[160, 300, 2] > 100 and blended[160, 300, 0] < 50


def test_curves_and_model_tabs_render_when_opened_and_an_upload_survives_a_visit_to_them():
    from pneumo.app import SECTION_KEY

    at = _app()
    assert not any("Training history" in m.value for m in at.markdown)  # drawn only when open
    _upload(at, ("scan.jpeg", PNEUMONIA_EXAMPLE.read_bytes()))
    probability = _probability(at)
    for tab, text in (("Training curves", "Training history of the shipped model"), ("Model", "Test split:")):
        at.session_state[SECTION_KEY] = tab
        at.run()
        assert not at.exception, at.exception
        assert any(text in m.value for m in at.markdown)
    at.session_state[SECTION_KEY] = "Analyze"
    at.run()
    assert _probability(at) == probability  # the upload is still there


def _page_text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [e.value for e in at.error] + [w.value for w in at.warning] + [c.value for c in at.caption]
    parts += [df.value.to_string() for df in at.dataframe]
    return "\n".join(parts)


def test_bad_files_get_messages_the_good_one_a_result_and_the_app_keeps_serving():
    at = _app()
    good = PNEUMONIA_EXAMPLE.read_bytes()
    _upload(
        at,
        ("empty.jpeg", b""),
        ("cut.jpeg", good[: len(good) // 3]),
        ("report.png", b"%PDF-1.4\n1 0 obj\n"),
        ("xray.jpeg", good),
    )
    errors = " ".join(e.value for e in at.error)
    assert "empty.jpeg: the file is empty" in errors
    assert "cut.jpeg: the image is damaged or incomplete" in errors
    assert "report.png: this is a PDF document" in errors
    assert _probabilities_shown(at) == 1  # the good file got its result
    assert "Traceback" not in _page_text(at)
    _upload(at, ("next.jpeg", NORMAL_EXAMPLE.read_bytes()))  # and the next upload works
    assert _probabilities_shown(at) == 1 and not at.error


def test_a_picture_that_is_not_an_xray_gets_a_warning_not_a_diagnosis():
    at = _app()
    photo = Image.new("RGB", (600, 400))
    photo.paste((200, 40, 40), (0, 0, 300, 400))
    photo.paste((40, 160, 60), (300, 0, 600, 400))
    buffer = __import__("io").BytesIO()
    photo.save(buffer, format="PNG")
    _upload(at, ("holiday.png", buffer.getvalue()))
    assert any("colour picture" in w.value for w in at.warning)
    assert _probabilities_shown(at) == 0 and not [m for m in at.markdown if m.value.startswith("## :")]
    at.toggle(key=f"anyway-{__import__('hashlib').sha256(buffer.getvalue()).hexdigest()}").set_value(True)
    at.run()
    assert _probabilities_shown(at) == 1  # shown on request


def test_a_picture_failing_the_layout_check_is_told_it_may_also_be_an_adult_x_ray():
    """The layout check also fires on adult chest X-rays (README), so its warning says so and what the
    model's reading is worth on adults."""
    texture = np.random.default_rng(0).integers(0, 256, size=(400, 400), dtype=np.uint8)  # gray, detailed, no chest layout
    buffer = __import__("io").BytesIO()
    Image.fromarray(texture).save(buffer, format="PNG")
    at = _app()
    _upload(at, ("scan.png", buffer.getvalue()))
    assert any("frontal chest X-rays the model learned from" in w.value and "adult" in w.value for w in at.warning)
    assert "adult NORMAL X-rays from other hospitals" in _page_text(at)
    assert _probabilities_shown(at) == 0


@pytest.mark.skipif(not (REPO_ROOT / "weights" / "lungs.keras").is_file(), reason="no shipped lung segmenter")
def test_every_reading_says_how_much_of_the_map_lies_inside_the_lungs_and_the_outline_can_be_drawn(explain_calls):
    """The sentence under the overlay, and the viewer's lung-outline toggle: a fragment rerun that
    draws the outline on both pictures without calling the model again."""
    import hashlib

    data = PNEUMONIA_EXAMPLE.read_bytes()
    at = _app()
    _upload(at, ("child.jpeg", data))
    text = _page_text(at)
    assert "of the map lies inside the lungs, which cover" in text and "% of the image" in text and "even spread" in text
    calls = len(explain_calls)
    toggle = at.toggle(key=f"lungs-{hashlib.sha256(data).hexdigest()}")
    assert toggle.label == "Outline the lungs" and toggle.value is False
    toggle.set_value(True)
    at.run()
    assert not at.exception and len(explain_calls) == calls
    assert at.toggle(key=f"lungs-{hashlib.sha256(data).hexdigest()}").value is True


def test_an_adult_jpeg_gets_the_image_based_population_warning_and_the_batch_table_says_which():
    """No header: the image score decides. The warning says what was seen (score, the children's
    99 %), the page what the reading is worth on adults, the label waits behind the switch; in a batch
    the warning column says "population (image)"."""
    import hashlib

    adult = (REPO_ROOT / "tests" / "data" / "adult" / "nih_rsna_Normal-1.jpeg").read_bytes()
    at = _app()
    _upload(at, ("chest.jpeg", adult))
    assert any("looks like an adult's chest X-ray (score" in w.value and "above what 99% of the training children score" in w.value
               for w in at.warning)
    text = _page_text(at)
    assert "reading of an adult's film is unreliable" in text and "adult NORMAL X-rays from other hospitals" in text
    assert _probabilities_shown(at) == 0
    at.toggle(key=f"anyway-{hashlib.sha256(adult).hexdigest()}").set_value(True)
    at.run()
    assert _probabilities_shown(at) == 1
    at = _app()
    _upload(at, ("chest.jpeg", adult), ("child.jpeg", PNEUMONIA_EXAMPLE.read_bytes()))
    table = at.dataframe[0].value
    assert dict(zip(table["file"], table["warning"])) == {"chest.jpeg": "outside the population the model learned from (the image)",
                                                        "child.jpeg": ""}
    # a flagged row: no probability bar, the reason instead of a label
    rows = table.set_index("file")
    assert rows.loc["chest.jpeg", "network's probability"] != rows.loc["chest.jpeg", "network's probability"]  # empty (NaN)
    assert rows.loc["chest.jpeg", "reading"].startswith("no reading: outside the population") and rows.loc["child.jpeg", "reading"]


@pytest.mark.skipif(not (REPO_ROOT.parent / "shared" / "data" / "dicom").is_dir(), reason="no shared DICOM files")
def test_dicom_upload_shows_harmless_metadata_a_population_warning_and_hides_identifiers():
    import hashlib

    data = (REPO_ROOT.parent / "shared" / "data" / "dicom" / "chest_cr_pa_monochrome2.dcm").read_bytes()
    patient_id = "16d7f894-55d7-4d95-8957-d18987f0e981"
    assert patient_id.encode() in data
    at = _app()
    _upload(at, ("IMG0001", data))  # no extension
    text = _page_text(at)
    assert "DICOM" in text and "CR" in text and "PA" in text and "CHEST" in text and "1024×1024" in text
    assert patient_id not in text
    # PatientAge 62: a population warning that says what was seen and what the reading is worth there;
    # the label waits behind the same switch as the guard's
    assert any("age is 62 years (DICOM PatientAge)" in w.value for w in at.warning)
    assert "Seen: age 62 years" in text and "adult NORMAL X-rays" in text and "PNEUMONIA at the shipped threshold" in text
    assert _probabilities_shown(at) == 0
    at.toggle(key=f"anyway-{hashlib.sha256(data).hexdigest()}").set_value(True)
    at.run()
    assert _probabilities_shown(at) == 1
    at.toggle(key=f"ids-{hashlib.sha256(data).hexdigest()}").set_value(True)
    at.run()
    assert patient_id in _page_text(at)


def test_uploads_are_processed_in_memory_and_never_logged(caplog, capfd, tmp_path):
    """No file is opened for writing while an upload is processed, and nothing of it is logged."""
    import hashlib
    import logging
    import os
    import sys

    marker = "PRIVATE-NAME-7f3a"
    writes: list[str] = []
    armed = {"on": False}

    def audit(event, args):
        if armed["on"] and event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            )
            if writing:
                writes.append(str(path))

    sys.addaudithook(audit)  # cannot be removed; inert once disarmed
    at = _app()
    caplog.set_level(logging.DEBUG)
    data = PNEUMONIA_EXAMPLE.read_bytes()
    armed["on"] = True
    try:
        _upload(at, (f"{marker}.jpeg", data))
        at.slider(key="opacity").set_value(0.6)
        at.run()
    finally:
        armed["on"] = False
    assert _probabilities_shown(at) == 1
    assert writes == []
    out, err = capfd.readouterr()
    logged = caplog.text + out + err
    assert marker not in logged and hashlib.sha256(data).hexdigest() not in logged
    armed["on"] = True  # the hook does see writes
    (tmp_path / "probe.txt").write_text("x")
    armed["on"] = False
    assert writes == [str(tmp_path / "probe.txt")]


def test_an_empty_map_says_no_region_raised_the_score_instead_of_a_clean_overlay(monkeypatch):
    import pneumo.reading.explain

    original = pneumo.reading.explain.Explainer.explain

    def empty_map(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        return pneumo.reading.explain.Explanation(result.probability, np.zeros_like(result.heatmap), result.explained_class, True)

    monkeypatch.setattr(pneumo.reading.explain.Explainer, "explain", empty_map)
    at = _app()
    _upload(at, ("scan.jpeg", PNEUMONIA_EXAMPLE.read_bytes()))
    messages = " ".join(i.value for i in at.info)
    assert "no region raised the score for PNEUMONIA" in messages and METHOD_NAMES[DEFAULT_METHOD] in messages
    assert _probabilities_shown(at) == 1  # the reading is still shown
    assert not any(b.label == "Download overlay (PNG)" for b in at.get("download_button"))


def test_the_page_says_which_method_is_shown_what_it_measures_and_where_the_heat_lies():
    at = _app()
    _upload(at, ("scan.jpeg", PNEUMONIA_EXAMPLE.read_bytes()))
    assert at.radio(key="method").value == METHOD_NAMES[DEFAULT_METHOD]  # the default chosen in docs/EXPLANATIONS.md
    text = _page_text(at)
    assert f"{METHOD_NAMES[DEFAULT_METHOD]} measures" in text
    assert "The map's weight" in text and ("patient's" in text or "both sides" in text)
    assert "upper / middle / lower thirds" in text


def test_where_the_heat_lies_in_words():
    from pneumo.outputs.words import where

    heat = np.zeros((299, 299))
    heat[220:290, 10:120] = 1.0  # image left, bottom
    text = where(heat)
    assert "image's left, the patient's right" in text and "lower zone" in text and "100%" in text
    heat = np.zeros((299, 299))
    heat[5:60, 200:290] = 1.0
    assert "image's right, the patient's left" in where(heat) and "upper zone" in where(heat)
    assert "both sides" in where(np.ones((299, 299))) and "spread over the height" in where(np.ones((299, 299)))
    assert where(np.zeros((299, 299))) == "The map is empty."


def _site_zip(per_class: int = 24) -> bytes:
    """A zip of NORMAL/ and PNEUMONIA/ folders: the tiny set's films, each in slightly different copies."""
    import io
    import zipfile

    from conftest import TINY_DATA

    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label in ("NORMAL", "PNEUMONIA"):
            sources = sorted((TINY_DATA / "train" / label).glob("*.jpeg")) + sorted((TINY_DATA / "test" / label).glob("*.jpeg"))
            for k in range(per_class):
                gray = np.asarray(Image.open(sources[k % len(sources)]).convert("L"), dtype=np.float64)
                noisy = Image.fromarray(np.clip(gray + rng.normal(0, 2, gray.shape), 0, 255).astype(np.uint8))
                png = io.BytesIO()
                noisy.save(png, format="PNG")
                archive.writestr(f"{label}/{k}.png", png.getvalue())
        archive.writestr("notes.txt", "not an X-ray")
    return buffer.getvalue()


def test_your_site_fits_a_profile_and_the_page_the_api_and_the_csv_read_with_it(tmp_path):
    """A zip of labelled films: the profile, its histograms, a download; in use, the sidebar's threshold
    is the site's, and the Analyze tab gives the API's probability under the same profile and names it."""
    import pneumo
    from pneumo.ui.your_site import FIT_KEY, PROFILE_KEY

    at = _app()
    at.file_uploader(key="site-films").set_value([("ward.zip", _site_zip(), "application/zip")])
    at.text_input(key="site-name").set_value("Ward 7")
    at.run()
    at.button(key="site-fit").click()
    at.run()
    assert not at.exception, at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "Ward 7" in text and "48 film(s) passed the checks, 1 left out" in text and "site threshold" in text
    assert any(i for i in at.image)  # the histograms
    profile_json = at.session_state[FIT_KEY][0]
    at.button(key="site-use").click()
    at.run()
    assert not at.exception, at.exception
    assert at.session_state[PROFILE_KEY] == profile_json
    threshold = __import__("json").loads(profile_json)["threshold"]
    assert at.slider(key="threshold").value == pytest.approx(threshold)
    assert any("Ward 7" in c.value for c in at.sidebar.caption)
    _upload(at, ("scan.jpeg", PNEUMONIA_EXAMPLE.read_bytes()))
    (tmp_path / "site.json").write_text(profile_json)
    expected = pneumo.load(site=tmp_path / "site.json").predict(PNEUMONIA_EXAMPLE)
    assert _probability(at) == pytest.approx(expected.probability, abs=6e-4)
    assert any("Ward 7" in c.value for c in at.caption)


def test_your_site_adapts_to_unlabelled_films_and_the_page_reads_as_the_api(tmp_path):
    """40 films without labels: label-free adaptation, said with what it gained and cost where measured;
    in use, the threshold stays the shipped one and the Analyze tab gives the API's probability."""
    import io
    import json
    import zipfile

    import pneumo
    from pneumo.bundle import read_bundle
    from pneumo.ui.your_site import FIT_KEY

    with zipfile.ZipFile(io.BytesIO(_site_zip(per_class=20))) as archive:
        films = [(f"{i}.png", archive.read(name), "image/png") for i, name in enumerate(archive.namelist()) if name.endswith(".png")]
    at = _app()
    at.file_uploader(key="site-films").set_value(films)
    at.run()
    at.button(key="site-fit").click()
    at.run()
    assert not at.exception, at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "Label-free adaptation from 40 films" in text and "a hospital the model never saw" in text, text
    profile_json = at.session_state[FIT_KEY][0]
    assert json.loads(profile_json)["threshold"] is None and json.loads(profile_json)["batchnorm"]
    at.button(key="site-use").click()
    at.run()
    assert at.slider(key="threshold").value == pytest.approx(read_bundle().threshold)
    _upload(at, ("scan.jpeg", PNEUMONIA_EXAMPLE.read_bytes()))
    (tmp_path / "site.json").write_text(profile_json)
    expected = pneumo.load(site=tmp_path / "site.json").predict(PNEUMONIA_EXAMPLE)
    assert _probability(at) == pytest.approx(expected.probability, abs=6e-4)
    assert expected.probability != pytest.approx(pneumo.load().predict(PNEUMONIA_EXAMPLE).probability, abs=1e-6)


def test_your_site_refuses_another_models_profile_and_keeps_the_shipped_model(untrained_model_file, tmp_path):
    import json

    from pneumo.bundle import weights_sha256
    from pneumo.reading.siteprofile import SiteProfile
    from pneumo.ui.your_site import PROFILE_KEY

    other = SiteProfile(site="elsewhere", model_sha256=weights_sha256(untrained_model_file), method="test", films=40, left_out=0,
                        statistics={}, threshold=0.4)
    at = _app()
    at.file_uploader(key="site-load").set_value([("elsewhere.json", other.to_json().encode(), "application/json")])
    at.run()
    at.button(key="site-use-loaded").click()
    at.run()
    assert not at.exception, at.exception
    assert any("another model" in e.value and "shipped model stays in use" in e.value for e in at.error)
    assert PROFILE_KEY not in at.session_state
    at.file_uploader(key="site-load").set_value([("broken.json", b"{not json", "application/json")])
    at.run()
    at.button(key="site-use-loaded").click()
    at.run()
    assert any("not a site profile" in e.value for e in at.error) and PROFILE_KEY not in at.session_state
    at.file_uploader(key="site-load").set_value([("deep.json", b"[" * 100_000 + b"]" * 100_000, "application/json")])
    at.run()
    at.button(key="site-use-loaded").click()
    at.run()
    assert not at.exception, at.exception
    assert any("nested far too deep" in e.value for e in at.error) and PROFILE_KEY not in at.session_state
    assert json.loads(other.to_json())["threshold"] == 0.4


def test_a_batch_table_computes_probabilities_without_maps_until_a_row_is_opened(explain_calls):
    """Several files: the table's probabilities come from the network's batched pass (equal to the
    one-file path), no heatmap is made for it, and opening a row makes that row's map once."""
    import pneumo

    at = _app()
    _upload(at, ("normal.jpeg", NORMAL_EXAMPLE.read_bytes()), ("pneumonia.jpeg", PNEUMONIA_EXAMPLE.read_bytes()))
    table = at.dataframe[0].value.set_index("file")
    assert len(explain_calls) == 1  # only the row shown in detail (the first) has a map
    _open_row(at, 1)
    assert not at.exception and len(explain_calls) == 2
    _open_row(at, 0)
    assert len(explain_calls) == 2  # each row's map once
    model = pneumo.load()
    for name, path in (("normal.jpeg", NORMAL_EXAMPLE), ("pneumonia.jpeg", PNEUMONIA_EXAMPLE)):
        assert float(table.loc[name, "network's probability"]) == pytest.approx(model.predict(path).probability, abs=1e-4)


def test_keras_session_is_kept_across_page_runs_and_cleared_elsewhere(monkeypatch):
    """Streamlit clears Keras's session after each page run, which emptied TensorFlow's kernel caches
    under the shared networks; the page spares those calls, and only those."""
    import keras
    import streamlit.runtime.scriptrunner as scriptrunner

    from pneumo.ui.resources import spare_keras_between_runs

    spare_keras_between_runs()
    spare_keras_between_runs()  # once is enough: not wrapped twice
    assert getattr(keras.backend.clear_session, "spares_page_runs", False)

    def fresh_name() -> str:
        return keras.layers.Dense(1).name

    keras.backend.clear_session()  # outside a page run: cleared, as Keras documents
    assert fresh_name() == "dense" and fresh_name() == "dense_1"
    monkeypatch.setattr(scriptrunner, "get_script_run_ctx", lambda suppress_warning=False: object())
    keras.backend.clear_session()  # as Streamlit calls it at the end of a page run: nothing cleared
    assert fresh_name() == "dense_2"
    monkeypatch.undo()
    keras.backend.clear_session()
    assert fresh_name() == "dense"


def test_a_dicom_upload_offers_the_pacs_results_and_a_jpeg_says_why_it_has_none():
    dicom = (REPO_ROOT / "tests" / "data" / "dicom" / "chest_rle.dcm").read_bytes()
    at = _app()
    _upload(at, ("scan.dcm", dicom))
    labels = [b.label for b in at.get("download_button")]
    assert "DICOM Secondary Capture" in labels and "DICOM Structured Report" in labels
    _upload(at, ("scan.jpeg", PNEUMONIA_EXAMPLE.read_bytes()))
    assert not any(b.label.startswith("DICOM") for b in at.get("download_button"))
    assert any("need a DICOM upload" in c.value and "JPEG" in c.value for c in at.caption)
