"""A minimal Chrome DevTools Protocol client over `--remote-debugging-pipe` (no websocket library needed).

Chromium reads commands from file descriptor 3 and writes replies and events to descriptor 4, each message
one JSON object ended by a NUL byte. `Browser` starts a headless Chromium with no route to any host
(`--host-resolver-rules`, a dead proxy), opens one page and records what it asked the network for.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

OFFLINE_FLAGS = ["--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]
BASE_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
              "--disable-extensions", "--disable-background-networking", "--disable-sync",
              "--disable-component-update", "--hide-scrollbars", "--mute-audio"]


class Browser:
    """One headless Chromium and one page, driven over the DevTools pipe."""

    def __init__(self, chromium: str, user_data_dir: Path, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self._ids = 0
        self._buf = b""
        self.events: list[dict[str, Any]] = []
        to_child, self._write = os.pipe()
        self._read, from_child = os.pipe()

        def wire() -> None:  # in the child, before exec: the pipe ends at the descriptors Chromium expects
            os.dup2(to_child, 3)
            os.dup2(from_child, 4)

        self.proc = subprocess.Popen(
            [chromium, *BASE_FLAGS, *OFFLINE_FLAGS, "--remote-debugging-pipe", f"--user-data-dir={user_data_dir}",
             "about:blank"],
            preexec_fn=wire, pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child)
        os.close(from_child)
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._read], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError("no message from Chromium")
            chunk = os.read(self._read, 1 << 16)
            if not chunk:
                raise EOFError("Chromium closed the DevTools pipe")
            self._buf += chunk
        message, self._buf = self._buf.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict[str, Any] | None = None, *, session: bool = False) -> dict[str, Any]:
        """Send one command and return its result (events that arrive meanwhile are kept in `events`)."""
        self._ids += 1
        message: dict[str, Any] = {"id": self._ids, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._ids:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict[str, Any]:
        """Wait for an event of the page's session."""
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + self.timeout
        while True:
            event = self._receive(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def settle(self, quiet: float = 1.0, limit: float = 10.0) -> None:
        """Collect events (late requests, console messages) until none has come for `quiet` seconds."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            try:
                self.events.append(self._receive(min(end, time.monotonic() + quiet)))
            except TimeoutError:
                return

    def open(self, url: str, width: int = 390, height: int = 844) -> None:
        """Load `url` in a phone-sized viewport, recording network requests and console entries."""
        for domain in ("Network", "Page", "Log", "Runtime"):
            self.call(f"{domain}.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True}, session=True)
        self.call("Page.navigate", {"url": url}, session=True)
        self.wait_for("Page.loadEventFired")
        self.settle()

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True)
        return result["result"].get("value")

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def console(self) -> list[str]:
        out = [e["params"]["entry"].get("text", "") for e in self.events if e.get("method") == "Log.entryAdded"]
        out += [" ".join(str(a.get("value", a.get("description", ""))) for a in e["params"].get("args", []))
                for e in self.events if e.get("method") == "Runtime.consoleAPICalled"]
        return out

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (OSError, EOFError, TimeoutError, RuntimeError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._read, self._write):
            try:
                os.close(fd)
            except OSError:
                pass
