"""Benchmarks (scripts that print numbers, not tests).

    python -m lab.bench inference   # one X-ray: naive path vs the project's path (JSON line)
    python -m lab.bench batch       # the reader (pneumo predict --no-maps) over a folder of 224 px JPEGs, images/s
    python -m lab.bench train       # train.py's pipeline vs plain model.fit, steady-state images/s
    python -m lab.bench explanations   # explanation methods: empty maps, faithfulness, sanity, time, map inside the lungs (minutes)
    python -m lab.bench site        # fitting to a site from 64 films (pneumo adapt's path), and reading with a profile
    python -m lab.bench cli         # pneumo predict over the 624 test files: files/s with maps and lung fields, and --no-maps
    python -m lab.bench table       # the page's batch table for one upload of the 624 test files (Streamlit's AppTest, no browser)
    python -m lab.bench serving     # one JSON line: cold start to first label and a warm result (real browser), the table, the CLI; medians of 3
    python -m lab.bench all

Numbers depend on the machine and on what else runs on it; the README quotes them for the 2-core
AMD EPYC development machine with nothing else running.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from pneumo.bundle import DEFAULT_MODEL, REPO_ROOT, predicted_label
from pneumo.bundle import DEFAULT_METHOD
from pneumo.reading.runtime import configure_tensorflow_env
from pneumo.training.data import DEFAULT_CACHE_DIR, DEFAULT_DATA_DIR

configure_tensorflow_env()

XRAY_DIRS = (REPO_ROOT / "examples", REPO_ROOT / "tests" / "data" / "chest_xray")


def _xray_files(n: int, data_dir: Path) -> list[Path]:
    files = sorted(p for d in XRAY_DIRS for p in d.rglob("*.jpeg"))
    if len(files) < n and (data_dir / "test").is_dir():
        files += sorted((data_dir / "test").rglob("*.jpeg"))
    return files[:n]


def _spread(seconds: list[float]) -> dict:
    q = np.quantile(seconds, [0.25, 0.5, 0.75])
    return {"median_s": round(float(q[1]), 4), "iqr_s": [round(float(q[0]), 4), round(float(q[2]), 4)],
            "min_s": round(min(seconds), 4), "max_s": round(max(seconds), 4), "n": len(seconds)}


def bench_inference(n_images: int, data_dir: Path, weights: Path, method: str = DEFAULT_METHOD) -> dict:
    """Per X-ray, from decoded image to probability + heatmap (the page's default method unless
    told), after warm-up, against the naive path: model.predict, then a fresh tf-keras-vis
    visualiser on the whole model."""
    from tf_keras_vis.utils import normalize
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import BinaryScore

    from pneumo.reading.networks import load_networks
    from pneumo.reading.explain import visualiser_for
    from pneumo.reading.decode import read_image_file
    from pneumo.reading.explain import GRADCAM_LAYER, ensemble_members
    from pneumo.reading.preprocess import to_gray299, to_model_input

    engine = load_networks(weights)  # the reader's networks; warmed up at load
    model = engine.model
    files = _xray_files(n_images, data_dir)
    gray = [to_gray299(read_image_file(f)) for f in files]
    threshold = engine.bundle.threshold

    def naive(g: np.ndarray) -> tuple[float, np.ndarray]:
        x = to_model_input(g)[np.newaxis]
        p = float(model.predict(x, verbose=0)[0, 0])
        visualiser, extra = visualiser_for(method, model, model_modifier=ReplaceToLinear(), clone=True)  # fresh, every call
        cam = visualiser(
            BinaryScore(float(predicted_label(p, threshold))), x, penultimate_layer=GRADCAM_LAYER, seek_penultimate_conv_layer=False,
            normalize_cam=False, **extra,
        )
        return p, np.nan_to_num(normalize(np.asarray(cam)))[0]

    def project(g: np.ndarray) -> tuple[float, np.ndarray]:
        result = engine.explain(g, method=method)
        return result.probability, result.heatmap

    if engine.segmenter is not None:  # the page's whole path per X-ray: probability, map and lungs
        lung_times, whole_times = [], []
        engine.lungs(gray[0])
        for g in gray:
            t0 = time.perf_counter()
            engine.lungs(g)
            t1 = time.perf_counter()
            project(g)
            engine.lungs(g)
            lung_times.append(t1 - t0)
            whole_times.append(time.perf_counter() - t1)

    # An ensemble's layer sits inside each member, where the naive whole-model visualiser cannot reach:
    # only the project's path is timed for it.
    paths = {"project": project} if ensemble_members(model) else {"naive": naive, "project": project}
    for path in paths.values():  # warm-up
        path(gray[0])
    times = {name: [] for name in paths}
    prob_diff, heat_diff = 0.0, 0.0
    for g in gray:
        outputs = {}
        for name, path in paths.items():
            t0 = time.perf_counter()
            outputs[name] = path(g)
            times[name].append(time.perf_counter() - t0)
        if "naive" in outputs:
            prob_diff = max(prob_diff, abs(outputs["naive"][0] - outputs["project"][0]))
            heat_diff = max(heat_diff, float(np.abs(outputs["naive"][1] - outputs["project"][1]).max()))
    project_s = _spread(times["project"])
    result = {"benchmark": "inference", "method": method, "images": len(gray), "networks": max(1, len(ensemble_members(model))),
              "project": project_s}
    if engine.segmenter is not None:
        result |= {"lungs": _spread(lung_times), "probability_map_and_lungs": _spread(whole_times)}
    if "naive" in times:
        naive_s = _spread(times["naive"])
        result |= {"naive": naive_s, "speedup": round(naive_s["median_s"] / project_s["median_s"], 2),
                   "max_probability_difference": prob_diff, "max_heatmap_difference": heat_diff}
    return result


def bench_batch(data_dir: Path, weights: Path, limit: int) -> dict:
    """The reader's batched path (pneumo predict --no-maps) over the 224 px test JPEGs, end to end from the files."""
    from pneumo.reading import Reader, expand_inputs

    files = expand_inputs([str(data_dir / "test")])[:limit]
    reader = Reader(weights, threshold=0.5)
    list(reader.read_many(files[:32], maps=False))  # warm-up: the probabilities alone, not the per-file maps
    t0 = time.perf_counter()
    results = list(reader.read_many(files, maps=False, pictures=False))
    seconds = time.perf_counter() - t0
    return {"benchmark": "batch_predict", "images": len(results), "errors": sum(r.error is not None for r in results),
            "seconds": round(seconds, 2), "images_per_second": round(len(results) / seconds, 1)}


_TABLE_CHILD = r'''
import json, resource, sys, time
from pathlib import Path
from streamlit.testing.v1 import AppTest
files = sorted(Path(sys.argv[1]).rglob("*.jpeg"))
at = AppTest.from_file(sys.argv[2], default_timeout=900)
at.run()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
at.file_uploader[0].set_value([(f.name, f.read_bytes(), "image/jpeg") for f in files])
started = time.perf_counter()
at.run()
seconds = time.perf_counter() - started
rows = len(at.dataframe[0].value) if at.dataframe else 0
print(json.dumps({"files": len(files), "rows": rows, "seconds": seconds, "exception": bool(at.exception),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_before_upload_mb": before / 1024}))
'''


def bench_table(data_dir: Path) -> dict:
    """One upload of the test folder's files on the page (Streamlit's AppTest in a fresh process, the
    model already loaded): seconds from the upload to the batch table, and the process's peak memory."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run([sys.executable, "-c", _TABLE_CHILD, str(data_dir / "test"), str(REPO_ROOT / "streamlit_app.py")],
                         capture_output=True, text=True, env=env, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return {"benchmark": "table", **{k: round(v, 1) if isinstance(v, float) else v for k, v in result.items()}}


def _browser_start_to_label(example: Path, read_for: float = 0.0) -> dict:
    """`streamlit run` -> page -> upload `example` -> its label, in headless Chromium (the test suite's
    way; the browser is started first, as a person's already runs); the upload `read_for` seconds
    after the uploader shows (a person reading the page first; 0: at once); then, warm, another
    X-ray uploaded in a new session of the same server, to its label."""
    from playwright.sync_api import sync_playwright

    from lab.screenshot import CHROMIUM, CHROMIUM_ARGS, StreamlitServer, wait_for_result, warm_upload_seconds

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        server = StreamlitServer()
        try:
            server.wait_until_healthy()
            ready = time.monotonic() - server.started
            page.goto(server.url)
            page.locator("input[type=file]").first.wait_for(state="attached", timeout=60_000)
            uploader = time.monotonic() - server.started
            time.sleep(read_for)
            uploaded = time.monotonic() - server.started
            page.locator("input[type=file]").first.set_input_files(str(example))
            wait_for_result(page)
            first = time.monotonic() - server.started
            warm = warm_upload_seconds(browser, server.url, REPO_ROOT / "examples" / "NORMAL" / "IM-0201-0001.jpeg")
        finally:
            server.stop()
            browser.close()
    return {"server_ready_s": ready, "uploader_s": uploader, "first_label_s": first, "first_upload_to_label_s": first - uploaded,
            "warm_upload_to_label_s": warm}


READ_FOR = 3.0  # seconds a person takes from seeing the uploader to dropping a file on it (a generous lower bound)


def bench_serving(data_dir: Path, weights: Path, runs: int = 3) -> dict:
    """Issue #45's numbers in one line, medians of `runs`: cold start to the first label (the upload
    at once, and again `READ_FOR` seconds after the uploader shows) and a warm result in a real
    browser, the 624-file upload's batch table (seconds, peak memory), and the CLI's files/s with and
    without maps."""
    example = REPO_ROOT / "examples" / "PNEUMONIA" / "person101_virus_187.jpeg"
    browser = [_browser_start_to_label(example) for _ in range(runs)]
    reading = [_browser_start_to_label(example, read_for=READ_FOR) for _ in range(runs)]
    tables = [bench_table(data_dir) for _ in range(runs)]
    cli = bench_cli(data_dir, weights, repeats=runs)

    def median(values) -> float:
        return round(float(np.median(values)), 2)

    return {"benchmark": "serving", "runs": runs,
            **{key: median([b[key] for b in browser]) for key in browser[0]},
            f"first_upload_to_label_after_{READ_FOR:g}s_reading_s": median([r["first_upload_to_label_s"] for r in reading]),
            "table_624_s": median([t["seconds"] for t in tables]), "table_peak_rss_mb": median([t["peak_rss_mb"] for t in tables]),
            "cli_maps_files_per_second": cli["maps_files_per_second"], "cli_no_maps_files_per_second": cli["no_maps_files_per_second"]}


def bench_cli(data_dir: Path, weights: Path, repeats: int = 3) -> dict:
    """pneumo predict's path (pneumo.reading.Reader.read_many: threaded reading, the guard and the
    population check, then per batch of 32 the network, the lungs and the maps in one pass) over the
    test folder's files, with maps and with --no-maps; medians of `repeats` after a warm-up."""
    from pneumo.reading import Reader, expand_inputs

    files = expand_inputs([str(data_dir / "test")])
    reader = Reader(weights)
    out: dict = {"benchmark": "cli", "files": len(files)}
    for name, maps in (("maps", True), ("no_maps", False)):
        list(reader.read_many(files[:64], maps=maps, pictures=False))  # warm-up: traces both paths
        seconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            results = [r.row() for r in reader.read_many(files, maps=maps, pictures=False)]
            seconds.append(time.perf_counter() - started)
        out[f"{name}_files_per_second"] = round(len(files) / float(np.median(seconds)), 1)
        out[f"{name}_seconds"] = [round(s, 2) for s in seconds]
        out[f"{name}_errors"] = sum(r["error"] is not None for r in results)
    return out


def flops_per_image(model) -> dict:
    """Multiply-adds x2 of the forward pass, from the layer shapes (pooling, BN, ReLU ignored)."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            _, h, w, c_out = layer.output.shape
            k = layer.kernel_size[0] * layer.kernel_size[1]
            total += 2 * h * w * k * layer.input.shape[-1] * c_out
        elif kind == "SeparableConv2D":
            _, h, w, c_out = layer.output.shape
            c_in = layer.input.shape[-1]
            total += 2 * h * w * (9 * c_in + c_in * c_out)
        elif kind == "Dense":
            total += 2 * layer.input.shape[-1] * layer.units
    return {"forward_gflop": round(total / 1e9, 3), "train_step_gflop": round(3 * total / 1e9, 3)}


def _cpu_peak_gflops() -> float:
    """Cores x clock x 32 FP32 FLOP/cycle (AVX2: two 8-wide FMA units)."""
    mhz = [float(line.split(":")[1]) for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("cpu MHz")]
    clock_ghz = (max(mhz) if mhz else 2500.0) / 1000
    return round((os.cpu_count() or 1) * clock_ghz * 32, 1)


_TRAIN_CHILD = r'''
import json, os, sys, time
import numpy as np
mode, data_dir, n, batch, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
from pneumo.training.data import list_split, labels_of, load_images, balanced_class_weights, is_sharp
samples = list_split(data_dir, "train")
rng = np.random.default_rng(0)
samples = [samples[i] for i in sorted(rng.choice(len(samples), n, replace=False))]
labels = labels_of(samples)
import keras, tensorflow as tf
from pneumo.training.model import build_model
from pneumo.reading.preprocess import preprocess
model = build_model()
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
if mode == "plain":
    # The usual tutorial pipeline: decode and resize every image again in every epoch.
    from PIL import Image
    paths = [str(s.path) for s in samples]
    def load(i):
        with Image.open(paths[int(i)]) as im:
            return preprocess(im)
    ds = tf.data.Dataset.from_tensor_slices(np.arange(n)).shuffle(n, seed=0)
    ds = ds.map(lambda i: (tf.numpy_function(load, [i], tf.float32), tf.gather(tf.constant(labels, tf.float32), i)), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(lambda x, y: (tf.ensure_shape(x, (299, 299, 3)), y)).batch(batch).prefetch(2)
    make = lambda epoch: ds
else:
    from pneumo.training.augment import Augmentation, make_dataset
    cache = os.environ.get("PNEUMO_BENCH_CACHE") or None
    gray, sizes = load_images(samples, cache, progress=False)
    make = lambda epoch: make_dataset(gray, labels, batch, sharp=is_sharp(sizes), augmentation=Augmentation(), shuffle_seed=epoch)
cw = balanced_class_weights(labels)
seconds = []
for epoch in range(epochs):
    t0 = time.perf_counter()
    model.fit(make(epoch), epochs=1, class_weight=cw, verbose=0)
    seconds.append(time.perf_counter() - t0)
print(json.dumps({"mode": mode, "oneDNN": os.environ.get("TF_ENABLE_ONEDNN_OPTS"), "epoch_seconds": seconds, "steady_images_per_second": n / float(np.median(seconds[1:]))}))
'''


def bench_train(data_dir: Path, n: int, batch: int, epochs: int) -> dict:
    """Both pipelines on the same random subset of train, each in its own process (oneDNN is fixed
    when TensorFlow loads); steady state = the median epoch after the first."""
    runs = {}
    for mode, onednn in (("plain", "0"), ("project", "1")):
        env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO_ROOT)}
        if mode == "project":
            env["PNEUMO_BENCH_CACHE"] = str(DEFAULT_CACHE_DIR)
        out = subprocess.run([sys.executable, "-c", _TRAIN_CHILD, mode, str(data_dir), str(n), str(batch), str(epochs)],
                             capture_output=True, text=True, env=env, check=True).stdout
        runs[mode] = json.loads(out.strip().splitlines()[-1])
    flops = flops_per_image(__import__("pneumo.training.model", fromlist=["build_model"]).build_model())
    peak = _cpu_peak_gflops()
    project_ips = runs["project"]["steady_images_per_second"]
    return {
        "benchmark": "train", "images": n, "batch_size": batch,
        "plain_images_per_second": round(runs["plain"]["steady_images_per_second"], 2),
        "plain_epoch_seconds": [round(t, 1) for t in runs["plain"]["epoch_seconds"]],
        "project_epoch_seconds": [round(t, 1) for t in runs["project"]["epoch_seconds"]],
        "project_images_per_second": round(project_ips, 2),
        "speedup": round(project_ips / runs["plain"]["steady_images_per_second"], 2),
        **flops, "cpu_peak_gflops": peak,
        "compute_floor_images_per_second": round(peak / flops["train_step_gflop"], 1),
        "share_of_peak": round(project_ips * flops["train_step_gflop"] / peak, 3),
    }


def bench_explanations(data_dir: Path, weights: Path, per_class: int) -> dict:
    """docs/EXPLANATIONS.md's measures of every method, on evenly spaced test X-rays of both classes
    plus the shared DICOM radiograph, explaining the class the shipped model predicts."""
    from pneumo.bundle import read_bundle
    from pneumo.reading.explain import METHODS
    from pneumo.reading.decode import read_file
    from pneumo.reading.networks import load_model
    from pneumo.reading.preprocess import to_gray299, to_model_input
    from pneumo.training import sets
    from pneumo.training.data import load_images
    from lab.explanations import choose_default, measure_methods

    test = sets.test(data_dir)
    chosen = []
    for label in (0, 1):
        of_class = [s for s in test if s.label == label]
        chosen += [of_class[i] for i in np.unique(np.linspace(0, len(of_class) - 1, per_class).round().astype(int))]
    gray, _ = load_images(chosen, DEFAULT_CACHE_DIR, progress=False)
    dicoms = [d for d in sets.dicoms(data_dir) if d.name.endswith("monochrome2.dcm")]
    if dicoms:
        gray = np.concatenate([gray, to_gray299(read_file(dicoms[0]).image)[np.newaxis]])
    shipped = read_bundle(weights)
    model = load_model(weights)
    report = measure_methods(model, to_model_input(gray), METHODS, shipped.threshold)
    report.update({"benchmark": "explanations", "test_normal": per_class, "test_pneumonia": per_class, "dicom": len(dicoms[:1]),
                   "default_by_rule": choose_default(report)})
    from pneumo.reading.lungs import load_segmenter

    segmenter = load_segmenter()
    if segmenter is not None:  # the share of each map inside the predicted lungs (issue #35)
        from pneumo.reading.networks import predict_gray
        from lab.explanations import in_lungs

        test_gray = gray[: len(chosen)]
        labels = np.array([s.label for s in chosen])
        called = predict_gray(model, test_gray) >= shipped.threshold
        groups = np.where(labels == 1, "test PNEUMONIA", np.where(called, "test NORMAL called PNEUMONIA", "test NORMAL called NORMAL"))
        images, names = [test_gray], [groups]
        adults = sets.adults()
        adult_gray, _ = load_images(adults, DEFAULT_CACHE_DIR, progress=False)
        for source in sets.ADULT_SOURCES:
            rows = np.flatnonzero([a.source == source for a in adults])
            rows = rows[np.unique(np.linspace(0, len(rows) - 1, per_class // 2).round().astype(int))]
            images.append(adult_gray[rows])
            names.append(np.full(len(rows), f"adult {source}"))
        report["in_lungs"] = in_lungs(model, np.concatenate(images), np.concatenate(names), segmenter, METHODS, shipped.threshold)
    return report


def bench_site(data_dir: Path, weights: Path, films: int = 64, repeats: int = 3) -> dict:
    """pneumo adapt's path on `films` validation films, bytes -> checks -> profile: without labels
    (label-free adaptation, the shipped plan) and with their folders' labels (a site threshold); then
    one X-ray read (probability and map) with and without the label-free profile. Medians of `repeats`."""
    from pathlib import Path as _Path

    from pneumo.reading import Reader, fit_site, read_site_films
    from pneumo.reading.networks import load_networks
    from pneumo.training import sets

    samples = sets.validation(data_dir)
    chosen = [samples[i] for i in np.unique(np.linspace(0, len(samples) - 1, films).round().astype(int))]
    labelled = [(str(s.path), s.path.read_bytes()) for s in chosen]
    unlabelled = [(_Path(name).name, data) for name, data in labelled]
    reader = Reader(weights)
    seconds: dict[str, list[float]] = {"label-free": [], "labelled": []}
    profiles = {}
    for _ in range(repeats):
        for kind, items in (("label-free", unlabelled), ("labelled", labelled)):
            started = time.perf_counter()
            site = read_site_films(reader, items)
            try:
                profiles[kind], _ = fit_site(reader, site, "bench")
            except ValueError as error:  # too few of a class among these films: said, not timed
                profiles[kind] = str(error)
            seconds[kind].append(time.perf_counter() - started)
    gray = site.gray[:16]
    reads = {}
    for name, engine in (("without", load_networks(weights)), ("with", load_networks(weights, site=profiles["label-free"]))):
        engine.explain(gray[0])
        times = []
        for g in gray:
            started = time.perf_counter()
            engine.explain(g)
            times.append(time.perf_counter() - started)
        reads[name] = float(np.median(times))
    return {"benchmark": "site", "films": len(labelled), "passed_checks": len(site.gray),
            "fit_seconds_median": {k: round(float(np.median(v)), 2) for k, v in seconds.items()},
            "labelled_fit": "made" if not isinstance(profiles["labelled"], str) else profiles["labelled"],
            "read_ms_without_profile": round(reads["without"] * 1000, 1), "read_ms_with_profile": round(reads["with"] * 1000, 1)}


def bench_checks(data_dir: Path, images: int = 100, repeats: int = 3) -> dict:
    """The checks every upload passes before its reading, per image, as the app runs them one file at
    a time (pneumo.reading.reader.checks: the guard, then the population check on the image): median
    over `repeats` passes of `images` test X-rays and of the 120 non-X-rays (which stop earlier)."""
    from pneumo.reading.reader import checks
    from pneumo.reading.guard import load_guard
    from pneumo.reading.decode import read_file
    from pneumo.training import sets

    guard = load_guard()
    pictures = [read_file(s.path).image for s in sets.test(data_dir)[:images]]
    non_xrays = [image for _, image in sets.non_xrays()]

    def per_image(batch) -> float:
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            for picture in batch:
                checks(picture, {}, guard)
            runs.append((time.perf_counter() - started) / len(batch))
        return round(float(np.median(runs)) * 1000, 2)

    score = guard.adult_score
    return {"benchmark": "checks", "guard_and_population_ms_per_xray": per_image(pictures),
            "guard_and_population_ms_per_non_xray": per_image(non_xrays), "xrays": len(pictures),
            "population_features": score.features if score is not None else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("which", choices=["inference", "batch", "train", "explanations", "site", "cli", "table", "serving", "checks", "all"])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--weights", default=str(DEFAULT_MODEL))
    parser.add_argument("--images", type=int, default=24, help="X-rays for the inference benchmark (>= 20)")
    parser.add_argument("--method", default=DEFAULT_METHOD, choices=["gradcam", "gradcam++", "layercam", "hirescam"],
                        help="heatmap method for the inference benchmark (default: the page's)")
    parser.add_argument("--batch-limit", type=int, default=624, help="files for the batch benchmark")
    parser.add_argument("--train-images", type=int, default=512, help="subset size for the training benchmark")
    parser.add_argument("--train-batch", type=int, default=128, help="train.py's default batch size")
    parser.add_argument("--train-epochs", type=int, default=4)
    parser.add_argument("--per-class", type=int, default=100, help="test X-rays of each class for the explanations benchmark")
    args = parser.parse_args(argv)
    data_dir, weights = Path(args.data_dir), Path(args.weights)
    if args.which in ("inference", "all"):
        print(json.dumps(bench_inference(args.images, data_dir, weights, args.method)), flush=True)
    if args.which in ("batch", "all"):
        print(json.dumps(bench_batch(data_dir, weights, args.batch_limit)), flush=True)
    if args.which in ("train", "all"):
        print(json.dumps(bench_train(data_dir, args.train_images, args.train_batch, args.train_epochs)), flush=True)
    if args.which == "serving":  # minutes: not part of "all"
        print(json.dumps(bench_serving(data_dir, weights)), flush=True)
    if args.which in ("table", "all"):
        print(json.dumps(bench_table(data_dir)), flush=True)
    if args.which in ("cli", "all"):
        print(json.dumps(bench_cli(data_dir, weights)), flush=True)
    if args.which in ("site", "all"):
        print(json.dumps(bench_site(data_dir, weights)), flush=True)
    if args.which in ("checks", "all"):
        print(json.dumps(bench_checks(data_dir)), flush=True)
    if args.which == "explanations":  # minutes: not part of "all"
        from lab.explanations import format_table

        report = bench_explanations(data_dir, weights, args.per_class)
        print(format_table(report))
        if "in_lungs" in report:
            from lab.explanations import format_in_lungs

            print(format_in_lungs(report["in_lungs"]))
        print(f"default by the rule of docs/EXPLANATIONS.md: {report['default_by_rule']}")
        print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
