"""Start madoguchi as it runs for real (migrate, ASGI server, worker) against a throwaway data dir.

Used by the browser tests' fixtures and by screenshots.py. The server is a separate process,
so live updates travel the real path: ingest → event log → SSE → the page.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, Playwright

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("MADOGUCHI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
AGENT = "agent1@demo.example"
AGENT2 = "agent2@demo.example"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running madoguchi (web + worker) and a helper process that writes as customers do."""

    url: str
    data_dir: Path
    driver: subprocess.Popen[str]
    seed: dict[str, Any] = field(default_factory=dict)

    def call(self, cmd: str, **args: Any) -> Any:
        assert self.driver.stdin and self.driver.stdout
        self.driver.stdin.write(json.dumps({"cmd": cmd, **args}, ensure_ascii=False) + "\n")
        self.driver.stdin.flush()
        answer = json.loads(self.driver.stdout.readline())
        if "error" in answer:
            raise RuntimeError(f"driver {cmd}: {answer['error']}")
        return answer["ok"]

    def customer_writes(self, text: str, *, name: str, account: str = "line", **extra: Any) -> int:
        """A customer message through do_ingest; returns its conversation id."""
        return self.call("ingest", account=account, text=text, name=name, **extra)["conversation"]

    def status(self, conversation: int) -> str:
        return self.call("status", conversation=conversation)["status"]


def _env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    # Always a private SQLite file: the server must not share pytest-django's database, and a
    # DATABASE_URL meant for the unit tests must not be migrated and filled by these tests.
    env.pop("DATABASE_URL", None)
    env.update(
        MADOGUCHI_DATA_DIR=str(data_dir),
        DJANGO_SETTINGS_MODULE="madoguchi.config.settings",
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="WARNING",
    )
    return env


def _wait_until_up(url: str, procs: list[subprocess.Popen[Any]], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"madoguchi exited early:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url + "login/", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"madoguchi did not answer on {url}:\n{log.read_text(errors='replace')[-3000:]}")


@contextmanager
def running_server() -> Iterator[Server]:
    data_dir = Path(tempfile.mkdtemp(prefix="mdg-browser-"))
    env = _env(data_dir)
    exe = [sys.executable, "-m", "madoguchi.cli"]
    subprocess.run([*exe, "migrate", "--verbosity", "0"], env=env, check=True)
    port = _free_port()
    log_path = data_dir / "server.log"
    log = log_path.open("w")
    procs: list[subprocess.Popen[Any]] = []
    try:
        driver = subprocess.Popen(
            [sys.executable, str(HERE / "driver.py")], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8"
        )
        procs.append(driver)
        server = Server(url=f"http://127.0.0.1:{port}/", data_dir=data_dir, driver=driver)
        server.seed = server.call("seed")
        procs.append(subprocess.Popen([*exe, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT))
        procs.append(subprocess.Popen([*exe, "worker", "--interval", "0.2"], env=env, stdout=log, stderr=subprocess.STDOUT))
        _wait_until_up(server.url, procs, log_path)
        yield server
    finally:
        for p in procs:
            if p is procs[0] and p.stdin:
                p.stdin.close()
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()
        if os.environ.get("MADOGUCHI_KEEP_BROWSER_DATA"):
            print(f"browser test data kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def launch(pw: Playwright) -> Browser:
    """Debian's Chromium; Playwright never downloads a browser of its own."""
    return pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def log_in(context: BrowserContext, server: Server, email: str = AGENT) -> Page:
    """Log in through the real form and land on the inbox."""
    page = context.new_page()
    page.goto(server.url + "login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", server.seed["password"])
    page.click("button[type=submit]")
    page.wait_for_url("**/inbox/**")
    return page
