"""What a user takes away: one PDF page per study (fpdf2) and a CSV of the results table.

A study's page holds the file name, when it was read, the X-ray as viewed and the heatmap overlay,
the reading at the current threshold, the probability, what the threshold means (sensitivity,
specificity, PPV and NPV at the stated prevalence, the indeterminate band), the explanation
method, any guard or population warning, the model's version (hash of the weights, commits) and
the not-a-medical-device statement. Patient identifiers appear only when the caller passes them
(the page does when the user has switched them on).
"""

from __future__ import annotations

import csv
import functools
import io
import os
import subprocess
from dataclasses import dataclass, field
from typing import Any
from datetime import datetime, timezone
from pathlib import Path

from PIL import Image

from pneumo.bundle import REPO_ROOT, Bundle, weights_sha256
from pneumo.operating import Band, OperatingPoint, Reading, at_prevalence, ppv_npv
from pneumo.outputs.words import WARNING_WORDS

NOT_A_MEDICAL_DEVICE = ("Research and education demo, not a medical device. Trained on pediatric chest X-rays (ages 1-5) from one "
                        "hospital in Guangzhou; not validated on adults, other hospitals or other scanners. Do not use it to make clinical decisions.")
DATA_CREDIT = "Training data: Kermany et al., Cell 2018 (CC BY 4.0)."
CSV_COLUMNS = ("file", "probability", "threshold", "label", "reading", "warning_kind", "population_source", "warning", "site")


@dataclass
class Study:
    """One result as its report page shows it: the reading at the page's threshold, the picture as
    viewed, and the map with what it says in words."""

    result: Any  # pneumo.reading.Result
    picture: Image.Image  # as viewed (window, invert), not zoomed
    threshold: float
    reading: Reading
    overlay: Image.Image | None = None  # None: an empty map, or the reading withheld
    method: str = ""  # the explanation method's name
    method_measures: str = ""
    explained: str = ""  # the class the map explains
    where: str = ""  # where the map's weight lies, in words (or why there is no map)
    lungs: str = ""  # the share of the map inside the lungs and of the image they cover, in words
    warning: tuple[str, str] | None = None  # (kind, text) as the report words it
    identifiers: dict[str, str] = field(default_factory=dict)  # only when the user switched them on


@functools.lru_cache(maxsize=1)
def app_commit() -> str | None:
    """The checkout's commit (git), else PNEUMO_COMMIT (set it when building an image without .git)."""
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return os.environ.get("PNEUMO_COMMIT") or None


def model_version(bundle: Bundle) -> dict[str, str]:
    """The weights' sha256, the commit they were trained at (metrics.json) and the app's commit."""
    version = {"weights": bundle.model_file.name}
    if bundle.model_file.is_file():
        version["weights_sha256"] = weights_sha256(bundle.model_file)
    if bundle.metrics.get("git_commit"):
        version["trained_at_commit"] = str(bundle.metrics["git_commit"])[:12]
    version["app_commit"] = app_commit() or "unknown (not a git checkout; set PNEUMO_COMMIT)"
    return version


def results_csv(results: list, threshold: float, band: Band | None) -> bytes:
    """The results table: one row per result (pneumo.reading.Result), read at `threshold` and `band`
    (CSV_COLUMNS); a flagged picture's row carries its warning, and no label or probability."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in results:
        shown = r.outcome(threshold, band)
        withheld = r.withheld  # the warning instead of a label and a probability
        writer.writerow({"file": r.name, "probability": "" if withheld else f"{r.probability:.6f}", "threshold": f"{threshold:.6f}",
                         "label": "" if withheld else shown.leaning, "reading": "withheld" if withheld else shown.label,
                         "warning_kind": r.warning_kind or "",
                         "population_source": r.population_source or "", "warning": r.warning or "", "site": r.site or ""})
    return buffer.getvalue().encode("utf-8")


def _font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"  # DejaVu ships with matplotlib: any file name prints


def trained_at(bundle: Bundle) -> float:
    """The share of pneumonia the network was trained on (its probabilities are at this mix)."""
    return float(((bundle.uncertainty or {}).get("calibration") or {}).get("trained_at", 0.7429))


def chance_at(probability: float, prevalence: float, bundle: Bundle) -> float | None:
    """The network's probability moved to `prevalence` (pneumo.operating.at_prevalence), where its
    calibration was measured (uncertainty.json); None otherwise."""
    if not ((bundle.uncertainty or {}).get("calibration")):
        return None
    return at_prevalence(probability, prevalence, trained_at(bundle))


def threshold_lines(operating: OperatingPoint | None, prevalence: float, band: Band | None) -> list[str]:
    """What the threshold means, in the PDF's sentences: properties of the threshold over many X-rays."""
    lines = []
    if operating is not None:
        ppv, npv = ppv_npv(operating.sensitivity, operating.specificity, prevalence)
        lines.append(f"The threshold finds {operating.sensitivity:.1%} of pneumonias (sensitivity) and clears {operating.specificity:.1%} of "
                     f"normal X-rays (specificity) ({operating.source}).")
        lines.append(f"At a prevalence of {prevalence:.1%}, {ppv:.1%} of all X-rays it reads PNEUMONIA would have pneumonia (PPV) and "
                     f"{npv:.1%} of those it reads NORMAL would not (NPV).")
    else:
        lines.append("These weights ship no test metrics: sensitivity and specificity are unknown.")
    lines.append(f"Indeterminate band: {band.describe()}." if band is not None else "No indeterminate band around this threshold.")
    return lines


def report_pdf(studies: list[Study], bundle: Bundle, operating: OperatingPoint | None, prevalence: float, band: Band | None,
               when: datetime | None = None) -> bytes:
    """One A4 page per study, in order."""
    from fpdf import FPDF

    when = when or datetime.now(timezone.utc)
    version = model_version(bundle)
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=14)
    fonts = _font_dir()
    pdf.add_font("DejaVu", "", str(fonts / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(fonts / "DejaVuSans-Bold.ttf"))
    pdf.set_title("pneumo report")
    pdf.set_creator("pneumo")
    width = pdf.w - pdf.l_margin - pdf.r_margin

    def text(line: str, size: float = 9.5, bold: bool = False, height: float = 5.0) -> None:
        pdf.set_font("DejaVu", "B" if bold else "", size)
        pdf.multi_cell(width, height, line, align="L", new_x="LMARGIN", new_y="NEXT")

    for number, study in enumerate(studies, start=1):
        pdf.add_page()
        result = study.result
        text(f"pneumo report: {result.name}", 14, bold=True, height=7)
        text(f"Study {number} of {len(studies)} · read {when.strftime('%Y-%m-%d %H:%M:%S %Z')} · {result.format}, "
             f"{result.size[0]}×{result.size[1]} px")
        text(NOT_A_MEDICAL_DEVICE, 8.5)
        pdf.ln(2)
        if study.warning:
            pdf.set_text_color(170, 60, 0)
            source = {"dicom": "the DICOM header", "image": "the image"}.get(result.population_source or "")
            kind = WARNING_WORDS.get(study.warning[0], study.warning[0]) + (f", seen in {source}" if source else "")
            text(f"Warning: {kind}. {study.warning[1]}", 10, bold=True)
            text("Shown at the user's request despite this warning: for such a picture the reading below does not mean anything."
                 if result.shown_anyway else "No reading is given for such a picture, here or on the page.", 9)
            pdf.set_text_color(0, 0, 0)
        if result.withheld:
            text("Reading: withheld", 13, bold=True, height=7)
        else:
            reading = study.reading
            headline = (f"{reading.label} (leaning {reading.leaning})" if reading.indeterminate else reading.label)
            text(f"Reading: {headline}", 13, bold=True, height=7)
            text(f"The network's probability of pneumonia {result.probability:.1%}, at the training folder's mix "
                 f"({trained_at(bundle):.0%} pneumonia) · threshold {study.threshold:.3f} (PNEUMONIA at or above it; shipped "
                 f"{bundle.threshold:.3f}).")
            moved = chance_at(result.probability, prevalence, bundle)
            if moved is not None:
                text(f"Chance of pneumonia for this X-ray at a prevalence of {prevalence:.1%}: {moved:.1%} (the same evidence, other "
                     "prior odds).")
            for line in threshold_lines(operating, prevalence, band):
                text(line)
        pdf.ln(2)
        top = pdf.get_y()
        half = (width - 4) / 2
        for i, (image, caption) in enumerate(((study.picture, "X-ray as viewed"),
                                              (study.overlay, f"{study.method} for {study.explained}"))):
            x = pdf.l_margin + i * (half + 4)
            if image is None:
                pdf.set_xy(x, top)
                pdf.set_font("DejaVu", "", 9)
                pdf.multi_cell(half, 5, "No overlay: " + (study.where or "no map."), align="L")
                continue
            h = half * image.height / image.width
            pdf.image(image.convert("RGB"), x=x, y=top, w=half, h=h)
            pdf.set_xy(x, top + h + 1)
            pdf.set_font("DejaVu", "", 8)
            pdf.cell(half, 4, caption)
        pdf.set_xy(pdf.l_margin, top + half * max(study.picture.height / study.picture.width, 0.2) + 7)
        if study.method:
            text(f"Explanation: {study.method} for {study.explained}. It measures {study.method_measures}")
            if study.overlay is not None and study.where:
                text(study.where)
            if study.lungs:
                text(study.lungs)
            text("Coarse (9×9 features of the last convolution block), not a segmentation of disease.", 8.5)
        if study.identifiers:
            text("Patient identifiers (shown because the user switched them on): "
                 + "; ".join(f"{k}: {v}" for k, v in study.identifiers.items()), 9)
        pdf.ln(2)
        text("Model: " + "; ".join(f"{k.replace('_', ' ')} {v}" for k, v in version.items()) + ".", 8)
        text(f"Site: {result.site} was in use." if result.site
             else "Site: none (the shipped model as trained).", 8)
        text(DATA_CREDIT, 8)
    return bytes(pdf.output())
