"""A small Hugging Face Hub on 127.0.0.1 for tests: local folders served as model / dataset repos.

It answers the part of the Hub's HTTP API that `huggingface_hub`, `datasets` and `transformers` use to
read a public repo (repo info, tree listing, paths-info, file resolve with HEAD and byte ranges), so the
`hf://` code paths run for real with `HF_ENDPOINT` pointing here. Each repo has one commit, at "main".
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

API = re.compile(r"^/api/(models|datasets)/([^/]+/[^/]+)(?:/(revision|tree|paths-info)/([^/]+)(?:/(.*))?)?$")
RESOLVE = re.compile(r"^/(?:(datasets)/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


class LocalHub:
    """Serve `repos` ({("model" | "dataset", "org/name"): folder}) until `close()`."""

    def __init__(self, repos: dict[tuple[str, str], Path]) -> None:
        self.repos = {key: Path(folder) for key, folder in repos.items()}
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
                hub._handle(self, body=False)

            def do_GET(self) -> None:  # noqa: N802
                hub._handle(self, body=True)

            def do_POST(self) -> None:  # noqa: N802
                hub._handle(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -------------------------------------------------------------------------------------------- helpers
    def _files(self, folder: Path) -> list[str]:
        return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())

    def _sha(self, folder: Path) -> str:
        digest = hashlib.sha1()
        for name in self._files(folder):
            digest.update(name.encode() + b"\0" + (folder / name).read_bytes())
        return digest.hexdigest()

    def _entry(self, folder: Path, path: str) -> dict | None:
        target = folder / path
        if target.is_file():
            data = target.read_bytes()
            return {"type": "file", "path": path, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
        if target.is_dir():
            return {"type": "directory", "path": path, "oid": "0" * 40, "size": 0}
        return None

    def _send(self, handler: BaseHTTPRequestHandler, status: int, payload: bytes, headers: dict, body: bool) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        if body:
            handler.wfile.write(payload)

    def _json(self, handler: BaseHTTPRequestHandler, obj: object, body: bool, status: int = 200) -> None:
        self._send(handler, status, json.dumps(obj).encode(), {"Content-Type": "application/json"}, body)

    def _error(self, handler: BaseHTTPRequestHandler, code: str, body: bool) -> None:
        payload = json.dumps({"error": code}).encode()
        self._send(handler, 404, payload, {"Content-Type": "application/json", "X-Error-Code": code}, body)

    def _repo(self, kind: str, repo_id: str, rev: str | None) -> tuple[Path, str] | str:
        folder = self.repos.get((kind, repo_id))
        if folder is None:
            return "RepoNotFound"
        sha = self._sha(folder)
        if rev is not None and unquote(rev) not in ("main", sha):
            return "RevisionNotFound"
        return folder, sha

    # -------------------------------------------------------------------------------------------- routes
    def _handle(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        url = urlparse(handler.path)
        self.requests.append(f"{handler.command} {url.path}")
        if handler.command == "POST":
            length = int(handler.headers.get("Content-Length") or 0)
            form = parse_qs(handler.rfile.read(length).decode()) if length else {}
        api = API.match(url.path)
        if api:
            kind, repo_id, action, rev, rest = api.groups()
            found = self._repo(kind[:-1], repo_id, rev)
            if isinstance(found, str):
                return self._error(handler, found, body)
            folder, sha = found
            if action in (None, "revision"):
                siblings = [{"rfilename": name} for name in self._files(folder)]
                info = {"id": repo_id, "sha": sha, "siblings": siblings, "private": False, "disabled": False,
                        "gated": False, "tags": [], "lastModified": "2026-01-01T00:00:00.000Z"}
                return self._json(handler, info, body)
            if action == "tree":
                base = unquote(rest or "").strip("/")
                recursive = parse_qs(url.query).get("recursive", ["false"])[0] in ("true", "True", "1")
                root = folder / base if base else folder
                if not root.is_dir():
                    return self._error(handler, "EntryNotFound", body)
                items = root.rglob("*") if recursive else root.iterdir()
                entries = [self._entry(folder, p.relative_to(folder).as_posix()) for p in sorted(items)]
                return self._json(handler, entries, body)
            if action == "paths-info":
                paths = form.get("paths", []) if handler.command == "POST" else []
                entries = [e for e in (self._entry(folder, p) for p in paths) if e is not None]
                return self._json(handler, entries, body)
        resolve = RESOLVE.match(url.path)
        if resolve:
            is_dataset, repo_id, rev, path = resolve.groups()
            found = self._repo("dataset" if is_dataset else "model", repo_id, rev)
            if isinstance(found, str):
                return self._error(handler, found, body)
            folder, sha = found
            target = folder / unquote(path)
            if not target.is_file():
                return self._error(handler, "EntryNotFound", body)
            data = target.read_bytes()
            headers = {"X-Repo-Commit": sha, "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                       "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
            byte_range = re.match(r"bytes=(\d+)-(\d*)", handler.headers.get("Range") or "")
            if byte_range:
                start = int(byte_range.group(1))
                end = int(byte_range.group(2)) if byte_range.group(2) else len(data) - 1
                headers["Content-Range"] = f"bytes {start}-{min(end, len(data) - 1)}/{len(data)}"
                return self._send(handler, 206, data[start : end + 1], headers, body)
            return self._send(handler, 200, data, headers, body)
        return self._error(handler, "RepoNotFound", body)
