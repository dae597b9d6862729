"""The weight average behind `train.py --ema`: the arithmetic, the swap, the checkpoint, and that
train.py validates and ships the average rather than the raw weights."""

import json

import keras
import numpy as np
import pytest

from conftest import REPO_ROOT, SUBPROCESS_ENV, TINY_DATA
from pneumo.training.ema import WeightEMA


class _Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append(self.model.get_weights())


def _tiny_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization(), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return model


def test_average_follows_the_formula_with_warmup_and_swaps_back():
    model, decay = _tiny_model(), 0.5
    x, y = np.random.default_rng(0).normal(size=(40, 3)), np.random.default_rng(1).normal(size=(40, 1))
    ema, recorder = WeightEMA(decay), _Recorder()
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[ema, recorder])
    assert ema.updates == 5 and len(recorder.seen) == 5

    expected = [w.copy() for w in recorder.seen[0]]
    for n, weights in enumerate(recorder.seen[1:], start=1):
        d = min(decay, (1 + n) / (10 + n))
        expected = [d * e + (1 - d) * w for e, w in zip(expected, weights)]
    assert len(ema.average) == len(model.get_weights())  # BatchNormalization statistics included
    for got, want in zip(ema.average, expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(a, w) for a, w in zip(ema.average, recorder.seen[-1]))

    trained = model.get_weights()
    with ema.swapped_in(model):
        for got, want in zip(model.get_weights(), ema.average):
            np.testing.assert_array_equal(got, want)
    for got, want in zip(model.get_weights(), trained):
        np.testing.assert_array_equal(got, want)


def test_checkpoint_round_trip(tmp_path):
    model = _tiny_model()
    ema = WeightEMA(0.9)
    model.fit(np.ones((16, 3)), np.zeros((16, 1)), batch_size=4, verbose=0, callbacks=[ema])
    ema.save(tmp_path / "ema.npz")
    again = WeightEMA.load(tmp_path / "ema.npz", 0.9)
    assert again.updates == ema.updates == 4
    for a, b in zip(again.average, ema.average):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5])
def test_decay_outside_0_1_is_refused(decay):
    with pytest.raises(ValueError, match="between 0 and 1"):
        WeightEMA(decay)


def test_train_with_ema_ships_the_average(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "run"
    command = [sys.executable, str(REPO_ROOT / "train.py"), "--data-dir", str(TINY_DATA), "--out", str(out),
               "--cache-dir", str(tmp_path / "cache"), "--batch-size", "4", "--val-fraction", "0.25", "--seed", "1",
               "--epochs", "1", "--ema", "0.9"]
    result = subprocess.run(command, capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    history = json.loads((out / "history.json").read_text())
    assert {"val_auc", "val_loss", "val_accuracy"} <= set(history["epochs"][0])

    shipped = keras.saving.load_model(out / "pneumonia.keras").get_weights()
    average = WeightEMA.load(out / "checkpoint" / "ema.npz", 0.9).average
    raw = keras.saving.load_model(out / "checkpoint" / "last.keras").get_weights()
    for s, a in zip(shipped, average):  # one epoch: the best epoch is the last, so the average is shipped
        np.testing.assert_allclose(s, a, rtol=1e-6)
    assert any(not np.allclose(s, r) for s, r in zip(shipped, raw))
    assert "moving average of the weights, decay 0.9" in (out / "MODEL_CARD.md").read_text()

    bad = subprocess.run(command[:-1] + ["1.5"], capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=60)
    assert bad.returncode == 2 and "--ema must be" in bad.stderr and "Traceback" not in bad.stderr
