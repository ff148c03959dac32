import logging
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any

import httpx
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from madoguchi.web.demo.networks import LABELS, NETWORK_KINDS, Networks
from madoguchi.web.demo.seed import DEMO_PASSWORD, DEMO_USERS, seed_demo


class Command(BaseCommand):
    help = (
        "Run a working helpdesk: migrate, seed a demo workspace, start the connectors' local fake "
        "social networks, web + worker, and send sample traffic through the platforms' real paths."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--every", type=float, default=15.0, help="mean seconds between sample messages")
        parser.add_argument("--initial", type=int, default=12, help="sample messages to start with")
        parser.add_argument("--simulated", action="store_true", help="no fakes: every channel stays simulated")

    def handle(self, *args: object, **opts: Any) -> None:
        if "LOG_LEVEL" not in os.environ:  # the console shows the traffic (← in, → out); LOG_LEVEL=INFO shows every request too
            os.environ["LOG_LEVEL"] = "WARNING"
            logging.getLogger().setLevel(logging.WARNING)
        call_command("migrate", verbosity=0)
        demo = seed_demo()
        rng = random.Random()
        host = "127.0.0.1" if opts["host"] in ("0.0.0.0", "::", "") else str(opts["host"])
        base = f"http://{host}:{opts['port']}"
        http = httpx.Client(base_url=base, timeout=15)

        def post(path: str, body: bytes, headers: dict[str, str]) -> int:
            return http.post(path, content=body, headers=headers).status_code

        networks = Networks(demo, post, log=self.stdout.write, kinds=() if opts["simulated"] else NETWORK_KINDS)
        if not opts["simulated"]:
            self.stdout.write("Starting the local fake social networks…")
        connected = networks.start()
        env = dict(os.environ)
        if "EMAIL_HOST" not in env and "EMAIL_BACKEND" not in env:
            env.update(networks.mail_settings())
        exe = [sys.executable, "-m", "madoguchi.cli"]
        children = [
            subprocess.Popen([*exe, "serve", "--host", str(opts["host"]), "--port", str(opts["port"])], env=env),
            subprocess.Popen([*exe, "worker", "--clock-interval", "5"], env=env),  # the pollers ask the fakes every 5 s
        ]
        stopping = False

        def stop(*_args: object, code: int = 0) -> None:
            nonlocal stopping
            if stopping:
                return
            stopping = True
            self.stdout.write("\nStopping the web server, the worker and the fakes…")
            for child in children:
                if child.poll() is None:
                    child.terminate()
            for child in children:
                try:
                    child.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    child.kill()
            networks.stop()
            http.close()
            sys.exit(code)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        if not _wait_until_up(base + "/login/", children):
            self.stderr.write("the web server did not answer; shutting down")
            stop(code=1)

        url = f"http://{opts['host']}:{opts['port']}/"
        self.stdout.write("\n" + "=" * 60)
        self.stdout.write(f"madoguchi is running at {url}")
        self.stdout.write(f"Log in with any of these (password: {DEMO_PASSWORD}):")
        for email, _name, role in DEMO_USERS:
            self.stdout.write(f"  {role:8} {email}")
        if connected:
            self.stdout.write("Local fake social networks: " + ", ".join(LABELS[kind] for kind in connected))
            self.stdout.write("Customers write in through them; your replies go out to them (shown here with →).")
        simulated = [a.kind for a in demo.accounts if a.kind not in connected and a.kind not in ("webchat", "webform")]
        if simulated:
            self.stdout.write("Simulated channels (no fake): " + ", ".join(sorted(set(simulated))))
        self.stdout.write("Sample customers write in every few seconds. Ctrl-C stops everything.")
        self.stdout.write("=" * 60 + "\n")

        def send() -> None:
            try:
                self.stdout.write(networks.send_one(rng))
            except Exception as exc:  # keep the demo alive; the error is shown
                self.stderr.write(f"sample traffic failed: {type(exc).__name__}: {exc}")

        for _ in range(int(opts["initial"])):
            send()
        every = float(opts["every"])
        next_at = time.monotonic() + rng.expovariate(1 / every)
        while True:
            time.sleep(0.5)
            for line in networks.replies():
                self.stdout.write(line)
            if any(child.poll() is not None for child in children):
                self.stderr.write("a child process stopped; shutting down")
                stop(code=1)
            if time.monotonic() >= next_at:
                send()
                next_at = time.monotonic() + rng.expovariate(1 / every)


def _wait_until_up(url: str, children: list[subprocess.Popen], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False
