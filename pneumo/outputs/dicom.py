"""Results a PACS can file beside the X-ray they read, for a DICOM input:

- a Secondary Capture image: the X-ray with its heatmap and the lung outline burned in, and a caption
  band below it with the reading, the probability and the warning;
- a Comprehensive 3D Structured Report (a TID 1500 measurement report): the probability of
  pneumonia, the finding at the threshold in use, the threshold, the warning and the site profile,
  by the algorithm "pneumo" at its version (the package's and the weights' SHA-256). It references
  the source image.

Both are written with highdicom as a new series each (new UIDs), in the source's study and, where it
has one, its frame of reference. From the source they carry the patient module and the study's
identity (what filing needs: pydicom's General Study module), nothing else. A JPEG or PNG has no
study to file into: `NotDicom` says so.
"""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

from pneumo import __version__

MANUFACTURER = "pneumo (research and education, not a medical device)"
SCHEME = "99PNEUMO"  # this project's own codes, only where SNOMED CT, DICOM and LOINC have none (the caveats, the site)
CAPTION_LINES = 3

PNEUMONIA = Code("233604007", "SCT", "Pneumonia")  # the group's finding type
FINDING = {  # the reading at the operating threshold, as the presence of pneumonia
    "PNEUMONIA": Code("121053", "DCM", "Present"),
    "NORMAL": Code("121054", "DCM", "Absent"),
    "INDETERMINATE": Code("82334004", "SCT", "Indeterminate"),
}
READING = Code("121052", "DCM", "Presence of property")  # the reading at the operating threshold
PROBABILITY = Code("122157", "DCM", "Probability")  # of pneumonia, the group's finding type
THRESHOLD = Code("122411", "DCM", "Threshold Value")  # the operating threshold
CAVEAT = Code("caveat", SCHEME, "Reading caveat")
SITE = Code("site", SCHEME, "Site profile")
NO_UNITS = Code("1", "UCUM", "no units")
CHEST_XRAY = Code("399208008", "SCT", "Plain chest X-ray")
NOT_ASSESSED = Code("121059", "DCM", "Presence Undetermined")  # a flagged image: not assessed; the caveat says why
CAVEATS = {
    "not_xray": "Not a chest X-ray: reading not meaningful",
    "inverted": "Inverted or unusual grey scale: reading doubtful",
    "lateral": "Not a frontal view: reading not meaningful",
    "population": "Outside the training population: reading unreliable",
}


# Copied from the source: the Patient module and the General Study module (what filing needs);
# highdicom also copies these Patient Study elements, which filing does not need.
PATIENT_STUDY = ("PatientAge", "PatientSize", "PatientWeight", "AdditionalPatientHistory", "AdmittingDiagnosesDescription",
                 "Occupation", "PatientSexNeutered", "SmokingStatus", "PregnancyStatus", "MedicalAlerts", "Allergies",
                 "EthnicGroup", "PatientBodyMassIndex", "MeasuredAPDimension", "MeasuredLateralDimension")


class NotDicom(ValueError):
    """The input was not a DICOM file: there is no patient or study to file the results under."""


def model_version(weights_sha256: str) -> str:
    return f"{__version__} weights {weights_sha256[:12] or 'unknown'}"


def caption(r) -> list[str]:
    """The caption burned into the Secondary Capture, in at most CAPTION_LINES lines: no reading for a
    picture the checks flag, unless a person asked to see it anyway (and then it says so)."""
    if r.withheld:
        lines = [f"pneumo {model_version(r.weights_sha256)}: no reading. {CAVEATS.get(r.warning_kind, r.warning or '')}.",
                 "The checks flagged this picture, so neither a reading nor a heatmap is given for it."]
    else:
        lines = [f"pneumo {model_version(r.weights_sha256)}: {r.reading}, probability of pneumonia {r.probability:.0%} "
                 f"(threshold {r.threshold:.2f}{', site ' + r.site if r.site else ''})"]
        lines.append(f"Shown at a user's request despite the warning: {CAVEATS.get(r.warning_kind, r.warning or '')}; heatmap withheld."
                     if r.warning_kind else "No warning from the checks. Heatmap: where the evidence for the reading lies.")
    lines.append("Research and education demo, not a medical device: not for diagnosis.")
    return lines[:CAPTION_LINES]


def captioned(picture: Image.Image, lines: list[str]) -> np.ndarray:
    """The picture (RGB) above a black band with `lines` in white, each wrapped to the picture's
    width: (rows, columns, 3) uint8."""
    picture = picture.convert("RGB")
    size = max(11, picture.width // 64)
    font = ImageFont.load_default(size=size)
    margin, step = size // 2, int(size * 1.4)
    wrapped = [row for line in lines for row in _wrap(line, font, picture.width - 2 * margin)]
    canvas = Image.new("RGB", (picture.width, picture.height + step * len(wrapped) + margin), (0, 0, 0))
    canvas.paste(picture, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for i, row in enumerate(wrapped):
        draw.text((margin, picture.height + margin // 2 + i * step), row, fill=(255, 255, 255), font=font)
    return np.asarray(canvas)


def _wrap(line: str, font, width: int) -> list[str]:
    rows, current = [], ""
    for word in line.split():
        trial = f"{current} {word}".strip()
        if current and font.getlength(trial) > width:
            rows.append(current)
            current = word
        else:
            current = trial
    return rows + [current] if current else rows


def findings_picture(picture: Image.Image, heatmap: np.ndarray | None, lungs: np.ndarray | None, opacity: float = 0.45) -> Image.Image:
    """The X-ray with its heatmap blended over it (None: no map, for an empty one or a withheld one)
    and the lung outline."""
    from pneumo.outputs.picture import draw_outline, overlay

    shown = overlay(picture, heatmap, opacity) if heatmap is not None else picture.convert("RGB")
    return draw_outline(shown, lungs) if lungs is not None else shown


def results(r, heat=None) -> tuple[Dataset, Dataset]:
    """(Secondary Capture, Structured Report) of one DICOM X-ray's result (pneumo.reading.Result: its
    reading at the threshold it holds), with the map `heat` (a pneumo.reading.Map; default: the
    result's own); NotDicom for a JPEG or PNG. With a warning the heatmap is withheld, as in the PDF
    report: the caption says why."""
    _require_dicom(r.dicom)
    heat = r.default_map if heat is None else heat
    shown = None if r.warning_kind or heat is None or heat.empty else heat.heatmap
    return secondary_capture(r, findings_picture(r.picture, shown, r.lungs)), structured_report(r)


def _require_dicom(source: Dataset | None) -> Dataset:
    if source is None:
        raise NotDicom("DICOM results need a DICOM input: a JPEG or PNG carries no patient or study to file them under.")
    missing = [k for k in ("StudyInstanceUID", "SOPInstanceUID", "SOPClassUID", "Modality") if not source.get(k)]
    if missing:
        raise NotDicom(f"the DICOM input lacks {', '.join(missing)}: a PACS could not file results beside it.")
    return source


def _patient_orientation(source: Dataset) -> tuple[str, str]:
    value = source.get("PatientOrientation")
    if value is not None and len(value) == 2 and all(str(v) in ("L", "R", "A", "P", "H", "F") for v in value):
        return str(value[0]), str(value[1])
    return "L", "F"  # a frontal chest film as displayed: columns towards the patient's left, rows towards the feet


def _drop_patient_study(dataset: Dataset, source: Dataset) -> None:
    """Remove what the writer copied from the source beyond the patient module and the study's
    identity: the Patient Study module (age, size, weight, history...)."""
    for keyword in PATIENT_STUDY:
        if keyword in dataset and keyword in source:
            del dataset[keyword]


def _general_series_and_study(dataset: Dataset, source: Dataset) -> None:
    """The study's ID (Type 2: empty where the source has none) and, for an image, the laterality the
    General Series module asks of a paired body part (Type 2C: the source's, else empty: a chest is
    not one side)."""
    dataset.StudyID = source.get("StudyID", "")
    if dataset.SOPClassUID != "1.2.840.10008.5.1.4.1.1.88.34" and "Laterality" not in dataset:
        dataset.Laterality = source.get("Laterality", "")


def _frame_of_reference(dataset: Dataset, source: Dataset) -> None:
    if "FrameOfReferenceUID" in source:
        dataset.FrameOfReferenceUID = source.FrameOfReferenceUID
        dataset.PositionReferenceIndicator = source.get("PositionReferenceIndicator", "")


def secondary_capture(r, picture: Image.Image) -> Dataset:
    """A result's X-ray as drawn (heatmap and lung outline already on `picture`) with its caption, as a
    DICOM Secondary Capture image in a new series of the source's study."""
    import highdicom as hd

    source = _require_dicom(r.dicom)
    lines = caption(r)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # highdicom's advice on the source's names, which are copied as they are
        sc = hd.sc.SCImage.from_ref_dataset(
            ref_dataset=source, pixel_array=captioned(picture, lines), photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
            bits_allocated=8, coordinate_system=hd.CoordinateSystemNames.PATIENT, series_instance_uid=generate_uid(),
            series_number=9901, sop_instance_uid=generate_uid(), instance_number=1, manufacturer=MANUFACTURER,
            patient_orientation=_patient_orientation(source),
        )
    sc.SeriesDescription = "pneumo heatmap (research, not for diagnosis)"
    _general_series_and_study(sc, source)
    sc.BurnedInAnnotation = "YES"  # the caption; it names no patient
    sc.ImageComments = " / ".join(lines)[:10240]
    _frame_of_reference(sc, source)
    _drop_patient_study(sc, source)
    return sc


def structured_report(r) -> Dataset:
    """A result's finding as a DICOM Comprehensive 3D SR (TID 1500), referencing the source image."""
    import highdicom as hd

    source = _require_dicom(r.dicom)
    algorithm = hd.sr.AlgorithmIdentification(name="pneumo", version=model_version(r.weights_sha256),
                                              parameters=[f"threshold {r.threshold:.4f}"] + ([f"site profile: {r.site}"] if r.site else []))
    # a flagged image is recorded as not assessed, with the reason, and without a probability
    evaluations = [hd.sr.QualitativeEvaluation(READING, NOT_ASSESSED if r.withheld else FINDING[r.reading])]
    if r.warning_kind:
        evaluations.append(hd.sr.QualitativeEvaluation(CAVEAT, Code(r.warning_kind, SCHEME, CAVEATS.get(r.warning_kind, r.warning_kind)[:64])))
    if r.site:
        evaluations.append(hd.sr.QualitativeEvaluation(SITE, Code("site", SCHEME, r.site[:64])))
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier="pneumo reading"),
        finding_type=PNEUMONIA,
        algorithm_id=algorithm,
        measurements=None if r.withheld else [hd.sr.Measurement(PROBABILITY, round(float(r.probability), 6), NO_UNITS, algorithm_id=algorithm),
                                              hd.sr.Measurement(THRESHOLD, round(float(r.threshold), 6), NO_UNITS)],
        qualitative_evaluations=evaluations,
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(source)],
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(
            observer_device_context=hd.sr.ObserverContext(
                observer_type=codes.DCM.Device,
                observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(uid=generate_uid(), name="pneumo",
                                                                                          manufacturer_name=MANUFACTURER,
                                                                                          model_name=model_version(r.weights_sha256)))),
        procedure_reported=CHEST_XRAY,
        imaging_measurements=[group],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sr = hd.sr.Comprehensive3DSR(
            evidence=[source], content=report, series_instance_uid=generate_uid(), series_number=9902,
            sop_instance_uid=generate_uid(), instance_number=1, manufacturer=MANUFACTURER, is_complete=True, is_final=False,
            is_verified=False,
        )
    _drop_patient_study(sr, source)
    sr.SeriesDescription = "pneumo finding (research, not for diagnosis)"
    _general_series_and_study(sr, source)
    _frame_of_reference(sr, source)
    return sr


SR_3D = "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR: what IHE AI Results asks for (TID 1500)
SR_COMPREHENSIVE = "1.2.840.10008.5.1.4.1.1.88.33"  # what older receivers take


def as_comprehensive_sr(dataset: Dataset) -> Dataset:
    """The same report as a Comprehensive SR: a TID 1500 report without 3D coordinates fits both."""
    dataset.SOPClassUID = SR_COMPREHENSIVE
    meta = getattr(dataset, "file_meta", None)
    if meta is not None and "MediaStorageSOPClassUID" in meta:
        meta.MediaStorageSOPClassUID = SR_COMPREHENSIVE
    return dataset


def to_bytes(dataset: Dataset) -> bytes:
    """A data set as a DICOM file (preamble, file meta) in memory."""
    import io

    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
