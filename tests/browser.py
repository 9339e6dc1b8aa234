"""Browser tests' tools: a real `ruche serve` on loopback, Debian's Chromium driven by Playwright, axe-core.

Chromium is Debian's package (`/usr/bin/chromium`, installed by scripts/install), not a browser
downloaded by Playwright: Playwright only drives it over the DevTools protocol.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

CHROMIUM = "/usr/bin/chromium"
# WCAG 2.1 A and AA, plus axe's best practices (landmarks, one h1, skip link target...).
AXE_OPTIONS = {"resultTypes": ["violations"], "runOnly": {"type": "tag",
               "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}}  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def use_loopback_web_settings(workspace_path: Path, port: int) -> None:
    """Make the workspace's `ruche serve` listen on 127.0.0.1:``port`` over plain HTTP (a loopback test)."""
    from orchestrator.workspace import open_workspace

    workspace = open_workspace(workspace_path)
    web = workspace.config.web.model_copy(
        update={"base_url": f"http://127.0.0.1:{port}", "port": port, "secure_cookies": False}
    )
    workspace.save_config(workspace.config.model_copy(update={"web": web}))


@contextlib.contextmanager
def served(workspace_path: Path, log: Path, *options: str, port: int | None = None):
    """Run `ruche serve` for the workspace until the block ends; give its base URL.

    On the workspace's [web] settings, or on 127.0.0.1:``port``; ``options``: more `serve` options (--workers N).
    """
    from orchestrator.workspace import open_workspace

    address = ["--host", "127.0.0.1", "--port", str(port)] if port is not None else []
    base = f"http://127.0.0.1:{port}" if port is not None else open_workspace(workspace_path).config.web.base_url
    process = subprocess.Popen([sys.executable, "-m", "orchestrator", "--workspace", str(workspace_path), "serve", *address,
                                *options], stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"ruche serve stopped:\n{log.read_text()[-3000:]}"
            try:
                if requests.get(f"{base}/", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, f"ruche serve did not answer in 30 s:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def chromium_arguments(*extra: str) -> list[str]:
    # Chromium's sandbox refuses to run as root (CI runs the tests as root).
    return (["--no-sandbox"] if os.geteuid() == 0 else []) + list(extra)


@contextlib.contextmanager
def chromium(*extra_arguments: str):
    """Give a headless Debian Chromium driven by Playwright (closed when the block ends)."""
    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM), "Debian's chromium is missing: run scripts/install"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_arguments(*extra_arguments)
        )
        try:
            yield browser
        finally:
            browser.close()


def accessibility_violations(page) -> list[str]:
    """Run axe-core on ``page``; give one line per violation (rule, impact, the elements), empty when none."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options=AXE_OPTIONS)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
    ]
