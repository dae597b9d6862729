"""The "Your site" section: fit the model to a hospital's own films (pneumo.reading.fit), see its scores
before and after as two histograms, save or download the profile, or load one. The profile in use
lives in this browser session (st.session_state); the network it makes is cached per profile."""

from __future__ import annotations

import io
import zipfile
from pathlib import PurePosixPath

import streamlit as st

from pneumo.bundle import DEFAULT_MODEL
from pneumo.ui import resources

PROFILE_KEY = "site_profile"  # the profile in use: its JSON text
FIT_KEY = "site_fit"  # the last fit's (profile JSON, report, labels)
MAX_ZIP_FILES = 2000


def profile_in_use() -> str | None:
    """The JSON text of the site profile this browser session uses, or None."""
    return st.session_state.get(PROFILE_KEY)


def site_name(profile_json: str | None) -> str:
    """The profile in use, for a person ("" for none); read without the model, for the sidebar."""
    import json

    if not profile_json:
        return ""
    data = json.loads(profile_json)
    threshold = f", threshold {data['threshold']:.3f}" if data.get("threshold") is not None else ""
    return f"site profile “{data['site']}” ({data['films']} films, {str(data['created'])[:10]}{threshold})"


def reader():
    """The reader for this session: fitted to its site profile where one is in use."""
    profile = profile_in_use()
    return resources.get_reader() if profile is None else resources.get_site_reader(profile)


def use(profile_json: str) -> None:
    """Use this profile from now on: its threshold becomes the sidebar's. A button's callback (it
    runs before the page does, when the sidebar's slider may still be set)."""
    import json

    st.session_state[PROFILE_KEY] = profile_json
    threshold = json.loads(profile_json).get("threshold")
    st.session_state["threshold"] = resources.get_bundle().threshold if threshold is None else float(threshold)


def stop_using() -> None:
    st.session_state.pop(PROFILE_KEY, None)
    st.session_state["threshold"] = resources.get_bundle().threshold


def _films(uploads) -> tuple[list[tuple[str, bytes]], list[str]]:
    """(name, bytes) of every uploaded film, zips opened (their NORMAL/ and PNEUMONIA/ folders give
    labels), and what could not be opened."""
    items, problems = [], []
    for upload in uploads:
        data = upload.getvalue()
        if not zipfile.is_zipfile(io.BytesIO(data)):
            items.append((upload.name, data))
            continue
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = [m for m in archive.infolist() if not m.is_dir() and not any(
                    part.startswith((".", "__MACOSX")) for part in PurePosixPath(m.filename).parts)]
                if len(members) > MAX_ZIP_FILES:
                    problems.append(f"{upload.name}: more than {MAX_ZIP_FILES} files; split it")
                    continue
                items += [(f"{upload.name}/{m.filename}", archive.read(m)) for m in members]
        except (zipfile.BadZipFile, OSError, RuntimeError) as error:
            problems.append(f"{upload.name}: the zip could not be read ({error})")
    return items, problems


def _fit(uploads, name: str) -> None:
    from pneumo.reading import MIN_FILMS, MIN_LABELLED, NothingToFit, fit_site, read_site_films

    items, problems = _films(uploads)
    for problem in problems:
        st.error(problem, icon=":material/error:")
    if not items:
        return
    shipped = resources.get_reader()
    progress = st.progress(0.0, text=f"Checking {len(items)} films…")
    films = read_site_films(shipped, items)
    progress.progress(0.5, text="Fitting the model to the films that passed the checks…")
    try:
        profile, report = fit_site(shipped, films, name.strip() or "my site")
    except ValueError as error:
        progress.empty()
        if isinstance(error, NothingToFit) and error.why:
            st.error(f"Nothing was fitted: {error.why}. Upload at least {MIN_FILMS} of your site's films for label-free adaptation, or a "
                     f"zip of NORMAL/ and PNEUMONIA/ folders with at least {MIN_LABELLED} films in each for a site threshold.",
                     icon=":material/error:")
        else:
            st.error(str(error), icon=":material/error:")
        if films.left_out:
            _left_out(films.left_out)
        return
    progress.empty()
    st.session_state[FIT_KEY] = (profile.to_json(), report, films.labels, films.left_out)


def _left_out(left_out: list[tuple[str, str]]) -> None:
    with st.expander(f"{len(left_out)} film(s) left out by the checks (never used to fit)"):
        st.dataframe([{"film": film, "why": why} for film, why in left_out], hide_index=True)


def _show_fit(profile_json: str, report: dict, labels, left_out) -> None:
    from pneumo.outputs import plots
    from pneumo.reading import describe_fit

    profile = resources.get_reader().profile_from_json(profile_json)
    headline, *rest = describe_fit(report, profile)
    st.markdown(f"**{headline}.**")
    if left_out:
        _left_out(left_out)
    st.markdown("\n".join(f"- {line[0].upper()}{line[1:]}." for line in rest))
    if "before" in report:
        shipped = resources.get_bundle().threshold
        adapted = bool(profile.statistics)
        st.image(plots.png_bytes(plots.site_fit_histograms(report["after"], labels, shipped, profile.threshold,
                                                           before=report["before"] if adapted else None)), width="stretch",
                 caption=("Your films by the network's probability of pneumonia before the adaptation (outline) and after it "
                          "(filled); the dotted line is the threshold, the shipped one." if adapted else
                          "Your films by the network's probability of pneumonia, each class apart: the dotted line is the shipped "
                          "threshold, the dashed one this profile's; the titles say what each calls right on these films, which set "
                          "it: what new films give is said above."))
    left, right = st.columns(2)
    left.download_button("Download the profile (JSON)", data=profile_json, file_name="site.json", mime="application/json",
                         icon=":material/download:", on_click="ignore", key="site-download")
    if profile_json == profile_in_use():
        right.success("In use for this session.", icon=":material/check:")
    else:
        right.button("Use this profile", type="primary", key="site-use", on_click=use, args=(profile_json,))


def _use_loaded() -> None:
    """The load button's callback: check the uploaded profile against the weights, then use it; a
    profile that cannot be used leaves its reason for the page and the shipped model in use."""
    from pneumo.reading import SiteProfileError

    upload = st.session_state.get("site-load")
    st.session_state.pop("site-load-error", None)
    if upload is None:
        return
    shipped = resources.get_reader()
    try:
        text = upload.getvalue().decode("utf-8")
        shipped.profile_from_json(text)
    except (UnicodeDecodeError, SiteProfileError) as error:
        reason = error if isinstance(error, SiteProfileError) else "not a site profile (not text)"
        st.session_state["site-load-error"] = f"{upload.name}: {reason}. The shipped model stays in use."
        return
    use(text)


def _load() -> None:
    upload = st.file_uploader("A site profile (JSON, made here or by `pneumo adapt`)", type=["json"], key="site-load")
    if upload is not None:
        st.button("Use the loaded profile", key="site-use-loaded", on_click=_use_loaded)
    if st.session_state.get("site-load-error"):
        st.error(st.session_state["site-load-error"], icon=":material/error:")


def site_section() -> None:
    from pneumo.reading import MIN_FILMS, MIN_LABELLED

    if not DEFAULT_MODEL.is_file():
        st.error("No model to fit: train one with `python train.py`.")
        return
    st.markdown(
        "The model's reading does not travel whole to a new hospital: on the test folder, a different cohort, it clears 63 % of "
        "normal children where the training folder says 96 %. Here you can fit it to your site's own films. "
        f"With labels (a zip of NORMAL/ and PNEUMONIA/ folders, at least **{MIN_LABELLED}** of each), the site gets its own ROC and "
        f"threshold; without labels (at least **{MIN_FILMS}** films), the network's statistics follow your films. Either way you are "
        "told what a hospital like the test folder's gained and lost, as measured. Films the checks flag (not a chest X-ray, an "
        "adult's film) never enter the fit. "
        "Fitting to adults does not make a reading valid for them."
    )
    current = profile_in_use()
    if current:
        st.info(f"In use: {site_name(current)}.", icon=":material/location_on:")
        st.button("Stop using it (back to the shipped model)", key="site-stop", on_click=stop_using)
    st.subheader("Fit to your films")
    uploads = st.file_uploader("Your site's chest X-rays, or a zip of NORMAL/ and PNEUMONIA/ folders", accept_multiple_files=True,
                               key="site-films", help="Processed in memory, never stored; only the profile's numbers are kept.")
    name = st.text_input("Site name", value="my site", key="site-name", max_chars=80)
    if uploads and st.button("Fit the model to these films", type="primary", key="site-fit"):
        _fit(uploads, name)
    fitted = st.session_state.get(FIT_KEY)
    if fitted:
        _show_fit(*fitted)
    st.subheader("Load a profile")
    _load()
