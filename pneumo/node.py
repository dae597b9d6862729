"""`pneumo listen`: pneumo as a DICOM node. A modality or a PACS sends it chest X-rays; it reads each
with the reader and sends the Secondary Capture and the Structured Report to a destination.

    pneumo listen --port 11112 --send-to ORTHANC@127.0.0.1:4242 [--ae-title PNEUMO] [--site site.json]

It answers C-ECHO and accepts CR, DX and Secondary Capture images (C-STORE) in every transfer
syntax the reader decodes; each association runs on its own thread. An image it cannot read gets a
failure status and a log line, and the node serves the next one. Results wait in a bounded queue on
disk (`--queue DIR`) until the destination takes them, retried with backoff while it is down; a
result is deleted once delivered, and nothing else is written. Where the destination refuses
Comprehensive 3D SR, the same report goes as Comprehensive SR, and the log says so. SIGTERM or
Ctrl-C stops taking images, finishes what is in flight and leaves what is undelivered queued for
the next start. Log lines carry no patient identifiers: images are numbered, files named by a hash.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pneumo.outputs.dicom import SR_3D, SR_COMPREHENSIVE, as_comprehensive_sr

log = logging.getLogger("pneumo.listen")

ACCEPTED = {  # the images the node reads: SOP class UID -> a short name for the log
    "1.2.840.10008.5.1.4.1.1.1": "CR",
    "1.2.840.10008.5.1.4.1.1.1.1": "DX",
    "1.2.840.10008.5.1.4.1.1.1.1.1": "DX (for processing)",
    "1.2.840.10008.5.1.4.1.1.7": "SC",
}
SC_CLASS = "1.2.840.10008.5.1.4.1.1.7"
FAILED_TO_READ = 0xC000  # "Cannot understand": the image could not be read
OUT_OF_RESOURCES = 0xA700  # the queue is full


@dataclass(frozen=True)
class Destination:
    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> "Destination":
        """AET@HOST:PORT. ValueError with a message for a person otherwise."""
        try:
            title, rest = text.split("@", 1)
            host, port = rest.rsplit(":", 1)
            if not title or not host or not 0 < int(port) < 65536 or len(title) > 16:
                raise ValueError
        except ValueError:
            raise ValueError(f"--send-to {text!r}: give the destination as AET@HOST:PORT, e.g. ORTHANC@127.0.0.1:4242") from None
        return cls(title, host, int(port))


def transfer_syntaxes() -> list[str]:
    """Every transfer syntax the reader decodes (docs/DICOM.md)."""
    from pydicom import uid

    return [uid.ImplicitVRLittleEndian, uid.ExplicitVRLittleEndian, uid.DeflatedExplicitVRLittleEndian, uid.ExplicitVRBigEndian,
            uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit, uid.JPEGLossless, uid.JPEGLosslessSV1, uid.JPEGLSLossless,
            uid.JPEGLSNearLossless, uid.JPEG2000Lossless, uid.JPEG2000, uid.RLELossless]


class Queue:
    """Results waiting for the destination: one file each in `folder`, oldest first, at most `limit`."""

    def __init__(self, folder: Path, limit: int):
        self.folder, self.limit = folder, limit
        folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def pending(self) -> list[Path]:
        found = []
        for path in self.folder.glob("*.dcm"):
            try:
                found.append((path.stat().st_mtime_ns, path.name, path))
            except FileNotFoundError:  # delivered and deleted by the sender meanwhile
                continue
        return [path for *_, path in sorted(found)]

    def room(self, n: int) -> bool:
        return len(self.pending()) + n <= self.limit

    def put(self, name: str, data: bytes) -> Path:
        with self._lock:
            path = self.folder / name
            partial = path.with_suffix(".part")
            partial.write_bytes(data)
            partial.replace(path)  # a file appears whole or not at all
            return path


class Node:
    """The listening side (pynetdicom's server, one thread per association) and the sending side (one
    thread that empties the queue into the destination, with backoff while it is down)."""

    def __init__(self, reader, destination: Destination, ae_title: str = "PNEUMO", queue: Queue | None = None,
                 retry: tuple[float, float] = (1.0, 60.0)):
        self.reader, self.destination, self.ae_title = reader, destination, ae_title
        self.queue = queue or Queue(Path.home() / ".cache" / "pneumo" / "queue", 1000)
        self.retry = retry
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.count = 0
        self._count_lock = threading.Lock()
        self.received: dict[str, float] = {}  # queued file -> when its image's last byte arrived (for the log)
        self.server = None
        self.sender = threading.Thread(target=self._send_loop, name="pneumo-sender", daemon=True)

    # --- receiving ----------------------------------------------------------------------------
    def start(self, port: int, host: str = "0.0.0.0", block: bool = False) -> None:
        from pynetdicom import AE, evt
        from pynetdicom.sop_class import Verification

        ae = AE(ae_title=self.ae_title)
        ae.maximum_associations = 16
        ae.add_supported_context(Verification)
        for sop_class in ACCEPTED:
            ae.add_supported_context(sop_class, transfer_syntaxes())
        handlers = [(evt.EVT_C_ECHO, lambda event: 0x0000), (evt.EVT_C_STORE, self.on_store)]
        self.sender.start()
        self.server = ae.start_server((host, port), block=False, evt_handlers=handlers)
        log.info("listening as %s on port %d; results go to %s@%s:%d; queue %s (%d waiting)", self.ae_title, port,
                 self.destination.ae_title, self.destination.host, self.destination.port, self.queue.folder, len(self.queue.pending()))
        if block:
            while not self.stopping.is_set():
                time.sleep(0.2)

    def on_store(self, event) -> int:
        """One image: read it, queue its results, answer the sender; never an exception to pynetdicom."""
        try:
            return self._store(event)
        except Exception as error:  # noqa: BLE001 - a failure status, a log line, and the node goes on
            log.warning("an image could not be taken (%s), failure status sent", _no_identifiers(error))
            return FAILED_TO_READ

    def _store(self, event) -> int:
        arrived = time.monotonic()
        with self._count_lock:
            self.count += 1
            number = self.count
        kind = ACCEPTED.get(str(event.request.AffectedSOPClassUID), "image")
        if not self.queue.room(2):
            log.warning("image %d (%s): refused, the queue holds %d results, its limit", number, kind, self.queue.limit)
            return OUT_OF_RESOURCES
        try:
            buffer = io.BytesIO()
            dataset = event.dataset
            dataset.file_meta = event.file_meta
            dataset.save_as(buffer, enforce_file_format=True)
            result = self.reader.read(buffer.getvalue(), name=f"image {number}")
            sc, sr = result.to_dicom()
        except Exception as error:  # noqa: BLE001 - the sender gets a failure status; the node goes on
            log.warning("image %d (%s): could not be read (%s), failure status sent", number, kind, _no_identifiers(error))
            return FAILED_TO_READ
        from pneumo.outputs.dicom import to_bytes

        stem = hashlib.sha256(str(sc.SOPInstanceUID).encode()).hexdigest()[:16]  # names that identify no one
        for part, dataset in (("sc", sc), ("sr", sr)):
            self.received[self.queue.put(f"{time.time_ns()}-{stem}-{part}.dcm", to_bytes(dataset)).name] = arrived
        said = f"no reading: {result.warning_kind}" if result.withheld else f"{result.reading} {result.probability:.3f}"
        log.info("image %d (%s, %d×%d): %s, read in %.2f s, queued", number, kind, result.size[0], result.size[1], said,
                 time.monotonic() - arrived)
        self.wake.set()
        return 0x0000

    # --- sending ------------------------------------------------------------------------------
    def _send_loop(self) -> None:
        wait = self.retry[0]
        while True:
            pending = self.queue.pending()
            if pending:
                if self.deliver(pending):
                    wait = self.retry[0]
                    continue
                log.warning("destination %s@%s:%d unreachable; %d result(s) queued, next try in %.0f s", self.destination.ae_title,
                            self.destination.host, self.destination.port, len(self.queue.pending()), wait)
                self.wake.wait(wait)
                wait = min(wait * 2, self.retry[1])
            elif self.stopping.is_set():
                return
            else:
                self.wake.wait(1.0)
            self.wake.clear()
            if self.stopping.is_set() and not self.queue.pending():
                return

    def deliver(self, files: list[Path]) -> bool:
        """Send these queued files in one association; True when every file was taken."""
        import pydicom
        from pynetdicom import AE

        ae = AE(ae_title=self.ae_title)
        for sop_class in (SC_CLASS, SR_3D, SR_COMPREHENSIVE):
            ae.add_requested_context(sop_class, [pydicom.uid.ExplicitVRLittleEndian, pydicom.uid.ImplicitVRLittleEndian])
        d = self.destination
        association = ae.associate(d.host, d.port, ae_title=d.ae_title)
        if not association.is_established:
            return False
        accepted = {str(c.abstract_syntax) for c in association.accepted_contexts}
        try:
            for path in files:
                dataset = pydicom.dcmread(path)
                if str(dataset.SOPClassUID) == SR_3D and SR_3D not in accepted and SR_COMPREHENSIVE in accepted:
                    dataset = as_comprehensive_sr(dataset)
                    log.info("%s refuses Comprehensive 3D SR: the report goes as Comprehensive SR", d.ae_title)
                status = association.send_c_store(dataset)
                if not status or status.Status != 0x0000:
                    log.warning("%s did not take a result (status %s); it stays queued", d.ae_title,
                                hex(status.Status) if status else "none: the association dropped")
                    return False
                arrived = self.received.pop(path.name, None)
                path.unlink()
                if arrived is not None and path.name.endswith("-sr.dcm"):
                    log.info("delivered a Secondary Capture and a Structured Report %.2f s after the image arrived", time.monotonic() - arrived)
            return True
        finally:
            association.release()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking images; give the sender `timeout` seconds to deliver; what is left stays queued."""
        if self.server is not None:
            self.server.shutdown()
        self.stopping.set()
        self.wake.set()
        self.sender.join(timeout)
        left = len(self.queue.pending())
        log.info("stopped; %s", f"{left} result(s) stay queued for the next start" if left else "nothing left to deliver")


def _no_identifiers(error: Exception) -> str:
    """An error for the log: its kind and the reader's words, which name the image by its number only."""
    return f"{type(error).__name__}: {error}"[:300]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pneumo listen", description="pneumo as a DICOM node: read the chest X-rays a PACS "
                                     "or a modality sends, and send the results to a destination.")
    parser.add_argument("--port", type=int, default=11112, help="the port to listen on (default 11112)")
    parser.add_argument("--host", default="0.0.0.0", help="the address to listen on (default: every interface)")
    parser.add_argument("--ae-title", default="PNEUMO", help="this node's AE title (default PNEUMO)")
    parser.add_argument("--send-to", required=True, metavar="AET@HOST:PORT", help="where the Secondary Captures and the reports go")
    parser.add_argument("--site", default=None, help="a site profile (pneumo adapt) to read with")
    parser.add_argument("--queue", default=str(Path.home() / ".cache" / "pneumo" / "queue"),
                        help="where results wait for the destination (default ~/.cache/pneumo/queue)")
    parser.add_argument("--queue-max", type=int, default=1000, help="results the queue holds at most; beyond, images are refused")
    args = parser.parse_args(argv)
    # the node's own lines at INFO; the libraries' only when something goes wrong (highdicom's INFO names
    # the source's UIDs, which the log must not carry)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", stream=sys.stdout)
    log.setLevel(logging.INFO)
    try:
        destination = Destination.parse(args.send_to)
        from pneumo.reading import Reader

        reader = Reader(site=args.site)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    node = Node(reader, destination, args.ae_title, Queue(Path(args.queue), args.queue_max))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        node.start(args.port, args.host)
    except OSError as error:
        print(f"error: cannot listen on port {args.port}: {error}", file=sys.stderr)
        return 2
    while not stop.wait(0.5):  # a signal lands between waits
        pass
    node.stop()
    return 0
