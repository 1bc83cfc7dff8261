#!/usr/bin/env python3
"""Offline checks of one rendered kustomization, beyond schema validation.

    check.py [--production] REPO_ROOT TARGET RENDERED.yaml WORK_DIR

Run by scripts/k8s-check.sh, which renders TARGET (k8s/base, an overlay) to
RENDERED.yaml. This script
1. sorts the objects for the schema validators: built-in kinds go to
   WORK_DIR/core.yaml (for kubernetes-validate); each custom resource goes to a
   file of its own, listed with its vendored schema in WORK_DIR/crds.txt (for
   check-jsonschema). A custom kind with no schema in k8s/schemas is an error;
2. writes every ConfigMap holding a nats.conf to WORK_DIR/nats-*/ (for
   `nats-server -t`);
3. checks what no schema can: that references resolve (Services, disruption
   budgets, ServiceMonitors and autoscalers select something that exists), that
   each service receives only its own Secret and only the keys it reads (and
   mounts only its own NATS identity, which in production it must have), that
   terminationGracePeriodSeconds covers the drain after SIGTERM, that each
   service's async workers follow its CPU request, that KEDA
   triggers name streams and durable consumers that exist (crates/bus/src/names.rs),
   that every PromQL expression parses and uses only metrics the services
   register (services/, crates/), and that every alert links to a section of
   docs/operations.md. With --production (k8s/overlays/prod), also that each
   service has a disruption budget, a spread constraint and a ServiceMonitor,
   that a default-deny NetworkPolicy exists, that the image is pinned, and that
   no Secret is rendered (they come from the secret manager).
Prints one line per problem and exits 1 if there is any.
"""
import base64
import json
import pathlib
import re
import sys

import yaml

try:
    import promql_parser
except ImportError:  # the shell script installs it; fail loudly if it did not
    promql_parser = None

BUILTIN_GROUPS = {
    "", "apps", "batch", "policy", "autoscaling", "networking.k8s.io",
    "rbac.authorization.k8s.io", "storage.k8s.io", "scheduling.k8s.io",
    "coordination.k8s.io", "discovery.k8s.io", "node.k8s.io",
    "admissionregistration.k8s.io", "apiextensions.k8s.io",
    "certificates.k8s.io", "events.k8s.io", "flowcontrol.apiserver.k8s.io",
}

# What each service's Secret may hold: the secret variables its config.rs reads
# (services/*/src/config.rs). Ingress, rules and sender read their own service
# key (FOCO_CONTROL_API_KEY); the admin key is control's alone, and a service's
# key equal to it (or to another service's) is refused below.
SECRET_KEYS = {
    "foco-ingress": {"FOCO_CONTROL_API_KEY"},
    "foco-rules": {"DATABASE_URL", "FOCO_CONTROL_API_KEY"},
    "foco-sender": {"DATABASE_URL", "FOCO_CONTROL_API_KEY"},
    "foco-control": {"DATABASE_URL", "FOCO_ADMIN_API_KEY", "FOCO_ENCRYPTION_KEY", "FOCO_SERVICE_KEY_HASHES"},
    "foco-console": {"FOCO_CONSOLE_SESSION_KEY"},
}
REQUIRED_SECRET_KEYS = {
    "foco-ingress": {"FOCO_CONTROL_API_KEY"},
    "foco-rules": {"FOCO_CONTROL_API_KEY"},
    "foco-sender": {"FOCO_CONTROL_API_KEY"},
    "foco-control": {"FOCO_ADMIN_API_KEY", "FOCO_ENCRYPTION_KEY"},
    "foco-console": {"FOCO_CONSOLE_SESSION_KEY"},
}
ALL_SECRET_NAMES = set().union(*SECRET_KEYS.values())
# Services that connect to NATS, each as its own user in production
# (crates/bus/src/permissions.rs); the console does not.
NATS_USERS = {"foco-ingress", "foco-rules", "foco-sender", "foco-control"}

# FOCO_SHUTDOWN_GRACE when unset (services/*/src/config.rs); control's drain is
# a constant (services/control/src/app.rs, SHUTDOWN_GRACE).
DEFAULT_GRACE = {"foco-ingress": 30, "foco-rules": 20, "foco-sender": 25, "foco-control": 10, "foco-console": 10}
# Flushing acknowledgements and closing connections after the drain.
EXIT_MARGIN = 5

# KEDA v2.20 nats-jetstream trigger metadata (pkg/scalers/nats_jetstream_scaler.go).
NATS_TRIGGER_KEYS = {
    "natsServerMonitoringEndpoint", "account", "accountID", "stream", "consumer",
    "lagThreshold", "activationLagThreshold", "useHttps",
}
# Which service consumes which stream through which durable consumer: BusNames
# method names, resolved to names by reading crates/bus/src/names.rs.
CONSUMERS = {
    "foco-rules": [("events_stream", "rules_consumer")],
    "foco-sender": [("sms_stream", "sender_consumer"), ("receipts_stream", "receipts_consumer")],
}

GRAFANA_VARIABLES = {
    "$__rate_interval": "5m", "${__rate_interval}": "5m", "$__interval": "1m",
    "${__interval}": "1m", "$__range": "1h", "${__range}": "1h",
}

problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def ident(obj):
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def group_version(obj):
    api = obj.get("apiVersion", "")
    return tuple(api.split("/", 1)) if "/" in api else ("", api)


def matches(selector, labels):
    """A label selector (matchLabels/matchExpressions, or a plain map) against labels."""
    if selector is None:
        return False
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        selector = {"matchLabels": selector}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def seconds(text):
    """Parses the durations the services accept in these manifests: 30s, 2m, 1m30s."""
    total, rest = 0, str(text).strip()
    for amount, unit in re.findall(r"(\d+)(ms|s|m|h)", rest):
        total += int(amount) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    if not re.fullmatch(r"((\d+)(ms|s|m|h))+", rest):
        raise ValueError(text)
    return total


def base_name(name):
    """foco-rules-secrets-7g8h9k2m4t -> foco-rules-secrets (kustomize's hash suffix)."""
    return re.sub(r"-[a-z0-9]{10}$", "", name)


def registered_metrics(repo):
    names, prefixes = set(), {""}
    for path in list((repo / "services").rglob("*.rs")) + list((repo / "crates").rglob("*.rs")):
        if "/tests/" in str(path) or "/benches/" in str(path):
            continue
        text = path.read_text()
        names |= set(re.findall(r'\.register\(\s*"([a-z0-9_]+)"', text))
        prefixes |= set(re.findall(r'with_prefix\(\s*"([a-z0-9_]+)"\s*\)', text))
    return {f"{p}_{n}" if p else n for p in prefixes for n in names}


def metric_exists(name, known):
    if name in known:
        return True
    for suffix in ("_total", "_bucket", "_count", "_sum", "_created"):
        if name.endswith(suffix) and name[: -len(suffix)] in known:
            return True
    return False


def check_promql(where, expr, known):
    if promql_parser is None:
        problem(where, "promql-parser is not installed: cannot check PromQL")
        return
    text = expr
    for variable, value in GRAFANA_VARIABLES.items():
        text = text.replace(variable, value)
    try:
        promql_parser.parse(text)
    except Exception as error:  # the parser raises ValueError with the reason
        problem(where, f"PromQL does not parse ({error}): {expr.strip()}")
        return
    # Metric names: foco_* identifiers not inside a string (label values).
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    for name in set(re.findall(r"\bfoco_[a-z0-9_]+\b", bare)):
        if not metric_exists(name, known):
            problem(where, f"metric {name} is registered nowhere in services/ or crates/")


def github_anchors(markdown):
    anchors = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        match = None if in_code else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            title = re.sub(r"[`*_]|<[^>]+>", "", match.group(1)).strip().lower()
            slug = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
            anchors.add(slug)
    return anchors


def bus_names(repo, prefix):
    """BusNames' stream and consumer names for `prefix`, read from names.rs."""
    text = (repo / "crates/bus/src/names.rs").read_text()
    stream_prefix = f"{prefix.upper().replace('-', '_')}_" if prefix else ""
    names = {}
    for method, body in re.findall(r"pub fn (\w+)\(&self\)[^{]*\{(.*?)\n    \}", text, re.S):
        stream = re.search(r'format!\("\{\}([A-Z_]+)", self\.stream_prefix\)', body)
        consumer = re.fullmatch(r'\s*"([a-z0-9-]+)"\s*', body)
        if stream:
            names[method] = stream_prefix + stream.group(1)
        elif consumer:
            names[method] = consumer.group(1)
    return names


def containers(pod_spec):
    return (pod_spec.get("initContainers") or []) + (pod_spec.get("containers") or [])


def main():
    args = sys.argv[1:]
    production = "--production" in args
    args = [a for a in args if a != "--production"]
    if len(args) != 4:
        sys.exit(__doc__)
    repo, target, rendered, work = pathlib.Path(args[0]), args[1], pathlib.Path(args[2]), pathlib.Path(args[3])
    schemas = repo / "k8s/schemas"
    objects = [o for o in yaml.safe_load_all(rendered.read_text()) if o]
    known_metrics = registered_metrics(repo)

    # 1. Split for the schema validators.
    core, crd_lines = [], {}
    for index, obj in enumerate(objects):
        group, version = group_version(obj)
        if group in BUILTIN_GROUPS:
            core.append(obj)
            continue
        schema = schemas / group / f"{obj['kind'].lower()}_{version}.json"
        if not schema.is_file():
            problem(ident(obj), f"custom resource {group}/{version} {obj['kind']} has no schema in k8s/schemas: vendor one (k8s/schemas/README.md)")
            continue
        path = work / f"crd-{index:03d}-{obj['kind'].lower()}.yaml"
        path.write_text(yaml.safe_dump(obj, sort_keys=False))
        crd_lines.setdefault(str(schema), []).append(str(path))
    (work / "core.yaml").write_text(yaml.safe_dump_all(core, sort_keys=False))
    (work / "crds.txt").write_text("".join(f"{s} {' '.join(files)}\n" for s, files in sorted(crd_lines.items())))

    by_kind = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    workloads = by_kind.get("Deployment", []) + by_kind.get("StatefulSet", [])
    deployments = {o["metadata"]["name"]: o for o in by_kind.get("Deployment", [])}
    services = by_kind.get("Service", [])
    configmaps = {base_name(o["metadata"]["name"]): o for o in by_kind.get("ConfigMap", [])}
    secrets = {base_name(o["metadata"]["name"]): o for o in by_kind.get("Secret", [])}

    # 2. NATS configuration files, each with the files it may include.
    for name, cm in configmaps.items():
        data = cm.get("data") or {}
        if "nats.conf" in data:
            directory = work / f"nats-{name}"
            directory.mkdir(exist_ok=True)
            for key, value in data.items():
                (directory / key).write_text(value)

    # 3a. Workloads: resources, probes, hardening.
    for wl in workloads:
        where = ident(wl)
        pod = wl["spec"]["template"]["spec"]
        pod_sc = pod.get("securityContext") or {}
        for c in containers(pod):
            cw = f"{where} container {c['name']}"
            res = c.get("resources") or {}
            for path in (("requests", "cpu"), ("requests", "memory"), ("limits", "memory")):
                if not (res.get(path[0]) or {}).get(path[1]):
                    problem(cw, f"no resources.{path[0]}.{path[1]}")
            if c in (pod.get("containers") or []):
                for probe in ("readinessProbe", "livenessProbe"):
                    if probe not in c:
                        problem(cw, f"no {probe}")
            sc = c.get("securityContext") or {}
            if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))):
                problem(cw, "runAsNonRoot is not set")
            if sc.get("allowPrivilegeEscalation") is not False:
                problem(cw, "allowPrivilegeEscalation must be false")
            if sc.get("readOnlyRootFilesystem") is not True:
                problem(cw, "readOnlyRootFilesystem must be true")
            if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                problem(cw, "capabilities must drop ALL")

    # 3b. Foco services: drain time, Secrets.
    for name, dep in deployments.items():
        if name not in SECRET_KEYS:
            continue
        pod = dep["spec"]["template"]["spec"]
        c = pod["containers"][0]
        env = {e["name"]: e for e in c.get("env") or []}
        grace = DEFAULT_GRACE[name]
        if "FOCO_SHUTDOWN_GRACE" in env and name != "foco-control":
            try:
                grace = seconds(env["FOCO_SHUTDOWN_GRACE"].get("value", ""))
            except ValueError:
                problem(ident(dep), f"FOCO_SHUTDOWN_GRACE {env['FOCO_SHUTDOWN_GRACE'].get('value')!r} is not a duration")
        pre_stop = (((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}).get("seconds", 0)
        needed = pre_stop + grace + EXIT_MARGIN
        period = pod.get("terminationGracePeriodSeconds", 30)
        if period < needed:
            problem(ident(dep), f"terminationGracePeriodSeconds {period} < preStop {pre_stop}s + drain {grace}s + {EXIT_MARGIN}s: the kubelet would kill work in flight")

        # The async runtime's workers follow the CPU the pod asked for
        # (crates/runtime/src/workers.rs): unset, a pod with no CPU limit starts
        # one per core of the node.
        workers = ((env.get("FOCO_WORKER_THREADS") or {}).get("valueFrom") or {}).get("resourceFieldRef") or {}
        if workers.get("resource") != "requests.cpu" or str(workers.get("divisor", "1")) != "1":
            problem(ident(dep), "FOCO_WORKER_THREADS must come from the container's requests.cpu (resourceFieldRef, divisor 1)")
        elif workers.get("containerName") not in (None, c["name"]):
            problem(ident(dep), f"FOCO_WORKER_THREADS reads the CPU request of container {workers['containerName']!r}, not its own")

        allowed = SECRET_KEYS[name]
        received = set()
        for source in c.get("envFrom") or []:
            if "secretRef" in source:
                secret = base_name(source["secretRef"]["name"])
                if secret != f"{name}-secrets":
                    problem(ident(dep), f"reads Secret {secret}: each service reads only {name}-secrets")
                    continue
                if secret in secrets:
                    obj = secrets[secret]
                    keys = set(obj.get("data") or {}) | set(obj.get("stringData") or {})
                    received |= keys
                    if keys - allowed:
                        problem(ident(obj), f"holds {sorted(keys - allowed)}, which {name} does not read: keep it to {sorted(allowed)}")
            if "configMapRef" in source:
                cm = configmaps.get(base_name(source["configMapRef"]["name"]))
                if cm is None:
                    problem(ident(dep), f"ConfigMap {source['configMapRef']['name']} is not part of the output")
                elif set(cm.get("data") or {}) & ALL_SECRET_NAMES:
                    problem(ident(cm), f"holds secrets {sorted(set(cm['data']) & ALL_SECRET_NAMES)}: they belong in the services' Secrets")
        for var in env.values():
            ref = (var.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                if base_name(ref["name"]) != f"{name}-secrets" or ref["key"] not in allowed:
                    problem(ident(dep), f"{var['name']} from Secret {ref['name']} key {ref['key']}: not one of {name}'s secrets")
                received.add(ref["key"])
            elif var["name"] in ALL_SECRET_NAMES:
                problem(ident(dep), f"{var['name']} is set in clear in the Deployment")
        if f"{name}-secrets" in secrets and not REQUIRED_SECRET_KEYS[name] <= received:
            problem(ident(dep), f"its Secret lacks {sorted(REQUIRED_SECRET_KEYS[name] - received)}, which {name} requires")
        # Its NATS identity: only its own, and in production one it has.
        mounted = {base_name((v.get("secret") or {})["secretName"]) for v in pod.get("volumes") or [] if v.get("secret")}
        for secret in mounted - {f"{name}-nats"}:
            problem(ident(dep), f"mounts Secret {secret}: each service mounts only its own NATS identity, {name}-nats")
        if production and name in NATS_USERS and f"{name}-nats" not in mounted:
            problem(ident(dep), f"connects to NATS without its own identity: mount Secret {name}-nats (NATS_NKEY_FILE)")

    # 3b'. Least privilege: each service presents a key of its own, never the
    # admin key (which holds every scope) nor another service's.
    def secret_value(secret, key):
        obj = secrets.get(secret) or {}
        if key in (obj.get("stringData") or {}):
            return obj["stringData"][key]
        raw = (obj.get("data") or {}).get(key)
        return base64.b64decode(raw).decode() if raw is not None else None

    admin_key = secret_value("foco-control-secrets", "FOCO_ADMIN_API_KEY")
    service_keys = {}
    for name in ("foco-ingress", "foco-rules", "foco-sender"):
        key = secret_value(f"{name}-secrets", "FOCO_CONTROL_API_KEY")
        if key is None:
            continue
        if admin_key is not None and key == admin_key:
            problem(ident(secrets[f"{name}-secrets"]), f"FOCO_CONTROL_API_KEY is the admin key: give {name} its own service key")
        for other, other_key in service_keys.items():
            if key == other_key:
                problem(ident(secrets[f"{name}-secrets"]), f"FOCO_CONTROL_API_KEY is {other}'s too: each service needs its own key")
        service_keys[name] = key

    # 3c. References.
    pod_labels = [(ident(w), w["spec"]["template"]["metadata"].get("labels") or {}) for w in workloads]
    for svc in services:
        selector = svc["spec"].get("selector")
        if selector and not any(matches(selector, labels) for _, labels in pod_labels):
            problem(ident(svc), f"selects no pods ({selector})")
    for pdb in by_kind.get("PodDisruptionBudget", []):
        if not any(matches(pdb["spec"].get("selector"), labels) for _, labels in pod_labels):
            problem(ident(pdb), "selects no pods")
    for sm in by_kind.get("ServiceMonitor", []):
        ports = {e.get("port") for e in sm["spec"].get("endpoints", [])}
        selected = [s for s in services if matches(sm["spec"].get("selector"), s["metadata"].get("labels") or {})]
        if not selected:
            problem(ident(sm), "selects no Service")
        for svc in selected:
            names = {p.get("name") for p in svc["spec"].get("ports", [])}
            if ports - names:
                problem(ident(sm), f"port {sorted(ports - names)} is not a port of {ident(svc)}")
    scaled = {}
    for hpa in by_kind.get("HorizontalPodAutoscaler", []) + by_kind.get("ScaledObject", []):
        ref = hpa["spec"]["scaleTargetRef"]
        if ref.get("kind", "Deployment") != "Deployment" or ref["name"] not in deployments:
            problem(ident(hpa), f"scales {ref.get('kind', 'Deployment')}/{ref['name']}, which is not in the output")
            continue
        if ref["name"] in scaled:
            problem(ident(hpa), f"{ref['name']} is already scaled by {scaled[ref['name']]}: two autoscalers fight")
        scaled[ref["name"]] = ident(hpa)
        if "replicas" in deployments[ref["name"]]["spec"]:
            problem(ident(deployments[ref["name"]]), f"sets replicas while {ident(hpa)} owns them: every apply would reset the count")

    # 3d. The bus: replicas, KEDA triggers.
    config = (configmaps.get("foco-config") or {}).get("data") or {}
    prefix = config.get("FOCO_BUS_PREFIX", "")
    nats = [s for s in by_kind.get("StatefulSet", []) if s["metadata"]["name"] == "nats"]
    if nats and "FOCO_BUS_REPLICAS" in config:
        servers = nats[0]["spec"].get("replicas", 1)
        if not 1 <= int(config["FOCO_BUS_REPLICAS"]) <= servers:
            problem("ConfigMap/foco-config", f"FOCO_BUS_REPLICAS={config['FOCO_BUS_REPLICAS']} with {servers} NATS server(s): streams could not be created")
    names = bus_names(repo, prefix)
    service_ports = {s["metadata"]["name"]: {p["port"] for p in s["spec"].get("ports", [])} for s in services}
    for so in by_kind.get("ScaledObject", []):
        scaled_name = so["spec"]["scaleTargetRef"]["name"]
        expected = {(names.get(s), names.get(c)) for s, c in CONSUMERS.get(scaled_name, [])}
        for trigger in so["spec"].get("triggers", []):
            if trigger.get("type") != "nats-jetstream":
                continue
            meta = trigger.get("metadata") or {}
            where = f"{ident(so)} trigger {meta.get('stream')}/{meta.get('consumer')}"
            if set(meta) - NATS_TRIGGER_KEYS:
                problem(where, f"unknown metadata {sorted(set(meta) - NATS_TRIGGER_KEYS)} (KEDA nats-jetstream knows {sorted(NATS_TRIGGER_KEYS)})")
            for key in ("natsServerMonitoringEndpoint", "stream", "consumer", "lagThreshold"):
                if key not in meta:
                    problem(where, f"no {key}")
            if "account" not in meta and "accountID" not in meta:
                problem(where, "no account (the default account is $G)")
            if not str(meta.get("lagThreshold", "1")).isdigit():
                problem(where, "lagThreshold must be a whole number")
            if (meta.get("stream"), meta.get("consumer")) not in expected:
                problem(where, f"{scaled_name} consumes {sorted(expected)} (crates/bus/src/names.rs, FOCO_BUS_PREFIX={prefix!r})")
            endpoint = re.fullmatch(r"([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.[a-z0-9.-]+)?:(\d+)", meta.get("natsServerMonitoringEndpoint", ""))
            if not endpoint:
                problem(where, "natsServerMonitoringEndpoint should be <headless service>.<namespace>.svc.cluster.local:8222")
            else:
                svc, namespace, port = endpoint.group(1), endpoint.group(2), int(endpoint.group(3))
                if port not in service_ports.get(svc, set()):
                    problem(where, f"no Service {svc} with port {port} in the output")
                if namespace != so["metadata"].get("namespace", namespace):
                    problem(where, f"endpoint namespace {namespace} differs from the overlay's {so['metadata'].get('namespace')}")

    # 3e. Alerts and dashboards.
    operations = repo / "docs/operations.md"
    anchors = github_anchors(operations.read_text()) if operations.is_file() else set()
    for rule_obj in by_kind.get("PrometheusRule", []):
        for group in rule_obj["spec"].get("groups", []):
            for rule in group.get("rules", []):
                name = rule.get("alert") or rule.get("record")
                where = f"{ident(rule_obj)} {name}"
                check_promql(where, str(rule.get("expr", "")), known_metrics)
                if "alert" not in rule:
                    continue
                if "severity" not in (rule.get("labels") or {}):
                    problem(where, "no severity label")
                url = (rule.get("annotations") or {}).get("runbook_url", "")
                link = re.fullmatch(r"https://\S+/docs/operations\.md#([\w-]+)", url)
                if not link:
                    problem(where, f"runbook_url {url!r} must point to a section of docs/operations.md")
                elif link.group(1) not in anchors:
                    problem(where, f"runbook_url anchor #{link.group(1)} is no heading of docs/operations.md")
    for name, cm in configmaps.items():
        if "grafana_dashboard" not in (cm["metadata"].get("labels") or {}):
            continue
        for key, value in (cm.get("data") or {}).items():
            try:
                dashboard = json.loads(value)
            except ValueError as error:
                problem(f"ConfigMap/{name} {key}", f"not JSON: {error}")
                continue
            panels = list(dashboard.get("panels", []))
            for panel in list(panels):
                panels += panel.get("panels", [])
            for panel in panels:
                for t in panel.get("targets", []):
                    if "expr" in t:
                        check_promql(f"ConfigMap/{name} {key} panel {panel.get('title')!r}", t["expr"], known_metrics)

    # 3f. Production.
    if production:
        for name, dep in deployments.items():
            labels = dep["spec"]["template"]["metadata"].get("labels") or {}
            if not any(matches(p["spec"].get("selector"), labels) for p in by_kind.get("PodDisruptionBudget", [])):
                problem(ident(dep), "no PodDisruptionBudget")
            if not dep["spec"]["template"]["spec"].get("topologySpreadConstraints"):
                problem(ident(dep), "no topologySpreadConstraints")
            if name in SECRET_KEYS and not any(
                any(matches(sm["spec"].get("selector"), s["metadata"].get("labels") or {}) for s in services
                    if s["metadata"]["name"] == name)
                for sm in by_kind.get("ServiceMonitor", [])
            ):
                problem(ident(dep), "no ServiceMonitor scrapes its Service")
        for wl in workloads:
            for c in containers(wl["spec"]["template"]["spec"]):
                image = c.get("image", "")
                if ":" not in image.split("/")[-1] or image.endswith(":latest"):
                    problem(f"{ident(wl)} container {c['name']}", f"image {image} is not pinned to a version")
        if not any(
            p["spec"].get("podSelector") == {} and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress") and not p["spec"].get("egress")
            for p in by_kind.get("NetworkPolicy", [])
        ):
            problem(target, "no default-deny NetworkPolicy (podSelector {}, Ingress and Egress, no rules)")
        for obj in by_kind.get("Secret", []):
            problem(ident(obj), "production Secrets are created from the secret manager, not rendered from git")

    for line in problems:
        print(f"k8s-check: {target}: {line}", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
