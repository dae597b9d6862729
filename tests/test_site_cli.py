"""`pneumo adapt` and a site profile in use: the CLI and the API agree under a profile, labelled
(a site threshold) or not (label-free adaptation); flagged films never enter a fit; another model's
profile, too few films or a batch that is all flagged get a message for a person and leave the
shipped model in use."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import SUBPROCESS_ENV, TINY_DATA

REPO_ROOT = Path(__file__).resolve().parent.parent


def _run(module: str, *args, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, env=SUBPROCESS_ENV,
                          timeout=timeout)


@pytest.fixture(scope="module")
def site(tmp_path_factory, untrained_model_file) -> dict[str, Path]:
    """A model and a site folder: 24 NORMAL and 24 PNEUMONIA films (the tiny set's, each in three
    slightly different copies), a colour photo and a broken file."""
    root = tmp_path_factory.mktemp("site")
    model = root / "model" / "pneumonia.keras"
    model.parent.mkdir()
    shutil.copy(untrained_model_file, model)
    shutil.copy(REPO_ROOT / "weights" / "site.json", model.parent)  # the shipped rules for fitting a site (same architecture)
    films = root / "films"
    rng = np.random.default_rng(0)
    for label in ("NORMAL", "PNEUMONIA"):
        (films / label).mkdir(parents=True)
        sources = sorted((TINY_DATA / "train" / label).glob("*.jpeg")) + sorted((TINY_DATA / "test" / label).glob("*.jpeg"))
        for source in sources:
            gray = np.asarray(Image.open(source).convert("L"), dtype=np.float64)
            for k in range(3):
                noisy = np.clip(gray + rng.normal(0, 2, gray.shape), 0, 255).astype(np.uint8)
                Image.fromarray(noisy).save(films / label / f"{source.stem}-{k}.png")
    Image.new("RGB", (300, 300), (200, 30, 40)).save(films / "NORMAL" / "red.png")  # a colour picture: flagged, left out
    (films / "PNEUMONIA" / "broken.jpeg").write_bytes(b"not a picture")
    profile = root / "ward.json"
    made = _run("pneumo", "adapt", films, "--out", profile, "--name", "Ward 7", "--weights", model)
    return {"model": model, "films": films, "root": root, "profile": profile, "made": made}


def test_adapt_writes_a_profile_and_predict_and_the_api_agree_under_it(site):
    profile, made = site["profile"], site["made"]
    assert made.returncode == 0, made.stderr[-3000:]
    assert "48 film(s) passed the checks, 2 left out" in made.stdout and "site threshold" in made.stdout
    assert "red.png: flagged: not_xray" in made.stderr and "broken.jpeg" in made.stderr and "Traceback" not in made.stderr
    data = json.loads(profile.read_text())
    assert data["site"] == "Ward 7" and data["films"] == 48 and data["left_out"] == 2 and 0 < data["threshold"] < 1
    assert data["batchnorm"] == {} and data["method"] == "threshold by the site rule"  # labels: a threshold, the network as shipped
    assert "what to expect on new films" in made.stdout and "5th–95th percentile" in made.stdout  # the simulation, not in-sample

    film = sorted((site["films"] / "PNEUMONIA").glob("*.png"))[0]
    read = _run("pneumo", "predict", film, "--weights", site["model"], "--site", profile, "--json")
    assert read.returncode == 0, read.stderr[-2000:]
    row = json.loads(read.stdout.strip().splitlines()[-1])
    assert "Ward 7" in row["site"] and row["threshold"] == pytest.approx(data["threshold"])

    import pneumo

    api = pneumo.load(site["model"], site=profile).predict(film)
    assert api.probability == pytest.approx(row["probability"], abs=1e-5) and "Ward 7" in api.site
    assert api.threshold == pytest.approx(data["threshold"]) and api.label == row["label"]
    plain = pneumo.load(site["model"]).predict(film)
    assert plain.site is None
    moved = site["root"] / "moved.json"  # a profile whose threshold differs from the shipped one (the rule may keep it)
    moved.write_text(json.dumps({**data, "threshold": 0.37, "band": None}))
    assert pneumo.load(site["model"], site=moved).predict(film).threshold == pytest.approx(0.37) != plain.threshold
    read = _run("pneumo", "predict", film, "--weights", site["model"], "--site", moved, "--json")
    assert json.loads(read.stdout.strip().splitlines()[-1])["threshold"] == pytest.approx(0.37)


def test_another_models_profile_is_refused_and_nothing_is_read_wrongly(site, tmp_path):
    from pneumo.training.model import build_model

    profile = site["profile"]
    other = tmp_path / "pneumonia.keras"
    build_model(output_bias=-0.2).save(other)
    read = _run("pneumo", "predict", TINY_DATA / "test", "--weights", other, "--site", profile)
    assert read.returncode == 2 and "made for another model" in read.stderr and "Traceback" not in read.stderr
    import pneumo
    from pneumo.reading.siteprofile import SiteProfileError

    with pytest.raises(SiteProfileError, match="another model"):
        pneumo.load(other, site=profile)


def test_too_few_films_or_all_flagged_give_a_message_not_a_profile(site, tmp_path):
    few = _run("pneumo", "adapt", TINY_DATA / "test", "--out", tmp_path / "few.json", "--weights", site["model"])
    assert few.returncode == 2 and "needs at least 20 labelled films of each class" in few.stderr and "Traceback" not in few.stderr
    assert not (tmp_path / "few.json").exists()
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(3):
        Image.new("RGB", (200, 200), (40 * k, 120, 200)).save(photos / f"photo{k}.png")
    flagged = _run("pneumo", "adapt", photos, "--out", tmp_path / "none.json", "--weights", site["model"])
    assert flagged.returncode == 2 and "nothing to fit" in flagged.stderr and "3 film(s) left out" in flagged.stderr
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\nIM-0001-0001.jpeg,maybe\n")
    bad = _run("pneumo", "adapt", TINY_DATA / "test", "--labels", labels, "--out", tmp_path / "x.json", "--weights", site["model"])
    assert bad.returncode == 2 and "is not NORMAL or PNEUMONIA" in bad.stderr


def test_unlabelled_films_adapt_the_network_and_too_few_are_told_what_is_needed(site, tmp_path):
    """At least 32 films without labels: label-free adaptation (campaign site1's C-0.50), which predict
    and the API use alike; fewer: a message that says what is needed."""
    model = site["model"]
    few = tmp_path / "few"
    shutil.copytree(site["films"] / "NORMAL", few)  # 24 usable films and a colour photo
    none = _run("pneumo", "adapt", few, "--out", tmp_path / "u.json", "--weights", model)
    assert none.returncode == 2 and "at least 32 films" in none.stderr and not (tmp_path / "u.json").exists()
    assert "NORMAL/ and PNEUMONIA/ folders" in none.stderr and "Traceback" not in none.stderr  # what to do next
    unlabelled = tmp_path / "unlabelled"
    unlabelled.mkdir()
    for film in sorted(site["films"].rglob("*.png")):
        shutil.copy(film, unlabelled / f"{film.parent.name}-{film.name}")
    made = _run("pneumo", "adapt", unlabelled, "--out", tmp_path / "free.json", "--weights", model)
    assert made.returncode == 0, made.stderr[-3000:]
    data = json.loads((tmp_path / "free.json").read_text())
    assert data["threshold"] is None and data["method"] == "label-free adaptation (C-0.50)"
    assert sorted(data["batchnorm"]) == ["block1_bn", "block2_bn", "block3_bn", "block4_bn", "block5_bn"]
    assert "label-free adaptation from 48 films" in made.stdout and "at the training hospital" in made.stdout
    film = sorted(unlabelled.glob("PNEUMONIA-*.png"))[0]
    read = _run("pneumo", "predict", film, "--weights", model, "--site", tmp_path / "free.json", "--json")
    assert read.returncode == 0, read.stderr[-2000:]
    row = json.loads(read.stdout.strip().splitlines()[-1])
    import pneumo

    api = pneumo.load(model, site=tmp_path / "free.json").predict(film)
    plain = pneumo.load(model).predict(film)
    assert api.probability == pytest.approx(row["probability"], abs=1e-5) and api.probability != pytest.approx(plain.probability, abs=1e-6)
    assert api.threshold == pytest.approx(plain.threshold)  # the shipped threshold: adaptation changes the network only


def test_weights_without_site_rules_say_so(site, tmp_path):
    bare = tmp_path / "bare" / "pneumonia.keras"
    bare.parent.mkdir()
    shutil.copy(site["model"], bare)
    out = _run("pneumo", "adapt", site["films"], "--out", tmp_path / "b.json", "--weights", bare)
    assert out.returncode == 2 and "no label-free adaptation ships with these weights" in out.stderr
    assert "no rule for a site threshold" in out.stderr and "Traceback" not in out.stderr


def test_a_profile_nested_deep_or_huge_gets_a_message(site, tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    out = _run("pneumo", "predict", TINY_DATA / "test", "--weights", site["model"], "--site", deep)
    assert out.returncode == 2 and "nested far too deep" in out.stderr and "Traceback" not in out.stderr
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as handle:
        handle.truncate(60_000_000)
    out = _run("pneumo", "predict", TINY_DATA / "test", "--weights", site["model"], "--site", huge)
    assert out.returncode == 2 and "60 MB" in out.stderr and "Traceback" not in out.stderr


def test_the_api_fits_the_same_profile_as_pneumo_adapt(site, tmp_path):
    import pneumo
    from pneumo.reading import NothingToFit

    model = pneumo.load(site["model"])
    profile, said = model.fit_site([site["films"]], name="Ward 7")
    made = json.loads(site["profile"].read_text())
    assert profile.threshold == pytest.approx(made["threshold"]) and profile.films == made["films"] == 48
    assert any("what to expect on new films" in line for line in said)
    with pytest.raises(NothingToFit, match="at least 32 films"):
        model.fit_site([site["films"] / "NORMAL"], name="too few")
