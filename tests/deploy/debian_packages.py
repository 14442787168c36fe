"""The package half of the deploy lint: scripts/packages.txt against what the
build really uses. Everything is asked of dpkg on this machine, which is the
same Debian 12 the image builds on, so "owned by package X" and "X depends
on Y" here are what apt will do in the image.

  runtime_errors: every library `ldd billingd` resolves comes from a package
  the runtime stage installs; every library billingd itself NEEDs comes from
  a package named in [runtime].
  build_errors: every file CMake found (compiler, tools, Find modules' and
  config packages' paths, the link line, the commands of the build rules)
  comes from a package the build stage installs.
"""
import glob
import os
import re
import subprocess
from pathlib import Path

# Packages of debian:12-slim that billingd links and [runtime] need not name:
# libc6 and libgcc-s1 are Protected base packages, libstdc++6 and zlib1g are
# there because apt and dpkg depend on them. Nothing else: every other
# library must come from [runtime] or from what apt installs with it.
SLIM_BASE = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}

# CMake cache entries only tests or benchmarks need (checked against
# [build] + [test]); find_program() variables of tests/ and bench/ are
# added by test_only_cache_vars().
TEST_ONLY_VARS = {"Catch2_DIR", "benchmark_DIR"}


def sections(repo):
    """{section: [packages]} through scripts/packages, the reader the
    Dockerfile and scripts/deps use (so the check also covers the reader)."""
    text = (repo / "scripts" / "packages.txt").read_text()
    names = re.findall(r"^\s*\[([^\]]+)\]", text, re.M)
    out = {}
    for name in names:
        res = subprocess.run(["sh", str(repo / "scripts" / "packages"), name],
                             capture_output=True, text=True, check=True)
        out[name] = res.stdout.split()
    return out


class Dpkg:
    """Installed packages, their dependencies and file owners."""

    def __init__(self):
        fmt = "${Package}\t${Status}\t${Essential}\t${Pre-Depends}\t${Depends}\t${Provides}\n"
        res = subprocess.run(["dpkg-query", "-W", "-f=" + fmt], capture_output=True, text=True, check=True)
        self.depends = {}
        self.essential = set()
        self.providers = {}
        for line in res.stdout.splitlines():
            pkg, status, essential, pre, deps, provides = line.split("\t")
            if not status.endswith(" installed"):
                continue
            self.depends[pkg] = [g for g in (pre + "," + deps).split(",") if g.strip()]
            if essential == "yes":
                self.essential.add(pkg)
            for p in provides.split(","):
                if p.strip():
                    self.providers.setdefault(_name(p), set()).add(pkg)
        self.owners = {}

    def installed(self, pkg):
        return pkg in self.depends

    def closure(self, pkgs):
        """pkgs and everything apt installs with them (Pre-Depends and
        Depends, not Recommends: the image installs with
        --no-install-recommends). Of "a | b" apt takes the first it can,
        so the first alternative installed (or provided) here is followed."""
        seen = set()
        todo = list(pkgs)
        while todo:
            pkg = todo.pop()
            if pkg in seen:
                continue
            seen.add(pkg)
            for group in self.depends.get(pkg, []):
                for alt in group.split("|"):
                    name = _name(alt)
                    hits = [name] if self.installed(name) else sorted(self.providers.get(name, ()))
                    if hits:
                        todo.extend(hits)
                        break
        return seen

    def own(self, paths):
        """Looks up the owning package of each path (dpkg -S, once for all),
        trying the path, its /usr-merged alias and its real path."""
        tries = {p: _aliases(p) for p in paths if p not in self.owners}
        flat = sorted({a for al in tries.values() for a in al})
        found = {}
        if flat:
            res = subprocess.run(["dpkg", "-S", *flat], capture_output=True, text=True)
            for line in res.stdout.splitlines():
                if line.startswith("diversion ") or ": " not in line:
                    continue
                pkgs, path = line.split(": ", 1)
                found[path] = sorted({_name(p) for p in pkgs.split(",")})
        for p, al in tries.items():
            self.owners[p] = next((found[a] for a in al if a in found), None)
        return {p: self.owners[p] for p in paths}


def _name(dep):
    """'libssl3:amd64 (>= 3.0)' -> 'libssl3'."""
    return re.sub(r"\(.*?\)|\[.*?\]|<.*?>", "", dep).strip().split(":")[0]


def _aliases(path):
    out = []
    for p in (path, os.path.realpath(path)):
        out.append(p)
        m = re.match(r"^/usr(/(?:lib|lib64|bin|sbin)/.*)$", p)
        if m:
            out.append(m.group(1))
        elif re.match(r"^/(?:lib|lib64|bin|sbin)/", p):
            out.append("/usr" + p)
    return list(dict.fromkeys(out))


def runtime_errors(billingd, lists, dpkg):
    errors = []
    runtime = set(lists.get("runtime", []))
    for pkg in sorted(runtime):
        if not dpkg.installed(pkg):
            errors.append(f"[runtime] lists {pkg}, which is not installed here (run scripts/deps)")
    image = dpkg.closure(runtime) | SLIM_BASE
    ldd = subprocess.run(["ldd", billingd], capture_output=True, text=True, check=True).stdout
    resolved = {}
    for line in ldd.splitlines():
        m = re.match(r"\s*(\S+) => (\S+)", line)
        if m and m.group(2) == "not":
            errors.append(f"ldd: {m.group(1)} not found")
        elif m:
            resolved[m.group(1)] = m.group(2)
        else:
            m = re.match(r"\s*(/\S+) \(", line)  # the dynamic loader
            if m:
                resolved[os.path.basename(m.group(1))] = m.group(1)
    owners = dpkg.own(list(resolved.values()))
    direct, missing = [], {}
    dyn = subprocess.run(["readelf", "-d", billingd], capture_output=True, text=True, check=True).stdout
    for lib in re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dyn):
        pkgs = owners.get(resolved.get(lib, ""), None) or []
        if pkgs and not set(pkgs) & (runtime | SLIM_BASE):
            direct.append(f"billingd needs {lib} directly: name {'/'.join(pkgs)} in [runtime] of scripts/packages.txt")
    for lib, path in sorted(resolved.items()):
        pkgs = owners[path]
        if not pkgs:
            errors.append(f"billingd links {path}, which no Debian package owns: the image cannot have it")
        elif not set(pkgs) & image:
            missing[lib] = "/".join(pkgs)
    errors += direct
    if direct and missing:
        # the libraries the missing direct ones pull in: one line, not twenty
        errors.append(f"... and so the image would also lack {', '.join(sorted(set(missing.values())))}")
    else:
        errors += [f"billingd links {lib} from {pkg}: the runtime stage would not install it; add it to [runtime] "
                   "of scripts/packages.txt" for lib, pkg in missing.items()]
    return errors, len(resolved)


def test_only_cache_vars(repo):
    names = set(TEST_ONLY_VARS)
    for d in ("tests", "bench"):
        for f in (repo / d).rglob("CMakeLists.txt"):
            names |= set(re.findall(r"find_program\(\s*(\w+)", f.read_text()))
    return names


def cmake_found_paths(repo, build):
    """{path: what found it} for every file the configured build uses."""
    found = {}
    skip = (str(build.resolve()), str(repo.resolve()))

    def add(path, why):
        if path.startswith("/") and not path.startswith(skip) and os.path.isfile(path):
            found.setdefault(path, why)

    for line in (build / "CMakeCache.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.+-]+):(FILEPATH|PATH|INTERNAL)=(/.*)$", line)
        if not m:
            continue
        var, kind, value = m.groups()
        if kind == "FILEPATH":
            add(value, var)
        elif kind == "PATH" and var.endswith("_DIR"):
            # a config package's directory: the config file in it says whose
            for f in glob.glob(os.path.join(value, "*onfig.cmake")):
                add(f, var)
        elif var == "CMAKE_COMMAND":
            add(value, var)
    # Makefile generator: billingd's link line and the commands of every
    # rule outside tests/ and bench/ (protoc, grpc_cpp_plugin, ...).
    rules = [build / "app" / "CMakeFiles" / "billingd.dir" / "link.txt"]
    for f in build.rglob("CMakeFiles/*.dir/build.make"):
        rel = f.relative_to(build).parts
        if rel[0] not in ("tests", "bench"):
            rules.append(f)
    for f in rules:
        if f.exists():
            for path in re.findall(r"(/usr/[^\s;:\"'$()]+)", f.read_text()):
                add(path, f"{f.relative_to(build)}")
    return found


def build_errors(repo, build, lists, dpkg):
    errors = []
    build_list = set(lists.get("build", []))
    test_list = set(lists.get("test", [])) | set(lists.get("test-node", []))
    # [test-node] is installed only when no node is on PATH: not required here.
    for pkg in sorted(build_list | set(lists.get("test", []))):
        if not dpkg.installed(pkg):
            errors.append(f"scripts/packages.txt lists {pkg}, which is not installed here (run scripts/deps)")
    # The build stage is debian:12, whose Essential packages need no listing.
    build_image = dpkg.closure(build_list) | dpkg.essential
    test_image = build_image | dpkg.closure(test_list)
    test_vars = test_only_cache_vars(repo)
    found = cmake_found_paths(repo, build)
    owners = dpkg.own(list(found))
    for path, why in sorted(found.items()):
        pkgs = owners[path]
        test_only = why in test_vars
        if not pkgs:
            errors.append(f"CMake uses {path} ({why}), which no Debian package owns: the image cannot have it")
        elif not set(pkgs) & (test_image if test_only else build_image):
            section = "[test]" if test_only else "[build]"
            errors.append(f"CMake uses {path} ({why}) from {'/'.join(pkgs)}: add it to {section} of "
                          "scripts/packages.txt (neither listed nor installed with a listed package)")
    return errors, len(found)
