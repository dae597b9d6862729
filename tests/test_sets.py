"""The measurement sets, named once (pneumo.training.sets): each reads as docs and campaigns say,
and an absent folder gives an empty set or a clear error, never a different set."""

from __future__ import annotations

from collections import Counter

import pytest

from conftest import FULL_DATA, SHARED_DATA
from pneumo.training import sets

needs_shared = pytest.mark.skipif(not (FULL_DATA.is_dir() and (SHARED_DATA / "adult").is_dir() and (SHARED_DATA / "adult_web").is_dir()),
                                  reason="the shared data is absent")


@needs_shared
def test_each_set_reads_as_documented():
    training, validation = sets.training(), sets.validation()
    assert len(training) == 5216 and len(validation) == 524 and len(sets.test()) == 624
    assert sets.in_validation(training).sum() == 524 and not set(s.patient for s in validation) & {
        s.patient for s, held in zip(training, sets.in_validation(training)) if not held}
    assert Counter(s.source for s in sets.adults()) == {"NIH": 2000, "Hannover": 228, "web": 265}
    assert Counter(s.source for s in sets.adults(sources=("NIH", "Hannover"))) == {"NIH": 2000, "Hannover": 228}
    assert {s.source for s in sets.adults(sources=("web",))} == {"web"}
    others = sets.other_children()
    assert len(others) == 16 and all(s.age is not None and s.age < 18 for s in others)
    assert [d.name for d in sets.dicoms()] == ["chest_cr_pa_monochrome1.dcm", "chest_cr_pa_monochrome2.dcm"]


def test_the_non_xrays_are_the_120_generated_pictures():
    pictures = sets.non_xrays()
    assert len(pictures) == 120 and len({name for name, _ in pictures}) == 120


def test_absent_folders_give_empty_sets_or_a_clear_error(tmp_path):
    assert sets.other_children(tmp_path) == [] and sets.dicoms(tmp_path / "data") == []
    assert sets.test(tmp_path, required=False) == []
    with pytest.raises(FileNotFoundError, match="no 'test' folder"):
        sets.test(tmp_path)
