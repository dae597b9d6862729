"""Where the shipped artefacts live (relative to the repository, so the app works from any cwd).

PNEUMO_WEIGHTS=/path/to/pneumonia.keras points the app and the CLIs at other weights; the
history.json and metrics.json beside that file go with it.
"""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_FILE = "pneumonia.keras"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
DEFAULT_MODEL = Path(os.environ.get("PNEUMO_WEIGHTS") or REPO_ROOT / "weights" / MODEL_FILE)
WEIGHTS_DIR = DEFAULT_MODEL.parent
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "chest_xray"
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache"
