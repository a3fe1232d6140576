"""The test renderer itself: it must do what kustomize does for the subset we use, or refuse."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.deploy.kustomize import UnsupportedFeature, render, strategic_merge

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
    "spec": {"template": {"metadata": {"labels": {"app": "d"}}, "spec": {
        "containers": [{"name": "a", "image": "img:1", "args": ["x", "y"],
                        "env": [{"name": "K", "value": "1"}, {"name": "L", "value": "2"}]}],
        "volumes": [{"name": "config", "configMap": {"name": "cfg"}}]}}},
}


def test_strategic_merge_merges_named_lists_and_replaces_the_rest() -> None:
    base = yaml.safe_load(yaml.safe_dump(DEPLOYMENT))
    strategic_merge(base, {"spec": {"template": {"spec": {"containers": [
        {"name": "a", "args": ["z"], "env": [{"name": "L", "value": "3"},
                                             {"name": "M", "value": "4"},
                                             {"name": "K", "$patch": "delete"}]},
        {"name": "b", "image": "other:2"}]}}}})
    containers = base["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["a", "b"]
    assert containers[0]["args"] == ["z"]  # plain lists are replaced
    assert containers[0]["env"] == [{"name": "L", "value": "3"}, {"name": "M", "value": "4"}]
    assert containers[0]["image"] == "img:1"


def _write(directory: Path, files: dict[str, object]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        text = content if isinstance(content, str) else yaml.safe_dump(content)
        (directory / name).write_text(text)
    return directory


def test_overlay_replaces_a_generated_configmap_and_rewrites_the_reference(
        tmp_path: Path) -> None:
    _write(tmp_path / "base", {
        "kustomization.yaml": {"namespace": "ns", "resources": ["d.yaml"],
                               "configMapGenerator": [{"name": "cfg", "files": ["c.yaml"]}]},
        "d.yaml": DEPLOYMENT, "c.yaml": "a: 1\n"})
    _write(tmp_path / "over", {
        "kustomization.yaml": {"namespace": "live", "resources": ["../base"],
                               "images": [{"name": "img", "newName": "reg/img", "newTag": "2"}],
                               "configMapGenerator": [{"name": "cfg", "behavior": "replace",
                                                       "files": ["c.yaml"]}]},
        "c.yaml": "a: 2\n"})
    base, over = render(tmp_path / "base"), render(tmp_path / "over")
    cm_base = next(o for o in base if o["kind"] == "ConfigMap")
    cm_over = next(o for o in over if o["kind"] == "ConfigMap")
    assert cm_over["data"] == {"c.yaml": "a: 2\n"}
    assert cm_base["metadata"]["name"] != cm_over["metadata"]["name"]
    deployment = next(o for o in over if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["volumes"][0]["configMap"]["name"] == cm_over["metadata"]["name"]
    assert pod["containers"][0]["image"] == "reg/img:2"
    assert {o["metadata"]["namespace"] for o in over} == {"live"}
    assert "annotations" not in cm_over["metadata"]


@pytest.mark.parametrize("extra", [{"replicas": [{"name": "d", "count": 2}]},
                                   {"patches": [{"patch": "{}"}]},
                                   {"labels": [{"pairs": {"a": "b"}, "includeSelectors": True}]}])
def test_unsupported_features_are_refused_not_ignored(tmp_path: Path,
                                                      extra: dict[str, object]) -> None:
    _write(tmp_path, {"kustomization.yaml": {"resources": ["d.yaml"], **extra},
                      "d.yaml": DEPLOYMENT})
    with pytest.raises(UnsupportedFeature):
        render(tmp_path)
