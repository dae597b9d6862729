"""The lung segmenter (pneumo.reading.lungs; trained by pneumo.training.lungs): Dice on shipped fixtures,
the cleaned mask (each half's largest piece, holes filled), the map-in-lungs arithmetic, the
outline, the CLI fields."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO_ROOT, SUBPROCESS_ENV, TINY_DATA
from pneumo.outputs.picture import draw_outline, outline
from pneumo.outputs.words import hottest_region, in_lungs_sentence, map_sentences, on_a_mark
from pneumo.reading.lungs import LUNGS_FILE, clean_mask, kept_pieces, lung_share, map_in_lungs, pieces, stray_pieces

FIXTURE_MASKS = sorted((REPO_ROOT / "tests" / "data" / "lungs").glob("*.png"))
needs_segmenter = pytest.mark.skipif(not LUNGS_FILE.is_file(), reason="no shipped lung segmenter")


def _two_fields(side: int = 299) -> np.ndarray:
    mask = np.zeros((side, side), bool)
    mask[60:240, 40:130] = True
    mask[60:240, 170:260] = True
    return mask


def test_map_in_lungs_is_the_share_of_the_maps_mass_inside_the_mask():
    mask = np.zeros((10, 10), bool)
    mask[:, :5] = True
    heat = np.zeros((10, 10))
    heat[:, :5], heat[:, 5:] = 1.0, 3.0  # a quarter of the mass inside
    assert lung_share(mask) == 0.5
    assert map_in_lungs(heat, mask) == pytest.approx(0.25)
    assert map_in_lungs(np.ones((10, 10)), mask) == pytest.approx(lung_share(mask))  # a flat map: the lungs' share
    assert map_in_lungs(np.zeros((10, 10)), mask) is None  # an empty map has no mass
    assert map_in_lungs(heat, np.zeros((10, 10), bool)) == 0.0


def test_the_sentence_compares_the_maps_weight_in_the_lungs_with_the_lungs_share():
    drawn = in_lungs_sentence(0.44, 0.36)  # the case: less than half the map, on lungs covering a third
    assert drawn.startswith("44% of the map lies inside the lungs, which cover 36% of the image") and "drawn to the lungs" in drawn
    assert "outside" not in drawn
    assert "even spread" in in_lungs_sentence(0.36, 0.36) and "drawn away from the lungs" in in_lungs_sentence(0.2, 0.36)
    assert "empty" in in_lungs_sentence(None, 0.3)


def test_the_hottest_part_is_placed_on_a_lung_between_them_or_outside_the_chest():
    lungs = _two_fields()
    heat = np.zeros((299, 299))
    heat[100:120, 60:90] = 1.0  # on the image's left lung
    assert hottest_region(heat, lungs).startswith("the image's left lung")
    heat[:] = 0
    heat[120:140, 140:160] = 1.0  # the midline, between the fields
    assert "hilum" in hottest_region(heat, lungs)
    heat[:] = 0
    heat[5:20, 5:20] = 1.0  # a corner
    assert hottest_region(heat, lungs) == "outside the chest" and hottest_region(np.zeros((299, 299)), lungs) is None


def test_a_hot_spot_on_a_burned_in_letter_is_named_and_one_on_smooth_bone_is_not():
    gray = np.full((299, 299), 90, np.uint8)
    gray[150:200, 100:200] = np.linspace(120, 250, 100, dtype=np.uint8)  # a smooth bright bone: no glyph
    heat = np.zeros((299, 299))
    heat[160:190, 120:180] = 1.0
    assert not on_a_mark(heat, gray)
    gray[20:40, 250:253] = gray[20:23, 250:265] = 255  # an "L" in the corner
    heat[:] = 0
    heat[18:42, 246:268] = 1.0
    assert on_a_mark(heat, gray)
    said = map_sentences(heat, _two_fields(), gray)
    assert any("burned into the film" in line for line in said) and any("outside the chest" in line for line in said)


def test_the_cleaned_mask_keeps_each_halfs_largest_piece_and_fills_its_holes():
    mask = _two_fields()
    mask[100:110, 70:80] = False  # a hole inside the patient's right lung
    mask[5:9, 290:295] = True  # a speck in a corner (a marker)
    mask[270:280, 140:160] = True  # an island below, across the midline (the abdomen)
    assert pieces(mask)[1] == 4 and stray_pieces(mask) == 2
    clean = clean_mask(mask)
    np.testing.assert_array_equal(clean, _two_fields())  # the two lungs, whole; nothing else
    assert pieces(clean)[1] == 2 and stray_pieces(clean) == 0
    merged = _two_fields()
    merged[150:160, 130:170] = True  # the lungs meet behind the heart: one piece wins both halves and stays whole
    np.testing.assert_array_equal(clean_mask(merged), merged)
    one = _two_fields()
    one[:, 150:] = False
    one[200:203, 200:203] = True  # one lung found, and a speck where the other should be: the speck is no lung
    np.testing.assert_array_equal(clean_mask(one), np.where(np.arange(299) < 150, _two_fields(), False))
    assert not clean_mask(np.zeros((299, 299), bool)).any()


def test_the_cleaned_mask_fills_exactly_what_scipys_hole_filling_fills():
    from scipy import ndimage

    rng = np.random.default_rng(0)
    for density in (0.3, 0.5, 0.6, 0.7):  # many pieces, holes inside holes, holes on the border
        for _ in range(20):
            mask = rng.random((61, 61)) < density
            labels, count = pieces(mask)
            np.testing.assert_array_equal(clean_mask(mask), ndimage.binary_fill_holes(np.isin(labels, kept_pieces(labels, count))))


def test_the_outline_is_the_masks_boundary_and_is_drawn_at_the_pictures_size():
    mask = _two_fields()
    edge = outline(mask)
    assert edge.sum() > 0 and not edge[150, 80] and edge[60, 80] and not edge[150, 150]
    picture = Image.new("L", (600, 400), 90)
    drawn = np.asarray(draw_outline(picture, mask))
    assert drawn.shape == (400, 600, 3)
    assert (drawn == (0, 230, 255)).all(axis=-1).any() and tuple(drawn[200, 300]) == (90, 90, 90)


@needs_segmenter
def test_the_shipped_segmenter_finds_the_fixture_childrens_lungs():
    """Dice against the V7 Labs masks of three training children (tests/data/lungs; in the
    segmenter's training set, so this checks the shipped file and its preprocessing, not generalisation:
    docs/LUNGS.md has the held-out numbers)."""
    from pneumo.reading.decode import read_image_file
    from pneumo.reading.lungs import load_segmenter
    from pneumo.reading.preprocess import to_gray299
    from pneumo.training.lungs import dice

    segmenter = load_segmenter()
    gray = np.stack([to_gray299(read_image_file(TINY_DATA / "train" / "NORMAL" / f"{m.stem}.jpeg")) for m in FIXTURE_MASKS])
    truth = np.stack([np.asarray(Image.open(m).convert("L").resize((299, 299), Image.Resampling.BILINEAR)) >= 128 for m in FIXTURE_MASKS])
    scores = dice(segmenter.masks(gray), truth)
    assert len(scores) == 3 and scores.min() >= 0.9, scores
    info = json.loads(LUNGS_FILE.with_suffix(".json").read_text())
    assert "CC BY 4.0" in info["terms"] and info["parameters"] < 500_000 and LUNGS_FILE.stat().st_size <= 2_000_000
    assert set(info["held_out"]) == {"children", "JSRT", "Montgomery", "Shenzhen"}


@needs_segmenter
def test_the_segmenters_masks_are_cleaned_where_the_network_draws_islands():
    """On a photo the network draws scattered pieces; the masks every caller gets are its cleaned
    ones, and a child's clean mask is the network's own where it had nothing stray."""
    from pneumo.reading.lungs import load_segmenter
    from pneumo.reading.preprocess import to_gray299
    from pneumo.training.synthetic import non_xray_images

    segmenter = load_segmenter()
    pictures = dict(non_xray_images())
    child = to_gray299(Image.open(TINY_DATA / "train" / "NORMAL" / "IM-0117-0001.jpeg"))
    gray = np.stack([child] + [to_gray299(pictures[name]) for name in ("photo/grace_hopper_gray", "photo/china", "photo/flower")])
    raw, shipped = segmenter.masks(gray, clean=False), segmenter.masks(gray)
    assert any(stray_pieces(m) for m in raw[1:])  # the network alone leaves islands on these
    for r, s in zip(raw, shipped):
        np.testing.assert_array_equal(s, clean_mask(r))
        assert stray_pieces(s) == 0
    np.testing.assert_array_equal(segmenter.mask(child), shipped[0])
    assert stray_pieces(raw[0]) == 0 and (shipped[0] ^ raw[0]).sum() < 0.01 * raw[0].sum()


@needs_segmenter
def test_the_cli_gives_lung_share_and_map_in_lungs_for_every_file_read(tmp_path, untrained_model_file):
    xray = TINY_DATA / "test" / "NORMAL" / "IM-0001-0001.jpeg"
    (tmp_path / "bad.png").write_bytes(b"not an image")
    result = subprocess.run([sys.executable, "-m", "pneumo", "predict", str(xray), str(tmp_path / "bad.png"), "--weights",
                             str(untrained_model_file), "--json", "--csv", str(tmp_path / "out.csv")],
                            capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=300)
    rows = {Path(json.loads(line)["file"]).name: json.loads(line) for line in result.stdout.splitlines()}
    good, bad = rows[xray.name], rows["bad.png"]
    assert 0.1 < good["lung_share"] < 0.6
    assert good["map_in_lungs"] is None or 0.0 <= good["map_in_lungs"] <= 1.0
    assert bad["lung_share"] is None and bad["error"]
    header = (tmp_path / "out.csv").read_text().splitlines()[0].split(",")
    assert "lung_share" in header and "map_in_lungs" in header


