"""The Training curves section: the shipped model's history.json, best epoch marked."""

from __future__ import annotations

import json

import streamlit as st

from pneumo.bundle import Bundle
from pneumo.ui import resources


def curves_section(bundle: Bundle) -> None:
    history = bundle.history
    if not history:
        st.info("No weights/history.json yet: train with `python train.py`.")
        return
    best = history.get("best_epoch")
    st.markdown(f"Training history of the shipped model: {len(history['epochs'])} epochs, best epoch **{best}** by validation AUC (red line).")
    st.image(resources.figure_png("curves", json.dumps(history)), width="stretch")
