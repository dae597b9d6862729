"""DICOM in and out (issue #46): every transfer syntax of pydicom's own test corpus decodes or gets a
message naming it; a real chest DICOM re-encoded in each syntax that can be written here reads as the
uncompressed file does; and for a DICOM input the results a PACS files, a Secondary Capture and a
Structured Report, read back by pydicom, parsed by highdicom and opened by Pillow, in the source's
study, new series, with the source's patient and nothing else from it."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest
from PIL import Image

from pneumo.reading.decode import ImageReadError, decode

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "tests" / "data" / "dicom"
CORPUS = Path(pydicom.data.__file__).parent / "test_files"  # what pydicom ships to test itself
JPEG = REPO_ROOT / "examples" / "NORMAL" / "IM-0201-0001.jpeg"
LOSSLESS = ("uncompressed", "rle", "j2k_lossless", "jpegls_lossless", "deflated")
LOSSY = ("j2k_lossy", "jpegls_near")
# What the outputs may share with the source: the Patient and General Study modules (filing needs
# them), and values they set themselves that can coincide (the image's own geometry, numbering).
FILING = {"SpecificCharacterSet", "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "IssuerOfPatientID",
          "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber", "StudyDescription"}
OWN = {"SOPClassUID", "InstanceNumber", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
       "SamplesPerPixel", "PatientOrientation", "PositionReferenceIndicator", "FrameOfReferenceUID"}


@pytest.fixture(scope="module")
def model():
    import pneumo

    return pneumo.load()


def _corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*") if p.is_file())


def test_every_transfer_syntax_of_pydicoms_corpus_decodes_with_the_shipped_decoders():
    """Per syntax, at least one of the corpus's files decodes (the broken ones may not)."""
    decoded: dict[str, bool] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in _corpus_files():
            try:
                ds = pydicom.dcmread(path, force=True)
                syntax = str(ds.file_meta.TransferSyntaxUID)
            except Exception:  # noqa: BLE001 - not a DICOM file, or no transfer syntax stated
                continue
            if "PixelData" in ds:
                try:
                    ds.pixel_array
                    decoded[syntax] = True
                except Exception:  # noqa: BLE001
                    decoded.setdefault(syntax, False)
    named = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80",
             "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.5",
             "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"}  # the list: baseline ... big-endian
    assert named <= set(decoded)
    assert [pydicom.uid.UID(s).name for s, ok in decoded.items() if not ok] == []


def test_every_file_of_the_corpus_gives_a_picture_or_a_message_and_a_failed_decoding_names_its_syntax():
    for path in _corpus_files():
        try:
            decode(path.read_bytes(), path.name)
        except ImageReadError as error:
            if "cannot be decoded" in str(error):
                assert "stored as" in str(error) and "1.2.840.10008.1.2" in str(error), str(error)


def test_the_cli_over_pydicoms_whole_corpus_gives_each_file_a_result_or_a_message_and_warns_on_every_reading():
    files = _corpus_files()
    out = subprocess.run([sys.executable, "-m", "pneumo", "predict", str(CORPUS), "--json", "--no-maps"], capture_output=True,
                         text=True, cwd=REPO_ROOT, timeout=300)
    assert out.returncode in (0, 1), out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == len(files)
    for row in rows:
        assert (row["probability"] is None) != (row["error"] is None), row
        if row["probability"] is not None:  # nothing in this corpus is a chest X-ray: each reading carries a warning
            assert row["warning_kind"], row
    assert sum(row["probability"] is not None for row in rows) >= 40


def test_a_chest_dicom_re_encoded_in_each_syntax_reads_as_the_uncompressed_file(model):
    reference = decode((FIXTURES / "chest_uncompressed.dcm").read_bytes())
    p0 = model.predict(FIXTURES / "chest_uncompressed.dcm").probability
    for stem in LOSSLESS + LOSSY:
        path = FIXTURES / f"chest_{stem}.dcm"
        assert pydicom.dcmread(path).file_meta.TransferSyntaxUID != pydicom.uid.ExplicitVRLittleEndian or stem == "uncompressed"
        p = model.predict(path).probability
        if stem in LOSSLESS:
            assert np.array_equal(np.asarray(decode(path.read_bytes()).image), np.asarray(reference.image)), stem
            assert p == p0, stem
        else:
            assert abs(p - p0) <= 0.01, (stem, p, p0)


def test_a_dicom_reading_gives_a_secondary_capture_and_a_structured_report_a_pacs_can_file(model, tmp_path):
    import highdicom as hd

    source_path = FIXTURES / "chest_jpegls_lossless.dcm"
    source = pydicom.dcmread(source_path, stop_before_pixels=True)
    result = model.predict(source_path)
    sc, sr = result.to_dicom()
    sc.save_as(tmp_path / "sc.dcm", enforce_file_format=True)
    sr.save_as(tmp_path / "sr.dcm", enforce_file_format=True)
    sc, sr = pydicom.dcmread(tmp_path / "sc.dcm"), pydicom.dcmread(tmp_path / "sr.dcm")  # read back

    assert sc.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
    picture = Image.fromarray(sc.pixel_array)  # a second reader: Pillow
    assert picture.mode == "RGB" and picture.width == source.Columns and picture.height > source.Rows  # the caption band
    band = np.asarray(picture)[source.Rows:]
    assert band.max() == 255  # the caption's text
    for dataset in (sc, sr):
        assert dataset.StudyInstanceUID == source.StudyInstanceUID  # the source's study
        assert dataset.SeriesInstanceUID != source.SeriesInstanceUID and dataset.SOPInstanceUID != source.SOPInstanceUID
        for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex"):
            assert dataset.get(keyword) == source.get(keyword), keyword  # the patient module, unchanged
        shared = {e.keyword for e in source if e.keyword in dataset and dataset[e.keyword].value == e.value}
        assert shared <= FILING | OWN, shared - FILING - OWN  # nothing else from the source
        assert "PatientAge" not in dataset
    assert sc.SeriesInstanceUID != sr.SeriesInstanceUID

    # an adult's film: withheld, as on the page: the finding is "not assessed", with the reason, and no probability
    assert result.warning_kind == "population" and result.withheld
    assert "no reading" in sc.ImageComments and f"{result.probability:.0%}" not in sc.ImageComments
    parsed = hd.sr.Comprehensive3DSR.from_dataset(sr)  # highdicom's own parsing (TID 1500)
    group = parsed.content.get_image_measurement_groups()[0]
    assert not group.get_measurements()
    evaluations = {q.name.meaning: q.value for q in group.get_qualitative_evaluations()}
    assert evaluations["Presence of property"].meaning == "Presence Undetermined"  # not assessed; the caveat says why
    assert "training population" in evaluations["Reading caveat"].meaning
    assert group.source_images[0].referenced_sop_instance_uid == source.SOPInstanceUID
    assert sr.CurrentRequestedProcedureEvidenceSequence[0].StudyInstanceUID == source.StudyInstanceUID

    # a person asked to see it anyway: the reading, and the caption says it was shown at their request
    import dataclasses

    sc, sr = dataclasses.replace(result, shown_anyway=True).to_dicom()
    assert "Shown at a user's request" in sc.ImageComments
    group = hd.sr.Comprehensive3DSR.from_dataset(sr).content.get_image_measurement_groups()[0]
    values = {m.name.meaning: m.value for m in group.get_measurements()}
    assert values["Probability"] == pytest.approx(result.probability, abs=1e-6)
    assert values["Threshold Value"] == pytest.approx(result.threshold, abs=1e-6)
    evaluations = {q.name.meaning: q.value for q in group.get_qualitative_evaluations()}
    said = {"PNEUMONIA": "Present", "NORMAL": "Absent", "INDETERMINATE": "Indeterminate"}[result.reading]
    assert evaluations["Presence of property"].meaning == said and group.finding_type.meaning == "Pneumonia"
    assert evaluations["Presence of property"].scheme_designator in ("DCM", "SCT")  # a standard vocabulary wherever one exists


def test_a_jpeg_gets_no_dicom_results_and_a_reason(model):
    from pneumo.outputs.dicom import NotDicom

    with pytest.raises(NotDicom, match="JPEG or PNG"):
        model.predict(JPEG).to_dicom()


def test_the_cli_writes_dicom_results_for_dicom_inputs_and_says_why_not_for_a_jpeg(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pneumo", "predict", str(FIXTURES / "chest_rle.dcm"), str(JPEG), "--json",
                          "--dicom-out", str(tmp_path / "pacs")], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "pacs").iterdir()) == ["chest_rle.sc.dcm", "chest_rle.sr.dcm"]
    assert "1 JPEG/PNG input(s) have no patient or study" in out.stderr
    import highdicom as hd

    row = json.loads(out.stdout.splitlines()[0])
    group = hd.sr.Comprehensive3DSR.from_dataset(pydicom.dcmread(tmp_path / "pacs" / "chest_rle.sr.dcm")).content.get_image_measurement_groups()[0]
    # the CLI's row keeps the probability beside the warning for researchers; the SR a PACS files withholds it
    assert row["warning_kind"] == "population" and 0 <= row["probability"] <= 1
    assert not group.get_measurements()
    assert {q.name.meaning: q.value.meaning for q in group.get_qualitative_evaluations()}["Presence of property"] == "Presence Undetermined"
