"""pneumo: a pneumonia detector for chest X-rays (education and research demo, not a medical device).

One path reads every file; everything a person takes away is made from its one result:

    path, bytes, picture --pneumo.reading.Reader--> Result --> page (pneumo.ui), CLI (pneumo.cli),
                                                               Python (pneumo.api), PDF, CSV, DICOM (pneumo.outputs)

Nothing here imports TensorFlow at package import time: a Reader loads it when it is made.
"""

__version__ = "0.1.0"


def load(weights=None, site=None):
    """The model with the page's checks, ready to read X-rays: `pneumo.load().predict("xray.dcm")`;
    `site="site.json"`: fitted to a site (`pneumo adapt`). See pneumo.api (imported here only when
    called: TensorFlow loads then)."""
    from pneumo.api import load as _load

    return _load(weights, site)
