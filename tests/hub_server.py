"""A fake Hugging Face Hub: a real HTTP server on 127.0.0.1 for the real huggingface_hub client.

It speaks the part of the Hub API that ``create_repo``, ``create_branch``, ``create_commit``
(LFS "basic" transfer, no Xet) and ``snapshot_download`` use, keeps repos in memory (files
by commit, branches, private repos), checks ``Authorization: Bearer`` tokens, and records
every request. Unknown routes answer 404 and are recorded in ``unknown`` (and printed) so a
client change shows up loudly. ``fail(kind, status, times)`` injects failures.

    hub = FakeHub(tokens={"hf_test": "alice"})
    hub.start()           # hub.url -> "http://127.0.0.1:PORT"
    ...
    hub.stop()
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".npy", ".zip")
LFS_THRESHOLD = 10 * 1024 * 1024
GITATTRIBUTES = (
    b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"
)


def git_blob_sha(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class StoredFile:
    content: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def oid(self) -> str:
        # The git object id: of the LFS pointer for LFS files, of the content otherwise.
        if self.lfs:
            return git_blob_sha(self.pointer)
        return git_blob_sha(self.content)

    @property
    def pointer(self) -> bytes:
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(self.content)}\n".encode()


@dataclass
class Repo:
    repo_id: str
    owner: str
    private: bool
    commits: dict[str, dict[str, StoredFile]] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)


class FakeHub:
    """In-memory Hub state plus the server that serves it."""

    def __init__(self, tokens: dict[str, str] | None = None, verbose: bool = True):
        self.tokens = dict(tokens or {})  # token -> user name
        self.repos: dict[str, Repo] = {}
        self.lfs: dict[str, bytes] = {}  # sha256 -> content
        self.requests: list[tuple[str, str]] = []
        self.bodies: list[bytes] = []
        self.unknown: list[tuple[str, str]] = []
        self.failures: dict[str, list[tuple[int, bytes | None]]] = {}
        self.verbose = verbose
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self._counter = 0

    # ---------------------------------------------------------------- lifecycle
    def start(self, port: int = 0) -> FakeHub:
        handler = type("Handler", (_Handler,), {"hub": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-hub", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ helpers
    def fail(self, kind: str, status: int = 500, times: int = 1, body: bytes | None = None) -> None:
        """Answer the next ``times`` requests of ``kind`` (e.g. "commit", "lfs-put", "repo_info")
        with ``status``: a JSON error, or ``body`` as text/html (an answer that is not JSON)."""
        self.failures.setdefault(kind, []).extend([(status, body)] * times)

    def put_files(
        self, repo_id: str, files: dict[str, bytes], remove: tuple[str, ...] = (), message: str = "put files"
    ) -> str:
        """Commit ``files`` (and the removal of ``remove``) to ``repo_id``'s main branch as they
        are, bypassing every check the client makes (e.g. names like ``../x``); returns the commit."""
        repo = self.repos[repo_id]
        stored = dict(repo.commits[repo.branches["main"]])
        stored.update({path: StoredFile(content, lfs=False) for path, content in files.items()})
        for path in remove:
            stored.pop(path)
        repo.branches["main"] = self._new_commit(repo, stored, message)
        return repo.branches["main"]

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        repo = self.repos[repo_id]
        commit = repo.branches.get(revision, revision)
        return {path: f.content for path, f in repo.commits[commit].items()}

    def all_stored_bytes(self) -> list[bytes]:
        """Every file content of every commit, LFS object and request body the server received."""
        out = [
            f.content
            for repo in self.repos.values()
            for files in repo.commits.values()
            for f in files.values()
        ]
        return out + list(self.lfs.values()) + list(self.bodies)

    def count(self, method: str, pattern: str) -> int:
        return sum(1 for m, p in self.requests if m == method and re.search(pattern, p))

    def _new_commit(self, repo: Repo, files: dict[str, StoredFile], message: str) -> str:
        self._counter += 1
        oid = hashlib.sha1(f"{repo.repo_id}:{self._counter}:{message}".encode()).hexdigest()
        repo.commits[oid] = files
        repo.messages[oid] = message
        return oid


_REPO = r"(?P<repo>[\w.-]+(?:/[\w.-]+)?)"
_ROUTES = [
    ("POST", re.compile(r"^/api/repos/create$"), "create_repo"),
    ("POST", re.compile(r"^/api/validate-yaml$"), "validate_yaml"),
    ("POST", re.compile(rf"^/api/models/{_REPO}/preupload/(?P<rev>[^/]+)$"), "preupload"),
    ("POST", re.compile(rf"^/api/models/{_REPO}/commit/(?P<rev>[^/]+)$"), "commit"),
    ("POST", re.compile(rf"^/api/models/{_REPO}/branch/(?P<rev>[^/]+)$"), "create_branch"),
    ("POST", re.compile(rf"^/{_REPO}\.git/info/lfs/objects/batch$"), "lfs_batch"),
    ("PUT", re.compile(r"^/lfs-upload/(?P<oid>[0-9a-f]{64})$"), "lfs_put"),
    ("GET", re.compile(rf"^/api/models/{_REPO}/revision/(?P<rev>[^/]+)$"), "repo_info"),
    ("GET", re.compile(rf"^/api/models/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$"), "tree"),
    ("GET", re.compile(rf"^/api/models/{_REPO}$"), "repo_info"),
    ("HEAD", re.compile(rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"), "resolve"),
    ("GET", re.compile(rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"), "resolve"),
]
_FAILURE_KIND = {"lfs_put": "lfs-put", "lfs_batch": "lfs-batch", "create_repo": "create-repo"}


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    # HTTP/1.0: one request per connection, so a stopped server really is unreachable
    # (no pooled keep-alive connection survives in a handler thread).
    protocol_version = "HTTP/1.0"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    # ---------------------------------------------------------------- plumbing
    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        self.query = parse_qs(url.query)
        self.body = self._read_body()
        hub = self.hub
        with hub.lock:
            hub.requests.append((method, self.path))
            hub.bodies.append(self.body)
        for route_method, pattern, name in _ROUTES:
            match = pattern.match(path)
            if route_method == method and match:
                kind = _FAILURE_KIND.get(name, name)
                with hub.lock:
                    pending = hub.failures.get(kind)
                    status, body = pending.pop(0) if pending else (None, None)
                if body is not None:
                    return self._send(status, body, {"Content-Type": "text/html"})
                if status is not None:
                    return self._json({"error": f"injected failure of {kind}"}, status)
                with hub.lock:
                    return getattr(self, f"_{name}")(**match.groupdict())
        hub.unknown.append((method, self.path))
        if hub.verbose:
            print(f"FAKE HUB: unknown request {method} {self.path}", file=sys.stderr, flush=True)
        self._json({"error": f"fake hub: no route for {method} {path}"}, 404)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self, status: int, body: bytes, headers: dict[str, str] | None = None, head: bool = False
    ) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, data, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _error(self, status: int, message: str, code: str | None = None, head: bool = False) -> None:
        headers = {"Content-Type": "application/json", "X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._send(status, json.dumps({"error": message}).encode(), headers, head=head)

    # ---------------------------------------------------------------- auth
    def _user(self) -> tuple[str | None, bool]:
        """(user, ok): ok is False when a token was sent but is not valid."""
        auth = self.headers.get("Authorization", "")
        if not auth:
            return None, True
        token = auth.removeprefix("Bearer ").strip()
        user = self.hub.tokens.get(token)
        return user, user is not None

    def _reject_bad_token(self, head: bool = False) -> bool:
        user, ok = self._user()
        if not ok:
            self._error(401, "Invalid credentials in Authorization header", head=head)
            return True
        return False

    def _readable_repo(self, repo_id: str, head: bool = False) -> Repo | None:
        if self._reject_bad_token(head):
            return None
        repo = self.hub.repos.get(repo_id)
        user, _ = self._user()
        if repo is None or (repo.private and user != repo.owner):
            self._error(404, "Repository not found", code="RepoNotFound", head=head)
            return None
        return repo

    def _writable_repo(self, repo_id: str) -> Repo | None:
        repo = self._readable_repo(repo_id)
        if repo is None:
            return None
        user, _ = self._user()
        if user != repo.owner:
            self._error(403, "You don't have the rights to write to this repo")
            return None
        return repo

    def _commit_of(self, repo: Repo, rev: str) -> str | None:
        rev = unquote(rev)
        if rev in repo.branches:
            return repo.branches[rev]
        if rev in repo.commits:
            return rev
        return None

    # ---------------------------------------------------------------- routes
    def _create_repo(self):
        if self._reject_bad_token():
            return
        user, _ = self._user()
        if user is None:
            return self._error(401, "You must be authenticated to create a repo")
        data = json.loads(self.body or b"{}")
        owner = data.get("organization") or user
        repo_id = f"{owner}/{data['name']}"
        if owner != user:
            return self._error(403, f"You don't have the rights to create a repo under {owner}")
        if repo_id in self.hub.repos:
            # Like the Hub: a 409 that still names the repo's URL (create_repo(exist_ok=True) reads it).
            message = "You already created this model repo"
            body = json.dumps({"error": message, "url": f"{self.hub.url}/{repo_id}"}).encode()
            return self._send(409, body, {"Content-Type": "application/json", "X-Error-Message": message})
        private = data.get("visibility", "private" if data.get("private") else "public") == "private"
        repo = Repo(repo_id=repo_id, owner=owner, private=private)
        first = self.hub._new_commit(
            repo, {".gitattributes": StoredFile(GITATTRIBUTES, lfs=False)}, "initial commit"
        )
        repo.branches["main"] = first
        self.hub.repos[repo_id] = repo
        self._json({"url": f"{self.hub.url}/{repo_id}", "name": repo_id, "id": repo_id})

    def _create_branch(self, repo: str, rev: str):
        target = self._writable_repo(repo)
        if target is None:
            return
        data = json.loads(self.body or b"{}")
        branch = unquote(rev)
        if branch in target.branches:
            return self._error(409, f"Reference refs/heads/{branch} already exists")
        start = self._commit_of(target, data.get("startingPoint") or "main")
        if start is None:
            return self._error(404, "Invalid starting point", code="RevisionNotFound")
        target.branches[branch] = start
        self._json({})

    def _validate_yaml(self):
        if self._reject_bad_token():
            return
        content = json.loads(self.body).get("content", "")
        match = re.match(r"^---\n(.*?)\n---\n", content, re.DOTALL)
        if match is None:
            return self._json({"errors": [], "warnings": [{"message": "empty or missing yaml metadata"}]})
        try:
            metadata = yaml.safe_load(match.group(1))
        except yaml.YAMLError as exc:
            return self._json({"errors": [{"message": f"invalid YAML: {exc}"}]}, 400)
        if not isinstance(metadata, dict):
            return self._json({"errors": [{"message": "metadata must be a mapping"}]}, 400)
        for entry in metadata.get("model-index") or []:
            for result in entry.get("results") or []:
                if "task" not in result or "dataset" not in result or not result.get("metrics"):
                    return self._json(
                        {"errors": [{"message": "model-index results need task, dataset, metrics"}]}, 400
                    )
        self._json({"errors": [], "warnings": []})

    def _preupload(self, repo: str, rev: str):
        target = self._writable_repo(repo)
        if target is None:
            return
        commit = self._commit_of(target, rev)
        existing = target.commits.get(commit, {}) if commit else {}
        answer = []
        for item in json.loads(self.body)["files"]:
            sample = base64.b64decode(item["sample"])
            lfs = item["path"].endswith(LFS_SUFFIXES) or item["size"] >= LFS_THRESHOLD or b"\0" in sample
            previous = existing.get(item["path"])
            oid = (previous.sha256 if previous.lfs else previous.oid) if previous else None
            answer.append(
                {
                    "path": item["path"],
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": oid,
                }
            )
        self._json({"files": answer, "commitOid": commit})

    def _lfs_batch(self, repo: str):
        target = self._writable_repo(repo)
        if target is None:
            return
        objects = []
        for obj in json.loads(self.body)["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.hub.lfs:
                entry["actions"] = {
                    "upload": {"href": f"{self.hub.url}/lfs-upload/{obj['oid']}", "header": {}}
                }
            objects.append(entry)
        self._send(
            200,
            json.dumps({"transfer": "basic", "objects": objects}).encode(),
            {"Content-Type": "application/vnd.git-lfs+json"},
        )

    def _lfs_put(self, oid: str):
        if hashlib.sha256(self.body).hexdigest() != oid:
            return self._error(400, "uploaded content does not match its sha256")
        self.hub.lfs[oid] = self.body
        self._send(200, b"")

    def _commit(self, repo: str, rev: str):
        target = self._writable_repo(repo)
        if target is None:
            return
        branch = unquote(rev)
        parent = target.branches.get(branch)
        if parent is None:
            return self._error(404, f"Invalid rev id: {branch}", code="RevisionNotFound")
        files = dict(target.commits[parent])
        lines = [json.loads(line) for line in self.body.splitlines() if line.strip()]
        header = next((line["value"] for line in lines if line["key"] == "header"), {})
        for line in lines:
            key, value = line["key"], line["value"]
            if key == "file":
                files[value["path"]] = StoredFile(base64.b64decode(value["content"]), lfs=False)
            elif key == "lfsFile":
                content = self.hub.lfs.get(value["oid"])
                if content is None or len(content) != value["size"]:
                    return self._error(422, f"LFS object {value['oid']} of {value['path']} was not uploaded")
                files[value["path"]] = StoredFile(content, lfs=True)
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: f for p, f in files.items() if not p.startswith(prefix)}
            elif key != "header":
                return self._error(400, f"unknown commit operation {key}")
        oid = self.hub._new_commit(target, files, header.get("summary", ""))
        target.branches[branch] = oid
        self._json(
            {"commitUrl": f"{self.hub.url}/{repo}/commit/{oid}", "commitOid": oid, "pullRequestUrl": None}
        )

    def _repo_info(self, repo: str, rev: str = "main"):
        target = self._readable_repo(repo)
        if target is None:
            return
        commit = self._commit_of(target, rev)
        if commit is None:
            return self._error(404, f"Invalid rev id: {rev}", code="RevisionNotFound")
        files = target.commits[commit]
        self._json(
            {
                "id": repo,
                "modelId": repo,
                "author": target.owner,
                "sha": commit,
                "private": target.private,
                "disabled": False,
                "gated": False,
                "tags": [],
                "siblings": [{"rfilename": p} for p in sorted(files)],
            }
        )

    def _tree(self, repo: str, rev: str, path: str | None = None):
        target = self._readable_repo(repo)
        if target is None:
            return
        commit = self._commit_of(target, rev)
        if commit is None:
            return self._error(404, f"Invalid rev id: {rev}", code="RevisionNotFound")
        prefix = (path.rstrip("/") + "/") if path else ""
        recursive = self.query.get("recursive", ["false"])[0].lower() in ("true", "1")
        entries = []
        for name, stored in sorted(target.commits[commit].items()):
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) :]
            if "/" in rest and not recursive:
                continue
            entry = {"type": "file", "oid": stored.oid, "size": len(stored.content), "path": name}
            if stored.lfs:
                entry["lfs"] = {
                    "oid": stored.sha256,
                    "size": len(stored.content),
                    "pointerSize": len(stored.pointer),
                }
            entries.append(entry)
        self._json(entries)

    def _resolve(self, repo: str, rev: str, path: str):
        head = self.command == "HEAD"
        target = self._readable_repo(repo, head=head)
        if target is None:
            return
        commit = self._commit_of(target, rev)
        if commit is None:
            return self._error(404, f"Invalid rev id: {rev}", code="RevisionNotFound", head=head)
        stored = target.commits[commit].get(path)
        headers = {"X-Repo-Commit": commit}
        if stored is None:
            headers.update({"X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found"})
            return self._send(404, b"", headers, head=head)
        body = stored.content
        headers["ETag"] = f'"{stored.sha256 if stored.lfs else stored.oid}"'
        headers["Content-Type"] = "application/octet-stream"
        if stored.lfs:
            headers["X-Linked-Size"] = str(len(body))
            headers["X-Linked-Etag"] = f'"{stored.sha256}"'
        status = 200
        match = re.match(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if match and not head:
            start = int(match.group(1))
            headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
            body, status = body[start:], 206
        self._send(status, body, headers, head=head) if not head else self._send_head(headers, len(body))

    def _send_head(self, headers: dict[str, str], length: int) -> None:
        self.send_response(200)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
