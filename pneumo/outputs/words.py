"""What a person reads about a result: the warnings in plain words, what each heatmap method
measures, and where a map's weight lies: its side and zone, its weight inside the lungs against the
lungs' share of the image, the region its hottest part lies on, and whether that is a mark burned
into the film (text, a side marker, an arrow). No TensorFlow here: pneumo.reading makes the maps."""

from __future__ import annotations

import numpy as np

WHAT_IT_MEASURES = {
    "hirescam": "how much each region's features add to the explained class's score through the model's head (activation × gradient, summed over channels).",
    "gradcam": "the last convolution's channels weighted by their average gradient for the class: where the class's evidence channels are active.",
    "gradcam++": "like Grad-CAM, with each channel's weight taken from the positions where raising it helps the class most.",
    "layercam": "each region's features times their positive gradients for the class (increases only).",
    "scorecam": "how much the class's probability stays when the model sees only each of its 10 most varied feature maps' regions.",
}
ZONES = ("upper", "middle", "lower")


def where(heatmap: np.ndarray) -> str:
    """Which side and which zone of the picture hold most of the map's weight, as stored: the
    image's left is the patient's right in a standard frontal (PA or AP) view."""
    weight = np.clip(np.asarray(heatmap, dtype=np.float64), 0.0, None)
    total = weight.sum()
    if total <= 0:
        return "The map is empty."
    columns, rows = weight.sum(axis=0), weight.sum(axis=1)
    left = columns[: len(columns) // 2].sum() / total + (columns[len(columns) // 2] / total / 2 if len(columns) % 2 else 0.0)
    if 0.4 <= left <= 0.6:
        side = f"is spread over both sides (image left {left:.0%}, right {1 - left:.0%})"
    elif left > 0.6:
        side = f"lies mostly on the image's left, the patient's right in a standard frontal view ({left:.0%})"
    else:
        side = f"lies mostly on the image's right, the patient's left in a standard frontal view ({1 - left:.0%})"
    thirds = [part.sum() / total for part in np.array_split(rows, 3)]
    zone = int(np.argmax(thirds))
    height = f"mostly in the {ZONES[zone]} zone" if thirds[zone] >= 0.45 else "spread over the height"
    return f"The map's weight {side}, and {height} (upper / middle / lower thirds: " + " / ".join(f"{t:.0%}" for t in thirds) + ")."


WARNING_WORDS = {"not_xray": "not a chest X-ray", "inverted": "an inverted (negative) film", "lateral": "a lateral view",
                 "population": "outside the population the model learned from"}
EVEN = (0.8, 1.2)  # the map's share inside the lungs over the lungs' share of the image: about an even spread between these


def in_lungs_sentence(inside: float | None, share: float) -> str:
    """The map's weight inside the lungs against the lungs' share of the image (what an even spread
    would put there), for every X-ray with a lung mask."""
    if inside is None:
        return f"The lungs cover {share:.0%} of the image; the map is empty."
    text = f"{inside:.0%} of the map lies inside the lungs, which cover {share:.0%} of the image"
    ratio = inside / share if share > 0 else float("inf")
    if ratio >= EVEN[1]:
        return text + f": {ratio:.1f}× what an even spread would put there, so the map is drawn to the lungs."
    if ratio <= EVEN[0]:
        return text + ": less than an even spread would put there, so the map is drawn away from the lungs."
    return text + ": about what an even spread would put there."


HOT = 0.7  # the hottest part of a map: at least this share of its maximum
GLYPH_BRIGHT, GLYPH_EDGE, GLYPH_REACH, GLYPH_PIXELS = 235, 100, 6, 12


def hot_part(heatmap: np.ndarray) -> np.ndarray:
    heat = np.asarray(heatmap, dtype=np.float64)
    return heat >= HOT * heat.max() if heat.max() > 0 else np.zeros(heat.shape, bool)


def hottest_region(heatmap: np.ndarray, lungs: np.ndarray) -> str | None:
    """Where the map's hottest part lies against the lung mask: a lung (the image's left is the
    patient's right in a frontal view), between the lungs (the hilum and the mediastinum), below them,
    or outside the chest; None for an empty map or no lungs found."""
    hot, lungs = hot_part(heatmap), np.asarray(lungs, dtype=bool)
    if not hot.any() or not lungs.any():
        return None
    rows, columns = np.nonzero(hot)
    weights = np.asarray(heatmap, dtype=np.float64)[hot]
    r, c = int(round(np.average(rows, weights=weights))), int(round(np.average(columns, weights=weights)))
    lung_rows, lung_columns = np.nonzero(lungs)
    middle = (lung_columns.min() + lung_columns.max()) / 2
    if lungs[r, c]:
        return "the image's left lung (the patient's right)" if c < middle else "the image's right lung (the patient's left)"
    if lung_columns.min() <= c <= lung_columns.max() and lung_rows.min() <= r <= lung_rows.max():
        return "between the lungs (the hilum and the mediastinum)"
    if lung_columns.min() <= c <= lung_columns.max() and r > lung_rows.max():
        return "below the lungs (the diaphragm and the abdomen)"
    return "outside the chest"


def marks(gray299: np.ndarray) -> np.ndarray:
    """Pixels of marks burned into a film: text, side markers, drawn arrows. Near-white, with a much
    darker pixel within two pixels: a glyph's stroke, not a bone's smooth brightness."""
    from scipy.ndimage import minimum_filter

    gray = np.asarray(gray299, dtype=np.int16)
    found = (gray >= GLYPH_BRIGHT) & (minimum_filter(gray, size=5) <= gray - GLYPH_EDGE)
    found[:4], found[-4:], found[:, :4], found[:, -4:] = False, False, False, False  # the film's own edge is no mark
    return found


def on_a_mark(heatmap: np.ndarray, gray299: np.ndarray) -> bool:
    """Whether the map's hottest part lies on a mark burned into the film (within a few pixels)."""
    from scipy.ndimage import binary_dilation

    hot = hot_part(heatmap)
    return bool(hot.any() and (binary_dilation(hot, iterations=GLYPH_REACH) & marks(gray299)).sum() >= GLYPH_PIXELS)


def map_sentences(heatmap: np.ndarray, lungs: np.ndarray | None, gray299: np.ndarray | None) -> list[str]:
    """Everything the page and the PDF say about where a map's weight lies."""
    lines = [where(heatmap)]
    if lungs is not None:
        weight = np.clip(np.asarray(heatmap, dtype=np.float64), 0, None)
        inside = float(weight[np.asarray(lungs, bool)].sum() / weight.sum()) if weight.sum() > 0 else None
        lines.append(in_lungs_sentence(inside, float(np.asarray(lungs, bool).mean())))
        region = hottest_region(heatmap, lungs)
        if region:
            lines.append(f"Its hottest part lies on {region}.")
    if gray299 is not None and on_a_mark(heatmap, gray299):
        lines.append("That hottest part lies on a mark burned into the film (text, a side marker or an arrow): "
                     "evidence there is about the mark, not the patient.")
    return lines
