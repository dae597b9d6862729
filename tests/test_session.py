"""The page's store of results (pneumo.ui.session): what a row keeps, and a table larger than the
store's bound. The networks are stand-ins: the store's behaviour is what is tested."""

import io
from types import SimpleNamespace

import numpy as np
from PIL import Image


def _reader(probabilities, masks):
    from pneumo.bundle import read_bundle
    from pneumo.reading import Reader

    networks = SimpleNamespace(bundle=read_bundle(), threshold=0.5, site=None, probabilities=lambda x, batch_size: probabilities(len(x)),
                               lung_masks=lambda gray, **_: masks(len(gray)))
    return Reader(networks=networks)


def _pngs(n: int, side=(64, 64), random: bool = False) -> list[tuple[str, bytes]]:
    files = []
    for k in range(n):
        buffer = io.BytesIO()
        pixels = np.random.default_rng(k).integers(0, 256, side, dtype=np.uint8) if random else np.full(side, k * 5, np.uint8)
        Image.fromarray(pixels).save(buffer, format="PNG")
        files.append((f"f{k}.png", buffer.getvalue()))
    return files


def test_a_result_keeps_its_mask_as_bits_and_gives_it_back_whole():
    import dataclasses

    from pneumo.reading import Result
    from pneumo.reading.reader import _packed

    mask = np.zeros((299, 299), bool)
    mask[60:240, 40:130] = mask[60:240, 170:260] = True  # two lung fields
    mask[5, 7] = True  # a lone pixel: no rounding at byte edges
    result = Result("x.png", gray299=np.zeros((299, 299), np.uint8), picture=Image.new("L", (10, 10)), probability=0.5, lung_bits=_packed(mask))
    np.testing.assert_array_equal(result.lungs, mask)
    assert result.lungs.dtype == bool and result.lung_bits.nbytes == -(-299 * 299 // 8)
    np.testing.assert_array_equal(dataclasses.replace(result, name="y.png").lungs, mask)
    assert result.nbytes() == 100 + 299 * 299 + result.lung_bits.nbytes
    assert Result("x.png", probability=0.5).lungs is None
    dicom = dataclasses.replace(result, lung_bits=None, values=np.zeros((10, 10), np.float32))  # a DICOM's own values
    assert dicom.nbytes() == 100 + 299 * 299 + 400
    assert result.light().nbytes() == result.lung_bits.nbytes and not result.light().complete


def test_a_table_larger_than_the_pages_store_reads_each_file_once_and_shows_every_row(monkeypatch):
    import pneumo.reading.reader as reading
    import pneumo.ui.session as session

    store: dict = {}
    reads: list[str] = []
    real_prepare = reading.prepare
    monkeypatch.setattr(session, "results_store", lambda: store)
    monkeypatch.setattr(reading, "prepare", lambda data, name, guard=None: reads.append(name) or real_prepare(data, name, guard))
    monkeypatch.setattr(session, "MAX_CACHED_FILES", 5)  # room for five files of 40
    reader = _reader(lambda n: np.linspace(0, 1, n), lambda n: None)
    pngs = _pngs(40)
    rows = session.read_table(pngs, reader)
    assert [r.name for r in rows] == [name for name, _ in pngs] and sorted(reads) == sorted(name for name, _ in pngs)
    assert len(store) <= 5  # the bound holds
    reads.clear()
    again = session.read_table(pngs[-2:] + pngs[:1], reader)  # the newest are kept; the first was dropped
    assert [r.name for r in again] == ["f38.png", "f39.png", "f0.png"] and reads == ["f0.png"]


def test_a_table_row_keeps_no_pictures_until_it_is_opened_and_then_the_same_as_reading_it_alone(monkeypatch):
    import pneumo.ui.session as session
    from pneumo.reading.reader import prepare
    from pneumo.ui.sidebar import Settings

    store: dict = {}
    monkeypatch.setattr(session, "results_store", lambda: store)
    reader = _reader(lambda n: np.full(n, 0.7), lambda n: np.ones((n, 299, 299), bool))
    uploads = _pngs(3, (400, 300), random=True)
    rows = session.read_table(uploads, reader)
    assert not any(r.complete for r in rows) and all(r.picture is None and r.gray299 is None for r in rows)
    assert all(r.lungs.all() and r.probability == 0.7 for r in rows) and sum(r.nbytes() for r in store.values()) < 3 * 12_000
    complete = session.completer(uploads, reader)
    opened = complete(rows[1])
    alone = prepare(uploads[1][1], "f1.png", reader.guard)
    assert opened.complete and opened.probability == 0.7 and opened.lungs.all()
    np.testing.assert_array_equal(opened.gray299, alone.gray299)
    assert opened.picture.tobytes() == alone.picture.tobytes() and opened.digest == alone.digest
    assert store[alone.digest].complete and complete(opened) is opened  # kept opened; not read again
    printed = complete(rows[2], keep=False)
    assert printed.complete and not store[session._key(uploads[2][1], reader)].complete  # the PDF's copy is not kept
    settings = Settings(threshold=0.5, target="predicted", method="hirescam", opacity=0.4, prevalence=0.1)
    single = session.read_one(uploads[2][1], "again.png", reader, settings)  # the same file uploaded alone later
    assert single.complete and single.name == "again.png" and single.probability == 0.7
