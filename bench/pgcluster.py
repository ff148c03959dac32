"""A throw-away PostgreSQL cluster on a loopback port, for the benchmarks (like scripts/test.sh).

initdb refuses to run as root, so as root the cluster belongs to the `postgres` system user.
fsync is off: the cluster lives for one run.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator


def _bin() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise SystemExit("PostgreSQL is not installed: apt-get install -y postgresql")
    return os.path.dirname(found[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def throwaway_postgres(*settings: str) -> Iterator[str]:
    """Start a cluster, yield its DATABASE_URL, remove it afterwards. `settings`: extra -c options."""
    pgbin = _bin()
    root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if root else []
    tmp = tempfile.mkdtemp(prefix="madoguchi-bench-pg.")
    os.chmod(tmp, 0o755)
    if root:
        shutil.chown(tmp, "postgres")
    port = _free_port()
    data = os.path.join(tmp, "data")
    run = lambda *cmd: subprocess.run([*prefix, *cmd], check=True, stdout=subprocess.DEVNULL)  # noqa: E731
    try:
        run(f"{pgbin}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8")
        opts = [
            "listen_addresses=127.0.0.1", f"port={port}", f"unix_socket_directories={tmp}",
            "fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=200",
            "shared_buffers=1GB", "maintenance_work_mem=512MB", "max_wal_size=8GB", *settings,
        ]
        run(f"{pgbin}/pg_ctl", "-D", data, "-l", os.path.join(tmp, "server.log"), "-w", "start",
            "-o", " ".join(f"-c {o}" for o in opts))
        run(f"{pgbin}/psql", "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres",
            "-c", "CREATE ROLE madoguchi LOGIN PASSWORD 'madoguchi' CREATEDB",
            "-c", "CREATE DATABASE madoguchi OWNER madoguchi")
        yield f"postgres://madoguchi:madoguchi@127.0.0.1:{port}/madoguchi"
    finally:
        subprocess.run([*prefix, f"{pgbin}/pg_ctl", "-D", data, "-m", "immediate", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)
