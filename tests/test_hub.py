"""Publishing to the Hub (no internet here: what would be sent, and clean failures) and
the torch.hub entry points in hubconf.py."""

from __future__ import annotations

import hashlib
import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conftest import PYTHON, REPO_ROOT

import ratzoo
from ratzoo import CheckpointError
from ratzoo import zoo
from ratzoo.checkpoint import CARD, CONFIG, WEIGHTS
from ratzoo.hub import HubError, files_to_push, push_to_hub

RESULTS = {"dataset": "CIFAR-10", "split": "test",
           "metrics": [{"name": "clean accuracy", "type": "accuracy", "value": 0.5, "n": 64}]}


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) -> sha256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()} | {
        f"dir:{p.relative_to(folder)}": "" for p in folder.rglob("*") if p.is_dir()}


PUSH_SCRIPT = """
import sys
from ratzoo.hub import HubError, push_to_hub
try:
    push_to_hub(sys.argv[1], sys.argv[2])
except HubError as e:
    print("HubError:", e)
    sys.exit(4)
print("pushed?!")
"""


def run_push(folder: Path, env: dict[str, str], endpoint: str, repo: str = "someone/ratzoo-tiny") -> subprocess.CompletedProcess:
    env = {k: v for k, v in env.items() if k != "HF_HUB_OFFLINE"}
    env.update(HF_ENDPOINT=endpoint, HF_HUB_ETAG_TIMEOUT="2", HF_HUB_DOWNLOAD_TIMEOUT="2")
    return subprocess.run([PYTHON, "-c", PUSH_SCRIPT, str(folder), repo], env=env, capture_output=True,
                          text=True, timeout=120, cwd=REPO_ROOT)


def test_files_to_push_is_exactly_the_checkpoint(make_checkpoint) -> None:
    folder = make_checkpoint("ck", results=RESULTS)
    (folder / "notes.txt").write_text("local scratch, never uploaded")
    assert files_to_push(folder) == [folder / WEIGHTS, folder / CONFIG, folder / CARD]


def test_files_to_push_validates_first(make_checkpoint) -> None:
    folder = make_checkpoint()
    (folder / CARD).unlink()
    with pytest.raises(CheckpointError, match=f"cannot push {folder}: missing .*README.md"):
        files_to_push(folder)
    (folder / CONFIG).write_text("{")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        files_to_push(folder)


def test_card_metadata_in_the_pushed_folder(make_checkpoint) -> None:
    from huggingface_hub import metadata_load

    folder = make_checkpoint("rat", noise_kind="fixed", noise_sigma=0.5, results=RESULTS,
                             training={"method": "rat"})
    meta = metadata_load(folder / CARD)
    metrics = meta["model-index"][0]["results"][0]["metrics"]
    assert metrics == [{"type": "accuracy", "value": 50.0, "name": "clean accuracy"}]
    assert meta["library_name"] == "ratzoo" and "uoft-cs/cifar10" in meta["datasets"]


@pytest.mark.parametrize("repo", ["no-owner", "a/b/c", ""])
def test_bad_repo_id(make_checkpoint, repo: str) -> None:
    with pytest.raises(HubError, match="OWNER/NAME"):
        push_to_hub(make_checkpoint(), repo)


def test_offline_push_fails_cleanly(make_checkpoint) -> None:
    folder = make_checkpoint(results=RESULTS)
    before = snapshot(folder)
    with pytest.raises(HubError, match="the local checkpoint is intact") as info:
        push_to_hub(folder, "someone/ratzoo-tiny")  # conftest set HF_HUB_OFFLINE=1
    assert str(folder) in str(info.value) and "someone/ratzoo-tiny" in str(info.value)
    assert snapshot(folder) == before


def test_unreachable_endpoint(make_checkpoint, subprocess_env) -> None:
    folder = make_checkpoint(results=RESULTS)
    before = snapshot(folder)
    proc = run_push(folder, subprocess_env, "http://127.0.0.1:9")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4, out
    assert "HubError: could not push" in out and "someone/ratzoo-tiny" in out
    assert "HF_ENDPOINT" in out and "local checkpoint is intact" in out
    assert snapshot(folder) == before, "a failed push must leave the folder byte-identical"


class _Unauthorized(http.server.BaseHTTPRequestHandler):
    def _deny(self) -> None:
        body = json.dumps({"error": "Invalid username or password."}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_HEAD = _deny

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def unauthorized_endpoint() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unauthorized)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_missing_token_says_how_to_log_in(make_checkpoint, subprocess_env, unauthorized_endpoint: str) -> None:
    folder = make_checkpoint(results=RESULTS)
    before = snapshot(folder)
    proc = run_push(folder, subprocess_env, unauthorized_endpoint)  # no HF_TOKEN, empty HF_HOME
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4, out
    assert "401" in out and "HF_TOKEN" in out, out
    assert snapshot(folder) == before


# --------------------------------------------------------------------------- hubconf.py


def test_hubconf_imports_no_app_or_training_code(subprocess_env) -> None:
    code = (
        "import sys, json, hubconf\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('streamlit', 'train', 'app', 'altair'))\n"
        "names = sorted(n for n in dir(hubconf) if callable(getattr(hubconf, n)) and not n.startswith('_'))\n"
        "print(json.dumps({'bad': bad, 'names': names, 'deps': hubconf.dependencies}))\n"
    )
    proc = subprocess.run([PYTHON, "-c", code], cwd=REPO_ROOT, env=subprocess_env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["bad"] == []
    assert info["names"] == sorted(zoo.entries()), "one hubconf entry per registry name"
    assert "torch" in info["deps"]


def test_torch_hub_loads_the_zoo(tmp_path: Path, make_checkpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    bundled = tmp_path / "zoo"
    src = make_checkpoint("rat", noise_kind="fixed", noise_sigma=0.5)
    src.rename(bundled.mkdir() or bundled / "rat")
    monkeypatch.setenv("RATZOO_CHECKPOINTS", str(bundled))
    model = torch.hub.load(str(REPO_ROOT), "rat", source="local")
    assert isinstance(model, ratzoo.models.RandomizedClassifier)
    assert model.config.noise_kind == "fixed" and ratzoo.is_randomized(model)
    with pytest.raises(CheckpointError, match="no trained checkpoint yet"):
        torch.hub.load(str(REPO_ROOT), "lerat", source="local")
