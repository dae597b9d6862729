"""Site adaptation's core (pneumo.reading.siteprofile): BatchNorm statistics re-estimated in the network's order,
only for the channels a plan marks, folded into a copy of the network; the profile's round trip and
its refusals (another model, a damaged or hand-edited file)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import TINY_DATA
from pneumo.bundle import weights_sha256
from pneumo.reading.siteprofile import NORMALISED, SiteProfile, SiteProfileError, reestimate, with_statistics


@pytest.fixture(scope="module")
def network(untrained_model_file):
    from pneumo.reading.networks import load_model

    return load_model(untrained_model_file)


@pytest.fixture(scope="module")
def batch():
    from pneumo.reading.preprocess import to_model_input
    from pneumo.training.data import list_split, load_images

    gray, _ = load_images(list_split(TINY_DATA, "train"), None, workers=1, progress=False)
    return to_model_input(gray[:8])


def _input_statistics(model, name: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of layer `name`'s input over the batch, through the model as it stands."""
    import keras

    before = model.layers[[layer.name for layer in model.layers].index(name) - 1]
    h = np.asarray(keras.Model(model.input, before.output)(x, training=False), dtype=np.float64)
    axes = tuple(range(h.ndim - 1))
    return h.mean(axis=axes), h.var(axis=axes)


def test_an_empty_plan_keeps_the_trained_statistics_and_the_readings(network, batch):
    plan = {name: np.zeros(network.get_layer(name).moving_mean.shape[0], bool) for name in NORMALISED}
    stats = reestimate(network, batch, plan)
    for name, (mean, variance) in stats.items():
        np.testing.assert_allclose(mean, np.asarray(network.get_layer(name).moving_mean), rtol=1e-6)
        np.testing.assert_allclose(variance, np.asarray(network.get_layer(name).moving_variance), rtol=1e-6)
    np.testing.assert_allclose(with_statistics(network, stats).predict_on_batch(batch), network.predict_on_batch(batch), atol=1e-6)


def test_reestimation_walks_the_network_in_order_and_folds_into_a_copy(network, batch):
    trained = {name: np.asarray(network.get_layer(name).moving_mean).copy() for name in NORMALISED}
    plan = {name: np.ones(network.get_layer(name).moving_mean.shape[0], bool) for name in NORMALISED}
    stats = reestimate(network, batch, plan)
    adapted = with_statistics(network, stats)
    for name in ("block1_bn", "block4_bn", "dense2_bn"):  # each layer's statistics are those of its input in the adapted network
        mean, variance = _input_statistics(adapted, name, batch)
        np.testing.assert_allclose(stats[name][0], mean, rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(stats[name][1], variance, rtol=1e-3, atol=1e-4)
    for name in NORMALISED:  # the shipped network is untouched
        np.testing.assert_array_equal(np.asarray(network.get_layer(name).moving_mean), trained[name])
    assert np.abs(adapted.predict_on_batch(batch) - network.predict_on_batch(batch)).max() > 1e-4


def test_only_the_channels_the_plan_marks_change(network, batch):
    chosen = np.zeros(network.get_layer("block2_bn").moving_mean.shape[0], bool)
    chosen[::3] = True
    stats = reestimate(network, batch, {"block2_bn": chosen})
    assert set(stats) == {"block2_bn"}
    mean, _ = stats["block2_bn"]
    trained = np.asarray(network.get_layer("block2_bn").moving_mean)
    np.testing.assert_allclose(mean[~chosen], trained[~chosen], rtol=1e-6)
    np.testing.assert_allclose(mean[chosen], _input_statistics(network, "block2_bn", batch)[0][chosen], rtol=1e-3, atol=1e-4)


def test_an_ensemble_is_refused_with_a_reason(network):
    from pneumo.training.model import ensemble

    with pytest.raises(ValueError, match="needs the published network itself"):
        reestimate(ensemble([network, network]), np.zeros((1, 299, 299, 3), np.float32), {})


def _profile(network, batch, model_file) -> SiteProfile:
    plan = {name: np.ones(network.get_layer(name).moving_mean.shape[0], bool) for name in ("block1_bn", "dense3_bn")}
    return SiteProfile(site="Ward 7", model_sha256=weights_sha256(model_file), method="test", films=8, left_out=1,
                       statistics=reestimate(network, batch, plan), threshold=0.31)


def test_a_profile_round_trip_gives_the_same_network(network, batch, untrained_model_file, tmp_path):
    profile = _profile(network, batch, untrained_model_file)
    profile.save(tmp_path / "site.json")
    back = SiteProfile.load(tmp_path / "site.json", network, untrained_model_file)
    assert (back.site, back.films, back.left_out, back.threshold, back.created) == ("Ward 7", 8, 1, 0.31, profile.created)
    assert "Ward 7" in back.describe() and "8 films" in back.describe()
    np.testing.assert_allclose(with_statistics(network, back.statistics).predict_on_batch(batch),
                               with_statistics(network, profile.statistics).predict_on_batch(batch), atol=1e-6)
    assert (tmp_path / "site.json").stat().st_size < 40_000  # one small file


def test_profiles_that_cannot_be_used_are_refused_with_a_message(network, batch, untrained_model_file, tmp_path):
    good = json.loads(_profile(network, batch, untrained_model_file).to_json())
    other_model = tmp_path / "other.keras"
    other_model.write_bytes(untrained_model_file.read_bytes() + b"\0")

    def refused(data, model_file=untrained_model_file) -> str:
        path = tmp_path / "profile.json"
        path.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())
        with pytest.raises(SiteProfileError) as error:
            SiteProfile.load(path, network, model_file)
        return str(error.value)

    assert "another model" in refused(good, other_model)
    assert "not JSON" in refused(b"{ half a profile")
    assert "not text" in refused(b"\xff\xfe\x00binary")
    assert "not a pneumo site profile" in refused({**good, "format": "something else"})
    assert "no site profile" in str(pytest.raises(SiteProfileError, SiteProfile.load, tmp_path / "absent.json", network,
                                                  untrained_model_file).value)
    short = json.loads(json.dumps(good))
    short["batchnorm"]["block1_bn"]["mean"] = short["batchnorm"]["block1_bn"]["mean"][:-1]
    assert "edited by hand" in refused(short) and "block1_bn needs 32 values" in refused(short)
    negative = json.loads(json.dumps(good))
    negative["batchnorm"]["dense3_bn"]["variance"][0] = -1.0
    assert "negative variance" in refused(negative)
    unknown = json.loads(json.dumps(good))
    unknown["batchnorm"]["block9_bn"] = unknown["batchnorm"].pop("block1_bn")
    assert "edited by hand" in refused(unknown)
    assert "not a probability" in refused({**good, "threshold": 1.5})
    missing = dict(good)
    del missing["films"]
    assert "edited by hand" in refused(missing)
    assert "nested far too deep" in refused(b"[" * 100_000 + b"]" * 100_000)  # a RecursionError in the JSON parser before
    assert "nested far too deep" in refused(json.dumps({**good, "site": "x"})[:-1].encode() + b', "extra": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")


def test_a_huge_profile_is_refused_before_it_is_read(network, untrained_model_file, tmp_path, monkeypatch):
    from pathlib import Path

    huge = tmp_path / "huge.json"
    with open(huge, "wb") as handle:  # 60 MB, sparse where the file system allows
        handle.truncate(60_000_000)
    read = []
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self) or b"")
    with pytest.raises(SiteProfileError, match="60 MB"):
        SiteProfile.load(huge, network, untrained_model_file)
    assert read == []  # refused from its size, not after reading it
    monkeypatch.undo()
    with pytest.raises(SiteProfileError, match="not a site profile"):  # the same text handed over (the page's upload)
        SiteProfile.from_json(" " * 3_000_000, network, untrained_model_file)


def test_the_campaigns_plans_draws_and_rule():
    """lab.site1: candidates A, B and C as docs/SITE.md registers them, batches at a mix,
    and the ship rule (the safety floor on development and validation, worst cell, fewer channels on a tie)."""
    from lab.site1 import choose, draw_batch, plan_for, qualifies

    rng = np.random.default_rng(0)
    sensitivity = {name: rng.random(n) for name, n in zip(NORMALISED, (32, 64, 128, 256, 128, 512, 128, 64))}
    early = plan_for("A", sensitivity)
    assert set(early) == set(NORMALISED[:3]) and all(m.all() for m in early.values())
    selective = plan_for("B-0.25", sensitivity)
    assert set(selective) == set(NORMALISED)
    kept = ~selective["block4_bn"]
    assert kept.sum() == 64 and sensitivity["block4_bn"][kept].min() > sensitivity["block4_bn"][~kept].max()  # the most class-sensitive stay
    assert set(plan_for("C-0.10", sensitivity)) == set(NORMALISED[:5])
    labels = np.r_[np.zeros(100, int), np.ones(150, int)]
    batch = draw_batch(labels, 32, 0.25, seed=7)
    assert len(set(batch)) == 32 and labels[batch].sum() == 8
    np.testing.assert_array_equal(batch, draw_batch(labels, 32, 0.25, seed=7))
    natural = draw_batch(labels, 64, None, seed=7)  # the set's own mix: drawn from all films alike
    assert len(set(natural)) == 64 and 0 < labels[natural].sum() < 64

    def cell(sens, spec, base_sens=0.97, base_spec=0.62):
        return {"sensitivity": sens, "specificity": spec, "unadapted_sensitivity": base_sens, "unadapted_specificity": base_spec}

    still = {"64@10%": cell(0.97, 0.96, 0.97, 0.965)}
    assert qualifies({"32@10%": cell(0.96, 0.80), "64@90%": cell(0.95, 0.61)}, still)
    assert not qualifies({"32@10%": cell(0.94, 0.85)}, still)  # sensitivity below the floor somewhere
    assert not qualifies({"32@10%": cell(0.96, 0.59)}, still)  # specificity more than 0.02 below doing nothing
    assert not qualifies({"32@10%": cell(0.96, 0.80)}, {"64@10%": cell(0.97, 0.94, 0.97, 0.965)})  # costs the training site too much
    assert qualifies({"32@10%": cell(0.96, 0.80)}, {"64@90%": cell(0.955, 0.975, 0.984, 0.97)})  # within the floor there: it may
    results = {"development": {"A": {"c": cell(0.96, 0.70)}, "B-0.25": {"c": cell(0.96, 0.803)}, "C-0.25": {"c": cell(0.96, 0.80)},
                               "B-0.10": {"c": cell(0.90, 0.95)}},
               "validation": {name: still for name in ("A", "B-0.25", "C-0.25", "B-0.10")}}
    plans = {"A": early, "B-0.25": selective, "C-0.25": plan_for("C-0.25", sensitivity), "B-0.10": plan_for("B-0.10", sensitivity)}
    assert choose(results, plans) == "C-0.25"  # within 0.005 of the best worst cell, and fewer channels than B
    assert choose({"development": {"A": {"c": cell(0.90, 0.9)}}, "validation": {"A": still}}, {"A": early}) is None


def test_class_sensitivity_is_computed_per_channel_from_both_classes(network):
    from lab.site1 import class_sensitivity
    from pneumo.training.data import labels_of, list_split, load_images

    samples = list_split(TINY_DATA, "train")
    gray, _ = load_images(samples, None, workers=1, progress=False)
    s = class_sensitivity(network, gray, labels_of(samples), chunk=3)
    assert list(s) == list(NORMALISED) and s["block1_bn"].shape == (32,) and s["dense3_bn"].shape == (64,)
    assert all(np.isfinite(v).all() and (v >= 0).all() for v in s.values()) and max(v.max() for v in s.values()) > 0


def test_the_site_distance_is_zero_on_the_trained_statistics_and_grows_with_a_shift(network, batch):
    """lab.site1.batch_distance (measured, not served), and the campaign's film-by-film form of it."""
    from lab.site1 import DISTANCE_LAYERS, batch_distance, distance_of, film_means

    plan = {name: np.ones(network.get_layer(name).moving_mean.shape[0], bool) for name in DISTANCE_LAYERS}
    fitted = with_statistics(network, reestimate(network, batch, plan))
    assert batch_distance(fitted, batch) < 1e-3  # a network whose statistics are this batch's own: no distance
    near = batch_distance(network, batch)
    assert batch_distance(network, np.clip(batch * 0.5 + 0.4, 0, 1)) > near  # a washed-out copy lies further away
    gray = np.round(batch[..., 0] * 255).astype(np.uint8)
    means = film_means(network, gray)
    assert distance_of(network, means, np.arange(len(gray))) == pytest.approx(batch_distance(network, batch), rel=0.02)


SHIPPED, TRAINING_LOGIT = 0.223343, 4.0  # the shipped threshold, and a training site's median pneumonia logit


def _logit(p):
    return float(np.log(p / (1 - p)))


def test_the_site_threshold_moves_with_the_median_and_falls_only_on_evidence():
    """Campaign site2's pick (docs/SITE.md): the shipped threshold moved by the labelled pneumonias' median
    logit against the training site's; lowered only where they show the shipped one misses too many."""
    from pneumo.reading.siteprofile import MIN_LABELLED, site_threshold

    def at(median_logit: float, n: int = 40) -> np.ndarray:  # pneumonias whose logits spread evenly around a median
        return 1 / (1 + np.exp(-(median_logit + np.linspace(-2, 2, n))))

    higher = site_threshold(at(TRAINING_LOGIT + 1.0), SHIPPED, TRAINING_LOGIT)
    assert _logit(higher) == pytest.approx(_logit(SHIPPED) + 1.0, abs=1e-6)  # a site whose pneumonias score higher: it rises by as much
    odd = at(TRAINING_LOGIT + 1.0)
    odd[:3] = [0.001, 0.002, 0.004]  # three pneumonias far below the shipped threshold: the k-th-lowest rule would fall to 0.002
    assert site_threshold(odd, SHIPPED, TRAINING_LOGIT) == pytest.approx(higher, rel=0.05)
    lower = at(TRAINING_LOGIT - 1.0)  # lower-scoring pneumonias, all still above the shipped threshold: no evidence it misses
    assert site_threshold(lower, SHIPPED, TRAINING_LOGIT) == pytest.approx(SHIPPED)
    lower[:2] = 0.1  # 2 of 40 below it: the upper bound of 38/40 is above 0.95, still no evidence
    assert site_threshold(lower, SHIPPED, TRAINING_LOGIT) == pytest.approx(SHIPPED)
    missed = at(_logit(SHIPPED) + 0.5)  # a third of these below the shipped threshold: it does miss too many, so it falls
    assert (missed < SHIPPED).mean() > 0.2
    assert site_threshold(missed, SHIPPED, TRAINING_LOGIT) < SHIPPED
    with pytest.raises(ValueError, match=f"at least {MIN_LABELLED} labelled pneumonias"):
        site_threshold(at(TRAINING_LOGIT, 19), SHIPPED, TRAINING_LOGIT)


def test_the_served_site_threshold_is_the_campaigns_pick():
    """pneumo.reading.siteprofile.site_threshold gives what lab.site2 simulated as shift-P+bound."""
    from lab.site2 import make_rules
    from pneumo.reading.siteprofile import site_threshold

    rule = make_rules(_logit(SHIPPED), {"pneumonia": TRAINING_LOGIT, "normal": -3.0})["shift-P+bound"]
    rng = np.random.default_rng(3)
    for n in (20, 30, 50, 100):
        for centre in (1.0, 3.0, 4.0, 6.0):
            p = 1 / (1 + np.exp(-rng.normal(centre, 2.0, n)))
            expected = 1 / (1 + np.exp(-rule(np.log(p / (1 - p)), None)))
            assert site_threshold(p, SHIPPED, TRAINING_LOGIT) == pytest.approx(expected, rel=1e-6)


def test_the_roc_and_auc_of_labelled_films():
    from pneumo.reading.siteprofile import auc, roc

    pneumonias = np.linspace(0.05, 0.99, 40)
    labels = np.r_[np.zeros(30, int), np.ones(40, int)]
    scores = np.r_[np.linspace(0.0, 0.5, 30), pneumonias]
    from sklearn.metrics import roc_auc_score

    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    tied = np.round(scores, 1)
    assert auc(labels, tied) == pytest.approx(roc_auc_score(labels, tied))
    curve = roc(labels, scores, bootstrap=200)
    assert curve["ci95"][0] <= curve["auc"] <= curve["ci95"][1] and curve["tpr"][-1] == 1.0 and curve["fpr"][0] == 0.0
