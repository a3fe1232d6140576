"""Keep the generated sections of docs/architecture.md current (`--check`: exit 1 when stale).

The page is written by hand except between `<!-- generated:NAME -->` and `<!-- end:NAME -->`:
- `pipeline`: the request path as `sidecar.app.build` composes it (policy classes in order, the
  transport, their modules and the first sentence of their docstrings);
- `events`: every event class of `sidecar.events` with the classes that publish it
  (`publish(Event(...))`) and subscribe to it (`subscribe(Event, ...)`), found by reading
  `sidecar/` with `ast`;
- `packages`: every package and top-level module of `sidecar/` with its docstring's summary.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import dataclasses
import inspect
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# This checkout's code, not whichever copy the environment has installed.
sys.path[:0] = [str(ROOT), str(ROOT / "clients" / "python")]
SIDECAR = ROOT / "sidecar"
DOC = ROOT / "docs" / "architecture.md"
SECTION = re.compile(r"(<!-- generated:(\w+) -->\n).*?(<!-- end:\2 -->)", re.S)


def summary(text: str | None) -> str:
    """The first paragraph of a docstring, on one line."""
    paragraph = " ".join(inspect.cleandoc(text or "").split("\n\n")[0].split())
    return paragraph.replace("|", "\\|")


def _where(cls: type) -> str:
    return cls.__module__.replace(".", "/") + ".py"


def _class_summary(cls: type) -> str:
    own = cls.__dict__.get("__doc__")
    return summary(own) or summary(sys.modules[cls.__module__].__doc__)


# --- pipeline -------------------------------------------------------------------------------


def _parts() -> Any:
    from sidecar.app import build
    from sidecar.clock import SystemClock
    from sidecar.config import Config
    from sidecar.events import EventBus

    async def inside_a_loop() -> Any:  # parts may bind to the running loop
        return build(Config(), SystemClock(), EventBus())

    return asyncio.run(inside_a_loop())


def stages() -> list[type]:
    """The request path's stages as `build()` composes them: policies, then the transport."""
    parts = _parts()
    return [type(p) for p in parts.policies] + [type(parts.transport)]


def pipeline() -> str:
    lines = ["| # | stage | module | what it does |", "|---|---|---|---|"]
    for i, cls in enumerate(stages(), 1):
        lines.append(f"| {i} | `{cls.__name__}` | `{_where(cls)}` | {_class_summary(cls)} |")
    return "\n".join(lines) + "\n"


def check_picture(text: str) -> None:
    """The hand-drawn picture after `<!-- checked:request-path -->` must name every stage, in
    `build()`'s order."""
    match = re.search(r"<!-- checked:request-path -->\n```\n(.*?)```", text, re.S)
    if match is None:
        raise SystemExit("archdoc: docs/architecture.md lacks the request-path picture")
    picture, at = match.group(1), 0
    for cls in stages():
        found = re.search(rf"\b{cls.__name__}\b", picture[at:])
        if found is None:
            raise SystemExit(f"archdoc: the request-path picture does not show {cls.__name__} "
                             "after the stages before it; redraw it as build() composes them")
        at += found.end()


# --- events ---------------------------------------------------------------------------------


def _event_classes() -> list[type]:
    from sidecar import events

    return [c for c in vars(events).values() if isinstance(c, type)
            and issubclass(c, events.Event) and c.__module__ == events.__name__]


class _Scanner(ast.NodeVisitor):
    """Records, per event name, who publishes and who subscribes, by enclosing class."""

    def __init__(self, where: str, names: set[str]) -> None:
        self.where, self.names = where, names
        self.scope: list[str] = []
        self.functions: list[ast.AST] = []
        self.found: list[tuple[str, str, str]] = []  # (kind, event, owner)

    def _owner(self) -> str:
        return f"`{self.scope[0]}` ({self.where})" if self.scope else f"({self.where})"

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if not self.scope:
            self.scope.append(f"{node.name}()")
            self.functions.append(node)
            self.generic_visit(node)
            self.functions.pop()
            self.scope.pop()
            return
        self.functions.append(node)
        self.generic_visit(node)
        self.functions.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def _events_in(self, node: ast.AST) -> list[str]:
        return sorted({n.id for n in ast.walk(node) if isinstance(n, ast.Name)
                       and n.id in self.names})

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("publish", "subscribe") \
                and node.args:
            arg = node.args[0]
            if func.attr == "publish" and isinstance(arg, ast.Call):
                arg = arg.func
            if isinstance(arg, ast.Name) and arg.id in self.names:
                events = [arg.id]
            else:  # a variable: the event classes its function names (a subscription table)
                events = self._events_in(self.functions[-1]) if self.functions else []
                events = events or ["?"]
            for event in events:
                self.found.append((func.attr, event, self._owner()))
        self.generic_visit(node)


def scan(root: Path, names: set[str]) -> dict[tuple[str, str], list[str]]:
    """(kind, event name) → owners, for every .py file under `root` but generated code."""
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent)
        if "_gen" in rel.parts or rel == Path("sidecar/events.py"):
            continue
        scanner = _Scanner("/".join(rel.parts[1:]), names)
        scanner.visit(ast.parse(path.read_text(), str(path)))
        for kind, event, owner in scanner.found:
            if owner not in found[(kind, event)]:
                found[(kind, event)].append(owner)
    return found


def events() -> str:
    classes = _event_classes()
    names = {c.__name__ for c in classes}
    found = scan(SIDECAR, names)
    lines = ["| event | fields | published by | subscribed by |", "|---|---|---|---|"]
    for cls in classes:
        if cls.__name__ == "Event":
            continue
        fields = ", ".join(f"`{f.name}`" for f in dataclasses.fields(cls))
        doc = cls.__dict__.get("__doc__") or ""
        about = f"{summary(doc)}<br>" if doc and not doc.startswith(cls.__name__ + "(") else ""
        publishers = "<br>".join(found.get(("publish", cls.__name__), [])) or "**nobody**"
        subscribers = ("<br>".join(found.get(("subscribe", cls.__name__), []))
                       or "**nobody**")
        lines.append(f"| `{cls.__name__}` | {about}{fields} | {publishers} | {subscribers} |")
    for kind in ("publish", "subscribe"):
        if found.get((kind, "?")):
            lines.append(f"\nAlso {kind}ing events not named where they are "
                         f"{kind}ed: {', '.join(found[(kind, '?')])}.")
    return "\n".join(lines) + "\n"


# --- packages -------------------------------------------------------------------------------


def _docstring(path: Path) -> str | None:
    return ast.get_docstring(ast.parse(path.read_text(), str(path)))


def packages() -> str:
    lines = ["| where | what it is | modules |", "|---|---|---|"]
    entries = sorted((p for p in SIDECAR.iterdir()
                      if (p.is_dir() and (p / "__init__.py").exists())
                      or (p.suffix == ".py" and p.name not in ("__init__.py", "__main__.py"))),
                     key=lambda p: (p.is_dir(), p.name.startswith("_"), p.name))
    for entry in entries:
        if entry.is_dir():
            modules = sorted(m.stem for m in entry.glob("*.py") if m.name != "__init__.py")
            subpackages = sorted(d.name + "/" for d in entry.iterdir()
                                 if (d / "__init__.py").exists())
            what = summary(_docstring(entry / "__init__.py"))
            listed = ", ".join(f"`{m}`" for m in [*modules, *subpackages])
            if entry.name == "_gen":
                listed = "generated from `proto/` by `make proto`"
            lines.append(f"| `sidecar/{entry.name}/` | {what} | {listed} |")
        else:
            lines.append(f"| `sidecar/{entry.name}` | {summary(_docstring(entry))} | |")
    return "\n".join(lines) + "\n"


GENERATORS: dict[str, Callable[[], str]] = {
    "pipeline": pipeline, "events": events, "packages": packages}


def render(text: str) -> str:
    seen: set[str] = set()

    def fill(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in GENERATORS:
            raise SystemExit(f"archdoc: unknown generated section {name!r}")
        seen.add(name)
        return f"{match.group(1)}{GENERATORS[name]()}{match.group(3)}"

    out = SECTION.sub(fill, text)
    missing = set(GENERATORS) - seen
    if missing:
        raise SystemExit(f"archdoc: docs/architecture.md lacks the sections {sorted(missing)}")
    return out


def sections(text: str) -> Iterator[str]:
    for match in SECTION.finditer(text):
        yield match.group(2)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if docs/architecture.md is stale")
    ns = parser.parse_args()
    current = DOC.read_text()
    check_picture(current)
    text = render(current)
    if ns.check:
        if text != current:
            print("docs/architecture.md is stale: run python scripts/archdoc.py",
                  file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
