"""pneumo: a pneumonia detector for chest X-rays (education and research demo, not a medical device).

The package is split into small modules with one job each; the data flows one way:

    bytes --(imageio.read_image)--> PIL image --(preprocess.preprocess)--> model input
          --(model / inference)--> probability and heatmap --> page or CLI

Nothing here imports TensorFlow at package import time, so the light modules (image reading,
preprocessing, metrics) stay fast to import.
"""

__version__ = "0.1.0"


def load(weights=None, site=None):
    """The model with the page's checks, ready to read X-rays: `pneumo.load().predict("xray.dcm")`;
    `site="site.json"`: fitted to a site (`pneumo adapt`). See pneumo.api (imported here only when
    called: TensorFlow loads then)."""
    from pneumo.api import load as _load

    return _load(weights, site)
