"""A small Hugging Face Hub on 127.0.0.1, for tests that drive the real huggingface_hub client.

It implements the part of the Hub's HTTP API that the client calls to create a model repo,
validate a model card's metadata, upload files (pre-upload, answered "regular" for every file so that no LFS or Xet transfer
is needed, then one NDJSON commit), read a repo's info and file tree at a revision, and
resolve (HEAD/GET) a file, with the headers the client reads (``X-Repo-Commit``, ``ETag``,
``Content-Length``, ``X-Error-Code``). Repos live in memory as a list of commits.

Test knobs: ``hub.requests`` logs every request (method, path); ``hub.corrupt`` holds file
names whose served bytes get one byte flipped (the metadata stays right, as a bad mirror or
disk would do); ``hub.refuse`` makes every request fail with 503.

Start it with :func:`serve` (a context manager) or the ``local_hub`` fixture.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a regular file (what the Hub reports as a regular file's oid/ETag)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Commit:
    oid: str
    message: str
    files: dict[str, bytes]


@dataclass
class LocalHub:
    """The server's state: repos by id, each a list of commits (latest last = ``main``)."""

    url: str = ""
    repos: dict[str, list[Commit]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    corrupt: set[str] = field(default_factory=set)
    refuse: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def commit(self, repo_id: str, files: dict[str, bytes], deleted: set[str], message: str) -> Commit:
        history = self.repos[repo_id]
        tree = dict(history[-1].files) if history else {}
        for path in deleted:
            tree.pop(path, None)
        tree.update(files)
        oid = hashlib.sha1(f"{repo_id}:{len(history)}:{message}".encode()
                           + b"".join(k.encode() + v for k, v in sorted(tree.items()))).hexdigest()
        c = Commit(oid, message, tree)
        history.append(c)
        return c

    def at(self, repo_id: str, revision: str) -> Commit | None:
        for c in reversed(self.repos.get(repo_id, [])):
            if revision in ("main", c.oid):
                return c
        return None


_REPO = r"(?P<repo>[^/]+/[^/]+)"
_REV = r"(?P<rev>[^/]+)"
ROUTES = [
    ("POST", re.compile(r"/api/repos/create"), "create_repo"),
    ("POST", re.compile(r"/api/validate-yaml"), "validate_yaml"),
    ("POST", re.compile(rf"/api/models/{_REPO}/preupload/{_REV}"), "preupload"),
    ("POST", re.compile(rf"/api/models/{_REPO}/commit/{_REV}"), "commit"),
    ("GET", re.compile(rf"/api/models/{_REPO}/revision/{_REV}"), "info"),
    ("GET", re.compile(rf"/api/models/{_REPO}/tree/{_REV}(?:/(?P<path>.*))?"), "tree"),
    ("GET", re.compile(rf"/api/models/{_REPO}"), "info"),
    ("HEAD", re.compile(rf"/{_REPO}/resolve/{_REV}/(?P<path>.+)"), "resolve"),
    ("GET", re.compile(rf"/{_REPO}/resolve/{_REV}/(?P<path>.+)"), "resolve"),
]


class _Handler(http.server.BaseHTTPRequestHandler):
    hub: LocalHub  # set on the subclass made by serve()
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    # ------------------------------------------------------------------ plumbing

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: object, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, status: int, code: str, message: str) -> None:
        self._json(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message})

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _dispatch(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        with self.hub.lock:
            self.hub.requests.append((self.command, self.path))
        if self.hub.refuse:
            return self._error(503, "Refused", "this test's Hub refuses every request now")
        for method, pattern, name in ROUTES:
            m = pattern.fullmatch(path)
            if m and method == self.command:
                args = {k: urllib.parse.unquote(v) for k, v in m.groupdict().items() if v is not None}
                return getattr(self, name)(**args)
        self._error(404, "NotImplemented", f"the local test Hub does not implement {self.command} {path}")

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _dispatch

    def _repo(self, repo: str) -> list[Commit] | None:
        if repo not in self.hub.repos:
            self._error(404, "RepoNotFound", f"Repository Not Found for url: {self.hub.url}/{repo}.")
            return None
        return self.hub.repos[repo]

    def _revision(self, repo: str, rev: str) -> Commit | None:
        if self._repo(repo) is None:
            return None
        c = self.hub.at(repo, urllib.parse.unquote(rev))
        if c is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return c

    # ------------------------------------------------------------------ endpoints

    def create_repo(self) -> None:
        req = json.loads(self._body() or b"{}")
        repo_id = f"{req.get('organization') or 'user'}/{req['name']}"
        url = f"{self.hub.url}/{repo_id}"
        with self.hub.lock:
            if repo_id in self.hub.repos:
                return self._json(409, {"error": "You already created this model repo", "url": url})
            self.hub.repos[repo_id] = []
            self.hub.commit(repo_id, {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"},
                            set(), "initial commit")
        self._json(200, {"url": url, "name": repo_id})

    def validate_yaml(self) -> None:
        """The model card's metadata check (ModelCard.validate, run by push_to_hub): accept it."""
        self._body()
        self._json(200, {"errors": [], "warnings": []})

    def preupload(self, repo: str, rev: str) -> None:
        req = json.loads(self._body())
        if self._repo(repo) is None:
            return
        current = self.hub.at(repo, rev)
        files = []
        for f in req.get("files", []):
            old = current.files.get(f["path"]) if current else None
            files.append({"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                          "oid": git_blob_sha1(old) if old is not None else None})
        self._json(200, {"files": files, "commitOid": current.oid if current else None})

    def commit(self, repo: str, rev: str) -> None:
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        if self._repo(repo) is None:
            return
        files: dict[str, bytes] = {}
        deleted: set[str] = set()
        message = ""
        for item in lines:
            key, value = item["key"], item["value"]
            if key == "header":
                message = value.get("summary", "")
            elif key == "file":
                if value.get("encoding") != "base64":
                    return self._error(400, "BadRequest", "only base64-encoded regular files are supported")
                files[value["path"]] = base64.b64decode(value["content"])
            elif key in ("deletedFile", "deletedFolder"):
                deleted.add(value["path"])
            else:
                return self._error(400, "BadRequest", f"the local test Hub does not accept {key!r} operations")
        with self.hub.lock:
            c = self.hub.commit(repo, files, deleted, message)
        self._json(200, {"commitUrl": f"{self.hub.url}/{repo}/commit/{c.oid}", "commitOid": c.oid,
                         "pullRequestUrl": None})

    def info(self, repo: str, rev: str = "main") -> None:
        c = self._revision(repo, rev)
        if c is None:
            return
        self._json(200, {"id": repo, "modelId": repo, "sha": c.oid, "private": False, "disabled": False,
                         "gated": False, "downloads": 0, "likes": 0, "tags": [], "library_name": None,
                         "siblings": [{"rfilename": p} for p in sorted(c.files)]})

    def tree(self, repo: str, rev: str, path: str = "") -> None:
        c = self._revision(repo, rev)
        if c is None:
            return
        self._json(200, [{"type": "file", "path": p, "size": len(data), "oid": git_blob_sha1(data)}
                         for p, data in sorted(c.files.items()) if p.startswith(path)])

    def resolve(self, repo: str, rev: str, path: str) -> None:
        c = self._revision(repo, rev)
        if c is None:
            return
        if path not in c.files:
            return self._error(404, "EntryNotFound", f"{path} does not exist in {repo}@{rev}")
        data = c.files[path]
        headers = {"X-Repo-Commit": c.oid, "ETag": f'"{git_blob_sha1(data)}"'}
        if path in self.hub.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        self._send(200, data, headers, content_type="application/octet-stream")


@contextlib.contextmanager
def serve() -> Iterator[LocalHub]:
    """Run a :class:`LocalHub` on 127.0.0.1 (a free port) in a thread; stopped on exit."""
    hub = LocalHub()
    handler = type("Handler", (_Handler,), {"hub": hub})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
