"""train.py under tf.distribute on this CPU: MirroredStrategy over two logical CPU devices in one
process, and MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1, each a real run
on the tiny data set; the workers' weights agree after every epoch, only the chief writes, and a
run killed after its first epoch resumes with another number of workers. Processes are bounded in
time and killed when a test ends."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path


from conftest import REPO_ROOT, SUBPROCESS_ENV, TINY_DATA

ARGS = ["--batch-size", "4", "--val-fraction", "0.25", "--lr", "1e-3", "--seed", "1"]
DIGEST = re.compile(r"^epoch (\d+)/\d+: .*; weights ([0-9a-f]{16})$", re.MULTILINE)


def _command(out: Path, cache: Path, *extra: str) -> list[str]:
    return [sys.executable, str(REPO_ROOT / "train.py"), "--data-dir", str(TINY_DATA), "--out", str(out), "--cache-dir", str(cache),
            *ARGS, *extra]


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _workers(out: Path, cache: Path, *extra: str, n: int = 2) -> list[subprocess.Popen]:
    ports = _free_ports(n)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    processes = []
    for index in range(n):
        env = {**SUBPROCESS_ENV, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        processes.append(subprocess.Popen(_command(out, cache, "--strategy", "multiworker", *extra), env=env, text=True,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    return processes


def _stop(processes: list[subprocess.Popen]) -> None:
    for p in processes:
        if p.poll() is None:
            p.kill()
    for p in processes:
        p.wait(timeout=30)


def _load(path: Path):
    import keras

    return keras.saving.load_model(path)


def test_mirrored_over_two_cpu_devices_trains_and_ships_a_plain_model(tmp_path):
    result = subprocess.run(_command(tmp_path / "run", tmp_path / "cache", "--epochs", "2", "--strategy", "mirrored", "--cpu-devices", "2"),
                            capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "strategy mirrored: 2 replicas on 1 worker(s); global batch 4 = 2 per replica; 2 steps per epoch" in result.stdout
    assert len(DIGEST.findall(result.stdout)) == 2
    model = _load(tmp_path / "run" / "pneumonia.keras")
    assert model.count_params() == 1_321_953
    assert not any(layer.get_config().get("synchronized") for layer in model.layers)  # the shipped network is the published one
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["distribution"] == {"strategy": "mirrored", "replicas": 2, "workers": 1}
    assert "strategy" not in metrics["config"]  # not part of the recipe: a run may resume elsewhere


def test_two_workers_stay_in_step_and_only_the_chief_writes(tmp_path):
    out, cache = tmp_path / "run", tmp_path / "cache"
    processes = _workers(out, cache, "--epochs", "2")
    try:
        logs = [p.communicate(timeout=600)[0] for p in processes]
    finally:
        _stop(processes)
    assert [p.returncode for p in processes] == [0, 0], "\n----\n".join(log[-3000:] for log in logs)
    chief, worker = (dict(DIGEST.findall(log)) for log in logs)
    assert chief == worker and sorted(chief) == ["1", "2"]  # the same weights after every epoch
    assert "2 replicas on 2 worker(s); global batch 4 = 2 per replica" in logs[0]
    assert "no checkpoint (not the chief)" in logs[1] and "the chief writes the model" in logs[1]
    assert _load(out / "pneumonia.keras").count_params() == 1_321_953
    assert json.loads((out / "metrics.json").read_text())["distribution"]["workers"] == 2
    history = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]


def test_a_two_worker_run_killed_after_epoch_one_resumes_on_one_device(tmp_path):
    out, cache = tmp_path / "run", tmp_path / "cache"
    state = out / "checkpoint" / "state.json"
    processes = _workers(out, cache, "--epochs", "3")
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not (state.is_file() and json.loads(state.read_text())["epoch"] >= 1):
            assert all(p.poll() is None for p in processes), "a worker ended before its first checkpoint"
            time.sleep(0.5)
    finally:
        _stop(processes)
    epochs_done = json.loads(state.read_text())["epoch"]
    assert 1 <= epochs_done < 3
    resumed = subprocess.run([sys.executable, str(REPO_ROOT / "train.py"), "--resume", "--out", str(out), "--cache-dir", str(cache)],
                             capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"resuming after epoch {epochs_done} of 3" in resumed.stdout
    history = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3]
    assert _load(out / "pneumonia.keras").count_params() == 1_321_953


def test_bad_strategy_settings_are_clear_errors(tmp_path):
    env = {k: v for k, v in SUBPROCESS_ENV.items() if k != "TF_CONFIG"}
    no_cluster = subprocess.run(_command(tmp_path / "a", tmp_path / "cache", "--epochs", "1", "--strategy", "multiworker"),
                                capture_output=True, text=True, env=env, timeout=300)
    assert no_cluster.returncode == 2 and "TF_CONFIG" in no_cluster.stderr and "Traceback" not in no_cluster.stderr
    devices = subprocess.run(_command(tmp_path / "b", tmp_path / "cache", "--cpu-devices", "2"), capture_output=True, text=True, env=env, timeout=120)
    assert devices.returncode == 2 and "--cpu-devices goes with --strategy mirrored" in devices.stderr
