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
    if "members" in history:  # an ensemble: one run per member, each validated on its own fold
        members = history["members"]
        st.markdown(f"The shipped model is **{len(members)} networks**, one per cross-validation fold, each trained on the other "
                    "folds and validated on its own; best epoch by validation AUC (dots): "
                    + ", ".join(f"fold {m['fold']}: {m['best_epoch']} of {len(m['epochs'])}" for m in members) + ".")
    elif any(key.startswith("val_") for key in history["epochs"][0]):
        st.markdown(f"Training history of the shipped model: {len(history['epochs'])} epochs, training (blue) and validation "
                    f"(orange), best epoch **{history.get('best_epoch')}** by validation AUC (red line).")
    else:
        st.markdown(f"Training history of the shipped model: {len(history['epochs'])} epochs on all the training X-rays, so there "
                    "is no validation curve: the number of epochs and the threshold came from the cross-validation folds "
                    f"(the Model tab); the weights of epoch **{history.get('best_epoch')}** ship (red line).")
    st.image(resources.figure_png("curves", json.dumps(history)), width="stretch")
