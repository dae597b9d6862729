"""The Hugging Face Space, as a Space serves it: the Dockerfile's own command and environment, the
files its COPY lines put in the image, a non-root user with HOME elsewhere, and the app shown in an
iframe of a page from another site (localhost embedding 127.0.0.1), where an X-ray is uploaded.

With the Dockerfile's environment (XSRF protection off) the upload gives a result; with XSRF
protection on, as `make run` keeps it, the browser withholds Streamlit's XSRF cookie from the
cross-site iframe and the upload is refused: that run shows the test can fail.

Docker itself cannot run here (no daemon, and no registry to pull python:3.11-slim from), so the
image is not built; what the image would run is.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import shutil
import sys
import sysconfig
import tempfile
import threading
import time
import warnings
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from pneumo.bundle import DEFAULT_METHOD, METHOD_NAMES
from lab.screenshot import RESULT_METRIC, StreamlitServer, free_port
from test_browser import ARTIFACTS, EXAMPLE
from test_browser import browser  # noqa: F401 (the same headless Chromium fixture)

DOCKERFILE = REPO_ROOT / "Dockerfile"
README = REPO_ROOT / "README.md"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", "\n".join(l for l in DOCKERFILE.read_text().splitlines() if not l.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip()) for line in text.splitlines() if line.strip()]


def dockerfile_image() -> dict:
    """What the Dockerfile says the container runs: command, environment, work dir, the user's uid,
    the health check and the files copied in."""
    image: dict = {"env": {}, "copies": [], "uid": None}
    for instruction, args in _instructions():
        if instruction == "ENV":
            image["env"].update(dict(part.split("=", 1) for part in shlex.split(args)))
        elif instruction == "CMD":
            image["cmd"] = json.loads(args)
        elif instruction == "WORKDIR":
            image["workdir"] = args
        elif instruction == "USER":
            image["user"] = args
        elif instruction == "HEALTHCHECK":
            image["healthcheck"] = args
        elif instruction == "FROM":
            image["from"] = args
        elif instruction == "RUN" and "useradd" in args:
            image["uid"] = int(re.search(r"--uid\s+(\d+)|-u\s+(\d+)", args).group(1))
        elif instruction == "COPY":
            parts = [p for p in shlex.split(args) if not p.startswith("--")]
            image["copies"].append((parts[:-1], parts[-1]))
    return image


def test_the_dockerfile_is_a_space_image():
    image = dockerfile_image()
    assert image["from"].startswith("python:3.11-slim")
    assert image["uid"] == 1000 and image["user"] != "root"
    assert image["cmd"][:3] == ["streamlit", "run", "streamlit_app.py"]
    assert image["cmd"][image["cmd"].index("--server.port") + 1] == "8501"
    assert image["cmd"][image["cmd"].index("--server.address") + 1] == "0.0.0.0"
    assert image["env"]["STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION"] == "false"
    assert "/_stcore/health" in image["healthcheck"]
    copied = {source for sources, _ in image["copies"] for source in sources}
    assert "requirements.txt" in copied and not copied & {".", "lab", "tests"}
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {"lab", "tests", ".cache", ".venv"} <= set(ignored)
    # The Space's front matter matches: Docker SDK on the port the container serves.
    front = README.read_text().split("---\n")[1]
    assert "sdk: docker" in front and "app_port: 8501" in front and "license: apache-2.0" in front
    assert "streamlit" in front and "short_description:" in front
    assert "Apache License" in (REPO_ROOT / "LICENSE").read_text()
    # make run keeps Streamlit's default (XSRF protection on).
    assert "XSRF" not in (REPO_ROOT / "Makefile").read_text() and "enableXsrfProtection" not in (REPO_ROOT / ".streamlit" / "config.toml").read_text()
    attributes = (REPO_ROOT / ".gitattributes").read_text()
    for pattern in ("*.keras", "*.npz", "*.jpeg", "*.png", "*.dcm"):
        assert f"{pattern} filter=lfs" in attributes


def _reachable_by_others(path: str | Path) -> bool:
    """Whether a user other than the owner can reach `path` (every folder above it traversable)."""
    return all(os.stat(parent).st_mode & 0o001 for parent in Path(path).absolute().parents)


def _python_for_others() -> tuple[str, list[str]] | None:
    """A Python 3.11 and this environment's packages that another user can reach: this interpreter
    when it can be reached, else the system's python3.11 with the packages on its path (both are
    CPython 3.11, so the same wheels); None when the packages cannot be reached."""
    packages = sysconfig.get_paths()["purelib"]
    if not _reachable_by_others(packages):
        return None
    if _reachable_by_others(Path(sys.executable).resolve()):
        return sys.executable, []
    system = shutil.which(f"python{sys.version_info.major}.{sys.version_info.minor}", path="/usr/bin:/usr/local/bin")
    return (system, [packages]) if system and _reachable_by_others(Path(system).resolve()) else None


@pytest.fixture(scope="module")
def image_root():
    """The image's work dir: the Dockerfile's COPY sources copied into a fresh folder, owned by the
    image's user (when this runs as root), with a HOME of its own beside it. Yields the image, the
    work dir, HOME, the (uid, gid) to run as (None: this user) and the Python to run with."""
    image = dockerfile_image()
    root = Path(tempfile.mkdtemp(prefix="pneumo-image-"))
    app, home = root / "app", root / "home"
    app.mkdir()
    home.mkdir()
    for sources, _ in image["copies"]:
        for source in sources:
            src = REPO_ROOT / source
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, app / source)
    user, python = None, (sys.executable, [])
    if os.geteuid() == 0:
        python = _python_for_others()
        if python is None:  # still the image's command, files and HOME, as root; space.json records the uid
            warnings.warn("this environment's packages are in a folder other users cannot enter: the app runs as root here")
            python = (sys.executable, [])
        else:
            user = (image["uid"], image["uid"])
            root.chmod(0o755)
            for path in [root, *root.rglob("*")]:
                os.chown(path, *user)
    yield image, app, home, user, python
    shutil.rmtree(root, ignore_errors=True)


def _container_server(image_root, xsrf: bool | None = None) -> StreamlitServer:
    """The Dockerfile's CMD (streamlit from this environment, on a free port, on loopback) with its
    ENV, in the image's work dir, as the image's user."""
    image, app, home, user, (python, packages) = image_root
    cmd = list(image["cmd"])
    cmd[cmd.index("--server.port") + 1] = "{port}"
    cmd[cmd.index("--server.address") + 1] = "127.0.0.1"  # the test talks to loopback only
    env = {**image["env"], "HOME": str(home), "PYTHONPATH": os.pathsep.join([str(app), *packages]), "STREAMLIT_SERVER_HEADLESS": "true"}
    if xsrf is not None:
        env["STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION"] = "true" if xsrf else "false"
    return StreamlitServer(env=env, command=[python, "-m", *cmd], cwd=app, user=user)


class _EmbeddingSite:
    """Another site (http://localhost:PORT) whose page shows the app in an iframe, as a Space does."""

    def __init__(self, app_url: str):
        page = f'<!doctype html><title>Space</title><h1>A Space</h1><iframe src="{app_url}" width="1300" height="1100"></iframe>'.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://localhost:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _upload_in_iframe(browser, server: StreamlitServer):
    """Open the embedding page and upload the example through the iframe's file input as soon as
    the uploader is there; returns the embedding site, the page and the iframe."""
    site = _EmbeddingSite(server.url)
    page = browser.new_page(viewport={"width": 1400, "height": 1250})
    page.goto(site.url)
    frame = page.frame_locator("iframe")
    frame.locator("input[type=file]").first.wait_for(state="attached", timeout=90_000)
    server.uploader_shown_s = time.monotonic() - server.started
    frame.locator("input[type=file]").first.set_input_files(str(EXAMPLE))
    return site, page, frame


def test_upload_inside_a_cross_site_iframe_works_with_the_dockerfiles_environment(browser, image_root):
    server = _container_server(image_root)
    try:
        server.wait_until_healthy(timeout=90)
        site, page, frame = _upload_in_iframe(browser, server)
        frame.locator("[data-testid='stMetricLabel']").filter(has_text=RESULT_METRIC).first.wait_for(timeout=90_000)
        cold_start_s = time.monotonic() - server.started
        frame.locator("h2").filter(has_text="PNEUMONIA").first.wait_for()
        frame.get_by_text(f"{METHOD_NAMES[DEFAULT_METHOD]} for", exact=False).first.wait_for()
        overlay = frame.locator("[data-testid='stImage'] img").nth(1)
        overlay.wait_for()
        app_frame = next(f for f in page.frames if f.url.startswith(server.url))
        app_frame.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=overlay.element_handle(), timeout=30_000)
        assert frame.get_by_text("403").count() == 0
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "space_iframe.png"), full_page=True)
        (ARTIFACTS / "space.json").write_text(json.dumps({  # for the record: what ran, as whom, how fast
            "cold_start_to_first_result_s": round(cold_start_s, 2), "cold_start_to_uploader_s": round(server.uploader_shown_s, 2), "uid": image_root[3][0] if image_root[3] else os.geteuid(),
            "command": server.process.args, "xsrf_protection": False,
        }))
        page.close()
        site.close()
    finally:
        server.stop()


def test_the_same_upload_is_refused_with_xsrf_protection_on(browser, image_root):
    server = _container_server(image_root, xsrf=True)
    try:
        server.wait_until_healthy(timeout=90)
        site, page, frame = _upload_in_iframe(browser, server)
        frame.get_by_text("403", exact=False).first.wait_for(timeout=60_000)
        assert frame.locator("[data-testid='stMetricLabel']").count() == 0
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "space_iframe_xsrf.png"), full_page=True)
        page.close()
        site.close()
    finally:
        server.stop()
