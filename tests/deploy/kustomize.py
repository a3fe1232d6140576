"""A small kustomize renderer for the subset that deploy/k8s uses; no kubectl or kustomize here.

Supported: `resources` (files and directories holding a kustomization), `namespace`, `labels`
(includeSelectors: false, includeTemplates), `configMapGenerator` (`files`, behavior
create/replace/merge), `patches` (strategic merge from a file; the target is the patch's own
kind and name), `images` (newName, newTag). Any other key raises, so the manifests cannot
silently use a feature this renderer would ignore.

Strategic merge follows Kubernetes' merge keys for the lists we patch (containers and
initContainers by name, env and volumes by name, volumeMounts by mountPath, ports by
containerPort); other lists are replaced, maps merged, null deletes. Generated ConfigMaps get a
content-hash suffix modelled on kustomize's (sha256 of the JSON-encoded object, 10 characters)
and pod-spec references to them are rewritten.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]
KNOWN_KEYS = frozenset({"apiVersion", "kind", "resources", "namespace", "labels",
                        "configMapGenerator", "patches", "images"})
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
              "volumeMounts": "mountPath", "ports": "containerPort"}
CLUSTER_SCOPED = frozenset({"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass"})
_GENERATED = "internal.test/generated"


class UnsupportedFeature(ValueError):
    pass


def load_yaml_docs(path: Path) -> list[Obj]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def render(directory: Path) -> list[Obj]:
    """Render a kustomization directory to its list of objects."""
    objs = _build(directory)
    _apply_hash_suffixes(objs)
    return objs


def _build(directory: Path) -> list[Obj]:
    kust = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kust) - KNOWN_KEYS
    if unknown:
        raise UnsupportedFeature(f"{directory}: unsupported kustomization keys {sorted(unknown)}")
    objs: list[Obj] = []
    for entry in kust.get("resources", []):
        path = (directory / entry).resolve()
        objs.extend(_build(path) if path.is_dir() else load_yaml_docs(path))
    for gen in kust.get("configMapGenerator", []):
        _generate_configmap(directory, gen, objs)
    for patch in kust.get("patches", []):
        _apply_patch(directory, patch, objs)
    if "namespace" in kust:
        for obj in objs:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = kust["namespace"]
    for spec in kust.get("labels", []):
        _add_labels(spec, objs)
    for image in kust.get("images", []):
        _set_image(image, objs)
    return objs


def _generate_configmap(directory: Path, gen: Obj, objs: list[Obj]) -> None:
    unknown = set(gen) - {"name", "files", "behavior"}
    if unknown:
        raise UnsupportedFeature(f"configMapGenerator: unsupported keys {sorted(unknown)}")
    data = {Path(f).name: (directory / f).read_text() for f in gen.get("files", [])}
    behavior = gen.get("behavior", "create")
    existing = [o for o in objs if o["kind"] == "ConfigMap"
                and o["metadata"]["name"] == gen["name"]]
    if behavior == "create":
        if existing:
            raise ValueError(f"configMapGenerator {gen['name']}: already exists")
        objs.append({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": gen["name"], "annotations": {_GENERATED: "true"}},
                     "data": data})
    elif behavior in ("replace", "merge"):
        if len(existing) != 1:
            raise ValueError(f"configMapGenerator {gen['name']}: nothing to {behavior}")
        target = existing[0]
        target["data"] = data if behavior == "replace" else {**target.get("data", {}), **data}
    else:
        raise UnsupportedFeature(f"configMapGenerator behavior {behavior!r}")


def _apply_patch(directory: Path, entry: Obj, objs: list[Obj]) -> None:
    if set(entry) != {"path"}:
        raise UnsupportedFeature(f"patches: only `path` is supported, got {sorted(entry)}")
    for patch in load_yaml_docs(directory / entry["path"]):
        kind, name = patch["kind"], patch["metadata"]["name"]
        targets = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
        if len(targets) != 1:
            raise ValueError(f"patch {entry['path']}: no single {kind}/{name} to patch")
        strategic_merge(targets[0], patch)


def strategic_merge(base: Obj, patch: Obj) -> None:
    """Merge `patch` into `base` in place (the subset described in the module docstring)."""
    for key, value in patch.items():
        current = base.get(key)
        if value is None:
            base.pop(key, None)
        elif isinstance(value, dict) and isinstance(current, dict):
            strategic_merge(current, value)
        elif isinstance(value, list) and key in MERGE_KEYS and isinstance(current, list):
            _merge_list(current, value, MERGE_KEYS[key])
        else:
            base[key] = copy.deepcopy(value)


def _merge_list(current: list[Obj], patch: list[Obj], merge_key: str) -> None:
    for item in patch:
        match = next((c for c in current if c.get(merge_key) == item.get(merge_key)), None)
        if item.get("$patch") == "delete":
            if match is not None:
                current.remove(match)
        elif match is None:
            current.append(copy.deepcopy(item))
        else:
            strategic_merge(match, item)


def _add_labels(spec: Obj, objs: list[Obj]) -> None:
    if spec.get("includeSelectors", False):
        raise UnsupportedFeature("labels.includeSelectors: true")
    pairs = spec["pairs"]
    for obj in objs:
        obj["metadata"].setdefault("labels", {}).update(pairs)
        template = obj.get("spec", {}).get("template")
        if spec.get("includeTemplates", False) and template is not None:
            template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def _pod_containers(obj: Obj) -> Iterator[Obj]:
    pod = obj.get("spec", {}).get("template", {}).get("spec", {})
    yield from pod.get("initContainers", [])
    yield from pod.get("containers", [])


def _set_image(image: Obj, objs: list[Obj]) -> None:
    unknown = set(image) - {"name", "newName", "newTag"}
    if unknown:
        raise UnsupportedFeature(f"images: unsupported keys {sorted(unknown)}")
    for obj in objs:
        for container in _pod_containers(obj):
            ref = container["image"]
            name, _, tag = ref.partition(":")
            if name == image["name"]:
                container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"


def configmap_hash(obj: Obj) -> str:
    """kustomize-style: sha256 over the sorted JSON of kind, name and data; 10 chars."""
    encoded = json.dumps({"data": obj.get("data", {}), "kind": "ConfigMap",
                          "name": obj["metadata"]["name"]},
                         sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(encoded.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def _apply_hash_suffixes(objs: list[Obj]) -> None:
    renames: dict[str, str] = {}
    for obj in objs:
        annotations = obj["metadata"].get("annotations", {})
        if annotations.pop(_GENERATED, None) is None:
            continue
        if not annotations:
            del obj["metadata"]["annotations"]
        old = obj["metadata"]["name"]
        obj["metadata"]["name"] = renames[old] = f"{old}-{configmap_hash(obj)}"
    for obj in objs:
        pod = obj.get("spec", {}).get("template", {}).get("spec", {})
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                name = volume["configMap"]["name"]
                volume["configMap"]["name"] = renames.get(name, name)
        for container in _pod_containers(obj):
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef")
                if ref is not None:
                    ref["name"] = renames.get(ref["name"], ref["name"])
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("configMapKeyRef")
                if ref is not None:
                    ref["name"] = renames.get(ref["name"], ref["name"])
