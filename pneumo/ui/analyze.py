"""The Analyze section: upload or pick an example, then one result per file (a summary table for
several, with its CSV and one PDF of every study) and the detail view of one: the reading (a label,
or INDETERMINATE inside the band), the probability, what the threshold means (sensitivity,
specificity, PPV, NPV), the X-ray beside its heatmap under the viewer's window/level and zoom, and
its PDF report. The uploader and the examples are drawn at once; only the result waits for the model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import streamlit as st

from pneumo.bundle import CLASS_NAMES, DEFAULT_MODEL, REPO_ROOT, Bundle
from pneumo.outputs.words import WARNING_WORDS, WHAT_IT_MEASURES, map_sentences
from pneumo.operating import Band, calibration_at, operating_point, ppv_npv, reading
from pneumo.outputs.picture import draw_outline, overlay, to_png_bytes
from pneumo.outputs.report import Study, trained_at, chance_at, report_pdf, results_csv
from pneumo.reading import Result, digest_of
from pneumo.ui import resources
from pneumo.ui import your_site as site_ui
from pneumo.ui.session import completer, map_for, read_one, read_table
from pneumo.ui.sidebar import Settings
from pneumo.ui.viewer import View, default_view, source_of, view_controls


def operating_point_text(bundle: Bundle, threshold: float) -> str:
    """One sentence on what the threshold finds and clears, and where that was measured."""
    point = operating_point(bundle, threshold)
    if point is None:
        return "No test metrics are shipped with these weights."
    shipped = bundle.threshold
    if point.exact:
        return (f"At the shipped threshold **{shipped:.3f}** (chosen on validation data), the model found **{point.sensitivity:.1%}** of "
                f"pneumonia cases (sensitivity) and cleared **{point.specificity:.1%}** of normal X-rays (specificity) on {point.source}.")
    return (f"Custom threshold **{threshold:.3f}** (shipped: {shipped:.3f}). Near this threshold the test split gave "
            f"sensitivity ≈ **{point.sensitivity:.1%}** and specificity ≈ **{point.specificity:.1%}**.")


def _adult_worth(bundle: Bundle) -> str:
    share = bundle.adult_normal_called_pneumonia
    return (f" On adult NORMAL X-rays from other hospitals it calls **{share:.0%}** PNEUMONIA at the shipped threshold."
            if share is not None else "")


def _what_the_reading_is_worth(kind: str, result, bundle: Bundle) -> str:
    if kind == "not_xray" and result.verdict.check == "layout":
        # The layout check: it also fires on adult chest X-rays (README), so say what the reading is worth there too.
        return ("The model only knows frontal chest X-rays of young children, so its reading of this picture means nothing "
                "if it is not one." + _adult_worth(bundle))
    if kind in ("not_xray", "inverted"):
        return "The model only knows frontal chest X-rays, so its reading of this picture means nothing."
    if kind == "lateral":
        return "The model only knows frontal views; a lateral film's reading means nothing."
    if result.population.source == "image":  # the warning already says what was seen and that the reading is unreliable
        return _adult_worth(bundle).strip()
    return f"Seen: {result.population.seen}. The model's reading outside its training population is unreliable." + _adult_worth(bundle)


NEXT_STEP = {
    "not_xray": "If it is a frontal chest X-ray, upload the original image (DICOM, or an export without cropping or colour).",
    "inverted": "If the film is shown the right way on your viewer, export it again as it is shown there.",
    "lateral": "Upload the frontal (PA or AP) view of the same study.",
    "population": "Read it yourself or with a tool validated for this patient group.",
}


def _report_warning(result: Result, bundle: Bundle) -> tuple[str, str] | None:
    """The warning as the PDF gives it: what was seen, and for a population warning what the reading is worth there."""
    if result.warnings is None or result.warnings[0] != "population":
        return result.warnings
    kind, text = result.warnings
    return kind, (text + _adult_worth(bundle)).replace("**", "").replace("`", "")


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
    inputs, seen = [], set()
    for upload in uploads or []:  # the same bytes dropped twice are one X-ray: one row
        data = upload.getvalue()
        if digest_of(data) not in seen:
            seen.add(digest_of(data))
            inputs.append((upload.name, data))
    if uploads and len(inputs) < len(uploads):
        st.caption(f"{len(uploads) - len(inputs)} file(s) dropped more than once are shown once.")
    example = st.session_state.get("example")
    if not inputs and example in examples:
        inputs = [(examples[example].name, examples[example].read_bytes())]
    return inputs


def _reading_cell(result: Result, threshold: float, band: Band | None) -> str:
    if result.withheld:
        return "no reading: " + WARNING_WORDS.get(result.warning_kind, result.warning_kind)
    shown = reading(result.probability, threshold, band)
    return f"{shown.label} (leaning {shown.leaning})" if shown.indeterminate else shown.label


def _study(result: Result, reader, settings: Settings, band: Band | None, view: View, with_identifiers: bool,
           outlined: bool = False) -> Study:
    """The report's view of one result: its map for the current settings (cached), its picture as
    viewed (with the lung outline when the viewer shows it)."""
    explained, heat = map_for(result, reader, settings)
    picture = view.show(source_of(result))
    withheld = result.withheld
    outlined = outlined and result.lungs is not None
    blended = None if heat.empty or withheld else overlay(picture, heat.heatmap, settings.opacity)
    if outlined:
        picture, blended = draw_outline(picture, result.lungs), blended and draw_outline(blended, result.lungs)
    words = [] if withheld or heat.empty else _map_words(result, heat)  # once: its mark check filters the whole film
    return Study(
        result=result, picture=picture, threshold=settings.threshold, reading=result.outcome(settings.threshold, band),
        overlay=blended,
        method=settings.method_name, method_measures=WHAT_IT_MEASURES[settings.method], explained=CLASS_NAMES[explained],
        where=f"no region raised the score for {CLASS_NAMES[explained]}; the map is empty." if heat.empty
        else ("withheld with the reading." if withheld else words[0]),
        lungs=" ".join(words[1:]),
        warning=_report_warning(result, reader.bundle), identifiers=result.identifiers if with_identifiers else {},
    )


def _warning_cell(result: Result) -> str:
    """The warning for a table cell, in words, with what decided a population warning."""
    if result.warning_kind is None:
        return ""
    source = {"dicom": " (the DICOM header)", "image": " (the image)"}.get(result.population_source or "", "")
    return WARNING_WORDS.get(result.warning_kind, result.warning_kind) + source


def _map_words(result: Result, heat) -> list[str]:
    """Where the map's weight lies, against the lungs, and whether its hottest part is on a mark burned into the film."""
    return map_sentences(heat.heatmap, result.lungs, result.gray299)


def _identifiers_on(result) -> bool:
    return bool(st.session_state.get(f"ids-{result.digest}", False))


def _report_maker(results: list[Result], reader, settings: Settings, band: Band | None, views: list[View] | None = None,
                  complete=None):
    """The PDF, built only when its button is clicked (Streamlit calls this then, outside the page's
    run, so the identifier and outline switches are read now). Without `views`, each X-ray in its
    default window: the batch PDF does not follow the one detail view's controls. `complete`
    (pneumo.ui.session.completer) gives a table row its pictures, one row at a time, when the PDF is made."""
    switches = [(_identifiers_on(a), bool(st.session_state.get(f"lungs-{a.digest}", False))) for a in results]
    point = operating_point(reader.bundle, settings.threshold)

    def make() -> bytes:
        studies = []
        for k, (result, (ids, outlined)) in enumerate(zip(results, switches)):
            full = complete(result, keep=False) if complete is not None else result
            studies.append(_study(full, reader, settings, band, views[k] if views else default_view(full), ids, outlined))
        return report_pdf(studies, reader.bundle, point, settings.prevalence, band)

    return make


def _summary(results: list[Result], reader, settings: Settings, band: Band | None, complete) -> Result:
    """For several files: a table sorted by probability, its CSV and one PDF of every study, and a
    choice of the one to show in detail, with its pictures (`complete`: pneumo.ui.session.completer)."""
    threshold = settings.threshold
    results = sorted(results, key=lambda a: (a.withheld, -a.probability))  # flagged pictures last: they have no reading
    table = st.dataframe(
        [
            {
                "file": a.name,
                "reading": _reading_cell(a, threshold, band),
                "network's probability": None if a.withheld else round(a.probability, 4),
                "warning": _warning_cell(a),
            }
            for a in results
        ],
        hide_index=True, on_select="rerun", selection_mode="single-row", key="table",
        column_config={"file": st.column_config.TextColumn(width="medium"), "reading": st.column_config.TextColumn(width="large"),
                       "network's probability": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent",
                                                                               help="At the training folder's mix; none for a flagged picture"),
                       "warning": st.column_config.TextColumn(width="large")},
    )
    csv_column, pdf_column, _ = st.columns([1, 1, 2])
    csv_column.download_button("Download results (CSV)", data=results_csv(results, threshold, band), file_name="pneumo-results.csv", mime="text/csv",
                               icon=":material/table:", on_click="ignore", key="download-csv")
    pdf_column.download_button(f"Download all {len(results)} reports (PDF)", data=_report_maker(results, reader, settings, band, complete=complete),
                               file_name="pneumo-reports.pdf", mime="application/pdf", icon=":material/picture_as_pdf:",
                               on_click="ignore", key="download-all-pdf")
    chosen = table.selection.rows
    st.caption("Click a row to open it below." if not chosen else f"Showing row {chosen[0] + 1} of {len(results)}; click another to open it.")
    return complete(results[chosen[0] if chosen else 0])


def _reading(result: Result, reader, settings: Settings, band: Band | None) -> None:
    """The label (or INDETERMINATE), this X-ray's chance of pneumonia at the prevalence a person set,
    and what the threshold means over many X-rays."""
    shown = reading(result.probability, settings.threshold, band)
    if shown.indeterminate:
        st.markdown("## :orange[INDETERMINATE]", help="Inside the indeterminate band around the threshold (below).")
        st.markdown(f"Leaning **{shown.leaning}** at this threshold, but the probability lies in the indeterminate band: {band.describe()}.")
    else:
        color = "red" if shown.label == "PNEUMONIA" else "green"
        st.markdown(f"## :{color}[{shown.label}]", help="The label follows the threshold in the sidebar.")
    moved = chance_at(result.probability, settings.prevalence, reader.bundle)
    calibration = calibration_at((reader.bundle.uncertainty or {}).get("calibration"), settings.prevalence)
    if moved is not None:
        st.metric(f"Chance of pneumonia at {settings.prevalence:.0%} prevalence", f"{moved:.1%}",
                  help="This X-ray's evidence with the prevalence set in the sidebar as the prior (Bayes' rule).")
        st.progress(min(max(moved, 0.0), 1.0))
        st.caption(f"The network says {result.probability:.1%} at the mix it was trained on ({trained_at(reader.bundle):.0%} pneumonia); "
                   f"moved to your prevalence. At the training hospital this was off by {calibration['ece']:.1%} on average "
                   f"(validation folds, at {calibration['prevalence']:.0%}); at other hospitals it can be far off: the test "
                   "folder's normal children score much higher.")
    else:
        st.metric("The network's probability of pneumonia", f"{result.probability:.1%}",
                  help="At the class mix of the data it was trained on; no calibration is shipped with these weights.")
        st.progress(min(max(result.probability, 0.0), 1.0))
    if reader.site is not None:
        changed = "its statistics and its threshold" if reader.site.statistics else "its threshold"
        st.caption(f"Read with the {reader.site.describe()}: {changed}, from that site's films (“Your site”).")
    st.markdown("##### What the threshold means, over many X-rays")
    st.markdown(operating_point_text(reader.bundle, settings.threshold))
    point = operating_point(reader.bundle, settings.threshold)
    if point is not None:
        ppv, npv = ppv_npv(point.sensitivity, point.specificity, settings.prevalence)
        columns = [*st.columns(2), *st.columns(2)]  # two by two: four in a row are cut to "9…" in the narrow column
        for column, (name, value, what) in zip(columns, (
            ("Sensitivity", point.sensitivity, "Share of pneumonias the threshold calls PNEUMONIA (test split)."),
            ("Specificity", point.specificity, "Share of normal X-rays the threshold calls NORMAL (test split)."),
            ("PPV", ppv, "Of all X-rays this threshold calls PNEUMONIA, the share with pneumonia, at the sidebar's prevalence."),
            ("NPV", npv, "Of all X-rays this threshold calls NORMAL, the share without pneumonia, at the sidebar's prevalence."),
        )):
            column.metric(name, f"{value:.1%}", help=what)
        st.caption(f"PPV and NPV describe the threshold over all X-rays at a prevalence of {settings.prevalence:.1%}, not this X-ray: "
                   f"of all those it reads PNEUMONIA, {ppv:.0%} would have pneumonia.")
    if band is None:
        st.caption("No indeterminate band at this threshold (no validation data shipped, or validation errors are rare even next to it).")
    elif not shown.indeterminate:
        st.caption(f"Indeterminate band: {band.describe()}.")


def _detail(result: Result, reader, settings: Settings, band: Band | None) -> None:
    left, right = st.columns([1, 2])
    with left:
        st.markdown(f"#### {result.name}")
        show_reading = result.warnings is None
        if not show_reading:
            kind, text = result.warnings
            st.warning(text, icon=":material/warning:")
            st.markdown(_what_the_reading_is_worth(kind, result, reader.bundle) + " " + NEXT_STEP.get(kind, ""))
            show_reading = st.toggle("Show the model's output anyway", key=f"anyway-{result.digest}",
                                     help="Your choice: the reports and DICOM results made while this is on say it was shown at your request.")
            result = dataclasses.replace(result, shown_anyway=show_reading)
        if show_reading:
            _reading(result, reader, settings, band)
        st.caption(f"{result.format}, original size {result.size[0]}×{result.size[1]} px.")
        if result.metadata:
            st.dataframe([{"field": k, "value": v} for k, v in result.metadata.items()], hide_index=True)
        if result.identifiers and st.toggle(
            "Show patient identifiers", key=f"ids-{result.digest}",
            help="Name, ID and birth date from the DICOM header. Hidden by default; never stored or logged; in the PDF report only while this is on.",
        ):
            st.dataframe([{"field": k, "value": v} for k, v in result.identifiers.items()], hide_index=True)
    with right:
        _viewer(result, reader, settings, band, show_reading)


def _dicom_downloads(result: Result, reader, settings: Settings, band: Band | None) -> None:
    """For a DICOM upload, the results a PACS files beside the study (pneumo.outputs.dicom), each built
    only when its button is clicked; for a JPEG or PNG, why there are none."""
    if result.dicom is None:
        st.caption("DICOM results (a Secondary Capture and a Structured Report for your PACS) need a DICOM upload: "
                   f"a {result.format} carries no patient or study to file them under.")
        return
    import dataclasses

    from pneumo.outputs.dicom import findings_picture, secondary_capture, structured_report, to_bytes

    shown = dataclasses.replace(result, threshold=settings.threshold, band=band)  # the reading the page shows

    def capture() -> bytes:  # built when clicked: the map the page shows (cached), withheld with a warning as in the PDF
        heat = None if result.warnings is not None else map_for(result, reader, settings)[1]
        picture = findings_picture(result.picture, None if heat is None or heat.empty else heat.heatmap, result.lungs)
        return to_bytes(secondary_capture(shown, picture))

    def report() -> bytes:
        return to_bytes(structured_report(shown))

    stem = Path(result.name).stem
    sc, sr = st.columns(2)
    sc.download_button("DICOM Secondary Capture", data=capture, file_name=f"{stem}.sc.dcm", mime="application/dicom",
                       icon=":material/download:", on_click="ignore", key=f"dicom-sc-{result.digest}",
                       help="The X-ray with its heatmap, the lung outline and a caption (reading, probability, warning): "
                            "a new series in this study, for your PACS. It carries the file's patient and study, nothing else.")
    sr.download_button("DICOM Structured Report", data=report, file_name=f"{stem}.sr.dcm", mime="application/dicom",
                       icon=":material/download:", on_click="ignore", key=f"dicom-sr-{result.digest}",
                       help="The finding (probability, reading at the threshold in use, warning, site profile, model version), "
                            "referencing this image: a new series in this study, for your PACS.")


@st.fragment
def _viewer(result: Result, reader, settings: Settings, band: Band | None, show_reading: bool) -> None:
    """The viewing controls, the X-ray and its overlay, and the downloads of this study as viewed.
    A fragment: moving a control reruns only this part of the page, and never the model."""
    view, source = view_controls(result), source_of(result)
    picture = view.show(source)
    outlined = result.lungs is not None and st.toggle(
        "Outline the lungs", key=f"lungs-{result.digest}",
        help="The lung fields as the shipped segmenter finds them (pneumo.reading.lungs), on the X-ray and the overlay.")
    shown = draw_outline(picture, result.lungs) if outlined else picture
    st.download_button("Download report (PDF)", data=_report_maker([result], reader, settings, band, [view]),
                       file_name=f"{Path(result.name).stem}_report.pdf", mime="application/pdf",
                       icon=":material/picture_as_pdf:", on_click="ignore", key=f"report-{result.digest}",
                       help="This study as viewed (window, invert), with its reading, heatmap and what the threshold means.")
    _dicom_downloads(result, reader, settings, band)
    if not show_reading:
        st.image(view.zoom_in(shown), caption="Uploaded picture" + view.caption(source), width="stretch")
        return
    with st.spinner("Computing the heatmap…"):
        explained, heat = map_for(result, reader, settings)
    a, b = st.columns(2)
    a.image(view.zoom_in(shown), caption="Original" + view.caption(source), width="stretch")
    title = f"{settings.method_name} for {CLASS_NAMES[explained]}"
    if heat.empty:  # a blank overlay would read as "nothing there": say what the map found
        b.info(f"**{title}**: no region raised the score for {CLASS_NAMES[explained]}; the map is empty, so there is no overlay.",
               icon=":material/visibility_off:")
        st.caption(f"{settings.method_name} measures {WHAT_IT_MEASURES[settings.method]}")
        if result.lungs is not None:
            st.markdown(f"The lungs cover {result.lung_share:.0%} of the image; the map is empty.")
        return
    blended = overlay(picture, heat.heatmap, settings.opacity)
    b.image(view.zoom_in(draw_outline(blended, result.lungs) if outlined else blended), caption=title + view.caption(source),
            width="stretch")
    st.image(resources.legend_png(), width="stretch")
    st.markdown(" ".join(_map_words(result, heat)))
    st.caption(f"{settings.method_name} measures {WHAT_IT_MEASURES[settings.method]} Coarse (9×9 features), not a segmentation of disease.")
    st.download_button(
        "Download overlay (PNG)",
        data=lambda: to_png_bytes(blended),  # encoded only when clicked
        file_name=f"{Path(result.name).stem}_{settings.method.replace('+', 'pp')}.png",
        mime="image/png",
        icon=":material/download:",
        on_click="ignore",
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
        reader = resources.get_reader()
    except Exception as error:  # noqa: BLE001 - a broken weights file is a message, not a traceback
        st.error(f"The model could not be loaded from {DEFAULT_MODEL}: {error}", icon=":material/error:")
        return
    if site_ui.profile_in_use():
        try:
            reader = site_ui.reader()
        except ValueError as error:  # a profile that no longer fits the weights: say so, read with the shipped model
            st.session_state.pop(site_ui.PROFILE_KEY, None)
            st.error(f"The site profile could not be used ({error}); the shipped model reads instead.", icon=":material/error:")
    if len(inputs) == 1:
        with st.spinner("Reading the X-ray and computing the heatmap…"):
            outcomes = [read_one(inputs[0][1], inputs[0][0], reader, settings)]
    else:
        bar = st.progress(0.0, text=f"Reading {len(inputs)} files…")

        def progress(done: int, total: int) -> None:
            bar.progress(done / max(total, 1), text=f"Read and checked {done} of {total} new files…")

        outcomes = read_table(inputs, reader, progress)
        bar.empty()
    for failure in (o for o in outcomes if o.error is not None):
        st.error(failure.error, icon=":material/error:")
    results = [o for o in outcomes if o.error is None]
    if not results:
        return
    band = reader.band_at(settings.threshold)  # a site profile's own band where it has labelled films
    complete = completer(inputs, reader)  # a table row gets its pictures back when opened
    chosen = _summary(results, reader, settings, band, complete) if len(results) > 1 else complete(results[0])
    _detail(chosen, reader, settings, band)
