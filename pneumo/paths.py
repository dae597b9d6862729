"""Where the shipped artefacts live (relative to the repository, so the app works from any cwd)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
WEIGHTS_DIR = REPO_ROOT / "weights"
MODEL_FILE = "pneumonia.keras"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
DEFAULT_MODEL = WEIGHTS_DIR / MODEL_FILE
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "chest_xray"
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache"
