"""A small Containerfile parser: enough to check ours statically (no container engine here)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

INSTRUCTIONS = frozenset({"FROM", "ARG", "ENV", "WORKDIR", "COPY", "ADD", "RUN", "USER", "EXPOSE",
                          "ENTRYPOINT", "CMD", "LABEL", "HEALTHCHECK", "SHELL", "VOLUME",
                          "STOPSIGNAL", "ONBUILD"})
_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


class ParseError(ValueError):
    pass


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Join `\\` continuations; drop comments and blank lines (also inside continuations)."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append((start, pending + line))
        pending = ""
    if pending:
        raise ParseError(f"line {start}: continuation at end of file")
    return out


def parse(path: Path) -> list[Stage]:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for number, line in logical_lines(path.read_text()):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword not in INSTRUCTIONS:
            raise ParseError(f"line {number}: unknown instruction {keyword}")
        if keyword == "ARG" and not stages:
            name, _, default = rest.strip().partition("=")
            args[name] = default
        elif keyword == "FROM":
            words = _VAR.sub(lambda m: args.get(m.group(1) or m.group(2), ""), rest).split()
            if len(words) not in (1, 3) or (len(words) == 3 and words[1].upper() != "AS"):
                raise ParseError(f"line {number}: FROM image [AS name]")
            stages.append(Stage(words[0], words[2] if len(words) == 3 else None))
        elif not stages:
            raise ParseError(f"line {number}: {keyword} before FROM")
        else:
            stages[-1].instructions.append(Instruction(keyword, rest.strip(), number))
    if not stages:
        raise ParseError("no FROM")
    return stages


def exec_form(instruction: Instruction) -> list[str]:
    """ENTRYPOINT/CMD in JSON (exec) form; shell form is refused: signals must reach the app."""
    value = json.loads(instruction.args)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ParseError(f"line {instruction.line}: {instruction.keyword} must be a JSON list")
    return value


def copy_parts(instruction: Instruction) -> tuple[dict[str, str], list[str], str]:
    """(flags, sources, destination) of a COPY."""
    words = shlex.split(instruction.args)
    flags = dict(w[2:].partition("=")[::2] for w in words if w.startswith("--"))
    paths = [w for w in words if not w.startswith("--")]
    if len(paths) < 2:
        raise ParseError(f"line {instruction.line}: COPY needs a source and a destination")
    return flags, paths[:-1], paths[-1]


def ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics for our patterns: the last matching pattern wins, `!` re-includes,
    and a pattern matching a directory covers everything below it."""
    result = False
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw.removeprefix("!").strip("/")
        if pattern.startswith("**/"):  # any depth: compare with each path element
            hit = any(fnmatchcase(part, pattern[3:]) for part in parts)
        else:
            hit = any(fnmatchcase(prefix, pattern) for prefix in prefixes)
        if hit:
            result = not negate
    return result
