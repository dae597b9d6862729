"""One uploaded file, from bytes to what the page shows: read it, preprocess it, check that it
looks like a chest X-ray, keep a display copy. Probability and heatmap live in pneumo.engine;
this module does not import TensorFlow. Uploads are processed in memory only, never written.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from pneumo.guard import Verdict, XrayGuard
from pneumo.imageio import decode
from pneumo.overlay import display_image
from pneumo.population import IN_POPULATION, PopulationVerdict, population_of
from pneumo.preprocess import to_gray299
from pneumo.viewing import ViewSource, Window, view_source_of


@dataclass
class PreparedImage:
    name: str
    digest: str  # sha256 of the bytes: the key results are cached under
    format: str
    # these two are None where only the checks are kept (a row of the page's table, until it is opened)
    picture: Image.Image | None  # upright 8-bit grayscale, at most 1024 px a side, original aspect ratio
    gray299: np.ndarray | None  # what the model sees, as uint8 (see pneumo.preprocess)
    size: tuple[int, int]  # original width, height
    verdict: Verdict | None = None  # None when no guard is shipped
    metadata: dict[str, str] = field(default_factory=dict)  # harmless (DICOM: modality, view, ...)
    identifiers: dict[str, str] = field(default_factory=dict, repr=False)  # patient data: shown only on request
    population: PopulationVerdict = IN_POPULATION  # from the DICOM header or the image score (pneumo.population)
    view: ViewSource | None = field(default=None, repr=False)  # a DICOM's values for window/level (pneumo.viewing)
    dicom: Any = field(default=None, repr=False)  # a DICOM's data set without pixels: results filed beside it (pneumo.dicomout)

    @property
    def warning(self) -> tuple[str, str] | None:
        return warning_of(self.verdict, self.population)

    @property
    def warning_source(self) -> str | None:
        return warning_source(self.warning, self.population)


def warning_of(verdict: Verdict | None, population: PopulationVerdict) -> tuple[str, str] | None:
    """(kind, text) of what speaks against reading a picture, the guard first, then the population
    check; None when nothing does. Kinds, for machines: not_xray, inverted, lateral, population."""
    if verdict is not None and not verdict.plausible:
        return verdict.kind, verdict.reason
    if not population.in_population:
        return population.kind, population.reason
    return None


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def warning_source(warning: tuple[str, str] | None, population: PopulationVerdict) -> str | None:
    """What decided a population or lateral warning: "dicom" (the header) or "image" (the image score); None otherwise."""
    return population.source if warning is not None and warning[0] in ("population", "lateral") else None


def warning_label(warning: tuple[str, str] | None, population: PopulationVerdict) -> str:
    """The warning kind for a table cell: "population (image)" or "population (dicom)" says which decided."""
    source = warning_source(warning, population)
    if warning is not None and warning[0] == "population" and source:
        return f"population ({source})"
    return warning[0] if warning else ""


def model_view(image: Image.Image, guard: XrayGuard | None = None,
               header: dict[str, str] | None = None) -> tuple[np.ndarray, Verdict | None, PopulationVerdict]:
    """A decoded image as the model sees it (uint8 299x299), the guard's verdict on it (None without
    a guard) and the population verdict (the header's where it gives an age or a view, else the
    guard's image score's): the one path of the app, the CLI and the measurements alike."""
    gray299 = to_gray299(image)
    verdict = guard.check(gray299, image) if guard is not None else None
    by_image = guard.adult_score.check(gray299) if guard is not None and guard.adult_score is not None else None
    population = population_of(header or {}, by_image)
    if (verdict is not None and verdict.check == "layout" and verdict.kind == "not_xray"
            and by_image is not None and guard.adult_score.route_layout and by_image.kind == "population"
            and population.kind == "population"):
        # Campaign g3 (docs/POPULATION.md): the layout check alone cannot tell an adult's film from a non-X-ray;
        # the image score can, so such a film gets the population warning instead of "not a chest X-ray".
        verdict = Verdict(True, None, verdict.residual, verdict.colourfulness, layout_passed=False)
    return gray299, verdict, population


def prepare(data: bytes, name: str, guard: XrayGuard | None = None) -> PreparedImage:
    """Decode, preprocess and check one file. Raises pneumo.imageio.ImageReadError with a human message."""
    decoded = decode(data, name)
    gray299, verdict, population = model_view(decoded.image, guard, decoded.header)
    picture = display_image(decoded.image)
    return PreparedImage(
        name=name,
        digest=digest_of(data),
        format=decoded.format,
        picture=picture,
        gray299=gray299,
        size=decoded.image.size,
        verdict=verdict,
        metadata=decoded.metadata,
        identifiers=decoded.identifiers,
        population=population,
        # A DICOM's own values; other pictures are windowed in the display picture's gray values,
        # derived when needed (pneumo.ui.viewer.source_of) rather than kept twice.
        view=None if decoded.values is None else view_source_of(decoded.values, picture, Window(*decoded.window) if decoded.window else None,
                                                               decoded.bright_is_low),
        dicom=decoded.dataset,
    )
