"""The sidebar's settings: threshold, which class the heatmap explains, the method, the opacity."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from pneumo.bundle import Bundle

# Names shown -> pneumo.explain's Method and Target (not imported: it loads TensorFlow).
METHODS = {"Grad-CAM": "gradcam", "Grad-CAM++": "gradcam++"}
TARGETS = {"the predicted class": "predicted", "PNEUMONIA": "pneumonia", "NORMAL": "normal"}


@dataclass(frozen=True)
class Settings:
    threshold: float
    target: str  # pneumo.explain.Target
    method: str  # pneumo.explain.Method
    opacity: float

    @property
    def method_name(self) -> str:
        return next(name for name, method in METHODS.items() if method == self.method)


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
            help="PNEUMONIA when the probability is at least this. The default is the shipped operating point.",
        )
        target = st.radio("Heatmap explains", list(TARGETS), help="Grad-CAM score: BinaryScore(1.0) for PNEUMONIA, BinaryScore(0.0) for NORMAL.")
        method = st.radio("Method", list(METHODS), horizontal=True)
        opacity = st.slider("Heatmap opacity", 0.0, 1.0, 0.4, 0.05)
        st.caption("Data: Kermany et al., Cell 2018 (CC BY 4.0).")
    return Settings(threshold, TARGETS[target], METHODS[method], opacity)
