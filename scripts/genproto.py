"""Generate the Python gRPC code from proto/ into isolated packages.

`python scripts/genproto.py` writes the code; `--check` exits 1 when the committed code is stale.
grpc_tools.protoc writes imports relative to the proto root (`from oanda.sidecar.v1 import ...`);
they are rewritten to the package that holds the generated code.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto"
TARGETS = {
    ROOT / "sidecar" / "_gen": "sidecar._gen",
    ROOT / "clients" / "python" / "oanda_sidecar_client" / "_gen": "oanda_sidecar_client._gen",
}


def _sources(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.suffix in (".py", ".pyi")]


def generate(out: Path, package: str) -> dict[str, str]:
    import grpc_tools
    from grpc_tools import protoc

    protos = sorted(str(p.relative_to(PROTO)) for p in PROTO.rglob("*.proto"))
    include = str(Path(grpc_tools.__file__).parent / "_proto")
    args = ["protoc", f"-I{PROTO}", f"-I{include}", f"--python_out={out}",
            f"--pyi_out={out}", f"--grpc_python_out={out}", *protos]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    files: dict[str, str] = {}
    for path in sorted(_sources(out)):
        text = path.read_text()
        text = re.sub(r"^from oanda\.", f"from {package}.oanda.", text, flags=re.M)
        text = re.sub(r"^import oanda\.", f"import {package}.oanda.", text, flags=re.M)
        files[str(path.relative_to(out))] = text
    for rel in {str(Path(k).parent) for k in files}:
        parts = Path(rel).parts
        for i in range(len(parts) + 1):
            files.setdefault(str(Path(*parts[:i], "__init__.py")), "")
    files["__init__.py"] = '"""Generated code only: do not edit; regenerate with `make proto`."""\n'
    return files


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true", help="exit 1 if generated code is stale")
    ns = parser.parse_args()
    stale = []
    for target, package in TARGETS.items():
        with tempfile.TemporaryDirectory() as tmp:
            files = generate(Path(tmp), package)
        current = {str(p.relative_to(target)): p.read_text()
                   for p in _sources(target)} if target.exists() else {}
        if ns.check:
            if current != files:
                stale.append(str(target.relative_to(ROOT)))
            continue
        for rel, text in files.items():
            path = target / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        for rel in set(current) - set(files):
            (target / rel).unlink()
    if stale:
        print("generated code is stale, run `make proto`: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
