"""What the page says about a heatmap: the methods' names and what each measures, the default
(chosen by the rule in docs/EXPLANATIONS.md), and where a map's weight lies, in words. No
TensorFlow here: pneumo.reading.explain makes the maps."""

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


MOSTLY_OUTSIDE = 0.5  # below this share of the map's mass inside the lungs, the page says the evidence lies mostly outside



def in_lungs_sentence(inside: float | None, share: float) -> str:
    """What the page and the PDF say for every X-ray whose map is not empty."""
    if inside is None:
        return f"The lungs cover {share:.0%} of the image; the map is empty."
    text = f"{inside:.0%} of the map lies inside the lungs, which cover {share:.0%} of the image."
    if inside < MOSTLY_OUTSIDE:
        text += " The model's evidence for this reading lies mostly outside the lungs."
    return text
