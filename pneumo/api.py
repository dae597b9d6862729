"""The one-call Python API over the reader the page and the CLI use, so its numbers are theirs.

    import pneumo
    model = pneumo.load()                          # the shipped weights, or pneumo.load("path/to/pneumonia.keras")
    model = pneumo.load(site="site.json")          # fitted to a site (pneumo adapt): its statistics and threshold
    result = model.predict("xray.dcm")             # a path, bytes, a PIL image or a 2-D array
    result.probability, result.label, result.reading, result.warning_kind, result.warning
    result.heatmap                                 # 299x299 float map of the default method (HiResCAM)
    result.overlay()                               # PIL image: the X-ray with its map
    sc, sr = result.to_dicom()                     # a DICOM input: Secondary Capture and Structured Report (pydicom data sets)
    model.predict_many(paths)                      # a list of results, batched as the CLI reads; a bad file gives .error
    profile, said = model.fit_site(["ward7/"], name="Ward 7")   # what `pneumo adapt` does; profile.save("site.json")

A result is a pneumo.reading.Result.
"""

from __future__ import annotations

from pathlib import Path

from pneumo.bundle import DEFAULT_MODEL
from pneumo.reading import Input, Reader, Result


class Model:
    """The shipped model (or another bundle) with the page's checks; see the module's docstring."""

    def __init__(self, weights: str | Path = DEFAULT_MODEL, site: str | Path | None = None):
        self.reader = Reader(weights, site=site)
        self.threshold = self.reader.threshold
        self.band = self.reader.band

    def predict(self, item: Input) -> Result:
        """One X-ray. Raises pneumo.reading.ImageReadError, with a message for a person, when it cannot be read."""
        return self.reader.read(item)

    def predict_many(self, items: list[Input]) -> list[Result]:
        """Several X-rays, in order, read in batches as the CLI reads them (the same probabilities); an
        input that cannot be read gives a Result with `error` set."""
        return list(self.reader.read_many(items))

    def fit_site(self, inputs: list[str | Path], name: str = "my site", labels: str | Path | dict[str, int] | None = None):
        """A site profile from a site's films, as `pneumo adapt` makes it: folders are walked, NORMAL/ and
        PNEUMONIA/ folders (or `labels`: a CSV of file and label, or file name -> 0/1) give labels; with at
        least 20 labelled films of each class a site threshold, else, from 32 films or more, label-free
        adaptation. Returns (pneumo.reading.SiteProfile, the lines a person is told about it); raises
        pneumo.reading.NothingToFit (a ValueError with a message for a person) when the films allow none."""
        from pneumo.reading import describe_fit, expand_inputs, fit_files, read_labels

        if isinstance(labels, (str, Path)):
            labels = read_labels(labels)
        profile, report, _ = fit_files(self.reader, expand_inputs([str(item) for item in inputs]), name, labels)
        return profile, describe_fit(report, profile)

    def __call__(self, item: Input) -> Result:
        return self.predict(item)


def load(weights: str | Path | None = None, site: str | Path | None = None) -> Model:
    """The shipped model (default) or the bundle beside `weights` (a .keras file); with `site`, a site
    profile made by `pneumo adapt` for those weights (pneumo.reading.SiteProfileError, a ValueError with
    a message for a person, when it cannot be used)."""
    path = Path(weights) if weights is not None else DEFAULT_MODEL
    if not path.is_file():
        raise FileNotFoundError(f"no model at {path}; train one with `python train.py` or give the path of a .keras file")
    return Model(path, site)
