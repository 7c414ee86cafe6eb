#!/usr/bin/env python3
"""Parse every example config and check the fields the tend log pipeline relies on.

What this proves: every YAML document parses (yaml.safe_load_all), every embedded
config parses in its own syntax (Vector TOML with tomllib, Filebeat YAML, Fluent
Bit's classic INI-like format by a small parser), and the key fields agree with
SPEC.md: the log root /data/logs, the globs /data/logs/*/*/*/*/current and
.../@*.log, CRI parsing, identity lifted from the path, the downward-API env
names, hostPath mounts. What it cannot prove: that Vector or Filebeat accept the
config (neither is available here). Fluent Bit's and rsyslog's configs are run
for real by scripts/collector-e2e.sh.

Prints PASS/FAIL lines and "N passed, N failed"; exits 1 on any failure.
"""
import re
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
EX = ROOT / "examples"
GLOB = "/data/logs/*/*/*/*/current"
# The archives too: a current rotated away between two scans exists only as these.
ARCHIVES = "/data/logs/*/*/*/*/@*.log"
results = {"pass": 0, "fail": 0}


def check(what, ok, detail=""):
    results["pass" if ok else "fail"] += 1
    print(("PASS: " if ok else "FAIL: ") + what + ("" if ok or not detail else f" ({detail})"))
    return ok


def load_yaml(path):
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as e:
        check(f"{path.relative_to(ROOT)} parses as YAML", False, str(e))
        return []
    check(f"{path.relative_to(ROOT)} parses as YAML ({len(docs)} documents)", True)
    return docs


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def pod_spec(workload):
    return workload["spec"]["template"]["spec"]


def host_path_mounted(workload, host_path, mount_path, read_only=None):
    spec = pod_spec(workload)
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    for c in spec["containers"]:
        for m in c.get("volumeMounts", []):
            v = vols.get(m["name"], {})
            if v.get("hostPath", {}).get("path") == host_path and m["mountPath"] == mount_path:
                if read_only is None or bool(m.get("readOnly")) == read_only:
                    return True
    return False


def configmap_consistent(name, docs):
    """The DaemonSet mounts the ConfigMap defined in the same file; returns its data."""
    cms = {c["metadata"]["name"]: c for c in by_kind(docs, "ConfigMap")}
    ds = by_kind(docs, "DaemonSet")
    if not check(f"{name}: one ConfigMap and one DaemonSet", len(cms) == 1 and len(ds) == 1):
        return None, None
    ds = ds[0]
    refs = [v["configMap"]["name"] for v in pod_spec(ds).get("volumes", []) if "configMap" in v]
    check(f"{name}: DaemonSet mounts its ConfigMap", set(refs) == set(cms), f"{refs} vs {list(cms)}")
    check(f"{name}: DaemonSet mounts hostPath /data/logs read-only at /data/logs",
          host_path_mounted(ds, "/data/logs", "/data/logs", read_only=True))
    state = [v for v in pod_spec(ds).get("volumes", [])
             if v.get("hostPath", {}).get("path", "").startswith("/var/lib/")]
    check(f"{name}: read positions on a hostPath under /var/lib (restarts resume)", len(state) == 1)
    sel = ds["spec"]["selector"]["matchLabels"]
    labels = ds["spec"]["template"]["metadata"]["labels"]
    check(f"{name}: selector matches the pod labels", all(labels.get(k) == v for k, v in sel.items()))
    return next(iter(cms.values()))["data"], ds


def parse_fluentbit_classic(text):
    """[SECTION] headers then 'Key Value' lines; '#' comments. Returns [(section, {key: [values]})]."""
    sections = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"\[([A-Z_]+)\]", line)
        if m:
            sections.append((m.group(1), {}))
            continue
        if not sections:
            raise ValueError(f"line {n}: key outside a section: {raw!r}")
        key, _, value = line.partition(" ")
        if not value.strip():
            raise ValueError(f"line {n}: key without a value: {raw!r}")
        sections[-1][1].setdefault(key.lower(), []).append(value.strip())
    return sections


def deployment():
    path = EX / "kubernetes" / "deployment.yaml"
    docs = load_yaml(path)
    deps = by_kind(docs, "Deployment")
    if not check("deployment.yaml: has a Deployment", len(deps) == 1):
        return
    d = deps[0]
    spec = pod_spec(d)
    labels = d["spec"]["template"]["metadata"]["labels"]
    c = spec["containers"][0]
    env = {e["name"]: e for e in c.get("env", [])}

    def field(name):
        return env.get(name, {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")

    check("deployment: POD_NAMESPACE from metadata.namespace", field("POD_NAMESPACE") == "metadata.namespace")
    check("deployment: POD_NAME from metadata.name", field("POD_NAME") == "metadata.name")
    m = re.fullmatch(r"metadata\.labels\['([^']+)'\]", field("APP_NAME") or "")
    check("deployment: APP_NAME from a pod label that exists", bool(m) and m.group(1) in labels,
          f"{field('APP_NAME')} vs labels {labels}")
    check("deployment: hostPath /data/logs mounted at /data/logs (writable)",
          host_path_mounted(d, "/data/logs", "/data/logs", read_only=False))
    for name in env:
        if name.startswith("TEND_"):
            check(f"deployment: {name} is a TEND_* variable SPEC.md names",
                  name in ("TEND_KILL_GRACE", "TEND_CMD_WAIT", "TEND_LOG_ROOT", "TEND_SERVICES",
                           "TEND_NAMESPACE", "TEND_APP", "TEND_POD", "TEND_RUN_DIR", "TEND_TEE",
                           "TEND_TEE_FORMAT", "TEND_METRICS_ADDR"))
    grace = spec.get("terminationGracePeriodSeconds", 30)
    kill = int(env.get("TEND_KILL_GRACE", {}).get("value", "5000"))
    check("deployment: terminationGracePeriodSeconds > TEND_KILL_GRACE", grace * 1000 > kill)
    # Probes and scraping go to tend's --metrics-addr listener.
    addr = env.get("TEND_METRICS_ADDR", {}).get("value", "")
    port = addr.rsplit(":", 1)[-1] if ":" in addr else ""
    check("deployment: TEND_METRICS_ADDR is HOST:PORT on every address", addr.startswith(":") and port.isdigit(), addr)
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
    for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
        get = c.get(probe, {}).get("httpGet", {})
        target = ports.get(get.get("port"), get.get("port"))
        check(f"deployment: {probe} is httpGet {path} on the metrics port",
              get.get("path") == path and str(target) == port, str(get))
    ann = d["spec"]["template"]["metadata"].get("annotations", {})
    check("deployment: Prometheus scrape annotations point at /metrics on that port",
          ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == port
          and ann.get("prometheus.io/path", "/metrics") == "/metrics", str(ann))
    tee = env.get("TEND_TEE", {}).get("value"), env.get("TEND_TEE_FORMAT", {}).get("value")
    check("deployment: tee on, prefixed, for kubectl logs", tee == ("1", "prefixed"), str(tee))


def collector_config(name, key, fmt, parse, error):
    """Checks examples/kubernetes/NAME.yaml's ConfigMap and that its KEY parses as FMT;
    returns (ConfigMap data, parsed KEY, DaemonSet), or None after a failed check."""
    docs = load_yaml(EX / "kubernetes" / f"{name}.yaml")
    data, ds = configmap_consistent(name, docs)
    if data is None:
        return None
    try:
        cfg = parse(data[key])
    except (KeyError, error) as e:
        check(f"{key} parses ({fmt})", False, str(e))
        return None
    check(f"{key} parses ({fmt})", True)
    return data, cfg, ds


def fluent_bit():
    got = collector_config("fluent-bit", "fluent-bit.conf", "classic format", parse_fluentbit_classic, ValueError)
    if got is None:
        return
    data, sections, ds = got
    tails = [kv for s, kv in sections if s == "INPUT" and kv.get("name") == ["tail"]]
    if not check("fluent-bit: one tail input", len(tails) == 1):
        return
    t = tails[0]
    paths = [p.strip() for v in t.get("path", []) for p in v.split(",")]
    check(f"fluent-bit: tail Path is {GLOB},{ARCHIVES}", paths == [GLOB, ARCHIVES], str(paths))
    wait = t.get("rotate_wait", ["5"])[0]
    check("fluent-bit: Rotate_Wait outlives the archives (>= 30 days)",
          wait.isdigit() and int(wait) >= 30 * 86400, wait)
    check("fluent-bit: Buffer_Max_Size holds a 16 KiB record", t.get("buffer_max_size", ["32k"])[0] not in ("32k", "16k"))
    check("fluent-bit: multiline.parser cri", "cri" in ",".join(t.get("multiline.parser", [])))
    check("fluent-bit: Path_Key set (the path reaches the filter)", bool(t.get("path_key")))
    check("fluent-bit: DB set (positions persist)", bool(t.get("db")))
    luas = [kv for s, kv in sections if s == "FILTER" and kv.get("name") == ["lua"]]
    if check("fluent-bit: a lua filter", len(luas) == 1):
        script = Path(luas[0]["script"][0]).name
        call = luas[0]["call"][0]
        lua = data.get(script, "")
        check(f"fluent-bit: lua script {script} is in the ConfigMap", bool(lua))
        check(f"fluent-bit: lua defines {call}()", re.search(rf"function\s+{call}\s*\(", lua) is not None)
        check("fluent-bit: lua reads the Path_Key field", f'record["{t["path_key"][0]}"]' in lua)
        check("fluent-bit: lua pattern takes any file name (archives too)", "/current$" not in lua)
        for k in ("namespace", "app", "pod", "service"):
            check(f"fluent-bit: lua sets {k}", f'record["{k}"]' in lua)
        mount = [m["mountPath"] for m in pod_spec(ds)["containers"][0]["volumeMounts"] if m["name"] == "config"]
        check("fluent-bit: lua script path is inside the ConfigMap mount",
              bool(mount) and luas[0]["script"][0].startswith(mount[0].rstrip("/") + "/"))
    check("fluent-bit: an OUTPUT", any(s == "OUTPUT" for s, _ in sections))


def vector():
    got = collector_config("vector", "vector.toml", "TOML", tomllib.loads, tomllib.TOMLDecodeError)
    if got is None:
        return
    _, cfg, _ = got
    src = cfg.get("sources", {})
    files = {k: v for k, v in src.items() if v.get("type") == "file"}
    if not check("vector: one file source", len(files) == 1):
        return
    (fname, f), = files.items()
    check(f"vector: include is {GLOB}, {ARCHIVES}", f.get("include") == [GLOB, ARCHIVES], str(f.get("include")))
    check("vector: file_key set", bool(f.get("file_key")))
    check("vector: no remove_after_secs (would delete tend's files)", "remove_after_secs" not in f)
    comps = {**src, **cfg.get("transforms", {}), **cfg.get("sinks", {})}
    for name, c in {**cfg.get("transforms", {}), **cfg.get("sinks", {})}.items():
        check(f"vector: {name} inputs exist", all(i in comps for i in c.get("inputs", [])), str(c.get("inputs")))
    remaps = [t for t in cfg.get("transforms", {}).values() if t.get("type") == "remap"]
    if check("vector: a remap transform", len(remaps) == 1):
        vrl = remaps[0]["source"]
        check("vector: remap reads the file_key field", f".{f['file_key']}" in vrl)
        check("vector: path regex takes any file name (archives too)", "/current$" not in vrl)
        for k in ("namespace", "app", "pod", "service"):
            check(f"vector: remap sets .{k}", f".{k} =" in vrl)
        check("vector: remap parses CRI (time stream P|F log)", "stdout|stderr" in vrl and "[PF]" in vrl)
    check("vector: a sink", bool(cfg.get("sinks")))


def filebeat():
    got = collector_config("filebeat", "filebeat.yml", "YAML", yaml.safe_load, yaml.YAMLError)
    if got is None:
        return
    _, cfg, _ = got
    ins = [i for i in cfg.get("filebeat.inputs", []) if i.get("type") == "filestream"]
    if not check("filebeat: one filestream input with an id", len(ins) == 1 and bool(ins[0].get("id"))):
        return
    i = ins[0]
    check(f"filebeat: paths is {GLOB}, {ARCHIVES}", i.get("paths") == [GLOB, ARCHIVES], str(i.get("paths")))
    parsers = i.get("parsers", [])
    check("filebeat: container parser (cri)", any("container" in p for p in parsers))
    dis = [p["dissect"] for p in i.get("processors", []) if "dissect" in p]
    if check("filebeat: a dissect processor", len(dis) == 1):
        d = dis[0]
        check("filebeat: dissect on log.file.path", d.get("field") == "log.file.path")
        for k in ("namespace", "app", "pod", "service"):
            check(f"filebeat: dissect extracts {k}", f"%{{{k}}}" in d.get("tokenizer", ""))
        check("filebeat: tokenizer matches the globs' shape (any file name)",
              re.sub(r"%\{\??[a-z]+\}", "*", d.get("tokenizer", "")) == GLOB.replace("current", "*"))
    check("filebeat: an output", any(k.startswith("output.") for k in cfg))


def rsyslog():
    p = EX / "collectors" / "rsyslog.conf"
    text = p.read_text()
    check("rsyslog.conf: imfile loaded", 'module(load="imfile"' in text)
    check(f"rsyslog.conf: imfile tails {GLOB}", f'file="{GLOB}"' in text)
    for opt in ('addMetadata="on"', 'freshStartTail="off"', 'reopenOnTruncate="on"'):
        check(f"rsyslog.conf: {opt}", opt in text)
    check("rsyslog.conf: identity from $!metadata!filename", "re_extract($!metadata!filename" in text)


def dockerfiles():
    base = (ROOT / "Dockerfile.base").read_text()
    lines = [ln.strip() for ln in base.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    froms = [ln for ln in lines if ln.upper().startswith("FROM ")]
    check("Dockerfile.base: FROM scratch only", froms == ["FROM scratch"], str(froms))
    check("Dockerfile.base: ENTRYPOINT tend init --", 'ENTRYPOINT ["/usr/bin/tend", "init", "--"]' in lines)
    check("Dockerfile.base: VOLUME /data/logs", "VOLUME /data/logs" in lines)
    check("Dockerfile.base: OCI labels", "org.opencontainers.image.title" in base)
    app = (EX / "Dockerfile.app").read_text()
    check("Dockerfile.app: copies tend from the base image", "COPY --from=tend /usr/bin/tend /usr/bin/tend" in app)
    check("Dockerfile.app: adds /etc/tend/services", "/etc/tend/services" in app)
    svc = EX / "services"
    for d in sorted(p for p in svc.iterdir() if p.is_dir()):
        # A oneshot's program is `up`; a longrun's is `run` (SPEC section 5).
        kind = (d / "type").read_text().strip() if (d / "type").exists() else "longrun"
        prog = d / ("up" if kind == "oneshot" else "run")
        check(f"examples/services/{d.name}/{prog.name} is executable", prog.is_file() and prog.stat().st_mode & 0o111 != 0)


def main():
    deployment()
    fluent_bit()
    vector()
    filebeat()
    rsyslog()
    dockerfiles()
    print(f"validate-examples: {results['pass']} passed, {results['fail']} failed")
    return 1 if results["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
