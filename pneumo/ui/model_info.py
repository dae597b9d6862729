"""The Model section: test metrics with intervals, confusion matrix, ROC curve and the model card."""

from __future__ import annotations

import json

import streamlit as st

from pneumo.bundle import CARD_FILE, ROC_FILE, Bundle
from pneumo.ui import resources

REPORTED = ("auc", "accuracy", "sensitivity", "specificity", "precision", "f1")


def model_section(bundle: Bundle) -> None:
    test = bundle.test
    if not test:
        st.info("No test metrics shipped with these weights.")
        return
    ci = test.get("ci95", {})
    st.markdown(
        f"Test split: {test['counts']['total']} X-rays ({test['counts']['normal']} NORMAL / {test['counts']['pneumonia']} PNEUMONIA), "
        f"evaluated once at the threshold **{bundle.threshold:.3f}** chosen on the validation split."
    )
    rows = [
        {"metric": name, "value": round(test[name], 4), "95% CI": f"{ci[name][0]:.3f} – {ci[name][1]:.3f}" if name in ci else ""}
        for name in REPORTED
    ]
    left, middle, right = st.columns([1.2, 1, 1])
    left.dataframe(rows, hide_index=True)
    middle.image(resources.figure_png("confusion", json.dumps(test["confusion_matrix"])), width="stretch")
    if bundle.file(ROC_FILE).is_file():
        right.image(str(bundle.file(ROC_FILE)), width="stretch")
    if bundle.file(CARD_FILE).is_file():
        with st.expander("Model card"):
            st.markdown(bundle.file(CARD_FILE).read_text())
