"""pneumo: a pneumonia detector for chest X-rays (education and research demo, not a medical device).

The package is split into small modules with one job each; the data flows one way:

    bytes --(imageio.read_image)--> PIL image --(preprocess.preprocess)--> model input
          --(model / inference)--> probability and heatmap --> page or CLI

Nothing here imports TensorFlow at package import time, so the light modules (image reading,
preprocessing, metrics) stay fast to import.
"""

__version__ = "0.1.0"
