"""Static checks of docker/Dockerfile, docker/compose.yaml and .dockerignore.

No Docker engine runs on the project's machines, so this reads the files the
way Docker would and checks what breaks a build or a `compose up` first:
  Dockerfile: a Debian 12 base; scripts/setup is run, after the COPY that
    brings it; every COPY source exists in the build context and is not
    excluded by .dockerignore; the final USER is not root and numeric; the
    ENTRYPOINT is nlpflow; two stages, the runtime one with no compilers,
    headers or scripts/setup, taking the binary from the build stage, with a
    HEALTHCHECK on /healthz.
  compose.yaml: parses; has the kafka and nlpflow services; Kafka is 4.1.x;
    nlpflow is built from this Dockerfile, depends on kafka, gets a bootstrap
    address that the kafka service advertises, and every bind-mounted host
    path exists (of every service); Prometheus scrapes nlpflow on the metrics
    port; Grafana is provisioned with that Prometheus and the dashboard, whose
    panels name the provisioned datasource.
  docker/k8s/*.yaml: the Deployment, the ConfigMap and the KEDA ScaledObject
    parse and refer to each other: the Deployment mounts the ConfigMap at the
    folder of its --config file and the ConfigMap has that key; the pipeline
    config in the ConfigMap is a map with kafka.group_id and no per-pod
    group; the ScaledObject scales that Deployment on a kafka trigger whose
    bootstrapServers, consumerGroup and topic are the config's, with at most
    kafka.topic_partitions replicas; the pods set NLPFLOW_INSTANCE_ID (the
    exactly-once transactional id) and get more than
    pipeline.shutdown_timeout_ms to stop; the image is compose's; liveness on
    /healthz and readiness on /readyz at the container's metrics port;
    resources; securityContext with runAsNonRoot, the image's numeric user,
    readOnlyRootFilesystem and no privilege escalation; a PodDisruptionBudget
    and a Service selecting the pods, a ServiceMonitor selecting the Service
    on a port it has.
Then it breaks copies of the files in memory and checks that each break is
caught, so that the checks above are known to be able to fail.

Usage: python3 docker_files_test.py [--dockerfile P] [--compose P] [--root P]
Exits 0 when every check passes, 1 otherwise, printing what failed.
"""

import argparse
import fnmatch
import os
import re
import shlex
import sys

try:
    import yaml
except ImportError:
    sys.exit("python3 has no yaml module: run scripts/setup (Debian package python3-yaml)")

ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))


# ---------------------------------------------------------------------------
# Dockerfile


def parse_dockerfile(text):
    """Returns [(INSTRUCTION, arguments)], continuation lines joined."""
    instructions, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # A comment inside a continued instruction.
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, args = current.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        current = ""
    if current:
        instructions.append(("<unterminated>", current))
    return instructions


def copy_sources(args):
    """Sources of a COPY/ADD, or None for a copy from another stage."""
    if args.startswith("["):
        import json

        parts = json.loads(args)
    else:
        parts = shlex.split(args)
    flags = [p for p in parts if p.startswith("--")]
    if any(f.startswith("--from=") for f in flags):
        return None
    paths = [p for p in parts if not p.startswith("--")]
    return paths[:-1]  # The last one is the destination.


def dockerignore_patterns(text):
    return [
        line.strip().rstrip("/")
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith("#") and not line.startswith("!")
    ]


def ignored(path, patterns):
    """True if .dockerignore excludes path or a folder above it."""
    path = os.path.normpath(path)
    if path == ".":
        return False
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        for pattern in patterns:
            if fnmatch.fnmatchcase(prefix, pattern):
                return True
            if pattern.startswith("**/") and fnmatch.fnmatchcase(parts[i - 1], pattern[3:]):
                return True
    return False


def check_dockerfile(text, context, dockerignore_text):
    errors = []
    instructions = parse_dockerfile(text)
    if not instructions:
        return ["Dockerfile: no instructions"]
    if any(k == "<unterminated>" for k, _ in instructions):
        errors.append("Dockerfile: ends inside a continued line")

    froms = [a for k, a in instructions if k == "FROM"]
    if not froms:
        errors.append("Dockerfile: no FROM")
    elif not re.match(r"^debian:(12|bookworm)(\b|-)", froms[0]):
        errors.append(f"Dockerfile: base is {froms[0]!r}, expected debian:12 (what scripts/setup installs for)")

    patterns = dockerignore_patterns(dockerignore_text)
    setup_copied = False
    setup_run = False
    for keyword, args in instructions:
        if keyword in ("COPY", "ADD"):
            sources = copy_sources(args)
            if sources is None:
                continue
            if not sources:
                errors.append(f"Dockerfile: {keyword} {args}: no source")
            for src in sources:
                if not os.path.exists(os.path.join(context, src)):
                    errors.append(f"Dockerfile: {keyword} source {src!r} does not exist in {context}")
                elif ignored(src, patterns):
                    errors.append(f"Dockerfile: {keyword} source {src!r} is excluded by .dockerignore")
                elif src.rstrip("/") in (".", "scripts", "scripts/setup"):
                    setup_copied = True
        elif keyword == "RUN" and "scripts/setup" in args:
            if not setup_copied:
                errors.append("Dockerfile: RUN scripts/setup comes before a COPY that brings scripts/")
            setup_run = True
    if not setup_run:
        errors.append("Dockerfile: never runs scripts/setup")
    if ignored("scripts/setup", patterns):
        errors.append(".dockerignore: excludes scripts/setup")

    users = [a.split(":")[0].strip() for k, a in instructions if k == "USER"]
    if not users:
        errors.append("Dockerfile: no USER: the container would run as root")
    elif users[-1] in ("root", "0"):
        errors.append(f"Dockerfile: the final USER is {users[-1]!r}")
    elif not users[-1].isdigit():
        errors.append(f"Dockerfile: the final USER {users[-1]!r} is not numeric "
                      "(Kubernetes' runAsNonRoot cannot check a name)")

    # Two stages: the runtime one carries no toolchain.
    from_indices = [n for n, (k, _) in enumerate(instructions) if k == "FROM"]
    if len(from_indices) < 2:
        errors.append("Dockerfile: one stage: the image would carry the compilers")
    else:
        if not re.match(r"^debian:(12|bookworm)(\b|-)", froms[-1]):
            errors.append(f"Dockerfile: runtime base is {froms[-1]!r}, expected debian:12")
        runtime = instructions[from_indices[-1] + 1:]
        for keyword, args in runtime:
            if keyword == "RUN" and "scripts/setup" in args:
                errors.append("Dockerfile: the runtime stage runs scripts/setup (the build toolchain)")
            if keyword == "RUN" and re.search(r"apt-get install", args):
                for word in shlex.split(args.replace("\\", " ")):
                    if word in ("build-essential", "gcc", "g++", "clang", "cmake", "ninja-build") or \
                            word.endswith("-dev"):
                        errors.append(f"Dockerfile: the runtime stage installs {word!r}")
        if not any(k == "COPY" and "--from=" in a for k, a in runtime):
            errors.append("Dockerfile: the runtime stage copies nothing from the build stage")
        checks = [a for k, a in runtime if k == "HEALTHCHECK"]
        if not checks:
            errors.append("Dockerfile: the runtime stage has no HEALTHCHECK")
        elif "/healthz" not in checks[-1]:
            errors.append(f"Dockerfile: the HEALTHCHECK does not ask /healthz: {checks[-1]!r}")

    entrypoints = [a for k, a in instructions if k == "ENTRYPOINT"]
    if not entrypoints or "nlpflow" not in entrypoints[-1]:
        errors.append("Dockerfile: ENTRYPOINT is not nlpflow")
    return errors


# ---------------------------------------------------------------------------
# compose.yaml


def as_list(command):
    if command is None:
        return []
    return command if isinstance(command, list) else shlex.split(command)


def env_dict(env):
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: str(v) for k, v in (env or {}).items()}


def check_compose(text, compose_dir, dockerfile_path, context_root):
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        return [f"compose: not valid YAML: {e}"]
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict):
        return ["compose: no services"]
    services = doc["services"]
    errors = []
    for name in ("kafka", "nlpflow"):
        if not isinstance(services.get(name), dict):
            errors.append(f"compose: no {name} service")
    if errors:
        return errors
    kafka, app = services["kafka"], services["nlpflow"]

    image = str(kafka.get("image", ""))
    if not re.match(r"^apache/kafka:4\.1\.\d+$", image):
        errors.append(f"compose: kafka image is {image!r}, expected apache/kafka:4.1.x")

    build = app.get("build")
    if not isinstance(build, dict):
        errors.append("compose: nlpflow has no build section")
    else:
        context = os.path.realpath(os.path.join(compose_dir, str(build.get("context", "."))))
        dockerfile = os.path.join(context, str(build.get("dockerfile", "Dockerfile")))
        if context != os.path.realpath(context_root):
            errors.append(f"compose: nlpflow build context {context} is not the repository root")
        if os.path.realpath(dockerfile) != os.path.realpath(dockerfile_path):
            errors.append(f"compose: nlpflow is built from {dockerfile}, not {dockerfile_path}")

    depends = app.get("depends_on") or []
    if "kafka" not in (list(depends) if isinstance(depends, (list, dict)) else []):
        errors.append("compose: nlpflow does not depend on kafka")

    mounts = {}  # service -> {container path: host path}
    for service_name, service in services.items():
        for volume in (service or {}).get("volumes") or []:
            if isinstance(volume, dict):
                source, target = volume.get("source"), volume.get("target")
            else:
                parts = str(volume).split(":")
                source, target = parts[0], parts[1] if len(parts) > 1 else ""
            if source and (source.startswith(".") or source.startswith("/")):
                host = os.path.join(compose_dir, source)
                if not os.path.exists(host):
                    errors.append(f"compose: {service_name} mounts {source!r}, which does not exist")
                mounts.setdefault(service_name, {})[target] = host
    errors += check_monitoring(services, mounts)

    # nlpflow's broker must be an address the kafka service advertises.
    command = " ".join(as_list(app.get("command")))
    match = re.search(r"kafka\.bootstrap_servers=(\S+)", command)
    if not match:
        errors.append("compose: nlpflow's command sets no kafka.bootstrap_servers")
    else:
        advertised = env_dict(kafka.get("environment")).get("KAFKA_ADVERTISED_LISTENERS", "")
        endpoints = {e.split("://", 1)[-1] for e in advertised.split(",") if e}
        for address in match.group(1).split(","):
            if address not in endpoints:
                errors.append(f"compose: nlpflow uses {address}, which kafka does not advertise ({advertised})")
    return errors


def mounted_file(mounts, service, path):
    """The host path of `path` in `service`, through its bind mounts; None if not mounted."""
    for target, host in sorted((mounts.get(service) or {}).items(), key=lambda kv: -len(kv[0])):
        if path == target or path.startswith(target.rstrip("/") + "/"):
            return os.path.join(host, os.path.relpath(path, target)) if path != target else host
    return None


def check_monitoring(services, mounts):
    """Prometheus scrapes nlpflow; Grafana has it and the dashboard."""
    import json

    errors = []
    for name in ("prometheus", "grafana"):
        if not isinstance(services.get(name), dict):
            errors.append(f"compose: no {name} service")
    if errors:
        return errors
    prom_config = mounted_file(mounts, "prometheus", "/etc/prometheus/prometheus.yml")
    if not prom_config or not os.path.exists(prom_config):
        return ["compose: prometheus has no /etc/prometheus/prometheus.yml mounted"]
    try:
        prom = yaml.safe_load(open(prom_config))
    except yaml.YAMLError as e:
        return [f"compose: prometheus.yml is not valid YAML: {e}"]
    targets = []
    for job in (prom or {}).get("scrape_configs") or []:
        for sd in job.get("dns_sd_configs") or []:
            targets += [f"{n}:{sd.get('port')}" for n in sd.get("names") or []]
        for sc in job.get("static_configs") or []:
            targets += sc.get("targets") or []
    if "nlpflow:9464" not in targets:
        errors.append(f"compose: Prometheus does not scrape nlpflow:9464 (targets {targets})")

    provisioning = mounted_file(mounts, "grafana", "/etc/grafana/provisioning")
    if not provisioning or not os.path.isdir(provisioning):
        return errors + ["compose: grafana has no /etc/grafana/provisioning mounted"]
    uids = set()
    ds_dir = os.path.join(provisioning, "datasources")
    for f in sorted(os.listdir(ds_dir)) if os.path.isdir(ds_dir) else []:
        for ds in (yaml.safe_load(open(os.path.join(ds_dir, f))) or {}).get("datasources") or []:
            if ds.get("type") == "prometheus" and "prometheus:9090" in str(ds.get("url")):
                uids.add(ds.get("uid"))
    if not uids:
        errors.append("compose: Grafana has no datasource for http://prometheus:9090")
    dashboard_paths = []
    db_dir = os.path.join(provisioning, "dashboards")
    for f in sorted(os.listdir(db_dir)) if os.path.isdir(db_dir) else []:
        for provider in (yaml.safe_load(open(os.path.join(db_dir, f))) or {}).get("providers") or []:
            path = (provider.get("options") or {}).get("path")
            host = mounted_file(mounts, "grafana", path) if path else None
            if not host or not os.path.isdir(host):
                errors.append(f"compose: Grafana's dashboard folder {path!r} is not mounted")
            else:
                dashboard_paths += [os.path.join(host, d) for d in sorted(os.listdir(host)) if d.endswith(".json")]
    if not dashboard_paths:
        errors.append("compose: Grafana is provisioned with no dashboard")
    for path in dashboard_paths:
        try:
            dashboard = json.load(open(path))
        except ValueError as e:
            errors.append(f"compose: dashboard {os.path.basename(path)} is not JSON: {e}")
            continue
        for panel in dashboard.get("panels") or []:
            for target in [panel] + (panel.get("targets") or []):
                uid = (target.get("datasource") or {}).get("uid")
                if uid is not None and uid not in uids:
                    errors.append(f"compose: dashboard panel {panel.get('title')!r} uses datasource "
                                  f"{uid!r}, which Grafana is not provisioned with")
    return errors


# ---------------------------------------------------------------------------
# Kubernetes manifests

K8S_FILES = ("deployment.yaml", "configmap.yaml", "scaledobject.yaml", "service.yaml",
             "servicemonitor.yaml", "pdb.yaml")


def selects(selector, labels):
    """A label selector's matchLabels (or a Service's plain selector) match labels."""
    match = selector.get("matchLabels", selector) if isinstance(selector, dict) else {}
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def check_pod_operability(dep, container, spec, config, image_uid, docs):
    """Probes, resources, securityContext, and the PDB, Service and ServiceMonitor."""
    errors = []
    listen = str((config.get("metrics") or {}).get("listen", "0.0.0.0:9464"))
    metrics_port = int(listen.rsplit(":", 1)[-1]) if listen else None
    ports = {p.get("name"): p.get("containerPort") for p in container.get("ports") or []}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = (container.get(probe) or {}).get("httpGet") or {}
        if get.get("path") != path:
            errors.append(f"k8s: the container's {probe} does not ask {path} (got {get.get('path')!r})")
            continue
        port = get.get("port")
        port = ports.get(port, port)
        if port != metrics_port:
            errors.append(f"k8s: the {probe} asks port {port!r}, metrics.listen is {metrics_port}")
    resources = container.get("resources") or {}
    requests = resources.get("requests") or {}
    if "cpu" not in requests or "memory" not in requests:
        errors.append("k8s: the container requests no cpu or no memory")
    if "memory" not in (resources.get("limits") or {}):
        errors.append("k8s: the container has no memory limit")
    pod_sc, sc = spec.get("securityContext") or {}, container.get("securityContext") or {}
    merged = dict(pod_sc, **sc)
    if merged.get("runAsNonRoot") is not True:
        errors.append("k8s: runAsNonRoot is not true")
    uid = merged.get("runAsUser")
    if not isinstance(uid, int) or uid == 0:
        errors.append(f"k8s: runAsUser is {uid!r}, expected a non-zero number")
    elif image_uid is not None and uid != image_uid:
        errors.append(f"k8s: runAsUser {uid} is not the image's USER {image_uid}")
    if sc.get("readOnlyRootFilesystem") is not True:
        errors.append("k8s: readOnlyRootFilesystem is not true")
    if sc.get("allowPrivilegeEscalation") is not False:
        errors.append("k8s: allowPrivilegeEscalation is not false")

    pod_labels = (((dep.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
    pdb, svc, sm = docs["pdb.yaml"], docs["service.yaml"], docs["servicemonitor.yaml"]
    for doc, kind in ((pdb, "PodDisruptionBudget"), (svc, "Service"), (sm, "ServiceMonitor")):
        if doc.get("kind") != kind:
            errors.append(f"k8s: expected kind {kind}, got {doc.get('kind')!r}")
    if not selects((pdb.get("spec") or {}).get("selector"), pod_labels):
        errors.append("k8s: the PodDisruptionBudget does not select the Deployment's pods")
    pdb_spec = pdb.get("spec") or {}
    if "maxUnavailable" not in pdb_spec and "minAvailable" not in pdb_spec:
        errors.append("k8s: the PodDisruptionBudget sets neither maxUnavailable nor minAvailable")
    svc_spec = svc.get("spec") or {}
    if not selects(svc_spec.get("selector"), pod_labels):
        errors.append("k8s: the Service does not select the Deployment's pods")
    svc_ports = {p.get("name"): p for p in svc_spec.get("ports") or []}
    for name, p in svc_ports.items():
        target = ports.get(p.get("targetPort"), p.get("targetPort"))
        if target != metrics_port:
            errors.append(f"k8s: the Service's port {name!r} targets {target!r}, not the metrics port")
    svc_labels = (svc.get("metadata") or {}).get("labels") or {}
    sm_spec = sm.get("spec") or {}
    if not selects(sm_spec.get("selector"), svc_labels):
        errors.append("k8s: the ServiceMonitor does not select the Service")
    for endpoint in sm_spec.get("endpoints") or [{}]:
        if endpoint.get("port") not in svc_ports:
            errors.append(f"k8s: the ServiceMonitor scrapes port {endpoint.get('port')!r}, "
                          f"which the Service does not have")
        if endpoint.get("path", "/metrics") != "/metrics":
            errors.append(f"k8s: the ServiceMonitor scrapes {endpoint.get('path')!r}, not /metrics")
    return errors


def image_user(dockerfile_text):
    """The numeric uid of the Dockerfile's final USER, or None."""
    users = [a.split(":")[0].strip() for k, a in parse_dockerfile(dockerfile_text) if k == "USER"]
    return int(users[-1]) if users and users[-1].isdigit() else None


def check_k8s(k8s_texts, compose_text, dockerfile_text=""):
    """k8s_texts: {file name: text}. Returns a list of errors."""
    docs = {}
    for name in K8S_FILES:
        if name not in k8s_texts:
            return [f"k8s: {name} is missing"]
        try:
            doc = yaml.safe_load(k8s_texts[name])
        except yaml.YAMLError as e:
            return [f"k8s: {name} is not valid YAML: {e}"]
        if not isinstance(doc, dict):
            return [f"k8s: {name} is not a YAML map"]
        docs[name] = doc
    errors = []
    dep, cm, so = docs["deployment.yaml"], docs["configmap.yaml"], docs["scaledobject.yaml"]
    for doc, kind in ((dep, "Deployment"), (cm, "ConfigMap"), (so, "ScaledObject")):
        if doc.get("kind") != kind:
            errors.append(f"k8s: expected kind {kind}, got {doc.get('kind')!r}")
    if errors:
        return errors
    dep_name = (dep.get("metadata") or {}).get("name")
    cm_name = (cm.get("metadata") or {}).get("name")
    spec = ((dep.get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = spec.get("containers") or []
    if len(containers) != 1:
        return ["k8s: the Deployment must have one container"]
    container = containers[0]

    # The image is the one compose builds.
    try:
        compose_image = yaml.safe_load(compose_text)["services"]["nlpflow"]["image"]
    except (yaml.YAMLError, KeyError, TypeError):
        compose_image = None
    if compose_image and container.get("image") != compose_image:
        errors.append(f"k8s: the Deployment runs image {container.get('image')!r}, compose builds {compose_image!r}")

    # --config FILE, mounted from the ConfigMap.
    args = [str(a) for a in (container.get("args") or [])]
    if "--config" not in args or args.index("--config") + 1 >= len(args):
        return errors + ["k8s: the Deployment's args have no --config"]
    config_path = args[args.index("--config") + 1]
    config_dir, config_key = os.path.dirname(config_path), os.path.basename(config_path)
    mounts = {m.get("name"): m.get("mountPath") for m in container.get("volumeMounts") or []}
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    mounted = [n for n, path in mounts.items() if path == config_dir]
    if not mounted:
        errors.append(f"k8s: nothing is mounted at {config_dir}, where --config {config_path} is")
    else:
        source = (volumes.get(mounted[0]) or {}).get("configMap") or {}
        if source.get("name") != cm_name:
            errors.append(f"k8s: {config_dir} is mounted from ConfigMap {source.get('name')!r}, not {cm_name!r}")
    data = cm.get("data") or {}
    if config_key not in data:
        return errors + [f"k8s: ConfigMap {cm_name} has no key {config_key!r} (the --config file)"]
    try:
        config = yaml.safe_load(data[config_key])
    except yaml.YAMLError as e:
        return errors + [f"k8s: the pipeline config in the ConfigMap is not valid YAML: {e}"]
    if not isinstance(config, dict):
        return errors + ["k8s: the pipeline config in the ConfigMap is not a map"]
    kafka = config.get("kafka") or {}
    group = kafka.get("group_id")
    if not group:
        errors.append("k8s: the pipeline config sets no kafka.group_id (replicas must share one)")
    if any("group_id" in a for a in args):
        errors.append("k8s: the Deployment overrides kafka.group_id per pod: replicas must share the group")
    env = {e.get("name"): e for e in container.get("env") or []}
    if "NLPFLOW_INSTANCE_ID" not in env:
        errors.append("k8s: the pods do not set NLPFLOW_INSTANCE_ID (exactly-once transactional id)")
    shutdown_ms = int((config.get("pipeline") or {}).get("shutdown_timeout_ms", 15000))
    grace_s = int(spec.get("terminationGracePeriodSeconds", 30))
    if grace_s * 1000 <= shutdown_ms:
        errors.append(f"k8s: terminationGracePeriodSeconds {grace_s} is not more than "
                      f"pipeline.shutdown_timeout_ms {shutdown_ms}")

    # The ScaledObject scales this Deployment on this group's lag.
    so_spec = so.get("spec") or {}
    target = (so_spec.get("scaleTargetRef") or {}).get("name")
    if target != dep_name:
        errors.append(f"k8s: the ScaledObject scales {target!r}, not the Deployment {dep_name!r}")
    triggers = [t for t in so_spec.get("triggers") or [] if t.get("type") == "kafka"]
    if not triggers:
        errors.append("k8s: the ScaledObject has no kafka trigger")
    else:
        meta = triggers[0].get("metadata") or {}
        if meta.get("consumerGroup") != group:
            errors.append(f"k8s: the kafka trigger watches group {meta.get('consumerGroup')!r}, the config's is {group!r}")
        topics = kafka.get("input_topics") or []
        topics = [topics] if isinstance(topics, str) else topics
        if meta.get("topic") not in topics:
            errors.append(f"k8s: the kafka trigger watches topic {meta.get('topic')!r}, not an input topic {topics}")
        if meta.get("bootstrapServers") != kafka.get("bootstrap_servers"):
            errors.append(f"k8s: the kafka trigger uses brokers {meta.get('bootstrapServers')!r}, "
                          f"the config {kafka.get('bootstrap_servers')!r}")
    partitions = int(kafka.get("topic_partitions", 4))
    max_replicas = int(so_spec.get("maxReplicaCount", 100))
    if max_replicas > partitions:
        errors.append(f"k8s: maxReplicaCount {max_replicas} is more than the {partitions} partitions")
    errors += check_pod_operability(dep, container, spec, config, image_user(dockerfile_text), docs)
    return errors


# ---------------------------------------------------------------------------


def check_all(dockerfile_text, compose_text, dockerignore_text, dockerfile, compose_dir, root):
    return check_dockerfile(dockerfile_text, root, dockerignore_text) + check_compose(
        compose_text, compose_dir, dockerfile, root
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=ROOT)
    parser.add_argument("--dockerfile", default=None)
    parser.add_argument("--compose", default=None)
    args = parser.parse_args()
    root = os.path.realpath(args.root)
    dockerfile = args.dockerfile or os.path.join(root, "docker", "Dockerfile")
    compose = args.compose or os.path.join(root, "docker", "compose.yaml")
    ignore_path = os.path.join(root, ".dockerignore")

    texts = {}
    for path in (dockerfile, compose):
        try:
            with open(path) as f:
                texts[path] = f.read()
        except OSError as e:
            print(f"FAIL cannot read {path}: {e}")
            return 1
    ignore_text = open(ignore_path).read() if os.path.exists(ignore_path) else ""
    compose_dir = os.path.join(root, "docker")  # Where its relative paths start.
    k8s_dir = os.path.join(root, "docker", "k8s")
    k8s = {}
    for name in K8S_FILES:
        path = os.path.join(k8s_dir, name)
        if os.path.exists(path):
            with open(path) as f:
                k8s[name] = f.read()

    passed = failed = 0
    errors = check_all(texts[dockerfile], texts[compose], ignore_text, dockerfile, compose_dir, root)
    for e in errors:
        print(f"FAIL {e}")
    if errors:
        failed += 1
    else:
        print(f"ok   {os.path.relpath(dockerfile, root)} and {os.path.relpath(compose, root)}")
        passed += 1
    k8s_errors = check_k8s(k8s, texts[compose], texts[dockerfile])
    for e in k8s_errors:
        print(f"FAIL {e}")
    if k8s_errors:
        failed += 1
    else:
        print("ok   docker/k8s/" + ", ".join(K8S_FILES))
        passed += 1
    k8s_breaks = [
        ("Deployment missing", "deployment.yaml", None, "deployment.yaml is missing"),
        ("other ConfigMap", "deployment.yaml", ("name: nlpflow-config", "name: other-config"),
         "is mounted from ConfigMap 'other-config'"),
        ("other mount path", "deployment.yaml", ("mountPath: /etc/nlpflow", "mountPath: /etc/other"),
         "nothing is mounted at /etc/nlpflow"),
        ("other target", "scaledobject.yaml", ("    name: nlpflow\n  minReplicaCount", "    name: other\n  minReplicaCount"),
         "the ScaledObject scales 'other'"),
        ("other group", "scaledobject.yaml", ("consumerGroup: nlpflow-minilm-embed", "consumerGroup: other"),
         "watches group 'other'"),
        ("other topic", "scaledobject.yaml", ("topic: texts", "topic: other"), "watches topic 'other'"),
        ("too many replicas", "scaledobject.yaml", ("maxReplicaCount: 12", "maxReplicaCount: 50"),
         "maxReplicaCount 50 is more than"),
        ("no instance id", "deployment.yaml", ("name: NLPFLOW_INSTANCE_ID", "name: OTHER_VAR"),
         "do not set NLPFLOW_INSTANCE_ID"),
        ("short grace", "deployment.yaml", ("terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: 5"),
         "terminationGracePeriodSeconds 5"),
        ("missing config key", "configmap.yaml", ("  pipeline.yaml: |", "  other.yaml: |"), "has no key 'pipeline.yaml'"),
        ("no liveness", "deployment.yaml", ("path: /healthz\n              port: metrics\n            periodSeconds: 10",
                                             "path: /other\n              port: metrics\n            periodSeconds: 10"),
         "livenessProbe does not ask /healthz"),
        ("readiness elsewhere", "deployment.yaml", ("path: /readyz\n              port: metrics",
                                                    "path: /readyz\n              port: 8080"),
         "readinessProbe asks port 8080"),
        ("no resources", "deployment.yaml", ("              cpu: \"2\"\n", ""), "requests no cpu"),
        ("root allowed", "deployment.yaml", ("runAsNonRoot: true", "runAsNonRoot: false"), "runAsNonRoot is not true"),
        ("other uid", "deployment.yaml", ("runAsUser: 10001", "runAsUser: 1000"), "is not the image's USER 10001"),
        ("writable root", "deployment.yaml", ("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"),
         "readOnlyRootFilesystem is not true"),
        ("escalation", "deployment.yaml", ("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true"),
         "allowPrivilegeEscalation is not false"),
        ("no PDB", "pdb.yaml", None, "pdb.yaml is missing"),
        ("PDB selects others", "pdb.yaml", ("      app.kubernetes.io/name: nlpflow", "      app.kubernetes.io/name: other"),
         "PodDisruptionBudget does not select"),
        ("Service selects others", "service.yaml", ("    app.kubernetes.io/name: nlpflow\n  ports",
                                                     "    app.kubernetes.io/name: other\n  ports"),
         "Service does not select"),
        ("monitor on a missing port", "servicemonitor.yaml", ("- port: metrics", "- port: http"),
         "scrapes port 'http'"),
        ("monitor selects others", "servicemonitor.yaml", ("      app.kubernetes.io/name: nlpflow", "      app.kubernetes.io/name: other"),
         "ServiceMonitor does not select"),
    ]
    for name, file, change, expected in k8s_breaks:
        broken = dict(k8s)
        if change is None:
            broken.pop(file, None)
        else:
            broken[file] = k8s.get(file, "").replace(change[0], change[1])
            if broken[file] == k8s.get(file):
                print(f"FAIL k8s break {name!r} changed nothing: update this test with the files")
                failed += 1
                continue
        found = check_k8s(broken, texts[compose], texts[dockerfile])
        if any(expected in e for e in found):
            passed += 1
        else:
            print(f"FAIL k8s break {name!r} not caught (expected {expected!r}, got {found})")
            failed += 1

    # Each break must be caught, with a message that names it.
    d, c, i = texts[dockerfile], texts[compose], ignore_text
    breaks = [
        ("no USER", re.sub(r"(?m)^USER .*$", "", d), c, i, "no USER"),
        ("USER root", re.sub(r"(?m)^USER .*$", "USER root", d), c, i, "final USER is 'root'"),
        ("COPY of a missing path", d.replace("COPY scripts/ scripts/", "COPY no-such-dir/ scripts/"), c, i,
         "'no-such-dir/' does not exist"),
        ("scripts/ ignored", d, c, i + "\nscripts\n", "excluded by .dockerignore"),
        ("no scripts/setup", d.replace("scripts/setup", "scripts/other"), c, i, "never runs scripts/setup"),
        ("other base", re.sub(r"(?m)^FROM .*$", "FROM ubuntu:24.04", d), c, i, "expected debian:12"),
        ("broken YAML", d, c + "\n  bad: [unclosed\n", i, "not valid YAML"),
        ("no kafka service", d, c.replace("\n  kafka:\n", "\n  broker:\n"), i, "no kafka service"),
        ("Kafka 4.0.0", d, c.replace("apache/kafka:4.1.1", "apache/kafka:4.0.0"), i, "expected apache/kafka:4.1.x"),
        ("missing mount", d, c.replace("../configs:/opt", "../nope:/opt"), i, "which does not exist"),
        ("USER by name", re.sub(r"(?m)^USER .*$", "USER nlpflow", d), c, i, "is not numeric"),
        ("one stage", d.replace("FROM debian:12 AS runtime", "# one stage").replace("COPY --from=build /out/ /", ""),
         c, i, "one stage"),
        ("compilers at run time", d.replace("ca-certificates curl", "ca-certificates curl build-essential"), c, i,
         "the runtime stage installs 'build-essential'"),
        ("headers at run time", d.replace("ca-certificates curl", "ca-certificates curl libtorch-dev"), c, i,
         "the runtime stage installs 'libtorch-dev'"),
        ("no HEALTHCHECK", re.sub(r"(?m)^HEALTHCHECK .*\n.*$", "", d), c, i, "no HEALTHCHECK"),
        ("no prometheus", d, c.replace("\n  prometheus:\n", "\n  prom:\n"), i, "no prometheus service"),
        ("prometheus elsewhere", d, c.replace("./prometheus/prometheus.yml:", "./prometheus/other.yml:"), i,
         "which does not exist"),
        ("no dashboards", d, c.replace("./grafana/dashboards:/var/lib/grafana/dashboards",
                                       "./grafana/dashboards:/var/lib/grafana/other"), i,
         "dashboard folder '/var/lib/grafana/dashboards' is not mounted"),

        ("unadvertised broker", d, c.replace("kafka.bootstrap_servers=kafka:9092", "kafka.bootstrap_servers=kafka:29092"),
         i, "which kafka does not advertise"),
    ]
    for name, bd, bc, bi, expected in breaks:
        if bd == d and bc == c and bi == i:
            print(f"FAIL break {name!r} changed nothing: update this test with the files")
            failed += 1
            continue
        found = check_all(bd, bc, bi, dockerfile, compose_dir, root)
        if any(expected in e for e in found):
            passed += 1
        else:
            print(f"FAIL break {name!r} not caught (expected {expected!r}, got {found})")
            failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
