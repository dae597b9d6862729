"""Fitting and measuring the not-a-chest-X-ray guard (pneumo.reading.guard checks; this module fits it).

    python -m pneumo.training.guard --fit        # on DATA_DIR/train -> weights/xray_guard.npz
    python -m pneumo.training.guard --measure    # false alarms on DATA_DIR/test, the DICOMs and the adult X-rays, detection on non-X-rays

The adult X-rays (../shared/data/adult/) are chest X-rays, so the guard should pass them; it calls
8.5 % of them "not a chest X-ray". Two refits that took adults in (docs/POPULATION.md, g1 and g2)
passed them but let non-X-rays through, and did not ship.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pneumo.bundle import GUARD_FILE
from pneumo.reading.guard import XrayGuard, detail, layout_distances
from pneumo.reading.preprocess import THUMB_SIDE, gradient_histograms, thumbnails
from pneumo.training import sets
from pneumo.training.data import DEFAULT_CACHE_DIR, DEFAULT_DATA_DIR
from pneumo.training.sets import DEFAULT_ADULT_DIR

COMPONENTS = 24
# Each limit is an extreme quantile of the training X-rays' values, widened by a margin for other
# hospitals and scanners (a real adult CR radiograph sits well inside all of them).
LIMIT_QUANTILE = 0.999
RESIDUAL_MARGIN = 1.1
MAHALANOBIS_MARGIN = 1.15
DETAIL_MARGIN = 0.7


def standardised(features: np.ndarray) -> np.ndarray:
    """Each row to mean 0, std 1 (so that features of different kinds can sit side by side)."""
    features = features - features.mean(axis=1, keepdims=True)
    return features / np.maximum(features.std(axis=1, keepdims=True), 1e-6)


# The image features campaigns fitted the population check and layouts on (the shipped check reads hog256).
FEATURES = {
    "thumbnail32": lambda gray: thumbnails(gray, 32),
    "hog128": lambda gray: gradient_histograms(gray, 128),
    "hog256": lambda gray: gradient_histograms(gray, 256),
    "thumbnail32+hog128": lambda gray: np.hstack([thumbnails(gray, 32), standardised(gradient_histograms(gray, 128))]),
}


def image_features(kind: str, gray299: np.ndarray) -> np.ndarray:
    """The population check's features of uint8 (N, 299, 299) images (or one (299, 299))."""
    return FEATURES[kind](gray299)

def fit_guard(gray299: np.ndarray, n_components: int = COMPONENTS) -> XrayGuard:
    """Principal components of the training X-rays' thumbnails and the limits they set."""
    layout = fit_layout(gray299, f"thumbnail{THUMB_SIDE}", n_components)
    limits = layout.limits | {"detail": float(np.quantile(detail(gray299), 1 - LIMIT_QUANTILE) * DETAIL_MARGIN)}
    return XrayGuard(layout.mean, layout.components, layout.scales, limits)


@dataclass
class Layout:
    """Where chest X-rays lie in a space of image features (pneumo.reading.preprocess.FEATURES): principal
    components, and limits on the residual and the Mahalanobis distance (the guard's own method; g6)."""

    features: str
    mean: np.ndarray
    components: np.ndarray
    scales: np.ndarray
    limits: dict[str, float]

    def distances(self, gray299: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return layout_distances(image_features(self.features, gray299), self.mean, self.components, self.scales)

    def fits(self, gray299: np.ndarray) -> bool:
        residual, mahalanobis = (float(v[0]) for v in self.distances(gray299))
        return residual <= self.limits["residual"] and mahalanobis <= self.limits["mahalanobis"]


def fit_layout(gray299: np.ndarray, features: str, n_components: int = COMPONENTS) -> Layout:
    """Principal components of the fitting X-rays' features (pneumo.reading.preprocess.FEATURES) and the
    limits on the residual and the Mahalanobis distance they set: the guard's layout (thumbnails),
    or campaign g6's (edges)."""
    x = image_features(features, gray299)
    mean = x.mean(axis=0)
    _, singular, vt = np.linalg.svd(x - mean, full_matrices=False)
    layout = Layout(features, mean, vt[:n_components], singular[:n_components] / np.sqrt(len(x)), {})
    residual, mahalanobis = layout.distances(gray299)
    layout.limits = {"residual": float(np.quantile(residual, LIMIT_QUANTILE) * RESIDUAL_MARGIN),
                     "mahalanobis": float(np.quantile(mahalanobis, LIMIT_QUANTILE) * MAHALANOBIS_MARGIN)}
    return layout


def save_guard(guard: XrayGuard, path: str | Path, **info) -> None:
    """The file pneumo.reading.guard.XrayGuard.load reads."""
    np.savez(
        path, mean=guard.mean.astype(np.float32), components=guard.components.astype(np.float32),
        scales=guard.scales.astype(np.float32), limits=json.dumps(guard.limits), info=json.dumps(info),
    )


def measure(guard: XrayGuard, data_dir: Path, cache_dir: str | None, adult_dir: Path | None = None) -> dict:
    from pneumo.reading.decode import read_file
    from pneumo.reading.preprocess import to_gray299
    from pneumo.training.data import load_images

    report: dict = {"limits": guard.limits}
    test = sets.test(data_dir, required=False)
    if test:
        gray, _ = load_images(test, cache_dir)
        flagged = [not guard.check(g).plausible for g in gray]
        report["test_xrays"] = {"images": len(gray), "false_alarms": int(sum(flagged))}
        report["test_xrays_inverted"] = {"images": len(gray), "flagged": int(sum(not guard.check(255 - g).plausible for g in gray))}
    for dcm in sets.dicoms(data_dir):
        decoded = read_file(dcm)
        verdict = guard.check(to_gray299(decoded.image), decoded.image)
        report[dcm.name] = {"plausible": verdict.plausible, "reason": verdict.reason, "residual": round(verdict.residual, 4)}
    if adult_dir is not None and (adult_dir / "MANIFEST.csv").is_file():
        adults = sets.adults(adult_dir, sources=("NIH", "Hannover"))
        gray, _ = load_images(adults, cache_dir, progress=False)
        flagged = np.array([not guard.check(g).plausible for g in gray])
        sources = np.array([s.source for s in adults])
        report["adult_xrays"] = {name: {"images": int((sources == name).sum()), "flagged": int(flagged[sources == name].sum())}
                                 for name in ("NIH", "Hannover")}
    samples = sets.non_xrays()
    missed = []
    for name, image in samples:
        if guard.check(to_gray299(image), image).plausible:
            missed.append(name)
    report["non_xrays"] = {"images": len(samples), "detected": len(samples) - len(missed), "missed": missed}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo.training.guard", description="Fit or measure the not-a-chest-X-ray guard.")
    parser.add_argument("--fit", action="store_true", help="fit on DATA_DIR/train and write weights/xray_guard.npz")
    parser.add_argument("--measure", action="store_true", help="false alarms on DATA_DIR/test and DICOMs, detection on generated non-X-rays")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--adult-dir", default=str(DEFAULT_ADULT_DIR))
    parser.add_argument("--out", default=str(GUARD_FILE))
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR))
    args = parser.parse_args(argv)
    if args.fit:
        from pneumo.training.data import load_images

        gray, _ = load_images(sets.training(args.data_dir), args.cache_dir or None)
        guard = fit_guard(gray)
        save_guard(guard, args.out, fitted_on=f"{len(gray)} images of {args.data_dir}/train", components=COMPONENTS, thumb=THUMB_SIDE)
        print(f"fitted on {len(gray)} training X-rays; limits {guard.limits}; wrote {args.out}")
    if args.measure:
        guard = XrayGuard.load(args.out)
        print(json.dumps(measure(guard, Path(args.data_dir), args.cache_dir or None, Path(args.adult_dir)), indent=2))
    if not (args.fit or args.measure):
        parser.print_help()
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
