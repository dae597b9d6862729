"""The model's report: metrics.json (threshold chosen on validation, test metrics with intervals,
calibration, per-resolution validation metrics) and the model card with its figures.

train.py writes it at the end of a run; for shipped weights it can be rebuilt from scratch:

    python -m pneumo.training.report [--weights weights/pneumonia.keras] [--data-dir ...]

The decision threshold comes from metrics.json (chosen on the validation split when the run ended);
with --choose-threshold it is chosen again on validation by the current
rule (pneumo.training.shift.THRESHOLD_RULE), never on test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
from sklearn.metrics import brier_score_loss, roc_curve

from pneumo.bundle import CARD_FILE, DEFAULT_MODEL, HISTORY_FILE, METRICS_FILE, REPO_ROOT, ROC_FILE, read_bundle, read_json
from pneumo.training.augment import Augmentation
from pneumo.training.data import DEFAULT_CACHE_DIR, is_sharp, labels_of, load_images, optional_test_split, run_split, split_seed_of
from pneumo.training.metrics import binary_metrics, metrics_with_intervals
from pneumo.training.shift import SHIFT_SCORE, THRESHOLD_RULE

RELIABILITY_PNG = "reliability.png"


def evaluation(
    y_val: np.ndarray, p_val: np.ndarray, sharp_val: np.ndarray, y_test: np.ndarray | None, p_test: np.ndarray | None,
    threshold: float, threshold_rule: str, validation_shift: dict | None = None, bootstrap: int = 2000,
) -> dict:
    """Everything metrics.json reports about the predictions, at a threshold chosen on validation
    (threshold_rule says how; validation_shift: pneumo.training.shift's scores at it)."""
    out = {
        "threshold": float(threshold),
        "threshold_rule": threshold_rule,
        "validation_shift": validation_shift,
        "validation": binary_metrics(y_val, p_val, threshold),
        "validation_by_resolution": {
            name: binary_metrics(y_val[mask], p_val[mask], threshold)
            for name, mask in (("224px_copies", ~sharp_val), ("originals", sharp_val))
            if mask.any()
        },
        "calibration": {"validation_brier": float(brier_score_loss(y_val, p_val))},
        "test": None,
    }
    if y_test is not None and len(y_test):
        out["test"] = metrics_with_intervals(y_test, p_test, threshold, bootstrap)
        out["calibration"]["test_brier"] = float(brier_score_loss(y_test, p_test))
        fpr, tpr, thresholds = roc_curve(y_test, p_test)
        keep = np.isfinite(thresholds)
        out["test_operating_points"] = {  # for the app's threshold control: what a threshold meant on test
            "threshold": [round(float(t), 5) for t in thresholds[keep]],
            "sensitivity": [round(float(t), 5) for t in tpr[keep]],
            "specificity": [round(float(1 - f), 5) for f in fpr[keep]],
        }
    return out


def git_commit() -> str:
    """The repository's commit, marked -dirty when tracked files differ from it (what metrics.json records)."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_json(path: Path, obj) -> None:
    """Atomic write: a crash mid-write never leaves a half file behind."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(path)


def set_card_section(card: Path, title: str, body: str) -> None:
    """Put `## title` with `body` into the model card, replacing that section if it is there, else
    before "## Known limits" (for what is measured after training: the band, the gallery)."""
    text = card.read_text() if card.is_file() else ""
    section = f"## {title}\n{body.strip()}\n\n"
    start = text.find(f"## {title}\n")
    if start >= 0:
        end = text.find("\n## ", start + 3)
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    elif "## Known limits" in text:
        text = text.replace("## Known limits", section + "## Known limits", 1)
    else:
        text = text + ("\n" if text and not text.endswith("\n") else "") + section
    card.write_text(text)


def _fmt(m: dict, name: str) -> str:
    ci = m.get("ci95", {}).get(name)
    return f"{m[name]:.3f}" + (f" ({ci[0]:.3f}–{ci[1]:.3f})" if ci else "")


# The targets of the operating-point issue (#24): AUC, sensitivity and specificity, with stretch
# goals for specificity and accuracy.
TARGETS = {"auc": "≥ 0.970", "accuracy": "stretch ≥ 0.920", "sensitivity": "≥ 0.950", "specificity": "≥ 0.800 (stretch ≥ 0.850)"}
ANCHORS = {
    "auc": "Kermany et al. 2018 (Inception v3, ImageNet): 0.968",
    "accuracy": "Kermany et al.: 0.928; original notebook of this architecture: ~0.91; keras.io tutorial: 0.814",
    "sensitivity": "Kermany et al.: 0.932; keras.io: 0.977 (at precision 0.781)",
    "specificity": "Kermany et al.: 0.901",
}


def train_command(cfg: dict) -> str:
    """The train.py command line that reproduces a run: every setting train.py recorded in its
    config, so a new flag shows up without a change here (the data folder is left out)."""
    parts = ["python train.py"]
    for key, value in cfg.items():
        flag = "--" + key.replace("_", "-")
        if key == "data_dir" or value is False or value is None:
            continue
        if isinstance(value, list):  # a repeatable flag
            parts.extend(f"{flag} {item}" for item in value)
        else:
            parts.append(flag if value is True else f"{flag} {value}")
    return " ".join(parts)


def _ensemble_training(metrics: dict, cfg: dict) -> str:
    members = metrics["ensemble"]["members"]
    command = train_command({**cfg, "fold": "k"})
    return (
        f"{len(members)} networks, one per fold k = 0…{len(members) - 1}, each trained on the other folds and validated on its own: "
        f"`{command} --out RUN` (runs " + ", ".join(f"`{m['run']}`" for m in members) + "). Best epochs by fold AUC: "
        + ", ".join(f"fold {m['fold']}: {m['best_epoch']} of {m['epochs_run']} (AUC {m['fold_auc']:.4f})" for m in members)
        + f"; {metrics.get('training_seconds', 0) / 3600:.1f} h of training in all on 2 CPU cores (oneDNN on). "
    )


def model_card(metrics: dict, history: dict | None) -> str:
    test, val = metrics.get("test") or {}, metrics["validation"]
    cfg = metrics.get("config", {})
    cm = test.get("confusion_matrix", {})
    members = (metrics.get("ensemble") or {}).get("members")  # the fold networks, shipped joined
    folds = members or (metrics.get("carried_threshold") or {}).get("folds")  # or only their threshold, carried over
    lines = [
        "# Model card: pneumo pneumonia detector",
        "",
        f"Weights `weights/pneumonia.keras`; repository at commit `{metrics.get('git_commit', 'unknown')}` when "
        f"{'the members were joined' if members else 'training ended'}; card written {date.today().isoformat()}.",
        "",
        "## Intended use",
        "Education and research demonstration: how a small CNN reads pediatric chest X-rays and where its evidence lies "
        "(HiResCAM heatmaps by default). **It is not a medical device**, has not been clinically validated, and must not be used to "
        "diagnose, triage or treat anyone.",
        "",
        "## Model",
        "The published CNN, unchanged: input 299×299×3 (grayscale, histogram-equalised, repeated), two Conv2D(16), five SeparableConv2D "
        "blocks (32, 64, 128, 256, 128 filters) with BatchNormalization and max-pooling, three dense blocks "
        "(512/128/64, dropout 0.7/0.5/0.3), sigmoid output. 1,321,953 parameters (2,624 non-trainable). "
        "Output: probability of PNEUMONIA. Heatmap layer: `block5_sepconv2`."
        + (f" **Shipped as {len(members)} such networks in one `.keras` file** (the fold networks of a {len(members)}-fold "
           "cross-validation): the probability is the sigmoid of the mean of their logits; the heatmap is the mean of their "
           "maps, each from its own `block5_sepconv2`." if members else ""),
        "",
        "## Data",
        "Kermany, Zhang, Goldbaum et al., *Identifying Medical Diagnoses and Treatable Diseases by Image-Based Deep "
        "Learning*, Cell 172(5), 2018, as redistributed in the Kaggle data set \"Chest X-Ray Images (Pneumonia)\"; "
        "license CC BY 4.0. Pediatric patients aged 1–5 from **one hospital** (Guangzhou Women and Children's Medical "
        "Center), anterior-posterior chest X-rays, labels NORMAL / PNEUMONIA (bacterial and viral together).",
        "",
        f"- Training: {metrics['data']['train']} images ({metrics['data']['train_pneumonia']} PNEUMONIA / "
        f"{metrics['data']['train_normal']} NORMAL); validation: "
        + (f"the out-of-fold scores of the same {metrics['data']['val']} images, each scored by the member that did not train on "
           f"it; the {cfg['folds']} folds are **grouped by patient** and stratified by class" if members else
           f"none of its own (it trained on all of them); the threshold and the validation numbers below are the out-of-fold "
           f"scores of {len(folds)} fold networks trained with the same recipe, each image scored by the one that did not train on "
           f"it; the folds are **grouped by patient** and stratified by class" if folds else
           f"{metrics['data']['val']} images, "
           + (f"fold {cfg['fold']} of a {cfg['folds']}-fold cross-validation split" if cfg.get("folds") else f"a {cfg.get('val_fraction', 0.1):.0%} split")
           + " of the training folder **grouped by patient** and stratified by class")
        + f" (split seed {split_seed_of(cfg)}; training seed {metrics.get('seed')}).",
        f"- Test: the data set's own test folder, {metrics['data']['test']} images, for reporting only: "
        "no epoch, threshold or recipe was chosen on it"
        + (
            " (but the threshold rule was adopted after earlier runs' test results had been seen, so these "
            "numbers are not an unbiased estimate: `docs/TRAINING.md`)."
            if metrics.get("threshold_rule") == THRESHOLD_RULE
            else " (but the cross-validation rule was written after earlier models' test results had been seen: "
            "`docs/TRAINING.md`)." if folds else "."
        ),
        "- Two resolutions in the data: all test images and most training images are 224 px squashed copies; "
        "the rest of the training images are originals (short side 320 px here).",
        "",
        "## Training",
        (_ensemble_training(metrics, cfg) + "Each: " if members else f"`{train_command(cfg)}` ")
        + 
        f"({'AdamW, weight decay ' + format(cfg['weight_decay'], 'g') + ' on every variable' if cfg.get('weight_decay') else 'Adam'}, "
        f"{cfg.get('warmup_epochs')} warm-up epoch then cosine decay to {cfg.get('min_lr_ratio')}×, balanced "
        "class weights, output bias log(#PNEUMONIA/#NORMAL), augmentation: "
        + (Augmentation.from_config(cfg).describe() if not cfg.get("no_augment") else "none")
        + ", "
        f"label smoothing {cfg.get('label_smoothing')}"
        + (f", validated and shipped: the exponential moving average of the weights, decay {cfg['ema']} per step" if cfg.get("ema") else "")
        + ")."
        + ("" if members else (f" The last epoch kept (no validation split): **{metrics.get('best_epoch')}** of {metrics.get('epochs_run')}; "
                               if folds else f" Best epoch by validation AUC: **{metrics.get('best_epoch')}** of {metrics.get('epochs_run')} run; ")
           + f"{metrics.get('training_seconds', 0) / 60:.0f} min on 2 CPU cores (oneDNN on).")
        + " Details and other runs: `docs/TRAINING.md`.",
        "",
        "## Decision threshold",
        f"**{metrics['threshold']:.4f}**, {metrics['threshold_rule']}."
        + (" Candidates: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics["threshold_candidates"].items())
           + f" (the lowest, {metrics['threshold_binding']}, binds). The same rule on each fold alone: "
           + ", ".join(f"{m['fold_threshold']:.4f}" for m in folds) + "."
           + ("" if members else " Carried over unchanged to this network, trained on all of those images with the same recipe, seed "
              "and epochs (so the same score scale is assumed); the spread of the folds' own thresholds is its uncertainty.")
           if folds else ""),
        "",
    ]
    if test:
        lines += [
            f"## Test results ({test['counts']['total']} images, 95 % bootstrap intervals)",
            "",
            "| metric | value (95 % CI) | target | anchors on the same test split |",
            "|---|---|---|---|",
        ]
        for name in ("auc", "accuracy", "sensitivity", "specificity"):
            lines.append(f"| {name} | {_fmt(test, name)} | {TARGETS[name]} | {ANCHORS[name]} |")
        lines += [
            f"| precision | {_fmt(test, 'precision')} | | |",
            f"| F1 | {_fmt(test, 'f1')} | | |",
            "",
            "Confusion matrix (rows: truth, columns: prediction):",
            "",
            "| | predicted NORMAL | predicted PNEUMONIA |",
            "|---|---|---|",
            f"| NORMAL ({test['counts']['normal']}) | {cm.get('tn')} | {cm.get('fp')} |",
            f"| PNEUMONIA ({test['counts']['pneumonia']}) | {cm.get('fn')} | {cm.get('tp')} |",
            "",
            f"![ROC curve on the test split]({ROC_FILE})",
            "",
            "## Calibration",
            f"Brier score: test **{metrics['calibration'].get('test_brier', float('nan')):.4f}**, validation "
            f"{metrics['calibration']['validation_brier']:.4f} (0 is perfect; always answering the class share would "
            "score about 0.23 on test). Balanced class weights push probabilities toward the minority class; "
            "read them as scores, not as calibrated risks.",
            "",
            f"![Reliability diagram on the test split]({RELIABILITY_PNG})",
            "",
        ]
    lines += [
        "## Validation" + (" (out-of-fold), by resolution and series" if folds else ", by resolution"),
        "",
        "| images | n | AUC | accuracy | sensitivity | specificity |",
        "|---|---|---|---|---|---|",
        f"| all | {val['counts']['total']} | {val['auc']:.3f} | {val['accuracy']:.3f} | {val['sensitivity']:.3f} | {val['specificity']:.3f} |",
    ]
    for name, m in metrics.get("validation_by_resolution", {}).items():
        label = "224 px copies" if name.startswith("224") else "originals"
        lines.append(f"| {label} | {m['counts']['total']} | {m['auc']:.3f} | {m['accuracy']:.3f} | {m['sensitivity']:.3f} | {m['specificity']:.3f} |")
    for name, m in metrics.get("validation_by_series", {}).items():
        kind = "sensitivity" if "sensitivity" in m else "specificity"
        value = f"{m[kind]:.3f} ({m[kind + '_ci95'][0]:.3f}–{m[kind + '_ci95'][1]:.3f})"
        lines.append(f"| series `{name}` | {m['images']} | | | " + (f"{value} | |" if kind == "sensitivity" else f"| {value} |"))
    shift = metrics.get("validation_shift")
    if shift:
        lines += [
            "",
            "## Validation under acquisition changes (`pneumo.training.shift`)",
            "",
            f"The same validation images, changed before preprocessing, at the threshold above. Runs are compared by "
            f"the mean {SHIFT_SCORE.replace('_', ' ')} over the changes (the shift score, `docs/TRAINING.md`).",
            "",
            "| change | AUC | sensitivity | specificity | balanced accuracy |",
            "|---|---|---|---|---|",
        ]
        for name, m in shift.items():
            label = "**mean**" if name == "mean" else name
            lines.append(f"| {label} | {m['auc']:.3f} | {m['sensitivity']:.3f} | {m['specificity']:.3f} | {m['balanced_accuracy']:.3f} |")
    lines += [
        "",
        "## Known limits",
        "- Children aged 1–5 from a single hospital and its scanners. **Adults, other hospitals, other scanners and "
        "other populations are not represented**; performance there is unknown and likely lower.",
        "- Two labels only: it does not tell bacterial from viral pneumonia, nor recognise other findings "
        "(effusion, tuberculosis, COVID-19, devices, fractures). An X-ray with another disease may be called either.",
    ]
    if test and test["specificity"] < val["specificity"] - 0.05:
        lines.append(
            f"- Even within this data set, the test folder differs from the training folder: at the same threshold, "
            f"specificity is {val['specificity']:.3f} on validation but {test['specificity']:.3f} on test (sensitivity "
            f"{val['sensitivity']:.3f} vs {test['sensitivity']:.3f}). Expect NORMAL X-rays from other acquisitions to be "
            "called pneumonia more often than the validation numbers suggest."
        )
    lines += [
        "- The data set's labels come from the original graders; a share of them is known to be debatable.",
        "- The heatmap (HiResCAM by default, `docs/EXPLANATIONS.md`) shows which regions of the last convolutional features "
        "raised the score; it is coarse (9×9), "
        "can highlight text markers or borders, and is not a segmentation of disease.",
        "- A guard warns when an upload does not look like a frontal chest X-ray (colour, blank, inverted or "
        "unusual layout); it is a heuristic and can be fooled.",
        "",
        "## Credit",
        "Data: Kermany et al., Cell 2018, CC BY 4.0. Architecture: the published notebook model this project "
        "reproduces. Heatmaps via tf-keras-vis.",
        "",
    ]
    return "\n".join(lines)


def write_figures(out_dir: Path, y_test: np.ndarray, p_test: np.ndarray, threshold: float) -> None:
    from pneumo.training import figures

    figures.save(figures.roc_figure(y_test, p_test, threshold), out_dir / ROC_FILE)
    figures.save(figures.reliability_figure(y_test, p_test), out_dir / RELIABILITY_PNG)


def write_report(out_dir: Path, metrics: dict, y_test: np.ndarray | None, p_test: np.ndarray | None) -> None:
    """metrics.json, the model card and its figures in out_dir."""
    history = read_json(out_dir / HISTORY_FILE)
    write_json(out_dir / METRICS_FILE, metrics)
    if y_test is not None and len(y_test):
        write_figures(out_dir, y_test, p_test, metrics["threshold"])
    (out_dir / CARD_FILE).write_text(model_card(metrics, history))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo.training.report", description="Rebuild metrics.json's evaluation and the model card for saved weights.")
    parser.add_argument("--weights", default=str(DEFAULT_MODEL))
    parser.add_argument("--data-dir", default=None, help="default: the data set named in metrics.json's config")
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR))
    parser.add_argument("--choose-threshold", action="store_true",
                        help="choose the threshold again on validation by the current rule instead of keeping metrics.json's")
    args = parser.parse_args(argv)
    shipped = read_bundle(args.weights)
    if shipped.config is None:
        print(f"error: no {METRICS_FILE} with the run's config beside {args.weights}", file=sys.stderr)
        return 2
    metrics, cfg = dict(shipped.metrics), shipped.config
    data_dir = args.data_dir or cfg["data_dir"]

    from pneumo.reading.networks import load_model, predict_gray
    from pneumo.training.shift import shift_predictions, shift_scores

    _, val = run_split(data_dir, cfg)
    test = optional_test_split(data_dir)
    x_val, size_val = load_images(val, args.cache_dir or None)
    model = load_model(shipped.model_file)
    rechoose = args.choose_threshold
    y_val = labels_of(val)
    probs_val = shift_predictions(model, x_val)
    shift, threshold = shift_scores(probs_val, y_val, None if rechoose else shipped.threshold)
    rule = THRESHOLD_RULE if rechoose else metrics["threshold_rule"]
    p_val = probs_val["identity"]
    y_test = p_test = None
    if test:
        x_test, _ = load_images(test, args.cache_dir or None)
        y_test, p_test = labels_of(test), predict_gray(model, x_test)
    metrics.update(evaluation(y_val, p_val, is_sharp(size_val), y_test, p_test, threshold, rule, validation_shift=shift))
    metrics["config"] = cfg
    write_report(shipped.folder, metrics, y_test, p_test)
    print(f"wrote {shipped.file(METRICS_FILE)}, {shipped.file(CARD_FILE)}, {ROC_FILE}, {RELIABILITY_PNG}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
