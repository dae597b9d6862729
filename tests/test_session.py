"""The page's store of results (pneumo.ui.session): what a row keeps, and a table larger than the
store's bound."""

import numpy as np
from PIL import Image


def test_the_page_keeps_each_mask_as_bits_and_gives_it_back_whole():
    import dataclasses
    from types import SimpleNamespace

    from pneumo.ui.session import Analysis, _packed, _size

    mask = np.zeros((299, 299), bool)
    mask[60:240, 40:130] = mask[60:240, 170:260] = True  # two lung fields
    mask[5, 7] = True  # a lone pixel: no rounding at byte edges
    prepared = SimpleNamespace(gray299=np.zeros((299, 299), np.uint8), picture=Image.new("L", (10, 10)), view=None)
    analysis = Analysis("x.png", prepared, 0.5, {}, _packed(mask))
    np.testing.assert_array_equal(analysis.lungs, mask)
    assert analysis.lungs.dtype == bool and analysis.lung_bits.nbytes == -(-299 * 299 // 8)
    np.testing.assert_array_equal(dataclasses.replace(analysis, name="y.png").lungs, mask)
    assert _size(analysis) == 100 + 299 * 299 + analysis.lung_bits.nbytes
    assert Analysis("x.png", prepared, 0.5).lungs is None
    dicom = SimpleNamespace(**{**vars(prepared), "view": SimpleNamespace(values=np.zeros((10, 10), np.float32))})  # a DICOM's own values
    assert _size(Analysis("x.dcm", dicom, 0.5)) == 100 + 299 * 299 + 400


def test_a_table_larger_than_the_pages_store_reads_each_file_once_and_shows_every_row(monkeypatch):
    import io
    from types import SimpleNamespace

    import pneumo.ui.session as session

    store: dict = {}
    reads: list[str] = []
    real_prepare = session.prepare
    monkeypatch.setattr(session, "results_store", lambda: store)
    monkeypatch.setattr(session, "prepare", lambda data, name, guard: reads.append(name) or real_prepare(data, name, guard))
    monkeypatch.setattr(session, "MAX_CACHED_FILES", 5)  # room for five files of 40
    engine = SimpleNamespace(site=None, probabilities=lambda gray: np.linspace(0, 1, len(gray)), lung_masks=lambda gray: None)
    pngs = []
    for k in range(40):
        buffer = io.BytesIO()
        Image.fromarray(np.full((64, 64), k * 5, np.uint8)).save(buffer, format="PNG")
        pngs.append((f"f{k}.png", buffer.getvalue()))
    rows = session.analyse_many(pngs, engine, None)
    assert [r.name for r in rows] == [name for name, _ in pngs] and sorted(reads) == sorted(name for name, _ in pngs)
    assert len(store) <= 5  # the bound holds
    reads.clear()
    again = session.analyse_many(pngs[-2:] + pngs[:1], engine, None)  # the newest are kept; the first was dropped
    assert [r.name for r in again] == ["f38.png", "f39.png", "f0.png"] and reads == ["f0.png"]


def test_a_table_row_keeps_no_pictures_until_it_is_opened_and_then_the_same_as_reading_it_alone(monkeypatch):
    import io
    from types import SimpleNamespace

    import pneumo.ui.session as session
    from pneumo.analysis import prepare
    from pneumo.ui.sidebar import Settings

    store: dict = {}
    monkeypatch.setattr(session, "results_store", lambda: store)
    engine = SimpleNamespace(site=None, probabilities=lambda gray: np.full(len(gray), 0.7), lung_masks=lambda gray: np.ones((len(gray), 299, 299), bool))
    uploads = []
    for k in range(3):
        buffer = io.BytesIO()
        Image.fromarray(np.random.default_rng(k).integers(0, 256, (400, 300), dtype=np.uint8)).save(buffer, format="PNG")
        uploads.append((f"f{k}.png", buffer.getvalue()))
    rows = session.analyse_many(uploads, engine, None)
    assert not any(r.complete for r in rows) and all(r.prepared.picture is None and r.prepared.gray299 is None for r in rows)
    assert all(r.lungs.all() and r.probability == 0.7 for r in rows) and sum(session._size(a) for a in store.values()) < 3 * 12_000
    complete = session.completer(uploads, engine, None)
    opened = complete(rows[1])
    alone = prepare(uploads[1][1], "f1.png", None)
    assert opened.complete and opened.probability == 0.7 and opened.lungs.all()
    np.testing.assert_array_equal(opened.prepared.gray299, alone.gray299)
    assert opened.prepared.picture.tobytes() == alone.picture.tobytes() and opened.prepared.digest == alone.digest
    assert store[alone.digest].complete and complete(opened) is opened  # kept opened; not read again
    printed = complete(rows[2], keep=False)
    assert printed.complete and not store[session._key(uploads[2][1], engine)].complete  # the PDF's copy is not kept
    settings = Settings(threshold=0.5, target="predicted", method="hirescam", opacity=0.4, prevalence=0.1)
    single = session.analyse(uploads[2][1], "again.png", engine, settings, None)  # the same file uploaded alone later
    assert single.complete and single.name == "again.png" and single.probability == 0.7
