"""Child processes of the harness and what /proc says about them (CPU time, RSS)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ROOT = Path(__file__).resolve().parents[1]  # children run `-m bench.*` from the repository


def free_port() -> int:
    """A port free right now on 127.0.0.1 (for Envoy, which cannot report an ephemeral one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of `pid`, in seconds."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2:].split()  # after "(comm) ": field 3 is fields[0]
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Proc:
    """One child process; its stdout and stderr go to files (no pipe can fill and block it)."""

    name: str
    process: asyncio.subprocess.Process
    stdout: Path
    stderr: Path

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def output(self) -> str:
        return self.stdout.read_text(errors="replace")

    def tail(self, chars: int = 2000) -> str:
        return (self.output() + self.stderr.read_text(errors="replace"))[-chars:]

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s; only this process, by its id."""
        if self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 5.0)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


async def spawn(name: str, argv: Sequence[str], workdir: Path,
                env: dict[str, str] | None = None) -> Proc:
    out, err = workdir / f"{name}.out", workdir / f"{name}.err"
    env = {**os.environ, **(env or {})}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    with out.open("wb") as fo, err.open("wb") as fe:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=fo, stderr=fe, env=env, cwd=ROOT)
    return Proc(name, process, out, err)


async def wait_until(proc: Proc, ready: Callable[[], Awaitable[bool]],
                     timeout_s: float = 30.0) -> None:
    """Poll `ready` every 50 ms; fail with the process's output if it exits or times out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.process.returncode is not None:
            raise RuntimeError(f"{proc.name} exited ({proc.process.returncode}):\n{proc.tail()}")
        with contextlib.suppress(OSError):
            if await ready():
                return
        await asyncio.sleep(0.05)
    await proc.stop()
    raise RuntimeError(f"{proc.name} not ready within {timeout_s:.0f} s:\n{proc.tail()}")


async def wait_for_line(proc: Proc, prefix: str, timeout_s: float = 30.0) -> str:
    """The first stdout line starting with `prefix` (a ready line)."""
    found: list[str] = []

    async def ready() -> bool:
        found[:] = [ln for ln in proc.output().splitlines() if ln.startswith(prefix)][:1]
        return bool(found)

    await wait_until(proc, ready, timeout_s)
    return found[0]
