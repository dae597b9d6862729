"""Is an upload plausibly a frontal chest radiograph? A guard in front of the diagnosis.

How it works, on what the model itself would see (the 299x299 grayscale input) plus the colour of
the decoded picture, in this order:

1. colour: radiographs are gray. A picture whose mean chroma (Hasler-Süsstrunk colourfulness)
   is above COLOUR_LIMIT is a colour photo, a screenshot or a chart.
2. blank: a picture with almost no contrast (standard deviation below BLANK_STD of full scale).
3. detail: radiographs carry fine structure (ribs, vessels, edges). A picture whose mean absolute
   Laplacian, relative to its contrast, is far below every training X-ray's is a gradient, a
   blurred scene or a blank page.
4. layout: frontal chest X-rays share one layout (dark lungs either side of a bright spine and
   heart, shoulders above, diaphragm below). The image is shrunk to 32x32, standardised (zero
   mean, unit variance) and projected onto the top principal components of the training X-rays.
   Two distances from "chest X-ray" come out: the share of its energy the components cannot
   explain (residual), and how unusual its coordinates along them are (Mahalanobis). Above the
   limits set on the training X-rays, the picture is flagged; if its negative fits, it is flagged
   as an inverted (negative) X-ray, which is also what a MONOCHROME1 DICOM whose pixels were
   really MONOCHROME2 looks like.

The principal components and the limit are fitted by `python -m pneumo.guard --fit` on the
training split only and shipped in weights/xray_guard.npz (~70 KB). `--measure` prints the false
alarm rate on the test X-rays and the detection rate on generated non-X-ray pictures.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pneumo import paths

GUARD_FILE = "xray_guard.npz"
THUMB = 32
COMPONENTS = 24
COLOUR_LIMIT = 12.0  # colourfulness on 0..255; gray JPEG copies of X-rays measure < 3
BLANK_STD = 0.03
# Each limit is an extreme quantile of the training X-rays' values, widened by a margin for other
# hospitals and scanners (a real adult CR radiograph sits well inside all of them).
LIMIT_QUANTILE = 0.999
RESIDUAL_MARGIN = 1.1
MAHALANOBIS_MARGIN = 1.15
DETAIL_MARGIN = 0.7


@dataclass
class Verdict:
    plausible: bool
    reason: str | None  # for a person, when not plausible
    residual: float  # distance from the X-ray layout (0 = perfect fit; nan when not measured)
    colourfulness: float


def colourfulness(image: Image.Image) -> float:
    """Hasler and Süsstrunk (2003) colourfulness of an RGB picture (0 for gray), on 0..255."""
    if image.mode not in ("RGB", "RGBA", "P", "CMYK", "YCbCr", "LAB", "HSV", "PA"):
        return 0.0
    rgb = np.asarray(image.convert("RGB").resize((128, 128), Image.Resampling.BILINEAR), dtype=np.float64)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def thumbnails(gray299: np.ndarray) -> np.ndarray:
    """uint8 (N, 299, 299) -> standardised float (N, THUMB*THUMB)."""
    gray299 = np.asarray(gray299)
    if gray299.ndim == 2:
        gray299 = gray299[np.newaxis]
    small = np.stack([np.asarray(Image.fromarray(g).resize((THUMB, THUMB), Image.Resampling.BOX), dtype=np.float64) for g in gray299])
    flat = small.reshape(len(small), -1)
    flat = flat - flat.mean(axis=1, keepdims=True)
    return flat / np.maximum(flat.std(axis=1, keepdims=True), 1e-6)


def detail(gray299: np.ndarray) -> np.ndarray:
    """Mean absolute Laplacian relative to the standard deviation: fine structure per unit contrast."""
    x = np.asarray(gray299, dtype=np.float64)
    if x.ndim == 2:
        x = x[np.newaxis]
    laplacian = 4 * x[:, 1:-1, 1:-1] - x[:, :-2, 1:-1] - x[:, 2:, 1:-1] - x[:, 1:-1, :-2] - x[:, 1:-1, 2:]
    return np.abs(laplacian).mean(axis=(1, 2)) / np.maximum(x.std(axis=(1, 2)), 1e-6)


class XrayGuard:
    def __init__(self, mean: np.ndarray, components: np.ndarray, scales: np.ndarray, limits: dict[str, float]):
        self.mean, self.components, self.scales = mean, components, scales
        self.limits = {k: float(v) for k, v in limits.items()}  # residual, mahalanobis (max); detail (min)

    def distances(self, gray299: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(residual, Mahalanobis distance) of each image from the X-ray layout."""
        thumbs = thumbnails(gray299)
        coefficients = (thumbs - self.mean) @ self.components.T
        residual = ((thumbs - self.mean - coefficients @ self.components) ** 2).sum(axis=1) / thumbs.shape[1]
        mahalanobis = np.sqrt(((coefficients / self.scales) ** 2).sum(axis=1))
        return residual, mahalanobis

    def _fits(self, gray299: np.ndarray) -> tuple[bool, float]:
        residual, mahalanobis = (float(v[0]) for v in self.distances(gray299))
        return residual <= self.limits["residual"] and mahalanobis <= self.limits["mahalanobis"], residual

    def check(self, gray299: np.ndarray, picture: Image.Image | None = None) -> Verdict:
        """Whether `gray299` (the model's uint8 input) and its decoded `picture` look like a chest X-ray."""
        gray299 = np.asarray(gray299)
        colour = colourfulness(picture) if picture is not None else 0.0
        if colour > COLOUR_LIMIT:
            return Verdict(False, "This is a colour picture; radiographs are grayscale. It is probably not a chest X-ray.", float("nan"), colour)
        if float(gray299.std()) / 255.0 < BLANK_STD:
            return Verdict(False, "The picture is blank or almost uniform: there is no X-ray to read.", float("nan"), colour)
        if float(detail(gray299)[0]) < self.limits["detail"]:
            return Verdict(False, "The picture has none of the fine detail of a radiograph (ribs, vessels, edges): it is not a chest X-ray, or far too blurred.", float("nan"), colour)
        fits, residual = self._fits(gray299)
        if fits:
            return Verdict(True, None, residual, colour)
        if self._fits(255 - gray299)[0]:
            return Verdict(
                False,
                "This looks like an inverted (negative) chest X-ray: bones dark, lungs bright. The model reads "
                "positive images; if this came from a DICOM file, its photometric interpretation may be mislabelled.",
                residual,
                colour,
            )
        return Verdict(False, "This does not look like a frontal chest X-ray: its layout is unlike any in the training data.", residual, colour)

    def save(self, path: str | Path, **info) -> None:
        np.savez(
            path, mean=self.mean.astype(np.float32), components=self.components.astype(np.float32),
            scales=self.scales.astype(np.float32), limits=json.dumps(self.limits), info=json.dumps(info),
        )

    @classmethod
    def load(cls, path: str | Path) -> "XrayGuard":
        with np.load(path) as f:
            return cls(*(f[k].astype(np.float64) for k in ("mean", "components", "scales")), json.loads(str(f["limits"])))

    @classmethod
    def fit(cls, gray299: np.ndarray, n_components: int = COMPONENTS) -> "XrayGuard":
        thumbs = thumbnails(gray299)
        mean = thumbs.mean(axis=0)
        _, singular, vt = np.linalg.svd(thumbs - mean, full_matrices=False)
        scales = singular[:n_components] / np.sqrt(len(thumbs))  # std of each coordinate
        guard = cls(mean, vt[:n_components], scales, {})
        residual, mahalanobis = guard.distances(gray299)
        guard.limits = {
            "residual": float(np.quantile(residual, LIMIT_QUANTILE) * RESIDUAL_MARGIN),
            "mahalanobis": float(np.quantile(mahalanobis, LIMIT_QUANTILE) * MAHALANOBIS_MARGIN),
            "detail": float(np.quantile(detail(gray299), 1 - LIMIT_QUANTILE) * DETAIL_MARGIN),
        }
        return guard


SHIPPED_GUARD = paths.REPO_ROOT / "weights" / GUARD_FILE


def load_guard(path: str | Path = SHIPPED_GUARD) -> XrayGuard | None:
    """The shipped guard (it does not depend on which model weights are in use); None if absent."""
    path = Path(path)
    return XrayGuard.load(path) if path.is_file() else None


def _measure(guard: XrayGuard, data_dir: Path, cache_dir: str | None) -> dict:
    from pneumo.data import load_images, optional_test_split
    from pneumo.imageio import read_file
    from pneumo.preprocess import to_gray299
    from pneumo.synthetic import non_xray_images

    report: dict = {"limits": guard.limits}
    test = optional_test_split(data_dir)
    if test:
        gray, _ = load_images(test, cache_dir)
        flagged = [not guard.check(g).plausible for g in gray]
        report["test_xrays"] = {"images": len(gray), "false_alarms": int(sum(flagged))}
        report["test_xrays_inverted"] = {"images": len(gray), "flagged": int(sum(not guard.check(255 - g).plausible for g in gray))}
    dicom_dir = data_dir.parent / "dicom"
    for dcm in sorted(dicom_dir.glob("*.dcm")):
        decoded = read_file(dcm)
        verdict = guard.check(to_gray299(decoded.image), decoded.image)
        report[dcm.name] = {"plausible": verdict.plausible, "reason": verdict.reason, "residual": round(verdict.residual, 4)}
    samples = non_xray_images()
    missed = []
    for name, image in samples:
        if guard.check(to_gray299(image), image).plausible:
            missed.append(name)
    report["non_xrays"] = {"images": len(samples), "detected": len(samples) - len(missed), "missed": missed}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo.guard", description="Fit or measure the not-a-chest-X-ray guard.")
    parser.add_argument("--fit", action="store_true", help="fit on DATA_DIR/train and write weights/xray_guard.npz")
    parser.add_argument("--measure", action="store_true", help="false alarms on DATA_DIR/test and DICOMs, detection on generated non-X-rays")
    parser.add_argument("--data-dir", default=str(paths.DEFAULT_DATA_DIR))
    parser.add_argument("--out", default=str(SHIPPED_GUARD))
    parser.add_argument("--cache-dir", default=str(paths.DEFAULT_CACHE_DIR))
    args = parser.parse_args(argv)
    if args.fit:
        from pneumo.data import list_split, load_images

        gray, _ = load_images(list_split(args.data_dir, "train"), args.cache_dir or None)
        guard = XrayGuard.fit(gray)
        guard.save(args.out, fitted_on=f"{len(gray)} images of {args.data_dir}/train", components=COMPONENTS, thumb=THUMB)
        print(f"fitted on {len(gray)} training X-rays; limits {guard.limits}; wrote {args.out}")
    if args.measure:
        guard = XrayGuard.load(args.out)
        print(json.dumps(_measure(guard, Path(args.data_dir), args.cache_dir or None), indent=2))
    if not (args.fit or args.measure):
        parser.print_help()
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
