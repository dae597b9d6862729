"""The Analyze section: upload or pick an example, then one result per file (a summary table for
several) and the detail view of one: label, probability, what the threshold means, the X-ray beside
its heatmap. The uploader and the examples are drawn at once; only the analysis waits for the model."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from pneumo.bundle import CLASS_NAMES, DEFAULT_MODEL, REPO_ROOT, Bundle
from pneumo.heatmaps import WHAT_IT_MEASURES, where
from pneumo.overlay import overlay, to_png_bytes
from pneumo.ui import resources
from pneumo.ui.session import Analysis, Failure, analyse, map_for
from pneumo.ui.sidebar import Settings


def operating_point_text(bundle: Bundle, threshold: float) -> str:
    test, shipped = bundle.test, bundle.metrics.get("threshold")
    if shipped is None or not test:
        return "No test metrics are shipped with these weights."
    if abs(threshold - shipped) < 1e-9:
        return (
            f"At the shipped threshold **{shipped:.3f}** (chosen on the validation split), the model found "
            f"**{test['sensitivity']:.1%}** of pneumonia cases (sensitivity) and cleared **{test['specificity']:.1%}** "
            f"of normal X-rays (specificity) on the {test['counts']['total']}-image test split."
        )
    roc = bundle.metrics.get("test_operating_points")
    if roc:
        i = min(range(len(roc["threshold"])), key=lambda k: abs(roc["threshold"][k] - threshold))
        return (
            f"Custom threshold **{threshold:.3f}** (shipped: {shipped:.3f}). Near this threshold the test split gave "
            f"sensitivity ≈ **{roc['sensitivity'][i]:.1%}** and specificity ≈ **{roc['specificity'][i]:.1%}**."
        )
    return f"Custom threshold **{threshold:.3f}** (shipped: {shipped:.3f}): lower finds more pneumonia and more false alarms."


def _what_the_reading_is_worth(kind: str, prepared, bundle: Bundle) -> str:
    if kind in ("not_xray", "inverted"):
        return "The model only knows frontal chest X-rays, so its reading of this picture means nothing."
    if kind == "lateral":
        return "The model only knows frontal views; a lateral film's reading means nothing."
    share = bundle.adult_normal_called_pneumonia
    worth = (f" On adult NORMAL X-rays from other hospitals it calls **{share:.0%}** PNEUMONIA at the shipped threshold "
             "(`python -m pneumo.training.population`)." if share is not None else "")
    return f"Seen: {prepared.population.seen}. The model's reading outside its training population is unreliable." + worth


def _inputs() -> list[tuple[str, bytes]]:
    """The uploaded files, or else the example picked last."""
    uploads = st.file_uploader(
        "Drop chest X-rays here (DICOM, JPEG, PNG, TIFF, BMP or WebP; several at once)",
        accept_multiple_files=True,
        help="Files are read by their content, processed in memory and never stored.",
    )
    examples = resources.example_files()
    st.caption("…or try an example X-ray (Kermany et al. 2018, CC BY 4.0; not used in training):")
    for column, (title, path) in zip(st.columns(len(examples) or 1), examples.items()):
        if column.button(title, key=f"example-{title}", width="stretch"):
            st.session_state["example"] = title
    inputs = [(f.name, f.getvalue()) for f in uploads or []]
    example = st.session_state.get("example")
    if not inputs and example in examples:
        inputs = [(examples[example].name, examples[example].read_bytes())]
    return inputs


def _summary(analyses: list[Analysis], threshold: float) -> Analysis:
    """For several files: a table sorted by probability, and a choice of the one to show in detail."""
    analyses = sorted(analyses, key=lambda a: -a.probability)
    st.dataframe(
        [
            {
                "file": a.name,
                "probability of pneumonia": round(a.probability, 4),
                "label": a.label(threshold) if a.warning is None else "(withheld)",
                "warning": a.warning[0] if a.warning else "",
            }
            for a in analyses
        ],
        hide_index=True,
        column_config={"probability of pneumonia": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent")},
    )
    index = st.selectbox("Details for", range(len(analyses)), format_func=lambda i: f"{analyses[i].name} ({analyses[i].probability:.1%})")
    return analyses[index]


def _detail(analysis: Analysis, engine, settings: Settings) -> None:
    prepared = analysis.prepared
    left, right = st.columns([1, 2])
    with left:
        st.markdown(f"#### {analysis.name}")
        show_reading = analysis.warning is None
        if not show_reading:
            kind, text = analysis.warning
            st.warning(text, icon=":material/warning:")
            st.markdown(_what_the_reading_is_worth(kind, prepared, engine.bundle))
            show_reading = st.toggle("Show the model's output anyway", key=f"anyway-{prepared.digest}")
        if show_reading:
            label = analysis.label(settings.threshold)
            color = "red" if label == "PNEUMONIA" else "green"
            st.markdown(f"## :{color}[{label}]", help="The label follows the threshold in the sidebar.")
            st.metric("Probability of pneumonia", f"{analysis.probability:.1%}")
            st.progress(min(max(analysis.probability, 0.0), 1.0))
            st.markdown(operating_point_text(engine.bundle, settings.threshold))
        st.caption(f"{prepared.format}, original size {prepared.size[0]}×{prepared.size[1]} px.")
        if prepared.metadata:
            st.dataframe([{"field": k, "value": v} for k, v in prepared.metadata.items()], hide_index=True)
        if prepared.identifiers and st.toggle(
            "Show patient identifiers", key=f"ids-{prepared.digest}", help="Name, ID and birth date from the DICOM header. Hidden by default; never stored or logged."
        ):
            st.dataframe([{"field": k, "value": v} for k, v in prepared.identifiers.items()], hide_index=True)
    if not show_reading:
        with right:
            st.image(prepared.picture, caption="Uploaded picture", width="stretch")
        return
    with st.spinner("Computing the heatmap…"):
        explained, heat = map_for(analysis, engine, settings)
    with right:
        a, b = st.columns(2)
        a.image(prepared.picture, caption="Original", width="stretch")
        title = f"{settings.method_name} for {CLASS_NAMES[explained]}"
        if heat.empty:  # a blank overlay would read as "nothing there": say what the map found
            b.info(f"**{title}**: no region raised the score for {CLASS_NAMES[explained]}; the map is empty, so there is no overlay.",
                   icon=":material/visibility_off:")
            st.caption(f"{settings.method_name} measures {WHAT_IT_MEASURES[settings.method]}")
            return
        blended = overlay(prepared.picture, heat.heatmap, settings.opacity)
        b.image(blended, caption=title, width="stretch")
        st.image(resources.legend_png(), width="stretch")
        st.markdown(where(heat.heatmap))
        st.caption(f"{settings.method_name} measures {WHAT_IT_MEASURES[settings.method]} Coarse (9×9 features), not a segmentation of disease.")
        st.download_button(
            "Download overlay (PNG)",
            data=to_png_bytes(blended),
            file_name=f"{Path(analysis.name).stem}_{settings.method.replace('+', 'pp')}.png",
            mime="image/png",
            icon=":material/download:",
        )


def analyze_section(settings: Settings) -> None:
    if not DEFAULT_MODEL.is_file():
        st.error(f"No model at {DEFAULT_MODEL.relative_to(REPO_ROOT) if DEFAULT_MODEL.is_relative_to(REPO_ROOT) else DEFAULT_MODEL}: train one with `python train.py`.")
        return
    inputs = _inputs()
    if not inputs:
        st.info("Upload an X-ray or pick an example to see the model's reading and a heatmap of its evidence.")
        return
    try:
        engine = resources.get_engine()
    except Exception as error:  # noqa: BLE001 - a broken weights file is a message, not a traceback
        st.error(f"The model could not be loaded from {DEFAULT_MODEL}: {error}", icon=":material/error:")
        return
    with st.spinner("Reading the X-ray and computing the heatmap…"):
        outcomes = [analyse(data, name, engine, settings, resources.get_guard()) for name, data in inputs]
    for failure in (o for o in outcomes if isinstance(o, Failure)):
        st.error(failure.message, icon=":material/error:")
    analyses = [o for o in outcomes if isinstance(o, Analysis)]
    if not analyses:
        return
    chosen = _summary(analyses, settings.threshold) if len(analyses) > 1 else analyses[0]
    _detail(chosen, engine, settings)
