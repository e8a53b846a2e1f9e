"""Drive Debian's headless Chromium over the DevTools protocol: open a page from the disk,
collect console errors, failed loads and exceptions, time the load, evaluate, screenshot.

Used by tests/test_view.py and benchmarks/view_report.py. Needs the `chromium`
package (``apt-get install -y chromium``) and the `websockets` package.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from typing import Any, Optional

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--remote-debugging-port=0", "--remote-allow-origins=*",
                  # file:// pages may load their own frames and scripts (same folder tree).
                  "--allow-file-access-from-files", "--window-size=1200,1000")


def chromium_path() -> Optional[str]:
    """The Chromium executable, or None when it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless Chromium process and a connection to its first tab.

    Use as a context manager; `open` loads a page and returns what happened.
    """

    def __init__(self, timeout: float = 60.0):
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._profile = tempfile.mkdtemp(prefix="chromium-profile-")
        exe = chromium_path()
        if exe is None:
            raise RuntimeError("chromium is not installed: apt-get install -y chromium")
        self._proc = subprocess.Popen([exe, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}",
                                       "about:blank"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        self._ws = None
        try:
            self._connect()
        except BaseException:
            self.close()
            raise

    def _connect(self) -> None:
        from websockets.sync.client import connect

        port_file = os.path.join(self._profile, "DevToolsActivePort")
        deadline = time.monotonic() + self.timeout
        while not os.path.exists(port_file) or not open(port_file).read().strip():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("chromium did not start (no DevToolsActivePort)")
            time.sleep(0.05)
        port = int(open(port_file).read().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = json.load(r)
        page = next(t for t in targets if t.get("type") == "page")
        self._ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        for method in ("Page.enable", "Runtime.enable", "Log.enable", "Network.enable"):
            self.call(method)

    def call(self, method: str, events: Optional[list] = None, **params: Any) -> dict:
        """Send one command and return its result; events that arrive meanwhile go to `events`."""
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while True:
            msg = json.loads(self._ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if events is not None and "method" in msg:
                events.append(msg)

    def _drain(self, events: list, until: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not any(e.get("method") == until for e in events):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {until} within {self.timeout} s")
            msg = json.loads(self._ws.recv(timeout=remaining))
            if "method" in msg:
                events.append(msg)

    def evaluate(self, expression: str, events: Optional[list] = None) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", events, expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, path: str) -> dict:
        """Load a file and wait for its load event and loaded images.

        Returns:
          ``errors`` (console errors, exceptions, failed requests), ``load_ms``
          (navigation start to load event end, as the page measured it) and
          ``wall_ms`` (from the navigate command to the load event, measured here).
        """
        events: list = []
        t0 = time.perf_counter()
        self.call("Page.navigate", events, url="file://" + os.path.abspath(path))
        self._drain(events, "Page.loadEventFired")
        wall_ms = (time.perf_counter() - t0) * 1e3
        load_ms = self.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd",
                                events)
        # Frames set by the script after load: wait until every image is decoded.
        self.evaluate("Promise.all(Array.from(document.images).map(i => i.decode()"
                      ".catch(e => console.error('image ' + i.src + ': ' + e))))", events)
        self.evaluate("new Promise(r => setTimeout(r, 50))", events)  # late console messages
        return {"errors": console_errors(events), "load_ms": load_ms, "wall_ms": wall_ms}

    def screenshot(self, path: str) -> str:
        """Write a PNG of the page to `path`."""
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data["data"]))
        return path

    def close(self) -> None:
        """Close the connection, end Chromium, remove its profile."""
        if self._ws is not None:
            try:
                self._ws.close()
            except Exception:  # the browser may already be gone
                pass
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def console_errors(events: list) -> list[str]:
    """Console errors, uncaught exceptions and failed loads among DevTools events."""
    out = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            out.append(f"exception: {details.get('exception', {}).get('description') or details}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            out.append("console: " + " ".join(str(a.get("value", a.get("description")))
                                              for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            out.append(f"log: {entry.get('text')} {entry.get('url', '')}")
        elif method == "Network.loadingFailed":
            out.append(f"load failed: {params.get('errorText')}")
    return out
