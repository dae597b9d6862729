"""Train the pneumonia CNN on a Kaggle-layout chest X-ray data set.

    python train.py                              # defaults: ../shared/data/chest_xray -> weights/
    python train.py --epochs 2 --out /tmp/run    # a quick run elsewhere
    python train.py --resume                     # continue an interrupted run from its last epoch

Reads DATA_DIR/train (and DATA_DIR/val if it exists, otherwise a patient-grouped split of train),
decodes every image once into a cache, then trains with class weights and augmentation. A
checkpoint (model, optimizer, history, early-stopping state) is written after every epoch to
OUT/checkpoint/. The best epoch by validation AUC is kept; the decision threshold is chosen on the
validation split; the test split, if present, is evaluated once at the end, for reporting only
(written to metrics.json and the model card, not printed).

Writes OUT/pneumonia.keras (no optimizer state), OUT/history.json and OUT/metrics.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pneumo.reading.runtime import configure_tensorflow_env

configure_tensorflow_env()  # before TensorFlow is imported anywhere

import numpy as np  # noqa: E402

from pneumo.bundle import HISTORY_FILE, METRICS_FILE, MODEL_FILE, REPO_ROOT  # noqa: E402
from pneumo.training.crossval import OOF_FILE, write_out_of_fold  # noqa: E402
from pneumo.training.report import evaluation, git_commit, write_json, write_report  # noqa: E402
from pneumo.training.distribute import STRATEGIES  # noqa: E402
from pneumo.training.data import (  # noqa: E402
    DEFAULT_CACHE_DIR,
    DEFAULT_DATA_DIR,
    balanced_class_weights,
    is_sharp,
    labels_of,
    load_images,
    optional_test_split,
    run_split,
)

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help="folder with train/ (val/, test/) (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=30, help="maximum number of epochs (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=128, help="images per step (default: %(default)s)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of Adam (default: %(default)s)")
    p.add_argument("--warmup-epochs", type=int, default=1, help="linear warm-up epochs before cosine decay (default: %(default)s)")
    p.add_argument("--min-lr-ratio", type=float, default=0.02, help="final learning rate as a fraction of --lr (default: %(default)s)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW's decoupled weight decay (times the learning rate, per step), 0 = Adam (default: %(default)s)")
    p.add_argument("--label-smoothing", type=float, default=0.0, help="binary cross-entropy label smoothing (default: %(default)s)")
    p.add_argument("--rotation-deg", type=float, default=15.0, help="random rotation within +-this many degrees (default: %(default)s)")
    p.add_argument("--shift", type=float, default=0.1, help="random shift up to this share of the width/height (default: %(default)s)")
    p.add_argument("--zoom", type=float, default=0.1, help="random zoom x[1-z, 1+z] per axis (default: %(default)s)")
    p.add_argument("--degrade-prob", type=float, default=0.5, help="chance to pass a sharp original through 224 px (default: %(default)s)")
    p.add_argument("--degrade-min-size", type=int, default=224, help="smallest size of that trip; each batch draws one in [this, 224] (default: %(default)s)")
    p.add_argument("--noise", type=float, default=0.0, help="sensor noise: sigma ~ U(0, N) gray levels added before preprocessing, 0 = off (default: %(default)s)")
    p.add_argument("--sharpness", type=float, default=0.0, help="sharpness jitter: unsharp-mask amount ~ U(-S, S) per image before preprocessing (negative blurs), 0 = off (default: %(default)s)")
    p.add_argument("--local-contrast", type=float, default=0.0, help="local-contrast jitter: the 1.5-6 px band scaled by 1 + b, b ~ U(-L, L) per image before preprocessing, 0 = off (default: %(default)s)")
    p.add_argument("--jpeg-quality", type=int, default=0, help="JPEG recompression: each image re-encoded at a quality ~ U(Q, 100) before preprocessing, 0 = off (default: %(default)s)")
    p.add_argument("--contrast", type=float, default=0.0, help="contrast jitter x[1-c, 1+c], 0 = off (default: %(default)s)")
    p.add_argument("--gamma", type=float, default=0.0, help="gamma jitter in [1/(1+g), 1+g], 0 = off (default: %(default)s)")
    p.add_argument("--mixup", type=float, default=0.0, help="mixup alpha: blend random pairs of images and labels, 0 = off (default: %(default)s)")
    p.add_argument("--no-augment", action="store_true", help="train without augmentation")
    p.add_argument("--ema", type=float, default=0.0, help="keep an exponential moving average of the weights with this decay per step "
                   "(e.g. 0.998) and validate, select and ship the average; 0 = off (default: %(default)s)")
    p.add_argument("--patience", type=int, default=8, help="stop after this many epochs without a better val AUC (default: %(default)s)")
    p.add_argument("--seed", type=int, default=42, help="random seed for shuffling, augmentation, init, and the split unless --split-seed is given (default: %(default)s)")
    p.add_argument("--split-seed", type=int, default=None, help="seed of the patient-grouped validation split, to retrain with "
                   "another --seed on the same split (default: --seed)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of train patients held out for validation; 0: train on all "
                   "of train/ with no validation, keep the last epoch and choose no threshold (ship it with pneumo.training.release "
                   "--network, which carries a cross-validated threshold over) (default: %(default)s)")
    p.add_argument("--folds", type=int, default=0, help="cross-validation: split DATA_DIR/train into this many patient-grouped, "
                   "class-stratified folds (seed: --split-seed, else --seed) and hold out --fold; 0 = off (default: %(default)s)")
    p.add_argument("--fold", type=int, default=None, help="the fold held out for validation, 0 .. --folds - 1 (with --folds)")
    p.add_argument("--out", default=str(REPO_ROOT / "weights"), help="output folder (default: %(default)s)")
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR), help="decoded-image cache, '' for none (default: %(default)s)")
    p.add_argument("--resume", action="store_true", help="continue the run checkpointed in OUT/checkpoint/")
    p.add_argument("--strategy", choices=STRATEGIES, default="one", help="one device (default); mirrored: every GPU of this "
                   "machine; multiworker: several machines, the cluster from TF_CONFIG (pneumo.training.distribute). "
                   "--batch-size is then the global batch. A run may be resumed with another strategy")
    p.add_argument("--cpu-devices", type=int, default=0, help="with --strategy mirrored and no GPU: split the CPU into this many "
                   "logical devices (to try mirrored training on a laptop; no faster)")
    args = p.parse_args(argv)
    if args.weight_decay < 0:
        p.error(f"--weight-decay must be >= 0 (0 = plain Adam); got {args.weight_decay}")
    if not 0.0 <= args.ema < 1.0:
        p.error(f"--ema must be a decay in [0, 1), e.g. 0.998 (0 = off); got {args.ema}")
    if args.folds:
        if args.folds < 2:
            p.error(f"--folds must be at least 2 (0 = off); got {args.folds}")
        if args.fold is None or not 0 <= args.fold < args.folds:
            p.error(f"--folds {args.folds} needs --fold between 0 and {args.folds - 1}")
    elif args.fold is not None:
        p.error("--fold goes with --folds K")
    if args.cpu_devices and args.strategy != "mirrored":
        p.error("--cpu-devices goes with --strategy mirrored")
    if not args.no_augment:
        from pneumo.training.augment import Augmentation

        try:
            Augmentation.from_config(vars(args))
        except ValueError as error:  # its message names settings; each flag is "--" + the name with dashes
            p.error(re.sub(r"\b([a-z]+(?:_[a-z]+)*)(?= must)", lambda m: "--" + m.group(1).replace("_", "-"), str(error)))
    return args


def learning_rate_at(epoch: int, cfg: dict) -> float:
    """Linear warm-up, then cosine decay from lr to lr * min_lr_ratio over the remaining epochs."""
    lr, warmup, total = cfg["lr"], cfg["warmup_epochs"], cfg["epochs"]
    if epoch < warmup:
        return lr * (epoch + 1) / (warmup + 1)
    progress = (epoch - warmup) / max(1, total - warmup - 1)
    floor = lr * cfg["min_lr_ratio"]
    return floor + (lr - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def new_model(cfg: dict, n_pneumonia: int, n_normal: int):
    """The published architecture, its output bias set to the training prior, compiled for training."""
    import keras

    from pneumo.training.model import build_model, output_bias_for
    from pneumo.training.objectives import TargetCrossentropy, training_metrics

    model = build_model(output_bias=output_bias_for(n_pneumonia, n_normal))
    # Decoupled weight decay (AdamW) on every variable: Keras does not save an exclusion list with the
    # optimizer, so excluding BatchNormalization's variables would silently end at the first --resume.
    weight_decay = cfg.get("weight_decay", 0.0)
    optimizer = (
        keras.optimizers.AdamW(learning_rate=cfg["lr"], weight_decay=weight_decay)
        if weight_decay
        else keras.optimizers.Adam(learning_rate=cfg["lr"])
    )
    model.compile(
        optimizer=optimizer,
        loss=TargetCrossentropy(label_smoothing=cfg["label_smoothing"]),
        metrics=training_metrics(),  # counted against the labels, whatever the targets (pneumo.training.objectives)
    )
    return model


def weights_digest(model) -> str:
    """A short hash of every weight: two workers in step print the same one."""
    import hashlib

    return hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes() for w in model.get_weights())).hexdigest()[:16]


class RunError(Exception):
    """A reason the run cannot go on, for a person (printed as `error: ...`, exit status 2)."""


@dataclass
class Run:
    """One training run: its recipe (cfg), its progress (state, checkpointed after every epoch) and where it lives."""

    cfg: dict
    state: dict
    out: Path

    @property
    def ckpt_dir(self) -> Path:
        return self.out / "checkpoint"

    @property
    def state_file(self) -> Path:
        return self.ckpt_dir / "state.json"


@dataclass
class Data:
    """The decoded images (uint8, 299 px), labels and original sizes of the run's splits."""

    train: list
    val: list
    test: list
    x_train: np.ndarray
    y_train: np.ndarray
    size_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    size_val: np.ndarray

    @property
    def validates(self) -> bool:
        return len(self.val) > 0

    @property
    def counts(self) -> tuple[int, int]:
        """(PNEUMONIA, NORMAL) training images."""
        n_pos = int(self.y_train.sum())
        return n_pos, len(self.y_train) - n_pos


def main(argv: list[str] | None = None) -> int:
    """The run's steps, in order."""
    args = parse_args(argv)
    try:
        run = start_or_resume(args)
        data = load_data(run.cfg, args.cache_dir or None)
        strategy = set_up_devices(args, run.cfg, data)
        training = set_up_training(run, data, strategy)
        train(run, data, training, strategy)
        from pneumo.training.distribute import is_chief

        if not is_chief(strategy):
            print("training done; the chief writes the model and the report")
            return 0
        best = save_best(run, data, training.model)
        if not data.validates:
            return finish_without_validation(run.out, run.cfg, run.state, *data.counts, run.state_file)
        report(run, data, best, strategy, args, args.cache_dir or None)
    except RunError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def start_or_resume(args: argparse.Namespace) -> Run:
    """A fresh run's recipe and empty state, or the checkpointed run's, resumed after its last completed epoch."""
    run = Run({}, {}, Path(args.out))
    if args.resume:
        if not run.state_file.is_file():
            raise RunError(f"--resume given but there is no checkpoint in {run.ckpt_dir}")
        run.state = json.loads(run.state_file.read_text())
        if run.state.get("finished"):
            raise RunError(f"the run in {run.ckpt_dir} already finished; start a new one without --resume")
        run.cfg = run.state["config"]
        print(f"resuming after epoch {run.state['epoch']} of {run.cfg['epochs']} (settings of the checkpointed run)")
        return run
    if run.state_file.is_file() and not json.loads(run.state_file.read_text()).get("finished"):
        raise RunError(f"{run.ckpt_dir} holds an unfinished run; continue it with --resume, or delete that folder "
                       "(or choose another --out) to start over")
    # Where and on how many devices a run trains is not part of its recipe: a run may resume elsewhere.
    run.cfg = {k: v for k, v in vars(args).items() if k not in ("resume", "out", "cache_dir", "strategy", "cpu_devices")}
    run.state = {"config": run.cfg, "epoch": 0, "history": [], "best_epoch": 0, "best_val_auc": -1.0, "train_seconds": 0.0}
    return run


def load_data(cfg: dict, cache_dir: str | None) -> Data:
    """The split (a pure function of the file list and the seed) and its images, decoded once and cached."""
    try:
        train_samples, val_samples = run_split(cfg["data_dir"], cfg)
        # A fold model is judged on its fold; the test split is read once, for what ships (docs/TRAINING.md).
        # A run without validation has no threshold to report the test split at: release reads it.
        test_samples = [] if cfg.get("folds") or not run_split_validates(cfg) else optional_test_split(cfg["data_dir"])
        y_train, y_val = labels_of(train_samples), labels_of(val_samples)
        balanced_class_weights(y_train)  # both classes are needed
    except (FileNotFoundError, ValueError) as error:
        raise RunError(str(error)) from error
    n_pos = int(y_train.sum())
    print(f"train {len(y_train)} ({n_pos} PNEUMONIA / {len(y_train) - n_pos} NORMAL), val {len(y_val)}, test {len(test_samples)}")
    t_cache = time.time()
    x_train, size_train = load_images(train_samples, cache_dir)
    x_val, size_val = load_images(val_samples, cache_dir) if val_samples else (np.empty((0, 299, 299), np.uint8), np.empty((0, 2), np.int32))
    print(f"images ready in {time.time() - t_cache:.1f} s")
    return Data(train_samples, val_samples, test_samples, x_train, y_train, size_train, x_val, y_val, size_val)


def set_up_devices(args: argparse.Namespace, cfg: dict, data: Data):
    """--strategy: None for one device, else the tf.distribute strategy (before any TensorFlow op)."""
    from pneumo.training.distribute import is_chief, make_strategy, workers

    try:  # a multi-worker strategy sets up its collectives at startup
        strategy = make_strategy(args.strategy, args.cpu_devices)
    except (ValueError, RuntimeError) as error:
        raise RunError(str(error)) from error
    if strategy is not None:
        replicas = strategy.num_replicas_in_sync
        if cfg["batch_size"] % replicas:
            raise RunError(f"the global batch {cfg['batch_size']} does not split over {replicas} replicas")
        print(f"strategy {args.strategy}: {replicas} replicas on {workers(strategy)} worker(s); global batch {cfg['batch_size']} "
              f"= {cfg['batch_size'] // replicas} per replica; {math.ceil(len(data.y_train) / cfg['batch_size'])} steps per epoch"
              + ("" if is_chief(strategy) else "; this worker writes no files (the chief does)"), flush=True)
    return strategy


@dataclass
class Training:
    """What the loop works with: the network (with its optimizer), the weight average (--ema), the
    augmentation, the validation batches and, with a strategy, a copy of the network to validate on."""

    model: object
    ema: object | None
    augmentation: object | None
    val_ds: object | None
    evaluator: object | None


def set_up_training(run: Run, data: Data, strategy) -> Training:
    """A new network (output bias at the training prior, BatchNorm calibrated) or the checkpoint's
    model, optimizer and average; made in this order so that a seed gives the same run as before."""
    import keras

    from pneumo.training.model import calibrate_batchnorm, output_bias_for
    from pneumo.reading.preprocess import to_model_input
    from pneumo.training.augment import Augmentation, make_dataset
    from pneumo.training.distribute import is_chief, synchronize_batchnorm
    from pneumo.training.ema import WeightEMA

    cfg, state = run.cfg, run.state
    keras.utils.set_random_seed(cfg["seed"] + state["epoch"])
    augmentation = None if cfg["no_augment"] else Augmentation.from_config(cfg)
    val_ds = make_dataset(data.x_val, data.y_val, cfg["batch_size"]) if data.validates else None
    # With a strategy, validation runs on a copy of the network outside it: Keras's metrics under
    # MultiWorkerMirroredStrategy average the replicas' own AUCs, which is not the AUC of the split.
    evaluator = None if strategy is None else new_model(cfg, *data.counts)
    if is_chief(strategy):
        run.ckpt_dir.mkdir(parents=True, exist_ok=True)
    scope = contextlib.nullcontext() if strategy is None else strategy.scope()
    with scope:  # a strategy's variables (model, optimizer, metrics) are made in its scope
        if state["epoch"] > 0:
            from pneumo.training import objectives  # noqa: F401 (registers the loss and metrics the checkpoint names)

            model = keras.saving.load_model(run.ckpt_dir / "last.keras")  # weights and optimizer state
        else:
            n_pos, n_neg = data.counts
            model = new_model(cfg, n_pos, n_neg)
            first = np.random.default_rng(cfg["seed"]).permutation(len(data.x_train))[:64]
            calibrate_batchnorm(model, to_model_input(data.x_train[first]))
            print(f"output bias initialised to log({n_pos}/{n_neg}) = {output_bias_for(n_pos, n_neg):.4f}")
    # With a strategy: the global batch's statistics, so that every replica keeps the same weights (and
    # back to local ones for a checkpoint of a distributed run resumed on one device).
    synchronize_batchnorm(model, strategy is not None)
    # --ema: a resumed run goes on with its saved average (a fresh one if none was saved yet).
    ema_decay, ema_file = cfg.get("ema", 0.0), run.ckpt_dir / "ema.npz"
    ema = None
    if ema_decay:
        ema = WeightEMA.load(ema_file, ema_decay) if state["epoch"] > 0 and ema_file.is_file() else WeightEMA(ema_decay)
    return Training(model, ema, augmentation, val_ds, evaluator)


def train(run: Run, data: Data, training: Training, strategy) -> None:
    """The training loop: one fit() per epoch, validated (the average with --ema), the best kept, a
    checkpoint after each; early stop after --patience epochs without a better validation AUC."""
    from pneumo.training.augment import make_dataset
    from pneumo.training.distribute import is_chief, sharded

    cfg, state = run.cfg, run.state
    model, ema, augmentation, val_ds, evaluator = training.model, training.ema, training.augmentation, training.val_ds, training.evaluator
    chief = is_chief(strategy)
    class_weight = balanced_class_weights(data.y_train)
    sharp_train = is_sharp(data.size_train)
    verbose = 1 if sys.stdout.isatty() else 2
    for epoch in range(state["epoch"], cfg["epochs"]):
        lr = learning_rate_at(epoch, cfg)
        model.optimizer.learning_rate.assign(lr)
        train_ds = sharded(make_dataset(
            data.x_train, data.y_train, cfg["batch_size"], sharp=sharp_train, augmentation=augmentation,
            shuffle_seed=cfg["seed"] * 1000 + epoch,
            class_weight=class_weight,  # as per-example weights, so that mixup can blend them
        ), strategy)
        t0 = time.time()
        fit = model.fit(train_ds, initial_epoch=epoch, epochs=epoch + 1, shuffle=False, verbose=verbose,
                        callbacks=[] if ema is None else [ema])
        record = {"epoch": epoch + 1, **{k: float(v[-1]) for k, v in fit.history.items()}}
        # Validated (and kept, if best): the weights, or with --ema their average; training goes on from the raw ones.
        with contextlib.nullcontext() if ema is None else ema.swapped_in(model):
            if not data.validates:  # all of train/: the last epoch is the one kept
                scores = {}
            elif evaluator is None:
                scores = model.evaluate(val_ds, return_dict=True, verbose=0)
            else:  # the same weights, scored on this worker alone: every worker takes the same decisions
                evaluator.set_weights(model.get_weights())
                scores = evaluator.evaluate(val_ds, return_dict=True, verbose=0)
            record.update({f"val_{k}": float(v) for k, v in scores.items()})
            improved = record["val_auc"] > state["best_val_auc"] if data.validates else True
            if improved and chief:
                model.save_weights(run.ckpt_dir / "best.weights.h5")
        seconds = time.time() - t0
        record.update({"learning_rate": lr, "seconds": seconds, "images_per_second": len(data.y_train) / seconds})
        state["history"].append(record)
        state["epoch"], state["train_seconds"] = epoch + 1, state["train_seconds"] + seconds
        if improved:
            state["best_epoch"], state["best_val_auc"] = epoch + 1, record.get("val_auc", -1.0)
        if chief:
            checkpoint(run, model, ema)
        print(
            f"epoch {epoch + 1}/{cfg['epochs']}: "
            + (f"val AUC {record['val_auc']:.4f}{' (best)' if improved else ''}, " if data.validates else "no validation (all of train/), ")
            + f"lr {lr:.2e}, {seconds:.0f} s ({record['images_per_second']:.1f} img/s); "
            + ("checkpoint saved" if chief else "no checkpoint (not the chief)")
            + ("" if strategy is None else f"; weights {weights_digest(model)}"),  # equal on every worker
            flush=True,
        )
        if data.validates and epoch + 1 - state["best_epoch"] >= cfg["patience"]:
            print(f"early stop: no better val AUC for {cfg['patience']} epochs")
            break


def checkpoint(run: Run, model, ema) -> None:
    """The model with its optimizer, the weight average and the run's state: what --resume reads."""
    model.save(run.ckpt_dir / "last.tmp.keras")
    os.replace(run.ckpt_dir / "last.tmp.keras", run.ckpt_dir / "last.keras")
    if ema is not None:
        ema.save(run.ckpt_dir / "ema.npz")
    write_json(run.state_file, run.state)


def save_best(run: Run, data: Data, model):
    """The kept epoch's weights in a fresh network (no optimizer state) and the history, in OUT."""
    from pneumo.training.model import build_model

    run.out.mkdir(parents=True, exist_ok=True)
    model.load_weights(run.ckpt_dir / "best.weights.h5")
    best = build_model()
    best.set_weights(model.get_weights())
    best.save(run.out / MODEL_FILE)
    write_json(run.out / HISTORY_FILE, {"best_epoch": run.state["best_epoch"], "monitor": "val_auc" if data.validates else "last epoch",
                                        "epochs": run.state["history"]})
    return best


def report(run: Run, data: Data, best, strategy, args: argparse.Namespace, cache_dir: str | None) -> None:
    """The threshold, chosen on validation under the fixed acquisition changes; the test split
    predicted once, for reporting only; metrics.json, the model card, and a fold's out-of-fold scores."""
    from pneumo.reading.networks import predict_gray
    from pneumo.training.distribute import workers
    from pneumo.training.shift import SHIFT_SCORE, THRESHOLD_RULE, shift_predictions, shift_scores

    cfg, state, out = run.cfg, run.state, run.out
    probs_val = shift_predictions(best, data.x_val)
    shift, threshold = shift_scores(probs_val, data.y_val, None)
    p_val = probs_val["identity"]
    y_test = p_test = None
    if data.test:
        x_test, _ = load_images(data.test, cache_dir)
        y_test, p_test = labels_of(data.test), predict_gray(best, x_test)
    metrics = evaluation(data.y_val, p_val, is_sharp(data.size_val), y_test, p_test, threshold, THRESHOLD_RULE, validation_shift=shift)
    metrics.update(run_facts(cfg, state, *data.counts, len(data.y_val), len(data.test)))
    if strategy is not None:
        metrics["distribution"] = {"strategy": args.strategy, "replicas": strategy.num_replicas_in_sync, "workers": workers(strategy)}
    write_report(out, metrics, y_test, p_test)
    if cfg.get("folds"):
        write_out_of_fold(out / OOF_FILE, data.val, data.size_val, p_val, cfg["fold"])
    state["finished"] = True
    write_json(run.state_file, state)
    print(
        f"best epoch {state['best_epoch']} (val AUC {state['best_val_auc']:.4f}); threshold {threshold:.4f} chosen on validation; "
        f"shift score {shift['mean'][SHIFT_SCORE]:.4f} (validation under pneumo.training.shift's changes)"
    )
    # Not printed: a log that shows every run's test numbers invites comparing runs on them.
    if metrics["test"]:
        print("test metrics are in metrics.json and the model card: read them for the run you ship, compare runs on validation")
    print(f"wrote {out / MODEL_FILE}, {out / HISTORY_FILE}, {out / METRICS_FILE}, {out / 'MODEL_CARD.md'}")


def run_facts(cfg: dict, state: dict, n_pos: int, n_neg: int, n_val: int, n_test: int) -> dict:
    """What metrics.json records about the run itself."""
    import keras
    import tensorflow as tf

    return {
        "best_epoch": state["best_epoch"],
        "epochs_run": state["epoch"],
        "training_seconds": round(state["train_seconds"], 1),
        "data": {"train": n_pos + n_neg, "train_pneumonia": n_pos, "train_normal": n_neg, "val": n_val, "test": n_test},
        "seed": cfg["seed"],
        "config": cfg,
        "versions": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
            "oneDNN": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        },
        "git_commit": git_commit(),
    }


def run_split_validates(cfg: dict) -> bool:
    return bool(cfg.get("folds")) or cfg.get("val_fraction") != 0


def finish_without_validation(out: Path, cfg: dict, state: dict, n_pos: int, n_neg: int, state_file: Path) -> int:
    """A run on all of train/: the model and its history, and a metrics.json with the run's facts but
    no threshold, no validation and no test numbers (pneumo.training.release adds them)."""
    write_json(out / METRICS_FILE, run_facts(cfg, state, n_pos, n_neg, 0, 0))
    state["finished"] = True
    write_json(state_file, state)
    print(f"last epoch {state['epoch']} kept (no validation split); no threshold chosen: ship it with "
          f"`python -m pneumo.training.release FOLD_RUNS... --network {out} --out weights`")
    print(f"wrote {out / MODEL_FILE}, {out / HISTORY_FILE}, {out / METRICS_FILE}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: the last completed epoch is checkpointed; continue with `python train.py --resume` (same --out)", file=sys.stderr)
        sys.exit(130)
