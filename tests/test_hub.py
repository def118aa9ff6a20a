"""The Hub round trip with the real huggingface_hub client against a local Hub
(``tests/hub_server.py`` on 127.0.0.1; nothing here reaches the internet): push with the
trainer, load by ``hf-hub:`` name in a fresh process, offline from the cache, a corrupted
download, revisions and the errors; ``from_pretrained`` downloading and failing as ``load`` does;
clean failures without a Hub; hubconf.py."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conftest import PYTHON, REPO_ROOT

import ratzoo
from ratzoo import CheckpointError
from ratzoo import zoo
from ratzoo.checkpoint import CARD, CONFIG, WEIGHTS, sha256_file
from ratzoo.hub import HubError, parse_hub_name, push_to_hub

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hub_server import LocalHub, serve  # noqa: E402

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
    for folder in sys.argv[2:]:
        print("pushed", push_to_hub(folder, sys.argv[1]))
except HubError as e:
    print("HubError:", e)
    sys.exit(4)
"""

# Loads each name given and prints one JSON line per name: the logits of a fixed batch with the
# noise off, the sha256 of the weights file in huggingface_hub's cache, the card's model-index;
# or the error. Nothing else is printed on stdout.
LOAD_SCRIPT = """
import json, sys
import torch
import ratzoo
from huggingface_hub import ModelCard, try_to_load_from_cache
from ratzoo.checkpoint import sha256_file
from ratzoo.hub import parse_hub_name
x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
for name in sys.argv[1:]:
    try:
        model = ratzoo.load(name)
    except (ratzoo.CheckpointError, KeyError) as e:
        print(json.dumps({"name": name, "error": f"{type(e).__name__}: {e}"}))
        continue
    with torch.no_grad(), ratzoo.noise_control(model, enabled=False):
        logits = model(x).tolist()
    repo_id, revision = parse_hub_name(name)
    cached = try_to_load_from_cache(repo_id, "model.safetensors", revision=revision)
    card = ModelCard.load(try_to_load_from_cache(repo_id, "README.md", revision=revision))
    print(json.dumps({"name": name, "logits": logits, "sha256": sha256_file(cached), "cached": cached,
                      "card": card.data.to_dict(), "card_text": card.text}))
"""


def local_logits(folder: Path) -> list[list[float]]:
    model = ratzoo.load_checkpoint(folder)
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), ratzoo.noise_control(model, enabled=False):
        return model(x).tolist()


@pytest.fixture
def local_hub() -> Iterator[LocalHub]:
    """A local Hub on 127.0.0.1 (a free port), stopped after the test."""
    with serve() as hub:
        yield hub


def hub_env(env: dict[str, str], hub: LocalHub, home: Path, offline: bool = False) -> dict[str, str]:
    """``subprocess_env`` pointed at the local Hub: its endpoint, a token, ``home`` as HF_HOME."""
    env = {k: v for k, v in env.items() if k != "HF_HUB_OFFLINE"}
    env.update(HF_ENDPOINT=hub.url, HF_TOKEN="hf_local_test_token", HF_HOME=str(home),
               HF_HUB_ETAG_TIMEOUT="5", HF_HUB_DOWNLOAD_TIMEOUT="5", HF_HUB_DISABLE_PROGRESS_BARS="1")
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return env


def run(args: list[str], env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def load_in_fresh_process(names: list[str], env: dict[str, str]) -> dict[str, dict]:
    proc = run(["-c", LOAD_SCRIPT, *names], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {r["name"]: r for r in map(json.loads, proc.stdout.strip().splitlines())}


# --------------------------------------------------------------------------- end to end


def test_train_push_load_offline_and_a_corrupted_download(tiny_cifar_root: Path, tmp_path: Path, subprocess_env,
                                                          local_hub: LocalHub) -> None:
    """`python -m train --push-to-hub` -> the local Hub -> `ratzoo.load("hf-hub:...")` in a fresh
    process (same logits, same sha256, the card's model-index) -> again offline from the cache
    -> a Hub that serves a corrupted weights file: a clear error, nothing loaded."""
    from test_train import tiny_args

    repo, name = "someone/ratzoo-e2e", "hf-hub:someone/ratzoo-e2e"
    env = hub_env(subprocess_env, local_hub, tmp_path / "hf_home")
    proc = run(["-m", "train", *tiny_args(tiny_cifar_root, tmp_path, "--method", "rat", "--noise-sigma", "0.5",
                                          "--epochs", "1", "--max-steps", "3", "--eval-n", "8", "--eval-eot", "2",
                                          "--push-to-hub", repo)], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"pushed to {local_hub.url}/{repo}/commit/" in proc.stderr
    out = tmp_path / "out"
    local = json.loads((out / CONFIG).read_text())
    assert local["results"]["metrics"], "the tiny run measured results for the card"
    uploaded = local_hub.at(repo, "main").files
    assert {WEIGHTS, CONFIG, CARD} <= set(uploaded)

    got = load_in_fresh_process([name], env)[name]
    assert "error" not in got, got
    assert got["logits"] == local_logits(out), "the Hub copy computes exactly what the local folder does"
    assert got["sha256"] == sha256_file(out / WEIGHTS) == local["weights_sha256"]
    assert got["cached"].startswith(str(tmp_path / "hf_home" / "hub")), "downloaded into huggingface_hub's cache"
    index = got["card"]["model-index"][0]
    assert index["name"] == f"ratzoo-{local['name']}" == "ratzoo-rat"
    metrics = {m["name"]: m["value"] for r in index["results"] for m in r["metrics"]}
    assert metrics == {m["name"]: round(100 * m["value"], 2) for m in local["results"]["metrics"]}
    assert got["card"]["library_name"] == "ratzoo" and "arxiv.org/abs/1903.10219" in got["card_text"]
    assert f'model = ratzoo.load("hf-hub:{repo}")' in got["card_text"], "the Hub card's load line names the repo"
    assert "pytorch_model_hub_mixin" in got["card"]["tags"], "the card was written by the mixin's push_to_hub"
    resolved = [p for m, p in local_hub.requests if m == "GET" and "/resolve/" in p]
    assert sorted(p.rsplit("/", 1)[1] for p in resolved) == sorted([WEIGHTS, CONFIG, CARD]), "each file fetched once"
    assert len([p for m, p in local_hub.requests if "/revision/" in p]) == 1, "one snapshot_download"

    # offline: served from the cache, with the Hub refusing everything and not one request made
    local_hub.requests.clear()
    local_hub.refuse = True
    both = load_in_fresh_process([name, name + "@v9"], hub_env(subprocess_env, local_hub, tmp_path / "hf_home",
                                                               offline=True))
    off = both[name]
    assert "error" not in off, off
    assert "revision 'v9' is not in huggingface_hub's cache, though the repo is" in both[name + "@v9"]["error"]
    assert off["logits"] == got["logits"] and off["sha256"] == got["sha256"]
    assert local_hub.requests == []

    # a Hub serving a corrupted model.safetensors (one byte flipped; safetensors alone would load it)
    local_hub.refuse = False
    local_hub.corrupt = {WEIGHTS}
    bad = load_in_fresh_process([name], hub_env(subprocess_env, local_hub, tmp_path / "fresh_home"))[name]
    assert "logits" not in bad, "nothing may be loaded from a corrupted download"
    msg = bad["error"]
    assert msg.startswith(f"CheckpointError: {name}: ") and "sha256" in msg and "recorded in config.json" in msg
    assert f"hf download {repo} --force-download" in msg, msg


def test_revisions_and_clear_errors(make_checkpoint, tmp_path: Path, subprocess_env, local_hub: LocalHub) -> None:
    """`hf-hub:OWNER/NAME@REVISION` loads that commit, `hf-hub:OWNER/NAME` the latest; a missing
    repo, revision or file is an error naming the repo and what to do."""
    first = make_checkpoint("first", seed=0, noise_kind="fixed", noise_sigma=0.3, results=RESULTS)
    second = make_checkpoint("second", seed=1, noise_kind="fixed", noise_sigma=0.3)
    env = hub_env(subprocess_env, local_hub, tmp_path / "hf_home")
    proc = run(["-c", PUSH_SCRIPT, "someone/tiny", str(first), str(second)], env)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    commits = [line.rsplit("/", 1)[1] for line in proc.stdout.splitlines() if line.startswith("pushed")]
    assert len(commits) == 2 and commits == [c.oid for c in local_hub.repos["someone/tiny"][1:]]
    with local_hub.lock:  # a repo that holds no checkpoint
        local_hub.repos["someone/not-a-model"] = []
        local_hub.commit("someone/not-a-model", {"README.md": b"# hello\\n"}, set(), "readme only")
    names = [f"hf-hub:someone/tiny@{commits[0]}", "hf-hub:someone/tiny", "hf-hub:someone/missing",
             "hf-hub:someone/tiny@0000000000000000000000000000000000000000", "hf-hub:someone/tiny@v9",
             "hf-hub:someone/not-a-model"]
    got = load_in_fresh_process(names, env)
    assert got[names[0]]["sha256"] == sha256_file(first / WEIGHTS)
    assert got[names[0]]["logits"] == local_logits(first)
    assert got[names[1]]["sha256"] == sha256_file(second / WEIGHTS)
    assert got[names[1]]["logits"] == local_logits(second) != got[names[0]]["logits"]
    assert "no such model repo" in got[names[2]]["error"] and "someone/missing" in got[names[2]]["error"]
    assert "hf auth login" in got[names[2]]["error"]
    for n in names[3:5]:
        assert got[n]["error"].startswith(f"CheckpointError: {n}: the repo has no revision"), got[n]
    err = got[names[5]]["error"]
    assert "someone/not-a-model" in err and "has no config.json or model.safetensors" in err
    assert "ratzoo.push_to_hub" in err


def test_offline_without_a_cached_copy_names_hf_hub_offline() -> None:
    """conftest sets HF_HUB_OFFLINE=1 and an empty HF_HOME: nothing cached, no network."""
    with pytest.raises(CheckpointError) as info:
        ratzoo.load("hf-hub:someone/never-downloaded@main")
    msg = str(info.value)
    assert msg.startswith("hf-hub:someone/never-downloaded@main: HF_HUB_OFFLINE=1 is set")
    assert "unset HF_HUB_OFFLINE" in msg and os.environ["HF_HOME"] in msg


@pytest.mark.parametrize("name,repo,revision", [
    ("hf-hub:owner/name", "owner/name", None),
    ("hf-hub:owner/name@main", "owner/name", "main"),
    ("hf-hub:o-1/ratzoo.rat_2@0123abc", "o-1/ratzoo.rat_2", "0123abc"),
])
def test_hub_names(name: str, repo: str, revision: str | None) -> None:
    assert parse_hub_name(name) == (repo, revision)


@pytest.mark.parametrize("name", ["hf-hub:", "hf-hub:noslash", "hf-hub:a/b/c", "hf-hub:a/b@", "hf-hub:../x"])
def test_bad_hub_names(name: str) -> None:
    with pytest.raises(KeyError, match="write hf-hub:OWNER/NAME or hf-hub:OWNER/NAME@REVISION"):
        ratzoo.load(name)


def test_registry_hub_entry_is_pinned(make_checkpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    """An `hf-hub:` name that a registry entry names gets the registry's sha256 pin."""
    src = make_checkpoint("hubbed")
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot_dir = Path(os.environ["HF_HOME"]) / "hub" / "models--someone--pinned" / "snapshots" / commit
    import shutil

    shutil.copytree(src, snapshot_dir)
    entry = zoo.ZooEntry("pinned", "rat", "test", hub_repo="someone/pinned", hub_revision=commit, sha256="ab" * 32)
    monkeypatch.setitem(zoo._REGISTRY, "pinned", entry)
    for name in ("pinned", f"hf-hub:someone/pinned@{commit}", "hf-hub:someone/pinned"):
        with pytest.raises(CheckpointError, match="recorded in the registry"):
            ratzoo.load(name)
    monkeypatch.setitem(zoo._REGISTRY, "pinned", zoo.ZooEntry("pinned", "rat", "test", hub_repo="someone/pinned",
                                                             hub_revision=commit, sha256=sha256_file(src / WEIGHTS)))
    assert ratzoo.load("pinned").config.width == ratzoo.load(f"hf-hub:someone/pinned@{commit}").config.width == 2


# --------------------------------------------------------------------------- from_pretrained = load("hf-hub:")

# For each repo id: how `ratzoo.load("hf-hub:ID")` and `RandomizedClassifier.from_pretrained(ID)`
# end, as one JSON line ("loaded", or the exception's type and message).
BOTH_WAYS_SCRIPT = """
import json, sys
import ratzoo
from ratzoo.models import RandomizedClassifier
def outcome(load):
    try:
        load()
        return "loaded"
    except Exception as e:
        return f"{type(e).__name__}: {e}"
for repo in sys.argv[1:]:
    print(json.dumps({"repo": repo, "load": outcome(lambda: ratzoo.load("hf-hub:" + repo)),
                      "from_pretrained": outcome(lambda: RandomizedClassifier.from_pretrained(repo))}))
"""


def both_ways(repo_id: str) -> tuple[str, str]:
    """(load's error, from_pretrained's error) for ``repo_id``, in this (offline) process."""
    from ratzoo.models import RandomizedClassifier

    errors = []
    for load in (lambda: ratzoo.load(f"hf-hub:{repo_id}"), lambda: RandomizedClassifier.from_pretrained(repo_id)):
        with pytest.raises(CheckpointError) as info:
            load()
        errors.append(str(info.value))
    return errors[0], errors[1]


def cache_snapshot(src: Path, repo_id: str, commit: str) -> Path:
    """Put the checkpoint folder ``src`` into huggingface_hub's (offline) cache as ``repo_id`` at ``commit``."""
    import shutil

    owner, name = repo_id.split("/")
    hub_cache = Path(os.environ["HF_HOME"]) / "hub" / f"models--{owner}--{name}"
    shutil.copytree(src, hub_cache / "snapshots" / commit)
    (hub_cache / "refs").mkdir(exist_ok=True)
    (hub_cache / "refs" / "main").write_text(commit)
    return hub_cache / "snapshots" / commit


def test_from_pretrained_fails_as_load_does_offline(make_checkpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline (conftest): a repo not in the cache, a cached file whose sha256 is not the one in
    its config.json, and one that the registry pins to another sha256: the same error both ways."""
    load_err, pretrained_err = both_ways("someone/never-downloaded")
    assert load_err == pretrained_err and "HF_HUB_OFFLINE=1 is set and this repo is not in" in load_err

    commit = "0123456789abcdef0123456789abcdef01234567"
    weights = cache_snapshot(make_checkpoint("flipped"), "someone/flipped", commit) / WEIGHTS
    raw = weights.read_bytes()
    weights.write_bytes(raw[:-1] + bytes([raw[-1] ^ 0xFF]))
    load_err, pretrained_err = both_ways("someone/flipped")
    assert load_err == pretrained_err
    assert load_err.startswith("hf-hub:someone/flipped: the downloaded checkpoint cannot be used")
    assert "recorded in config.json" in load_err and "hf download someone/flipped --force-download" in load_err

    cache_snapshot(make_checkpoint("pinned"), "someone/repinned", commit)
    monkeypatch.setitem(zoo._REGISTRY, "pinned", zoo.ZooEntry("pinned", "rat", "test", hub_repo="someone/repinned",
                                                             hub_revision=commit, sha256="ab" * 32))
    load_err, pretrained_err = both_ways("someone/repinned")
    assert load_err == pretrained_err
    assert load_err.startswith(f"hf-hub:someone/repinned@{commit}: ") and "recorded in the registry" in load_err


def test_from_pretrained_downloads_and_fails_as_load_does(make_checkpoint, tmp_path: Path, subprocess_env,
                                                          local_hub: LocalHub) -> None:
    """Against the local Hub: `from_pretrained` fetches a repo with one snapshot_download and
    nothing else (no config.json fetched on its own first), and a missing repo or a corrupted
    download fails with the same error as `ratzoo.load("hf-hub:...")`."""
    proc = run(["-c", PUSH_SCRIPT, "someone/tiny", str(make_checkpoint("tiny", results=RESULTS))],
               hub_env(subprocess_env, local_hub, tmp_path / "hf_home"))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]

    requests = {}
    for way, call in (("load", "ratzoo.load('hf-hub:someone/tiny')"),
                      ("from_pretrained", "RandomizedClassifier.from_pretrained('someone/tiny')")):
        local_hub.requests.clear()
        proc = run(["-c", f"import ratzoo; from ratzoo.models import RandomizedClassifier; print({call}.config.width)"],
                   hub_env(subprocess_env, local_hub, tmp_path / f"home_{way}"))
        assert proc.returncode == 0 and proc.stdout.split() == ["2"], proc.stderr[-3000:]
        requests[way] = sorted(local_hub.requests)
    assert requests["from_pretrained"] == requests["load"], "the same requests, in one snapshot_download"
    assert [p for _, p in requests["load"]].count("/api/models/someone/tiny/revision/main") == 1

    local_hub.corrupt = {WEIGHTS}
    proc = run(["-c", BOTH_WAYS_SCRIPT, "someone/missing", "someone/tiny"],
               hub_env(subprocess_env, local_hub, tmp_path / "fresh_home"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = {r["repo"]: r for r in map(json.loads, proc.stdout.strip().splitlines())}
    missing, corrupt = got["someone/missing"], got["someone/tiny"]
    assert missing["load"] == missing["from_pretrained"], missing
    assert missing["load"].startswith("CheckpointError: hf-hub:someone/missing: no such model repo")
    assert corrupt["load"] == corrupt["from_pretrained"], corrupt
    assert corrupt["load"].startswith("CheckpointError: hf-hub:someone/tiny: the downloaded checkpoint cannot be used")
    assert "recorded in config.json" in corrupt["load"]


# --------------------------------------------------------------------------- without a Hub


def run_push(folder: Path, env: dict[str, str], endpoint: str, repo: str = "someone/ratzoo-tiny") -> subprocess.CompletedProcess:
    env = {k: v for k, v in env.items() if k != "HF_HUB_OFFLINE"}
    env.update(HF_ENDPOINT=endpoint, HF_HUB_ETAG_TIMEOUT="2", HF_HUB_DOWNLOAD_TIMEOUT="2")
    return subprocess.run([PYTHON, "-c", PUSH_SCRIPT, repo, str(folder)], env=env, capture_output=True,
                          text=True, timeout=120, cwd=REPO_ROOT)


def test_push_validates_the_folder_first(make_checkpoint) -> None:
    folder = make_checkpoint()
    (folder / CONFIG).write_text("{")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        push_to_hub(folder, "someone/ratzoo-tiny")
    folder = make_checkpoint("truncated")
    (folder / WEIGHTS).write_bytes((folder / WEIGHTS).read_bytes()[:-8])
    with pytest.raises(CheckpointError, match="sha256"):
        push_to_hub(folder, "someone/ratzoo-tiny")


def test_card_metadata_in_the_pushed_folder(make_checkpoint) -> None:
    from huggingface_hub import metadata_load

    folder = make_checkpoint("rat", noise_kind="fixed", noise_sigma=0.5, results=RESULTS,
                             training={"method": "rat"})
    meta = metadata_load(folder / CARD)
    metrics = meta["model-index"][0]["results"][0]["metrics"]
    assert metrics == [{"type": "accuracy", "value": 50.0, "name": "clean accuracy"}]
    assert meta["library_name"] == "ratzoo" and "uoft-cs/cifar10" in meta["datasets"]
    assert {"adversarial-robustness", "pytorch_model_hub_mixin"} <= set(meta["tags"])
    assert "model = ratzoo.load('rat')" in (folder / CARD).read_text()  # a zoo name loads by name
    mine = (make_checkpoint("mine") / CARD).read_text()  # any other: `load("mine")` would be a KeyError
    assert 'model = ratzoo.load("path/to/this/folder")' in mine and "load('mine')" not in mine


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
    assert info["names"] == sorted(zoo.entries()), "one hubconf entry per registry name, generated from it"
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
