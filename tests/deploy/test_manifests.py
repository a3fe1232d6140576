"""deploy/k8s: every rendering validates against the Kubernetes schema, and the parts agree.

Kubernetes 1.31 is the oldest version checked (native sidecars need >= 1.29; 1.31 is the oldest
still commonly supported); the newest is the newest that kubernetes-validate ships.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from tests.deploy.helpers import (
    CONFIG_PATH,
    K8S,
    RENDERINGS,
    containers,
    env_of,
    one,
    pod_spec,
    rendered,
    secret_mount,
    sidecar_config,
    sidecar_container,
)

VERSIONS = ("1.31.0", kubernetes_validate.latest_version())
OANDA_HOSTS = {"practice": ("api-fxpractice.oanda.com", "stream-fxpractice.oanda.com"),
               "live": ("api-fxtrade.oanda.com", "stream-fxtrade.oanda.com")}
PRIVATE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
SECRET_FILE_KEYS = (("server", "control_token_file"), ("oanda", "token_file"),
                    ("alerts", "pagerduty", "routing_key_file"),
                    ("alerts", "slack", "webhook_url_file"))


def _get(config: dict[str, Any], keys: tuple[str, ...]) -> Any:
    node: Any = config
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", RENDERINGS)
def test_every_rendered_object_validates(name: str, version: str) -> None:
    objs = rendered(name)
    assert {o["kind"] for o in objs} == {"Deployment", "ConfigMap", "Secret", "NetworkPolicy",
                                         "ServiceAccount"}
    for obj in objs:
        kubernetes_validate.validate(obj, version, strict=True)


def test_the_validator_is_strict_enough_to_catch_a_typo() -> None:
    objs = rendered("overlays/live")
    sidecar_container(objs)["readOnlyRootFileSystem"] = True  # wrong case: an unknown field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(one(objs, "Deployment"), VERSIONS[0], strict=True)


@pytest.mark.parametrize("name", RENDERINGS)
def test_the_configmap_config_passes_check_config(name: str, tmp_path: Path) -> None:
    """The shipped config, with only the secret directory moved to files this test creates."""
    objs = rendered(name)
    text, config = sidecar_config(objs)
    secrets_dir = secret_mount(objs)
    for keys in SECRET_FILE_KEYS:
        if (path := _get(config, keys)) is not None:
            (tmp_path / Path(path).name).write_text("secret-value\n")
    moved = text.replace(secrets_dir + "/", f"{tmp_path}/").replace(
        "/var/lib/oanda-sidecar", str(tmp_path / "state"))
    assert moved.count(str(tmp_path)) >= 2
    (tmp_path / "config.yaml").write_text(moved)
    done = subprocess.run([sys.executable, "-m", "sidecar", "check-config", "--config",
                           str(tmp_path / "config.yaml")], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert "grpc 127.0.0.1:50051" in done.stdout


@pytest.mark.parametrize("name", RENDERINGS)
def test_config_and_pod_agree(name: str) -> None:
    objs = rendered(name)
    _, config = sidecar_config(objs)
    sidecar = sidecar_container(objs)
    env = env_of(sidecar)
    assert sidecar["args"] == ["serve", "--config", CONFIG_PATH]
    # Execute and Control are pod-local; admin is on the pod IP for probes and Prometheus.
    assert config["server"]["grpc_listen"] == "127.0.0.1:50051"
    admin_port = int(config["server"]["admin_listen"].rpartition(":")[2])
    assert sidecar["ports"] == [{"name": "admin", "containerPort": admin_port,
                                 "protocol": "TCP"}]
    mounted = secret_mount(objs)
    for keys in SECRET_FILE_KEYS:
        path = _get(config, keys)
        assert path is None or Path(path).parent == Path(mounted), (keys, path)
    token_file = config["server"]["control_token_file"]
    assert env["OANDA_SIDECAR_CONTROL_TOKEN_FILE"] == token_file
    secret_name = one(objs, "Secret")["metadata"]["name"]
    assert env["CONTROL_TOKEN"] == {"secretKeyRef": {"name": secret_name,
                                                     "key": Path(token_file).name}}
    assert config["oanda"]["require_token"] is True
    assert config["telemetry"]["tracing_enabled"] is True


@pytest.mark.parametrize("env_name", ["practice", "live"])
def test_each_overlay_targets_its_own_oanda_and_alerting(env_name: str) -> None:
    objs = rendered(f"overlays/{env_name}")
    _, config = sidecar_config(objs)
    api, stream = OANDA_HOSTS[env_name]
    assert urlsplit(config["oanda"]["base_url"]).hostname == api
    assert urlsplit(config["oanda"]["stream_url"]).hostname == stream
    pages = _get(config, ("alerts", "pagerduty", "routing_key_file")) is not None
    assert pages == (env_name == "live")  # practice pages nobody
    assert _get(config, ("alerts", "slack", "webhook_url_file")) is not None
    env = env_of(sidecar_container(objs))
    assert env["OTEL_RESOURCE_ATTRIBUTES"] == f"deployment.environment.name={env_name}"
    assert sidecar_container(objs)["image"] == \
        "registry.example.com/trading/oanda-sidecar:0.1.0"
    namespace = "trading" if env_name == "live" else "trading-practice"
    assert {o["metadata"]["namespace"] for o in objs} == {namespace}


def test_live_and_practice_configmaps_differ_and_roll_the_pod_on_change() -> None:
    names = {n: one(rendered(n), "ConfigMap")["metadata"]["name"] for n in RENDERINGS}
    assert all(name.startswith("oanda-sidecar-config-") for name in names.values())
    assert names["overlays/live"] != names["overlays/practice"]
    assert names["base"] == names["overlays/practice"]  # practice keeps the base config


@pytest.mark.parametrize("name", RENDERINGS)
def test_every_container_runs_locked_down(name: str) -> None:
    objs = rendered(name)
    pod = pod_spec(objs)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["automountServiceAccountToken"] is False
    for container in containers(objs):
        sc = container["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0, container["name"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc.get("privileged", False) is False
        assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"]
        assert sc["seccompProfile"]["type"] == "RuntimeDefault"
        assert {"requests", "limits"} <= set(container["resources"])
    tmp = next(m for m in sidecar_container(objs)["volumeMounts"] if m["mountPath"] == "/tmp")
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == tmp["name"])


def test_sidecar_probes_resources_and_lifecycle() -> None:
    objs = rendered("overlays/live")
    sidecar = sidecar_container(objs)
    assert sidecar["restartPolicy"] == "Always"  # native sidecar: up before, down after trading
    assert sidecar in pod_spec(objs)["initContainers"]
    probes = {kind: sidecar[kind]["httpGet"] for kind in
              ("startupProbe", "readinessProbe", "livenessProbe")}
    assert {p["port"] for p in probes.values()} == {"admin"}
    assert probes["startupProbe"]["path"] == probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert sidecar["resources"] == {"requests": {"cpu": "250m", "memory": "128Mi"},
                                    "limits": {"cpu": "1", "memory": "256Mi"}}
    deployment = one(objs, "Deployment")["spec"]
    assert deployment["replicas"] == 1 and deployment["strategy"] == {"type": "Recreate"}
    _, config = sidecar_config(objs)
    assert config["server"]["drain_grace_s"] < pod_spec(objs)["terminationGracePeriodSeconds"]


@pytest.mark.parametrize("name", RENDERINGS)
def test_telemetry_env_points_at_the_collector_the_policy_admits(name: str) -> None:
    objs = rendered(name)
    env = env_of(sidecar_container(objs))
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    endpoint = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert endpoint.port == 4317 and env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
    assert endpoint.hostname is not None
    collector_namespace = endpoint.hostname.split(".")[1]  # <service>.<namespace>.svc...
    otlp_rule = _egress_rule(objs, 4317)
    assert otlp_rule["to"] == [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": collector_namespace}}}]


def _egress_rule(objs: list[dict[str, Any]], port: int) -> dict[str, Any]:
    rules = [r for r in one(objs, "NetworkPolicy")["spec"]["egress"]
             if any(p["port"] == port for p in r["ports"])]
    assert len(rules) == 1
    rule: dict[str, Any] = rules[0]
    return rule


@pytest.mark.parametrize("name", RENDERINGS)
def test_network_policy_allows_only_dns_otlp_and_public_https(name: str) -> None:
    objs = rendered(name)
    policy = one(objs, "NetworkPolicy")["spec"]
    pod_labels = one(objs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    allowed = {(p["protocol"], p["port"]) for rule in policy["egress"] for p in rule["ports"]}
    assert allowed == {("UDP", 53), ("TCP", 53), ("TCP", 4317), ("TCP", 443)}
    assert all(rule.get("to") for rule in policy["egress"])  # no rule open to everywhere
    dns = _egress_rule(objs, 53)["to"][0]
    assert dns["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    (https,) = _egress_rule(objs, 443)["to"]
    block = https["ipBlock"]
    assert block["cidr"] == "0.0.0.0/0"
    excluded = [ipaddress.IPv4Network(c) for c in block["except"]]
    for private in PRIVATE:
        assert any(ipaddress.IPv4Network(private).subnet_of(e) for e in excluded), private
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": 9464}]


def test_cilium_example_pins_oanda_hosts_and_stays_out_of_the_kustomizations() -> None:
    example = K8S / "examples" / "cilium-fqdn-egress.yaml"
    policy = yaml.safe_load(example.read_text())
    names = {f["matchName"] for rule in policy["spec"]["egress"]
             for f in rule.get("toFQDNs", [])}
    assert {h for hosts in OANDA_HOSTS.values() for h in hosts} <= names
    for kustomization in K8S.rglob("kustomization.yaml"):
        assert "examples" not in kustomization.read_text()
