import os
import random
import signal
import subprocess
import sys
import time

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from madoguchi.web.demo.seed import DEMO_PASSWORD, DEMO_USERS, seed_demo, send_one


class Command(BaseCommand):
    help = "Run a working helpdesk: migrate, seed a demo workspace, start web + worker, send sample traffic."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--every", type=float, default=15.0, help="mean seconds between sample messages")
        parser.add_argument("--initial", type=int, default=12, help="sample messages to start with")

    def handle(self, *args: object, **opts: object) -> None:
        call_command("migrate", verbosity=0)
        demo = seed_demo()
        rng = random.Random()
        for _ in range(int(opts["initial"])):  # type: ignore[call-overload]
            send_one(demo, rng)
        env = dict(os.environ)
        exe = [sys.executable, "-m", "madoguchi.cli"]
        children = [
            subprocess.Popen([*exe, "serve", "--host", str(opts["host"]), "--port", str(opts["port"])], env=env),
            subprocess.Popen([*exe, "worker"], env=env),
        ]
        url = f"http://{opts['host']}:{opts['port']}/"
        self.stdout.write("\n" + "=" * 60)
        self.stdout.write(f"madoguchi is running at {url}")
        self.stdout.write(f"Log in with any of these (password: {DEMO_PASSWORD}):")
        for email, _name, role in DEMO_USERS:
            self.stdout.write(f"  {role:8} {email}")
        self.stdout.write("Sample customers write in every few seconds. Ctrl-C stops everything.")
        self.stdout.write("=" * 60 + "\n")

        def stop(*_args: object) -> None:
            for child in children:
                child.terminate()
            for child in children:
                try:
                    child.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    child.kill()
            sys.exit(0)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        every = float(opts["every"])  # type: ignore[arg-type]
        while True:
            time.sleep(rng.expovariate(1 / every))
            if any(child.poll() is not None for child in children):
                self.stderr.write("a child process stopped; shutting down")
                stop()
            try:
                send_one(demo, rng)
            except Exception as exc:  # keep the demo alive; the error is shown
                self.stderr.write(f"sample traffic failed: {exc}")
