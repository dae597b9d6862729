"""pneumo: drop a chest X-ray, see whether the model reads it as PNEUMONIA or NORMAL, how sure it
is, and a heatmap of where its evidence lies. `streamlit run streamlit_app.py` in a checkout, or
`pneumo app` once installed (both run render()).

The page reads top to bottom: the frame, the sidebar's settings, then four sections (pneumo/ui/).
The model loads on a background thread at the first visit; only the analysis waits for it.

Research and education demo, not a medical device.
"""

import streamlit as st

from pneumo.bundle import DEFAULT_MODEL
from pneumo.ui import resources
from pneumo.ui.analyze import analyze_section
from pneumo.ui.curves import curves_section
from pneumo.ui.model_info import model_section
from pneumo.ui.sidebar import sidebar
from pneumo.ui.site import site_section


def render() -> None:
    st.set_page_config(page_title="pneumo · pneumonia on chest X-rays", page_icon="🫁", layout="wide")
    st.title("pneumo: pneumonia on chest X-rays")
    st.warning(
        "**Research and education demo, not a medical device.** Trained on pediatric chest X-rays (ages 1–5) "
        "from a single hospital in Guangzhou; it has not been validated on adults, other hospitals or other scanners. "
        "Do not use it to make clinical decisions.",
        icon=":material/info:",
    )
    if DEFAULT_MODEL.is_file():
        resources.start_loading_engine()
    bundle = resources.get_bundle()
    settings = sidebar(bundle)

    analyze, site, curves, model = st.tabs(["Analyze", "Your site", "Training curves", "Model"])
    with analyze:
        analyze_section(settings)
    with site:
        site_section()
    with curves:
        curves_section(bundle)
    with model:
        model_section(bundle)


if __name__ == "__main__":  # `streamlit run pneumo/app.py` (what `pneumo app` does)
    render()
