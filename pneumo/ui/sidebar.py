"""The sidebar's settings: threshold, which class the heatmap explains, the method, the opacity,
the prevalence for PPV and NPV."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from pneumo.bundle import Bundle
from pneumo.bundle import DEFAULT_METHOD, METHOD_NAMES
from pneumo.operating import DEFAULT_PREVALENCE
from pneumo.ui.your_site import profile_in_use, site_name

# Names shown -> pneumo.reading.explain's Method and Target (not imported: it loads TensorFlow).
METHODS = {name: method for method, name in METHOD_NAMES.items()}
TARGETS = {"the predicted class": "predicted", "PNEUMONIA": "pneumonia", "NORMAL": "normal"}


@dataclass(frozen=True)
class Settings:
    threshold: float
    target: str  # pneumo.reading.explain.Target
    method: str  # pneumo.reading.explain.Method
    opacity: float
    prevalence: float  # of pneumonia among the X-rays read, for PPV and NPV

    @property
    def method_name(self) -> str:
        return METHOD_NAMES[self.method]


def sidebar(bundle: Bundle) -> Settings:
    with st.sidebar:
        st.header("Settings")
        threshold = st.slider(
            "Decision threshold",
            0.0,
            1.0,
            value=bundle.threshold,
            step=0.001,
            format="%.3f",
            key="threshold",
            help="PNEUMONIA when the probability is at least this. The default is the shipped operating point.",
        )
        target = st.radio("Heatmap explains", list(TARGETS), key="target", help="The map explains the logit for PNEUMONIA (BinaryScore(1.0)) or its negative for NORMAL (BinaryScore(0.0)).")
        method = st.radio(
            "Heatmap method", list(METHODS), index=list(METHODS.values()).index(DEFAULT_METHOD), key="method",
            help="The default was chosen by measuring every method's faithfulness and sanity.",
        )
        opacity = st.slider("Heatmap opacity", 0.0, 1.0, 0.4, 0.05, key="opacity")
        prevalence = st.number_input(
            "Prevalence of pneumonia (%)", min_value=0.1, max_value=99.9, value=DEFAULT_PREVALENCE * 100, step=1.0, format="%.1f", key="prevalence",
            help="The share of pneumonia among the X-rays you read, for PPV and NPV. The default, "
                 f"{DEFAULT_PREVALENCE:.0%}, is an assumption, not a measurement: set your own.",
        ) / 100
        in_use = site_name(profile_in_use())
        st.caption(f"Site: **{in_use}** (the “Your site” tab)." if in_use else "Site: the shipped model as trained (fit it to yours in “Your site”).")
        st.caption("Data: Kermany et al., Cell 2018 (CC BY 4.0).")
    return Settings(threshold, TARGETS[target], METHODS[method], opacity, prevalence)
