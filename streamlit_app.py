"""pneumo: drop a chest X-ray, see whether the model reads it as PNEUMONIA or NORMAL, how sure it
is, and a Grad-CAM heatmap of where it looked. Run with `streamlit run streamlit_app.py`.

Research and education demo, not a medical device.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import streamlit as st

from pneumo import paths
from pneumo.analysis import PreparedImage, digest_of, prepare
from pneumo.imageio import ImageReadError
from pneumo.overlay import colorbar_png, overlay, to_png_bytes

EXAMPLES_DIR = paths.REPO_ROOT / "examples"
LABELS = ("NORMAL", "PNEUMONIA")
METHODS = {"Grad-CAM": "gradcam", "Grad-CAM++": "gradcam++"}
TARGETS = {"the predicted class": "predicted", "PNEUMONIA": "pneumonia", "NORMAL": "normal"}
MAX_CACHED_FILES = 32  # per browser session; oldest results are dropped first

st.set_page_config(page_title="pneumo · pneumonia on chest X-rays", page_icon="🫁", layout="wide")


# ---- heavy things, once per process ---------------------------------------------------------------
@st.cache_resource(show_spinner="Loading the model (once per server start)…")
def get_engine():
    from pneumo.engine import load_engine  # imports TensorFlow: only here, behind the cache

    return load_engine(paths.DEFAULT_MODEL)


@st.cache_resource(show_spinner=False)
def start_loading_engine() -> threading.Thread:
    """Once per process: import TensorFlow and warm the model up on a background thread while the
    first page renders, so a first upload waits for little or nothing (get_engine's cache lock
    makes the page wait for this load instead of starting a second one)."""
    thread = threading.Thread(target=get_engine, name="pneumo-engine-loader", daemon=True)
    thread.start()
    return thread


@st.cache_resource(show_spinner=False)
def get_guard():
    from pneumo.guard import load_guard

    return load_guard()


@st.cache_data(show_spinner=False)
def legend_png() -> bytes:
    return colorbar_png()


@st.cache_data(show_spinner=False)
def example_files() -> dict[str, Path]:
    examples = {}
    for folder in ("NORMAL", "PNEUMONIA"):
        files = sorted(p for p in (EXAMPLES_DIR / folder).glob("*") if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
        examples |= {f"{folder.title()} {i}": p for i, p in enumerate(files, start=1)}
    return examples


def shipped_json(name: str) -> dict | None:
    path = paths.WEIGHTS_DIR / name
    return json.loads(path.read_text()) if path.is_file() else None


@st.cache_data(show_spinner=False)
def figure_png(kind: str, data_json: str) -> bytes:
    """A matplotlib figure rendered once per content (tabs are drawn on every rerun)."""
    import io

    from pneumo import plots

    data = json.loads(data_json)
    fig = plots.training_curves(data) if kind == "curves" else plots.confusion_matrix_figure(data)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plots.plt.close(fig)
    return buffer.getvalue()


# ---- per-session state: results keyed by the content hash of each file --------------------------
def results_store() -> dict:
    return st.session_state.setdefault("results", {})


def analyse(data: bytes, name: str, engine, target: str, threshold: float, method: str) -> dict:
    """The probability (once per file) and the heatmap (once per file, class and method).

    Readable files are kept per session under the hash of their bytes; a file that cannot be read
    is only checked again (cheap: it fails on its header) and reported under its current name.
    """
    store = results_store()
    key = digest_of(data)
    entry = store.get(key)
    if entry is None:
        try:
            prepared = prepare(data, name, get_guard())
            result = engine.analyze(prepared.gray299, target=target, threshold=threshold, method=method)
        except ImageReadError as error:
            return {"name": name, "error": str(error)}
        except Exception as error:  # noqa: BLE001 - whatever a file does, the page keeps working
            return {"name": name, "error": f"{name}: could not be processed ({type(error).__name__})."}
        entry = {"prepared": prepared, "probability": result.probability, "heatmaps": {(result.explained_class, method): result.heatmap}}
        store[key] = entry
        while len(store) > MAX_CACHED_FILES:
            store.pop(next(iter(store)))
    return {**entry, "name": name}  # the same content may come back under another name


def heatmap_for(entry: dict, engine, target: str, threshold: float, method: str):
    """(explained class, heatmap) for the current settings; computed only when not cached yet."""
    wanted = int(entry["probability"] >= threshold) if target == "predicted" else int(target == "pneumonia")
    if (wanted, method) not in entry["heatmaps"]:
        result = engine.analyze(entry["prepared"].gray299, target=LABELS[wanted].lower(), method=method)
        entry["heatmaps"][(wanted, method)] = result.heatmap
    return wanted, entry["heatmaps"][(wanted, method)]


# ---- page ------------------------------------------------------------------------------------------
def operating_point_text(metrics: dict, threshold: float) -> str:
    test = metrics.get("test") or {}
    shipped = metrics.get("threshold")
    if shipped is None or not test:
        return "No test metrics are shipped with these weights."
    if abs(threshold - shipped) < 1e-9:
        return (
            f"At the shipped threshold **{shipped:.3f}** (chosen on the validation split), the model found "
            f"**{test['sensitivity']:.1%}** of pneumonia cases (sensitivity) and cleared **{test['specificity']:.1%}** "
            f"of normal X-rays (specificity) on the {test['counts']['total']}-image test split."
        )
    roc = metrics.get("test_operating_points")
    if roc:
        i = min(range(len(roc["threshold"])), key=lambda k: abs(roc["threshold"][k] - threshold))
        return (
            f"Custom threshold **{threshold:.3f}** (shipped: {shipped:.3f}). Near this threshold the test split gave "
            f"sensitivity ≈ **{roc['sensitivity'][i]:.1%}** and specificity ≈ **{roc['specificity'][i]:.1%}**."
        )
    return f"Custom threshold **{threshold:.3f}** (shipped: {shipped:.3f}): lower finds more pneumonia and more false alarms."


def show_detail(entry: dict, engine, threshold: float, target: str, method: str, opacity: float) -> None:
    prepared: PreparedImage = entry["prepared"]
    probability = entry["probability"]
    left, right = st.columns([1, 2])
    with left:
        st.markdown(f"#### {entry['name']}")
        show_reading = prepared.looks_like_xray
        if not show_reading:
            st.warning(prepared.verdict.reason, icon=":material/warning:")
            st.markdown("The model only knows frontal chest X-rays, so its reading of this picture means nothing.")
            show_reading = st.toggle("Show the model's output anyway", key=f"anyway-{prepared.digest}")
        if show_reading:
            label = LABELS[int(probability >= threshold)]
            color = "red" if label == "PNEUMONIA" else "green"
            st.markdown(f"## :{color}[{label}]", help="The label follows the threshold in the sidebar.")
            st.metric("Probability of pneumonia", f"{probability:.1%}")
            st.progress(min(max(probability, 0.0), 1.0))
            st.markdown(operating_point_text(engine.metrics, threshold))
        st.caption(f"{prepared.format}, original size {prepared.size[0]}×{prepared.size[1]} px.")
        if prepared.metadata:
            st.dataframe([{"field": k, "value": v} for k, v in prepared.metadata.items()], hide_index=True)
        if prepared.identifiers and st.toggle("Show patient identifiers", key=f"ids-{prepared.digest}", help="Name, ID and birth date from the DICOM header. Hidden by default; never stored or logged."):
            st.dataframe([{"field": k, "value": v} for k, v in prepared.identifiers.items()], hide_index=True)
    if not show_reading:
        with right:
            st.image(prepared.picture, caption="Uploaded picture", width="stretch")
        return
    with st.spinner("Computing the heatmap…"):
        explained, heatmap = heatmap_for(entry, engine, target, threshold, method)
    blended = overlay(prepared.picture, heatmap, opacity)
    with right:
        a, b = st.columns(2)
        a.image(prepared.picture, caption="Original", width="stretch")
        method_name = next(k for k, v in METHODS.items() if v == method)
        b.image(blended, caption=f"{method_name} for {LABELS[explained]}", width="stretch")
        st.image(legend_png(), width="stretch")
        st.download_button(
            "Download overlay (PNG)",
            data=to_png_bytes(blended),
            file_name=f"{Path(entry['name']).stem}_{method.replace('+', 'pp')}.png",
            mime="image/png",
            icon=":material/download:",
        )


def analyze_tab(engine, threshold: float, target: str, method: str, opacity: float) -> None:
    uploads = st.file_uploader(
        "Drop chest X-rays here (DICOM, JPEG, PNG, TIFF, BMP or WebP; several at once)",
        accept_multiple_files=True,
        help="Files are read by their content, processed in memory and never stored.",
    )
    examples = example_files()
    st.caption("…or try an example X-ray (Kermany et al. 2018, CC BY 4.0; not used in training):")
    columns = st.columns(len(examples) or 1)
    for column, (title, path) in zip(columns, examples.items()):
        if column.button(title, key=f"example-{title}", width="stretch"):
            st.session_state["example"] = title

    inputs: list[tuple[str, bytes]] = [(f.name, f.getvalue()) for f in uploads or []]
    example = st.session_state.get("example")
    if not inputs and example in examples:
        inputs = [(examples[example].name, examples[example].read_bytes())]
    if not inputs:
        st.info("Upload an X-ray or pick an example to see the model's reading and its Grad-CAM heatmap.")
        return

    with st.spinner("Reading the X-ray and computing the heatmap…"):
        entries = [analyse(data, name, engine, target, threshold, method) for name, data in inputs]
    for entry in entries:
        if "error" in entry:
            st.error(entry["error"], icon=":material/error:")
    good = [e for e in entries if "error" not in e]
    if not good:
        return
    if len(good) > 1:
        good = sorted(good, key=lambda e: -e["probability"])
        st.dataframe(
            [
                {
                    "file": e["name"],
                    "probability of pneumonia": round(e["probability"], 4),
                    "label": LABELS[int(e["probability"] >= threshold)] if e["prepared"].looks_like_xray else "not a chest X-ray?",
                }
                for e in good
            ],
            hide_index=True,
            column_config={"probability of pneumonia": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent")},
        )
        index = st.selectbox("Details for", range(len(good)), format_func=lambda i: f"{good[i]['name']} ({good[i]['probability']:.1%})")
        entry = good[index]
    else:
        entry = good[0]
    show_detail(entry, engine, threshold, target, method, opacity)


def curves_tab() -> None:
    history = shipped_json(paths.HISTORY_FILE)
    if not history:
        st.info("No weights/history.json yet: train with `python train.py`.")
        return
    best = history.get("best_epoch")
    st.markdown(f"Training history of the shipped model: {len(history['epochs'])} epochs, best epoch **{best}** by validation AUC (red line).")
    st.image(figure_png("curves", json.dumps(history)), width="stretch")


def model_tab(metrics: dict) -> None:
    test = metrics.get("test")
    if not test:
        st.info("No test metrics shipped with these weights.")
        return
    ci = test.get("ci95", {})
    st.markdown(
        f"Test split: {test['counts']['total']} X-rays ({test['counts']['normal']} NORMAL / {test['counts']['pneumonia']} PNEUMONIA), "
        f"evaluated once at the threshold **{metrics['threshold']:.3f}** chosen on the validation split."
    )
    rows = [
        {"metric": name, "value": round(test[name], 4), "95% CI": f"{ci[name][0]:.3f} – {ci[name][1]:.3f}" if name in ci else ""}
        for name in ("auc", "accuracy", "sensitivity", "specificity", "precision", "f1")
    ]
    left, middle, right = st.columns([1.2, 1, 1])
    left.dataframe(rows, hide_index=True)
    middle.image(figure_png("confusion", json.dumps(test["confusion_matrix"])), width="stretch")
    roc_png = paths.WEIGHTS_DIR / "roc.png"
    if roc_png.is_file():
        right.image(str(roc_png), width="stretch")
    card = paths.WEIGHTS_DIR / "MODEL_CARD.md"
    if card.is_file():
        with st.expander("Model card"):
            st.markdown(card.read_text())


def main() -> None:
    st.title("pneumo: pneumonia on chest X-rays")
    st.warning(
        "**Research and education demo, not a medical device.** Trained on pediatric chest X-rays (ages 1–5) "
        "from a single hospital in Guangzhou; it has not been validated on adults, other hospitals or other scanners. "
        "Do not use it to make clinical decisions.",
        icon=":material/info:",
    )
    if paths.DEFAULT_MODEL.is_file():
        start_loading_engine()
    metrics = shipped_json(paths.METRICS_FILE) or {}
    shipped_threshold = float(metrics.get("threshold", 0.5))
    with st.sidebar:
        st.header("Settings")
        threshold = st.slider(
            "Decision threshold",
            0.0,
            1.0,
            value=shipped_threshold,
            step=0.001,
            format="%.3f",
            help="PNEUMONIA when the probability is at least this. The default is the shipped operating point.",
        )
        target_name = st.radio("Heatmap explains", list(TARGETS), help="Grad-CAM score: BinaryScore(1.0) for PNEUMONIA, BinaryScore(0.0) for NORMAL.")
        method = METHODS[st.radio("Method", list(METHODS), horizontal=True)]
        opacity = st.slider("Heatmap opacity", 0.0, 1.0, 0.4, 0.05)
        st.caption("Data: Kermany et al., Cell 2018 (CC BY 4.0).")

    analyze, curves, model = st.tabs(["Analyze", "Training curves", "Model"])
    with analyze:
        if not paths.DEFAULT_MODEL.is_file():
            st.error(f"No model at {paths.DEFAULT_MODEL.relative_to(paths.REPO_ROOT)}: train one with `python train.py`.")
        else:
            analyze_tab(get_engine(), threshold, TARGETS[target_name], method, opacity)
    with curves:
        curves_tab()
    with model:
        model_tab(metrics)


main()
