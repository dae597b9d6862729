"""The DICOM node against a real Orthanc on loopback: seconds from an image sent to its SR stored in
Orthanc (with maps), images per minute with four senders at once, and the node's memory after
`--images` images. One JSON line.

    python -m lab.node_bench [--images 500]      # needs Orthanc (apt-get install orthanc)
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import generate_uid

from pneumo.bundle import REPO_ROOT

SOURCE = REPO_ROOT / "tests" / "data" / "dicom" / "chest_jpegls_lossless.dcm"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return json.loads(response.read())


def _copy(source, study: str):
    """The source as a new image in `study` (new series and instance UIDs)."""
    ds = source.copy()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study, generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def _send(port: int, datasets) -> None:
    from pynetdicom import AE

    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(datasets[0].SOPClassUID, datasets[0].file_meta.TransferSyntaxUID)
    association = ae.associate("127.0.0.1", port, ae_title="PNEUMO")
    for ds in datasets:
        status = association.send_c_store(ds)
        assert status and status.Status == 0x0000, status
    association.release()


def _srs(http: int) -> int:
    return sum(1 for s in _get(http, "/series?expand") if s["MainDicomTags"].get("Modality") == "SR")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.node_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=500, help="images through the node before its memory is read")
    parser.add_argument("--latency-images", type=int, default=10)
    args = parser.parse_args(argv)
    source = pydicom.dcmread(SOURCE)
    with tempfile.TemporaryDirectory() as tmp:
        dicom, http, node_port = _port(), _port(), _port()
        config = {"StorageDirectory": f"{tmp}/db", "IndexDirectory": f"{tmp}/db", "DicomAet": "ORTHANC", "DicomPort": dicom,
                  "HttpPort": http, "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "DicomCheckCalledAet": False,
                  "DicomAlwaysAllowStore": True}
        Path(tmp, "orthanc.json").write_text(json.dumps(config))
        orthanc = subprocess.Popen(["Orthanc", f"{tmp}/orthanc.json"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        node = subprocess.Popen([sys.executable, "-m", "pneumo", "listen", "--port", str(node_port), "--host", "127.0.0.1",
                                 "--send-to", f"ORTHANC@127.0.0.1:{dicom}", "--queue", f"{tmp}/queue"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT)
        try:
            while "listening as" not in (node.stdout.readline() or "listening as"):
                pass
            threading.Thread(target=lambda: [None for _ in node.stdout], daemon=True).start()  # keep its log flowing
            latencies = []
            for _ in range(args.latency_images):  # one image at a time: sent -> its SR in Orthanc
                before = _srs(http)
                started = time.monotonic()
                _send(node_port, [_copy(source, generate_uid())])
                while _srs(http) == before:
                    time.sleep(0.02)
                latencies.append(time.monotonic() - started)
            sent = args.latency_images
            per_sender = max(1, (args.images - sent) // 4)
            before = _srs(http)
            started = time.monotonic()
            senders = [threading.Thread(target=_send, args=(node_port, [_copy(source, generate_uid()) for _ in range(per_sender)]))
                       for _ in range(4)]
            for s in senders:
                s.start()
            for s in senders:
                s.join()
            while _srs(http) < before + 4 * per_sender:
                time.sleep(0.2)
            seconds = time.monotonic() - started
            sent += 4 * per_sender
            print(json.dumps({"benchmark": "node", "image": SOURCE.name, "sent_to_sr_stored_s": {
                "median": round(float(np.median(latencies)), 3), "max": round(max(latencies), 3), "n": len(latencies)},
                "four_senders_images_per_minute": round(4 * per_sender / seconds * 60, 1), "four_senders_images": 4 * per_sender,
                "images_through_node": sent, "node_rss_mb_after": round(_rss_mb(node.pid), 1)}))
        finally:
            node.terminate()
            node.wait(timeout=60)
            orthanc.terminate()
            orthanc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
