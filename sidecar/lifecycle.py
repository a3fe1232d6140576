"""What the composition root starts after the servers and stops before them, in order."""

from __future__ import annotations

from typing import Protocol


class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...
