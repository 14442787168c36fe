#!/usr/bin/env python3
"""Lints deploy/ (Docker and a cluster are not available here, so this is
what can be checked):

- yamllint --strict (tests/deploy/yamllint.yaml) over deploy/;
- every Kubernetes object is of a kind this lint knows and has the fields
  the API server requires; labels, selectors, ports and probes agree; the
  admin listener (9090: /metrics, /healthz, /readyz) is probed and scraped
  but not exposed by the Service, and reached only from the monitoring
  namespace (NetworkPolicy);
- every BILLING_* setting deploy/ passes exists in `billingd --help`, every
  BILLING_*_FILE points into the Secret, and nothing runs the simulated
  provider;
- the Dockerfile installs its packages from scripts/packages.txt (no
  package named in it) and keeps Release, strip and USER 10001;
- scripts/packages.txt against reality (debian_packages.py): [runtime] covers
  what `ldd billingd` resolves, [build] covers what CMake found.

Usage: check_manifests.py REPO BILLINGD [BUILD_DIR]
(BUILD_DIR defaults to the build tree billingd is in.)"""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import debian_packages  # noqa: E402

repo = Path(sys.argv[1])
billingd = sys.argv[2]
build = Path(sys.argv[3]) if len(sys.argv) > 3 else Path(billingd).resolve().parents[1]
deploy = repo / "deploy"
errors = []
notes = []


def check(cond, msg):
    if not cond:
        errors.append(msg)
    return cond


# --- settings ---------------------------------------------------------------
help_text = subprocess.run([billingd, "--help"], capture_output=True, text=True, check=True).stdout
known_env = set()
for name, file_form in re.findall(r"\((BILLING_[A-Z0-9_]+)(, or _FILE)?\)", help_text):
    known_env.add(name)
    if file_form:
        known_env.add(name + "_FILE")
# Settings being added by issues in flight: deploy/ already uses them. Each
# is tolerated only while `billingd --help` lacks it; remove an entry once
# billingd has it (the run says so).
PENDING = {
}
for name, issue in PENDING.items():
    if name in known_env:
        notes.append(f"{name} is in billingd --help now: drop it from PENDING ({issue})")
known_env |= set(PENDING)

settings = []  # (where, name, value) of every BILLING_* setting deploy/ makes
args_seen = []  # (where, [args]) of every command line deploy/ gives billingd


def forbid_simulated():
    for where, name, value in settings:
        v = str(value).strip().strip("\"'").lower()
        check(not (name == "BILLING_PROVIDER" and v == "simulated"),
              f"{where}: BILLING_PROVIDER=simulated (the simulated provider is for scripts/run on loopback only)")
        check(not (name == "BILLING_ALLOW_SIMULATED" and v in ("true", "1", "yes", "on")),
              f"{where}: BILLING_ALLOW_SIMULATED={value} (the simulated provider is for scripts/run only)")
    for where, args in args_seen:
        text = " ".join(map(str, args)).lower()
        check(not re.search(r"--provider[= ]simulated", text), f"{where}: --provider=simulated")
        check(not re.search(r"--allow_simulated(?:[= ](?:true|1|yes|on))?(?:\s|$)", text),
              f"{where}: --allow_simulated")


# --- yamllint ---------------------------------------------------------------
if check(shutil.which("yamllint") is not None, "yamllint is not installed (scripts/deps installs it)"):
    res = subprocess.run(["yamllint", "--strict", "-f", "parsable", "-c", str(repo / "tests/deploy/yamllint.yaml"),
                          str(deploy)], capture_output=True, text=True)
    check(res.returncode == 0, "yamllint:\n" + res.stdout + res.stderr)

# --- Kubernetes -------------------------------------------------------------
KINDS = {"ConfigMap", "Secret", "Deployment", "Job", "Service", "HorizontalPodAutoscaler",
         "PodDisruptionBudget", "NetworkPolicy"}
docs = {}
for path in sorted((deploy / "k8s").glob("*.yaml")):
    for doc in yaml.safe_load_all(path.read_text()):
        if not check(isinstance(doc, dict), f"{path.name}: not a mapping"):
            continue
        if path.name == "kustomization.yaml":
            for res in doc["resources"]:
                check((deploy / "k8s" / res).exists(), f"kustomization: missing {res}")
            continue
        for key in ("apiVersion", "kind", "metadata"):
            check(key in doc, f"{path.name}: no {key}")
        check("name" in doc.get("metadata", {}), f"{path.name}: no metadata.name")
        check(doc.get("kind") in KINDS, f"{path.name}: kind {doc.get('kind')} unknown to this lint (add its checks)")
        docs[(doc.get("kind"), doc.get("metadata", {}).get("name"))] = doc
kustomized = set(yaml.safe_load((deploy / "k8s" / "kustomization.yaml").read_text())["resources"])
for path in sorted((deploy / "k8s").glob("*.yaml")):
    if path.name not in ("kustomization.yaml", "secret.example.yaml"):
        check(path.name in kustomized, f"kustomization does not list {path.name}")

cm = docs[("ConfigMap", "billingd")]["data"]
for key, value in cm.items():
    check(key in known_env, f"ConfigMap: unknown setting {key}")
    settings.append(("ConfigMap", key, value))
secret_keys = set(docs[("Secret", "billingd")].get("stringData", {}))

dep = docs[("Deployment", "billingd")]
pod = dep["spec"]["template"]
labels = pod["metadata"]["labels"]
check(dep["spec"]["selector"]["matchLabels"].items() <= labels.items(), "Deployment selector does not match its pod labels")
for kind, name in [("Deployment", "billingd"), ("Job", "billingd-migrate")]:
    spec = docs[(kind, name)]["spec"]["template"]["spec"]
    for c in spec["containers"]:
        args_seen.append((f"{kind} {name}", c.get("command", []) + c.get("args", [])))
        for e in c.get("env", []):
            check(e["name"] in known_env, f"{kind} {name}: unknown setting {e['name']}")
            settings.append((f"{kind} {name}", e["name"], e.get("value", "")))
            if e["name"].endswith("_FILE"):
                key = Path(str(e.get("value", ""))).name
                check(key in secret_keys, f"{kind} {name}: {e['name']} reads {key}, which the Secret template lacks")
        for mount in c.get("volumeMounts", []):
            check(any(v["name"] == mount["name"] for v in spec.get("volumes", [])),
                  f"{kind} {name}: mount {mount['name']} has no volume")

container = pod["spec"]["containers"][0]
ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
check(ports.get("http") == 8080, "Deployment: no containerPort 8080 named http")
check(ports.get("admin") == 9090, "Deployment: no containerPort 9090 named admin")
check(str(cm.get("BILLING_HTTP_PORT")) == str(ports.get("http")), "ConfigMap BILLING_HTTP_PORT is not the http port")
check(str(cm.get("BILLING_ADMIN_PORT")) == str(ports.get("admin")), "ConfigMap BILLING_ADMIN_PORT is not the admin port")
check(str(cm.get("BILLING_GRPC_PORT")) == str(ports.get("grpc")), "ConfigMap BILLING_GRPC_PORT is not the grpc port")
check(cm.get("BILLING_ADMIN_ADDRESS") == "0.0.0.0",
      "ConfigMap: BILLING_ADMIN_ADDRESS must be 0.0.0.0 (kubelet probes and Prometheus reach the admin listener)")
for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
    p = container.get(probe, {}).get("httpGet", {})
    check(p.get("path") == path, f"Deployment: {probe} is not GET {path}")
    check(p.get("port") in ("admin", 9090), f"Deployment: {probe} is not on the admin port")
ann = pod["metadata"].get("annotations", {})
check(ann.get("prometheus.io/scrape") == "true", "Deployment: no prometheus.io/scrape annotation")
check(str(ann.get("prometheus.io/port")) == "9090", "Deployment: Prometheus must scrape port 9090 (admin)")
check(ann.get("prometheus.io/path") == "/metrics", "Deployment: Prometheus path is not /metrics")

svc = docs[("Service", "billingd")]
check(svc["spec"]["selector"].items() <= labels.items(), "Service selector does not match the pods")
for p in svc["spec"]["ports"]:
    target = p.get("targetPort", p.get("port"))
    check(target in ("http", 8080, "grpc", 9091),
          f"Service exposes {target}: only the API ports (http 8080, grpc 9091); never the admin port")

netpol = docs.get(("NetworkPolicy", "billingd"))
if netpol:
    check(netpol["spec"]["podSelector"]["matchLabels"].items() <= labels.items(), "NetworkPolicy selects other pods")
    admin_rules = 0
    for rule in netpol["spec"].get("ingress", []):
        for p in rule.get("ports", []):
            check(p["port"] in set(ports) | set(ports.values()), f"NetworkPolicy: port {p['port']} is no containerPort")
            if p["port"] in ("admin", 9090):
                admin_rules += 1
                peers = rule.get("from", [])
                check(peers and all(set(peer) == {"namespaceSelector"} and peer["namespaceSelector"].get(
                    "matchLabels", {}).get("kubernetes.io/metadata.name") == "monitoring" for peer in peers),
                    "NetworkPolicy: the admin port must be open only to the monitoring namespace")
        check(rule.get("ports"), "NetworkPolicy: a rule without ports opens every port, the admin one too")
    check(admin_rules == 1, "NetworkPolicy: expected one rule for the admin port")

hpa = docs[("HorizontalPodAutoscaler", "billingd")]
check(hpa["spec"]["scaleTargetRef"]["name"] == "billingd", "HPA targets another deployment")
pdb = docs[("PodDisruptionBudget", "billingd")]
check(pdb["spec"]["selector"]["matchLabels"].items() <= labels.items(), "PodDisruptionBudget selects other pods")

# --- compose ----------------------------------------------------------------
compose = yaml.safe_load((deploy / "compose.yaml").read_text())
for name, service in compose["services"].items():
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    for key, value in env.items():
        if key.startswith("BILLING_"):
            check(key in known_env, f"compose {name}: unknown setting {key}")
            settings.append((f"compose {name}", key, value))
    command = service.get("command") or []
    args_seen.append((f"compose {name}", command.split() if isinstance(command, str) else command))
    for published in service.get("ports", []):
        if str(published).split(":")[-1] == "9090":
            check(str(published).startswith("127.0.0.1:"), f"compose {name}: admin port published beyond 127.0.0.1")

# --- Dockerfile -------------------------------------------------------------
lists = debian_packages.sections(repo)
for section in ("build", "runtime", "test"):
    check(lists.get(section), f"scripts/packages.txt: no [{section}] section")
all_packages = {p for ps in lists.values() for p in ps}
text = re.sub(r"\\\n", " ", (deploy / "Dockerfile").read_text())
instructions = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
stages = []
for ins in instructions:
    if ins.upper().startswith("FROM "):
        stages.append([])
    if stages:
        stages[-1].append(ins)
check(len(stages) == 2, "Dockerfile: expected a build and a runtime stage")
for stage, image, section in zip(stages, ("debian:12 AS build", "debian:12-slim"), ("build", "runtime")):
    check(stage[0] == "FROM " + image, f"Dockerfile: stage {stage[0]!r}, expected FROM {image}")
    check(any(i.startswith("COPY ") and "scripts/packages.txt" in i and "scripts/packages " in i for i in stage),
          f"Dockerfile {section} stage: does not COPY scripts/packages and scripts/packages.txt")
    installs = 0
    for ins in stage:
        if not ins.startswith("RUN "):
            continue
        if "apt-get" in ins:
            for w in sorted(set(ins.split()) & all_packages):
                check(False, f"Dockerfile {section} stage: {w} hard-coded; it belongs in scripts/packages.txt only")
        for cmd in re.split(r"&&|;|\|\|", ins[4:]):
            words = cmd.split()
            if "apt-get" in words and "install" in words:
                installs += 1
                check(re.search(rf"=\$\(sh \S*/packages {section}\)", ins),
                      f"Dockerfile {section} stage: apt-get install does not read `packages {section}`")
                for w in words[words.index("install") + 1:]:
                    check(w.startswith("-") or w.startswith("$"),
                          f"Dockerfile {section} stage: package {w} named in the Dockerfile, not read from the list")
    check(installs == 1, f"Dockerfile {section} stage: expected one apt-get install, found {installs}")
final = stages[-1] if stages else []
check("USER 10001" in final, "Dockerfile: the runtime stage must run as USER 10001")
check(any("useradd" in i and "--uid 10001" in i for i in final), "Dockerfile: no unprivileged user 10001")
check(any("CMAKE_BUILD_TYPE=Release" in i and "strip " in i for i in stages[0] if i.startswith("RUN ")),
      "Dockerfile: the build stage must build Release and strip billingd")
for ins in instructions:
    if ins.startswith("ENV "):
        for key, value in re.findall(r"(BILLING_[A-Z0-9_]+)=(\S*)", ins):
            check(key in known_env, f"Dockerfile: unknown setting {key}")
            settings.append(("Dockerfile ENV", key, value))
    if ins.startswith(("CMD ", "ENTRYPOINT ")):
        args_seen.append(("Dockerfile", [ins]))
forbid_simulated()

# --- the package list against ldd and CMake ----------------------------------
dpkg = debian_packages.Dpkg()
runtime_errs, n_libs = debian_packages.runtime_errors(billingd, lists, dpkg)
errors += runtime_errs
if (build / "CMakeCache.txt").exists():
    build_errs, n_found = debian_packages.build_errors(repo, build, lists, dpkg)
    errors += build_errs
else:
    errors.append(f"{build}: no CMakeCache.txt (pass the build dir as the third argument)")
    n_found = 0

for n in notes:
    print("NOTE " + n)
if errors:
    print("\n".join("FAIL " + e for e in errors))
    sys.exit(1)
print(f"deploy manifests OK: {len(docs)} Kubernetes objects, compose, Dockerfile; "
      f"{n_libs} linked libraries and {n_found} CMake-found files covered by scripts/packages.txt")
