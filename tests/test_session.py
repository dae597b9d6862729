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
    monkeypatch.setattr(session, "MAX_CACHED_BYTES", 5 * 299 * 299)  # room for about three files of 40
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
