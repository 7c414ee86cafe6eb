#!/usr/bin/env python3
"""Checks what a collector shipped against what tend wrote (scripts/collector-e2e.sh).

Usage: collector-check.py [--known-archive-repeats] [--id-key NAME] OUT.jsonl LOGROOT NS/APP/POD/SVC:N_OUT:N_ERR...

1. On disk (tend): in every service directory, the archives (`@*.log`, `@*.log.gz`, in
   name order) then `current` are parsed as CRI; P pieces are joined with their F
   (never across files); every record collector-gen.py wrote is there exactly once,
   byte for byte, on its stream.
2. Shipped (the collector): one JSON object per line with `log`, `stream`, `namespace`,
   `app`, `pod`, `service`; every record exactly once, its `log` equal to the whole
   line (split lines joined), its stream and identity right; the records of each file
   arrive in that file's order.
With --known-archive-repeats (a collector restart), a record may arrive twice only if
it is in an archive and the repeated records of that archive are a prefix of it (the
file read again from its start); the repeats are counted and reported, not failed.
With --id-key NAME, every shipped record must carry NAME, equal on every copy of a record
and different between records: deduplicated by it, every record arrives exactly once.
Prints counts per service and stream; exits 1 on any failure.
"""
import gzip
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
line_of = __import__("collector-gen").line

CRI = re.compile(r"^(\S+Z) (stdout|stderr) ([PF]) (.*)$", re.S)
KEY = re.compile(r"^svc=(\S+) st=(out|err) seq=(\d+) ")
STREAM = {"out": "stdout", "err": "stderr"}


def disk(logroot, svc_path):
    """Joined records of one service directory: {key: (file, index)}, split count, errors."""
    d = os.path.join(logroot, svc_path)
    names = sorted(n for n in os.listdir(d) if re.fullmatch(r"@.*Z\.log(\.gz)?", n))
    where, errors, splits, files = {}, [], 0, 0
    for name in names + ["current"]:
        path = os.path.join(d, name)
        if not os.path.exists(path):
            continue
        files += 1
        data = gzip.open(path).read() if name.endswith(".gz") else open(path, "rb").read()
        pieces, idx = [], 0
        for raw in data.decode().split("\n")[:-1]:
            m = CRI.match(raw)
            if not m:
                errors.append(f"{name}: not CRI: {raw[:80]!r}")
                continue
            _, stream, flag, text = m.groups()
            pieces.append((stream, text))
            if flag == "P":
                continue
            if len({s for s, _ in pieces}) != 1:
                errors.append(f"{name}: a split line mixes streams")
            splits += len(pieces) > 1
            text = "".join(t for _, t in pieces)
            pieces = []
            k = KEY.match(text)
            if not k:
                errors.append(f"{name}: unexpected record {text[:80]!r}")
                continue
            key = (svc_path, k.group(2), int(k.group(3)))
            if text != line_of(k.group(1), k.group(2), key[2]) or STREAM[key[1]] != stream:
                errors.append(f"{name}: record {key} differs from what was written")
            if key in where:
                errors.append(f"{name}: record {key} also in {where[key][0]}")
            where[key] = (name, idx)
            idx += 1
        if pieces:
            errors.append(f"{name}: ends inside a split line")
    return where, splits, files, errors


def main():
    args = sys.argv[1:]
    allow, id_key = False, None
    while args and args[0].startswith("--"):
        flag = args.pop(0)
        if flag == "--known-archive-repeats":
            allow = True
        elif flag == "--id-key" and args:
            id_key = args.pop(0)
        else:
            sys.exit(f"collector-check.py: unknown flag {flag!r}")
    out, logroot, specs = args[0], args[1], args[2:]
    ok = True
    services, want, where = {}, set(), {}
    for spec in specs:
        path, n_out, n_err = spec.split(":")
        services[path] = {"out": int(n_out), "err": int(n_err)}
        for st, n in services[path].items():
            want |= {(path, st, i) for i in range(1, n + 1)}
        w, splits, files, errors = disk(logroot, path)
        where.update(w)
        missing = {k for k in want if k[0] == path} - set(w)
        print(f"  disk {path}: {files} files, {len(w)} records ({splits} split into P/F), "
              f"{len(missing)} missing, {len(errors)} errors")
        for e in errors[:3]:
            print(f"    {e}")
        ok &= not errors and not missing and splits > 0 and files > 10

    got, bad, order = {}, [], {}
    ids, id_of = {}, {}  # id -> records with it; record -> its ids
    lines = open(out, encoding="utf-8").read().splitlines() if os.path.exists(out) else []
    for n, raw in enumerate(lines, 1):
        try:
            r = json.loads(raw)
            text = r["log"]
            k = KEY.match(text)
            key = (f'{r["namespace"]}/{r["app"]}/{r["pod"]}/{r["service"]}', k.group(2), int(k.group(3)))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            bad.append(f"line {n}: {type(e).__name__} {e}: {raw[:160]}")
            continue
        if key not in want:
            bad.append(f"line {n}: unknown record {key} (identity from the path wrong?)")
            continue
        if text.rstrip("\n") != line_of(k.group(1), key[1], key[2]):
            bad.append(f"line {n}: {key}: log is not the whole line ({len(text)} bytes)")
        if r.get("stream") != STREAM[key[1]]:
            bad.append(f"line {n}: {key}: stream {r.get('stream')!r}")
        got[key] = got.get(key, 0) + 1
        if id_key is not None:
            i = r.get(id_key)
            if not isinstance(i, str) or not i:
                bad.append(f"line {n}: {key}: no {id_key}")
            else:
                ids.setdefault(i, set()).add(key)
                id_of.setdefault(key, set()).add(i)
        if key in where:
            # Per file and per copy (1st, 2nd): the indices must increase.
            order.setdefault((key[0], where[key][0], got[key]), []).append(where[key][1])
    for b in bad[:5]:
        print(f"    {b}")
    unordered = [f for f, idx in order.items() if idx != sorted(idx)]
    repeats = {}
    if allow:
        # Allowed only as whole prefixes of archives, at most twice.
        for k, c in got.items():
            if c > 1 and k in where:
                repeats.setdefault((k[0], where[k][0]), set()).add(where[k][1])
        prefix = all(f != "current" and idx == set(range(len(idx))) for (_, f), idx in repeats.items())
        twice = max(got.values(), default=0) <= 2
        n = sum(len(i) for i in repeats.values())
        print(f"  KNOWN (Fluent Bit restart): {n} records repeated, from {len(repeats)} archives "
              f"read again from their start ({'all prefixes of archives' if prefix else 'NOT ONLY archive prefixes'}"
              f"{'' if twice else ', some more than twice'})")
        ok &= prefix and twice
    for path, streams in services.items():
        for st, n in streams.items():
            keys = [(path, st, i) for i in range(1, n + 1)]
            rec = sum(got.get(k, 0) for k in keys)
            dup = sum(got.get(k, 0) - 1 for k in keys if got.get(k, 0) > 1)
            miss = [k[2] for k in keys if k not in got]
            print(f"  shipped {path} {STREAM[st]}: sent {n}, received {rec}, {dup} duplicates, "
                  f"{len(miss)} missing{' (first: ' + str(miss[:5]) + ')' if miss else ''}")
            ok &= (allow or dup == 0) and not miss
    if id_key is not None:
        shared = sum(1 for ks in ids.values() if len(ks) > 1)
        unstable = sum(1 for i in id_of.values() if len(i) > 1)
        good = shared == 0 and unstable == 0 and len(ids) == len(got)
        print(f"  {id_key}: {len(ids)} distinct for {len(got)} distinct records, {shared} shared "
              f"by different records, {unstable} records with more than one: "
              + (f"deduplicated by it, {len(got)} of {len(want)} records each once" if good
                 else "NOT a key to deduplicate by"))
        ok &= good
    files = len({(p, f) for p, f, _ in order})
    print(f"  total: sent {len(want)}, received {len(lines)} lines, {len(bad)} bad, "
          f"from {files} files, {len(unordered)} out of order {unordered[:3]}")
    ok &= not bad and not unordered
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
