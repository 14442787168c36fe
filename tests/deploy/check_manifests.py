#!/usr/bin/env python3
"""Lints deploy/: every YAML parses, every Kubernetes object has the fields
the API server requires, labels and selectors agree, the settings the
manifests pass exist in billingd (`billingd --help`), and the Dockerfile's
runtime packages are the ones the binary links against. Docker and a
cluster are not available here, so this is what can be checked."""
import re
import subprocess
import sys
from pathlib import Path

import yaml

repo = Path(sys.argv[1])
billingd = sys.argv[2]
deploy = repo / "deploy"
errors = []


def check(cond, msg):
    if not cond:
        errors.append(msg)


help_text = subprocess.run([billingd, "--help"], capture_output=True, text=True, check=True).stdout
known_env = set(re.findall(r"BILLING_[A-Z_]+", help_text))
known_env |= {v + "_FILE" for v in known_env}

docs = {}
for path in sorted((deploy / "k8s").glob("*.yaml")):
    for doc in yaml.safe_load_all(path.read_text()):
        check(isinstance(doc, dict), f"{path.name}: not a mapping")
        if path.name == "kustomization.yaml":
            for res in doc["resources"]:
                check((deploy / "k8s" / res).exists(), f"kustomization: missing {res}")
            continue
        for key in ("apiVersion", "kind", "metadata"):
            check(key in doc, f"{path.name}: no {key}")
        check("name" in doc.get("metadata", {}), f"{path.name}: no metadata.name")
        docs[(doc["kind"], doc["metadata"]["name"])] = doc

dep = docs[("Deployment", "billingd")]
pod = dep["spec"]["template"]
check(dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items(),
      "Deployment selector does not match its pod labels")
svc = docs[("Service", "billingd")]
check(svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items(),
      "Service selector does not match the pods")
hpa = docs[("HorizontalPodAutoscaler", "billingd")]
check(hpa["spec"]["scaleTargetRef"]["name"] == "billingd", "HPA targets another deployment")
for kind, name in [("Deployment", "billingd"), ("Job", "billingd-migrate")]:
    spec = docs[(kind, name)]["spec"]["template"]["spec"]
    for c in spec["containers"]:
        for e in c.get("env", []):
            check(e["name"] in known_env, f"{kind} {name}: unknown setting {e['name']}")
        for mount in c.get("volumeMounts", []):
            check(any(v["name"] == mount["name"] for v in spec.get("volumes", [])),
                  f"{kind} {name}: mount {mount['name']} has no volume")
        probes = [c.get("readinessProbe"), c.get("livenessProbe")]
        for p in filter(None, probes):
            check(p["httpGet"]["path"] in ("/readyz", "/healthz"), f"{kind}: probe path {p['httpGet']['path']}")
for key in docs[("ConfigMap", "billingd")]["data"]:
    check(key in known_env, f"ConfigMap: unknown setting {key}")

compose = yaml.safe_load((deploy / "compose.yaml").read_text())
for name, service in compose["services"].items():
    for key in (service.get("environment") or {}):
        if key.startswith("BILLING_"):
            check(key in known_env, f"compose {name}: unknown setting {key}")

# The runtime image must carry a package for each shared library we link.
dockerfile = (deploy / "Dockerfile").read_text()
runtime = dockerfile.split("FROM debian:12-slim", 1)[1]
libs = subprocess.run(["ldd", billingd], capture_output=True, text=True, check=True).stdout
needs = {"libcaf_core": "libcaf-core0.17", "libpqxx": "libpqxx-6.4", "libssl.so.3": "libssl3",
         "libspdlog": "libspdlog1.10", "libsimdjson": "libsimdjson14", "libfmt": "libfmt9"}
for lib, pkg in needs.items():
    if lib in libs:
        check(pkg in runtime, f"Dockerfile runtime stage lacks {pkg} (billingd links {lib})")

if errors:
    print("\n".join("FAIL " + e for e in errors))
    sys.exit(1)
print(f"deploy manifests OK: {len(docs)} Kubernetes objects, compose, Dockerfile")
