"""The dashboard served in a child process as `ketawatch serve` serves it, for the browser tests and the speed benchmark."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from ketawatch.cli import streamlit_command

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_dashboard(url: str, log: Path, *, env: dict[str, str] | None = None, wait_s: float = 90) -> tuple[subprocess.Popen, str]:
    """Start the dashboard on database `url` and a free port (output to `log`); return the process and base URL once healthy."""
    port = free_port()
    child_env = {**os.environ, **(env or {}), "KETAWATCH_DATABASE_URL": url}
    proc = subprocess.Popen(streamlit_command(port), cwd=REPO, env=child_env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + wait_s
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return proc, base
        except OSError:
            time.sleep(0.3)
    stop_dashboard(proc)
    raise RuntimeError(f"the dashboard did not answer within {wait_s:g} s; see {log}")


def stop_dashboard(proc: subprocess.Popen) -> None:
    """Stop a dashboard started by `start_dashboard`, killing it if it does not stop within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
