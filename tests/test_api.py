"""The one-call Python API (pneumo.load): the README's snippet runs as written, every input form
gives the page's numbers, bad inputs give clear errors, and the API, the CLI and the page agree."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO_ROOT, SUBPROCESS_ENV

EXAMPLE = REPO_ROOT / "examples" / "PNEUMONIA" / "person101_virus_187.jpeg"


def readme_snippet() -> str:
    """The README's Python block (the one that starts with `import pneumo`)."""
    blocks = re.findall(r"```python\n(.*?)```", (REPO_ROOT / "README.md").read_text(), re.S)
    snippet = next((b for b in blocks if b.startswith("import pneumo")), None)
    assert snippet, "README.md has no ```python block starting with `import pneumo`"
    return snippet


def run_snippet(python: str, cwd, env: dict) -> subprocess.CompletedProcess:
    shutil.copytree(REPO_ROOT / "examples", cwd / "examples")
    (cwd / "snippet.py").write_text(readme_snippet())
    return subprocess.run([python, "snippet.py"], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def check_snippet_output(result: subprocess.CompletedProcess, cwd) -> None:
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("PNEUMONIA 0.") and "of the map lies inside the lungs" in lines[1]
    assert lines[-2].startswith("examples/NORMAL/IM-0156-0001.jpeg NORMAL") and lines[-1] == "missing.dcm missing.dcm: no such file."
    assert Image.open(cwd / "overlay.png").size == Image.open(EXAMPLE).size


def test_the_readme_snippet_runs_as_written(tmp_path):
    check_snippet_output(run_snippet(sys.executable, tmp_path, SUBPROCESS_ENV), tmp_path)


@pytest.fixture(scope="module")
def model():
    import pneumo

    return pneumo.load()


def test_every_input_form_gives_the_same_reading(model):
    from pneumo.reading.decode import read_image_file

    by_path = model.predict(EXAMPLE)
    picture = read_image_file(EXAMPLE)
    for other in (model.predict(EXAMPLE.read_bytes()), model.predict(picture), model.predict(np.asarray(picture.convert("L"))),
                  model(str(EXAMPLE))):
        assert other.probability == pytest.approx(by_path.probability, abs=1e-6)
        assert (other.label, other.reading, other.warning_kind) == (by_path.label, by_path.reading, by_path.warning_kind)
        np.testing.assert_allclose(other.heatmap, by_path.heatmap, atol=1e-5)
    assert by_path.heatmap.shape == (299, 299) and 0 <= by_path.heatmap.min() and by_path.heatmap.max() <= 1
    assert by_path.explained == by_path.label and by_path.threshold == model.threshold
    floats = np.asarray(picture.convert("L"), dtype=np.float64) * 16.0 + 100.0  # any range is scaled to 0..255 first
    assert model.predict(floats).probability == pytest.approx(by_path.probability, abs=1e-6)


def test_bad_inputs_raise_a_clear_error_in_predict_and_give_an_error_result_in_predict_many(model, tmp_path):
    from pneumo.reading.decode import ImageReadError

    bad = tmp_path / "scan.png"
    bad.write_text("not an image")
    for item, words in ((bad, "scan.png"), (tmp_path / "missing.jpeg", "no such file"), (np.zeros((2, 3, 4)), "2-D"),
                        (3.5, "cannot read a float")):
        with pytest.raises(ImageReadError, match=words):
            model.predict(item)
    results = model.predict_many([bad, EXAMPLE, b"\x00\x01"])
    assert [r.error is None for r in results] == [False, True, False]
    assert results[1].label == "PNEUMONIA" and results[0].probability is None and "scan.png" in results[0].error
    with pytest.raises(ValueError, match="no picture"):
        results[0].overlay()


def test_a_warning_and_its_source_come_with_the_reading(model):
    adult = model.predict(REPO_ROOT / "tests" / "data" / "adult" / "nih_rsna_Normal-1.jpeg")
    assert adult.warning_kind == "population" and adult.population_source == "image" and "adult" in adult.warning
    assert adult.probability is not None  # the reading is there; the warning says what it is worth


def test_the_api_the_cli_and_the_page_agree(model, tmp_path):
    from streamlit.testing.v1 import AppTest

    api = model.predict(EXAMPLE)
    cli = subprocess.run([sys.executable, "-m", "pneumo", "predict", str(EXAMPLE), "--json"], capture_output=True, text=True,
                         env=SUBPROCESS_ENV, timeout=300)
    assert cli.returncode == 0, cli.stderr[-2000:]
    row = json.loads(cli.stdout.splitlines()[-1])
    assert row["probability"] == pytest.approx(api.probability, abs=1e-5)
    assert (row["label"], row["reading"], row["warning_kind"]) == (api.label, api.reading, api.warning_kind)
    assert row["lung_share"] == pytest.approx(api.lung_share, abs=1e-4) and row["map_in_lungs"] == pytest.approx(api.map_in_lungs, abs=1e-3)
    at = AppTest.from_file(str(REPO_ROOT / "streamlit_app.py"), default_timeout=180)
    at.run()
    at.file_uploader[0].set_value([(EXAMPLE.name, EXAMPLE.read_bytes(), "image/jpeg")])
    at.run()
    assert not at.exception, at.exception
    shown = next(c.value for c in at.caption if c.value.startswith("The network says "))
    assert shown.startswith(f"The network says {api.probability:.1%} ")
    assert any(api.label in m.value for m in at.markdown if m.value.startswith("## :"))
