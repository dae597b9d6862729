"""The lung segmenter (pneumo.lungs; trained by pneumo.training.lungs): Dice on shipped fixtures,
no plausible lungs on a blank or a photo, the map-in-lungs arithmetic, the outline, the CLI fields."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO_ROOT, SUBPROCESS_ENV, TINY_DATA
from pneumo.lungs import (LUNGS_FILE, MOSTLY_OUTSIDE, draw_outline, in_lungs_sentence, lung_fields, lung_share, map_in_lungs,
                          outline, plausible_fields)

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


def test_the_sentence_says_both_shares_and_when_the_evidence_lies_mostly_outside():
    inside = in_lungs_sentence(0.72, 0.31)
    assert inside == "72% of the map lies inside the lungs, which cover 31% of the image."
    outside = in_lungs_sentence(MOSTLY_OUTSIDE - 0.01, 0.31)
    assert outside.startswith("49% of the map") and "evidence for this reading lies mostly outside the lungs" in outside
    assert "empty" in in_lungs_sentence(None, 0.3)


def test_lung_fields_and_their_plausibility():
    fields = lung_fields(_two_fields())
    assert fields.left_area == pytest.approx(fields.right_area) and fields.symmetry == pytest.approx(1.0)
    assert fields.left_centre[0] < 0.5 < fields.right_centre[0]
    limits = {"left_area": (0.1, 0.3), "right_area": (0.1, 0.3), "left_x": (0.1, 0.45), "left_y": (0.3, 0.7),
              "right_x": (0.55, 0.9), "right_y": (0.3, 0.7), "symmetry": (0.5, 1.0)}
    assert plausible_fields(fields, limits)
    one = _two_fields()
    one[:, 150:] = False  # one lung only
    assert not plausible_fields(lung_fields(one), limits)
    assert not plausible_fields(lung_fields(np.zeros((299, 299), bool)), limits)  # nothing: NaN centres are never plausible


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
    from pneumo.imageio import read_image_file
    from pneumo.lungs import load_segmenter
    from pneumo.preprocess import to_gray299
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
def test_no_plausible_lungs_on_a_blank_or_a_photo():
    from pneumo.lungs import load_segmenter
    from pneumo.preprocess import to_gray299
    from pneumo.training.synthetic import non_xray_images

    segmenter = load_segmenter()
    limits = {k: tuple(v) for k, v in segmenter.info["field_limits"].items()}
    pictures = dict(non_xray_images())
    blank = np.full((299, 299), 128, np.uint8)
    photo = to_gray299(pictures["photo/grace_hopper_gray"])
    for gray in (blank, photo):
        assert not plausible_fields(segmenter.fields(gray)[1], limits)
    child = to_gray299(Image.open(TINY_DATA / "train" / "NORMAL" / "IM-0117-0001.jpeg"))
    mask, fields = segmenter.fields(child)
    assert plausible_fields(fields, limits) and 0.4 < fields.contrast < 1.0 and fields.confidence > 0.9
    np.testing.assert_array_equal(mask, segmenter.mask(child))


@needs_segmenter
def test_the_cli_gives_lung_share_and_map_in_lungs_for_every_file_read(tmp_path, untrained_model_file):
    xray = TINY_DATA / "test" / "NORMAL" / "IM-0001-0001.jpeg"
    (tmp_path / "bad.png").write_bytes(b"not an image")
    result = subprocess.run([sys.executable, "-m", "pneumo.predict", str(xray), str(tmp_path / "bad.png"), "--weights",
                             str(untrained_model_file), "--json", "--csv", str(tmp_path / "out.csv")],
                            capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=300)
    rows = {Path(json.loads(line)["file"]).name: json.loads(line) for line in result.stdout.splitlines()}
    good, bad = rows[xray.name], rows["bad.png"]
    assert 0.1 < good["lung_share"] < 0.6
    assert good["map_in_lungs"] is None or 0.0 <= good["map_in_lungs"] <= 1.0
    assert bad["lung_share"] is None and bad["error"]
    header = (tmp_path / "out.csv").read_text().splitlines()[0].split(",")
    assert "lung_share" in header and "map_in_lungs" in header


def test_the_lung_weight_keeps_the_dilated_lungs_and_darkens_what_lies_beyond():
    from pneumo.lungs import LUNG_MARGIN, lung_weight

    mask = _two_fields()
    weight = lung_weight(mask)
    assert weight.dtype == np.uint8 and weight.shape == mask.shape
    assert (weight[mask] == 255).all()  # the lungs themselves are untouched
    assert weight[80:220, 130 + LUNG_MARGIN // 3].min() >= 240  # and so, nearly, is the margin beside them
    assert 100 < weight[150, 130 + LUNG_MARGIN] < 155  # the weight is half at the dilated edge: a soft edge
    assert weight[:20].max() == 0 and weight[270:].max() == 0  # the neck and the abdomen go black


def test_the_model_input_with_a_lung_weight_is_the_equalised_frame_times_the_weight():
    from pneumo.preprocess import equalize, to_model_input

    gray = np.random.default_rng(0).integers(0, 256, (2, 299, 299), dtype=np.uint8)
    weight = np.zeros_like(gray)
    weight[:, 100:200] = 255
    weight[:, 200:250] = 51
    x = to_model_input(gray, weight)
    assert x.shape == (2, 299, 299, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(to_model_input(gray, np.full_like(gray, 255)), to_model_input(gray))  # 255: the whole frame
    np.testing.assert_allclose(x[..., 0], equalize(gray) * weight / 255.0, atol=1e-6)
    assert x[:, :100].max() == 0.0 and (x[..., 0] == x[..., 2]).all()


@needs_segmenter
def test_the_dim_steps_weights_fall_back_to_the_whole_frame_without_plausible_lungs():
    from pneumo.lungs import LungStep, load_segmenter

    segmenter = load_segmenter()
    child = np.asarray(Image.open(sorted((TINY_DATA / "train" / "NORMAL").glob("*.jpeg"))[0]).convert("L").resize((299, 299)))
    blank = np.full((299, 299), 128, np.uint8)
    weights = LungStep(segmenter, "dim").weights(np.stack([child, blank]))
    assert weights.shape == (2, 299, 299) and weights.dtype == np.uint8
    assert 0.3 < (weights[0] == 255).mean() < 0.9 and (weights[0] == 0).any()  # a child's lungs: the frame's edges go dark
    assert (weights[1] == 255).all()  # no plausible lungs: the model sees the whole frame


def test_a_model_without_the_lung_step_needs_no_segmenter_and_one_with_it_says_what_is_missing(tmp_path):
    from pneumo.bundle import Bundle
    from pneumo.lungs import input_lungs

    assert Bundle(tmp_path / "m.keras").lung_step == "none"
    assert Bundle(tmp_path / "m.keras", {"config": {"lung_step": "dim"}}).lung_step == "dim"
    assert input_lungs("none") is None
    with pytest.raises(FileNotFoundError, match="lung step 'dim' and needs the lung segmenter"):
        input_lungs("dim", tmp_path / "absent.keras")
    with pytest.raises(ValueError, match="unknown lung step 'box'"):
        input_lungs("box")


def test_the_crop_is_the_box_round_the_lungs_and_its_maps_go_back_where_it_came_from():
    from pneumo.lungs import CROP_MARGIN, crop_to, lung_box, map_to_frame

    mask = _two_fields()  # rows 60-239, columns 40-129 and 170-259
    left, top, right, bottom = lung_box(mask)
    assert (left, top) == (int(np.floor(40 - CROP_MARGIN * 220)), int(np.floor(60 - CROP_MARGIN * 180)))
    assert (right, bottom) == (int(np.ceil(260 + CROP_MARGIN * 220)), int(np.ceil(240 + CROP_MARGIN * 180)))
    speck = mask.copy()
    speck[2:4, 295:297] = True  # a stray speck in a corner does not widen the box
    assert lung_box(speck) == (left, top, right, bottom)
    gray = np.zeros((299, 299), np.uint8)
    gray[top:bottom, left:right] = 200
    assert crop_to(gray, (left, top, right, bottom)).min() == 200  # the crop fills the frame with the box
    heat = np.ones((299, 299), np.float32)
    back = map_to_frame(heat, (left, top, right, bottom))
    assert back[top:bottom, left:right].min() == pytest.approx(1.0) and back.sum() == pytest.approx((right - left) * (bottom - top))


@needs_segmenter
def test_the_crop_step_crops_a_childs_lungs_and_leaves_a_blank_whole():
    from pneumo.lungs import LungStep, load_segmenter
    from pneumo.preprocess import to_model_input

    step = LungStep(load_segmenter(), "crop")
    child = np.asarray(Image.open(sorted((TINY_DATA / "train" / "NORMAL").glob("*.jpeg"))[0]).convert("L").resize((299, 299)))
    blank = np.full((299, 299), 128, np.uint8)
    box, none = step.boxes(np.stack([child, blank]))
    assert none is None and box is not None and (box[2] - box[0]) * (box[3] - box[1]) < 0.9 * 299 * 299
    x = step.model_input(np.stack([child, blank]))
    np.testing.assert_array_equal(x[1], to_model_input(blank))  # no plausible lungs: the whole frame
    assert step.found(child) and not step.found(blank)
    frame_x, frame_box = step.frame_input(child)
    assert frame_box == box and np.array_equal(frame_x, x[0])
    with pytest.raises(ValueError, match="darkens nothing"):
        step.weights(child[None])


@needs_segmenter
def test_asking_whether_lungs_were_found_after_a_prediction_does_not_segment_again(monkeypatch):
    from pneumo.lungs import LungStep, load_segmenter

    segmenter = load_segmenter()
    seen: list[int] = []
    masks = segmenter.masks
    monkeypatch.setattr(segmenter, "masks", lambda gray: seen.append(len(gray)) or masks(gray))
    child = np.asarray(Image.open(sorted((TINY_DATA / "train" / "NORMAL").glob("*.jpeg"))[0]).convert("L").resize((299, 299)))
    blank = np.full((299, 299), 128, np.uint8)
    for kind in ("dim", "crop"):
        seen.clear()
        step = LungStep(segmenter, kind)
        x = step.model_input(np.stack([child, blank]))
        assert step.found(child) and not step.found(blank) and seen == [2]  # one segmentation of the two
        np.testing.assert_array_equal(step.frame_input(child)[0], x[0])
        assert seen == [2]
        step.REMEMBERED = 1  # only the last image is kept: the child is forgotten, segmented again, to the same answer
        assert not step.found(blank) and step.found(child) and seen == [2, 1]
