"""deploy/Containerfile read by `dockerfile-parse` (stages, instructions, ARG substitution), with
the few helpers the tests need on top; hadolint (tests/deploy/test_containerfile.py) lints it."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from dockerfile_parse import DockerfileParser


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


def parse(path: Path) -> list[Stage]:
    with path.open("rb") as f:
        parser = DockerfileParser(fileobj=f)
        structure = parser.structure
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for item in structure:
        keyword, value = item["instruction"], item["value"]
        if keyword == "ARG" and not stages:  # global ARGs: their defaults name the images
            name, _, default = value.partition("=")
            args[name.strip()] = default.strip()
        elif keyword == "FROM":
            words = value.split()
            stages.append(Stage(_substitute(words[0], args),
                                words[2] if len(words) == 3 else None))
        elif stages:
            stages[-1].instructions.append(Instruction(keyword, value, item["startline"] + 1))
    return stages


def _substitute(word: str, args: dict[str, str]) -> str:
    for name, value in args.items():
        word = word.replace(f"${{{name}}}", value).replace(f"${name}", value)
    return word


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Non-blank, non-comment lines of an ignore file, numbered from 1."""
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)
            if line.strip() and not line.strip().startswith("#")]


def exec_form(instruction: Instruction) -> list[str]:
    """ENTRYPOINT/CMD in JSON (exec) form; shell form is refused: signals must reach the app."""
    value = json.loads(instruction.args)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"line {instruction.line}: {instruction.keyword} must be a JSON list")
    return value


def copy_parts(instruction: Instruction) -> tuple[dict[str, str], list[str], str]:
    """(flags, sources, destination) of a COPY."""
    words = shlex.split(instruction.args)
    flags = dict(w[2:].partition("=")[::2] for w in words if w.startswith("--"))
    paths = [w for w in words if not w.startswith("--")]
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
