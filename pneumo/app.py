"""pneumo: drop a chest X-ray, see whether the model reads it as PNEUMONIA or NORMAL, how sure it
is, and a heatmap of where its evidence lies. `streamlit run streamlit_app.py` in a checkout, or
`pneumo app` once installed (both run render()).

The page reads top to bottom: the frame, the sidebar's settings, then four sections (pneumo/ui/).
The model loads on a background thread once the first visit's page is drawn; only the analysis
waits for it.

Research and education demo, not a medical device.
"""

import streamlit as st

from pneumo.ui import resources
from pneumo.ui.analyze import analyze_section
from pneumo.ui.curves import curves_section
from pneumo.ui.model_info import model_section
from pneumo.ui.sidebar import sidebar
from pneumo.ui.your_site import site_section

SECTIONS = ["Analyze", "Your site", "Training curves", "Model"]
SECTION_KEY = "section"  # st.session_state[SECTION_KEY] is the open tab's name


def render() -> None:
    st.set_page_config(page_title="pneumo · pneumonia on chest X-rays", page_icon="🫁", layout="wide")
    st.title("pneumo: pneumonia on chest X-rays")
    st.warning(
        "**Research and education demo, not a medical device.** Trained on pediatric chest X-rays (ages 1–5) "
        "from a single hospital in Guangzhou; it has not been validated on adults, other hospitals or other scanners. "
        "Do not use it to make clinical decisions.",
        icon=":material/info:",
    )
    bundle = resources.get_bundle()
    settings = sidebar(bundle)

    # The two reading tabs are drawn on every run, open or not: they hold uploads, and Streamlit
    # forgets a widget that a run does not draw. The curves and the model's gallery are drawn only
    # when open: drawn unseen, they cost every upload's rerun time and the browser a hundred fetches.
    analyze, site, curves, model = st.tabs(SECTIONS, key=SECTION_KEY, on_change="rerun")
    with analyze:
        analyze_section(settings)
    with site:
        site_section()
    if curves.open:
        with curves:
            curves_section(bundle)
    if model.open:
        with model:
            model_section(bundle)
    # Last, so that loading TensorFlow (seconds of work on the interpreter) does not hold up the
    # page it is loading for: by now the page is drawn and the uploader waits.
    resources.start_loading_reader()


if __name__ == "__main__":  # `streamlit run pneumo/app.py` (what `pneumo app` does)
    render()
