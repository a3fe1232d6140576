"""Child processes in a namespace, their output in files; stopped by their own pid only."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PYTHON = sys.executable
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Child:
    """A command run with `ip netns exec NS` (which execs it: the pid is the command's)."""

    name: str
    netns: str
    argv: Sequence[str]
    logdir: Path
    env: Mapping[str, str] = field(default_factory=dict)
    ready: bytes = b""  # a line on stdout that says it serves; empty: do not wait
    process: asyncio.subprocess.Process | None = None
    starts: int = 0
    _drainer: asyncio.Future[None] | None = None

    @property
    def log(self) -> Path:
        return self.logdir / f"{self.name}.log"

    async def start(self, timeout_s: float = 30.0) -> Child:
        self.starts += 1
        env = {**os.environ, "PYTHONPATH": _pythonpath(), **self.env}
        with self.log.open("ab") as log:
            log.write(f"--- start {self.starts}\n".encode())
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                "ip", "netns", "exec", self.netns, *self.argv, cwd=ROOT, env=env,
                stdout=asyncio.subprocess.PIPE if self.ready else log, stderr=log,
                start_new_session=True)
        if self.ready:
            await self._wait_ready(timeout_s)
        return self

    async def _wait_ready(self, timeout_s: float) -> None:
        assert self.process is not None and self.process.stdout is not None
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    line = await self.process.stdout.readline()
                    if not line:
                        raise RuntimeError(f"{self.name} exited before it was ready:\n"
                                           f"{self.tail()}")
                    if self.ready in line:
                        break
        except TimeoutError:
            raise RuntimeError(f"{self.name} not ready in {timeout_s}s:\n{self.tail()}") from None
        self._drainer = asyncio.ensure_future(self._drain(self.process.stdout))

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        with self.log.open("ab") as log:
            while line := await stream.readline():
                log.write(line)
                log.flush()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def kill(self) -> None:
        await self.signal(signal.SIGKILL, wait_s=10)

    async def stop(self, wait_s: float = 10.0) -> None:
        """SIGTERM (the child saves and drains), SIGKILL if it is still there after `wait_s`."""
        if not self.running:
            return
        await self.signal(signal.SIGTERM, wait_s=wait_s)
        if self.running:
            await self.kill()

    async def signal(self, sig: int, wait_s: float) -> None:
        if not self.running:
            return
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(sig)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), wait_s)

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


def _pythonpath() -> str:
    parts = [str(ROOT), str(ROOT / "clients" / "python"), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(p for p in parts if p)
