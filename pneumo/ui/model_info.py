"""The Model section: test metrics with intervals, confusion matrix, ROC curve, the model card and
the teaching gallery (the test split's misread X-rays, built by pneumo.training.gallery)."""

from __future__ import annotations

import json

import streamlit as st

from pneumo.bundle import CARD_FILE, GALLERY_DIR, GALLERY_FILE, ROC_FILE, Bundle, read_json, weights_sha256
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
        f"evaluated once at the threshold **{bundle.threshold:.3f}** chosen on {bundle.threshold_source}"
        + (f"; the model is {bundle.networks} networks, one per cross-validation fold, their logits averaged." if bundle.networks > 1 else ".")
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
    gallery_section(bundle)


def gallery_section(bundle: Bundle) -> None:
    """Thumbnails of every false positive and false negative on the test split at the shipped threshold."""
    gallery = read_json(bundle.file(GALLERY_FILE))
    st.subheader("Teaching gallery: the model's mistakes on the test split")
    if not gallery:
        st.info("These weights come without a gallery of the test split's misread X-rays.")
        return
    if gallery.get("weights_sha256") != weights_sha256(bundle.model_file):
        st.warning("This gallery was built for other weights than the ones loaded, so its maps may differ from what the page shows."
                   , icon=":material/warning:")
    items = gallery["items"]
    st.markdown(
        f"Every test X-ray the model misreads at the shipped threshold **{gallery['threshold']:.3f}**, each beside its "
        f"{gallery['method_name']} map for the class the model called (`{gallery['command']}`, built {gallery['built']}). "
        f"Images: {gallery['credit']}."
    )
    for kind, title in (("false_negative", "False negatives: pneumonia called NORMAL (lowest probability first)"),
                        ("false_positive", "False positives: normal X-rays called PNEUMONIA (highest probability first)")):
        chosen = [i for i in items if i["kind"] == kind]
        st.markdown(f"**{title}**: {len(chosen)} of {gallery['test_images']}")
        if chosen:
            st.image([str(bundle.file(GALLERY_DIR) / i["image"]) for i in chosen],
                     caption=[f"{i['file']} · p = {i['probability']:.3f}" + (" · empty map" if i["empty_map"] else "") for i in chosen],
                     width="content")
