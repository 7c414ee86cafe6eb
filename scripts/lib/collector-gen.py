#!/usr/bin/env python3
"""A service for scripts/collector-e2e.sh: writes numbered records to stdout and stderr.

Usage: collector-gen.py SERVICE N_OUT N_ERR DONE_FILE

Record i of stream st (out|err) is exactly `line(service, st, i)` (shared with
collector-check.py); some are longer than tend's --max-line (16 KiB), so tend splits
them into P/F records. Written in bursts over about 6 s so a collector tails live,
rotating files; then DONE_FILE is created and the process sleeps (a longrun that has
finished its work), or exits when it is init's CMD.
"""
import os
import sys
import time

LONG_OUT, LONG_ERR = 97, 151  # every 97th stdout / 151st stderr record is long
BURSTS, PAUSE = 40, 0.15


def line(svc, st, i):
    if st == "out" and i % LONG_OUT == 0:
        n = 40000
    elif st == "err" and i % LONG_ERR == 0:
        n = 20000
    else:
        n = 60 + (i * 37) % 140
    head = f"svc={svc} st={st} seq={i} "
    body = f"{svc}.{st}.{i}:" * (n // (len(svc) + len(st) + 8) + 1)
    return (head + body)[:n]


def main():
    svc, n_out, n_err, done = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    out, err = sys.stdout.buffer, sys.stderr.buffer
    o = e = 0
    for b in range(1, BURSTS + 1):
        o_end, e_end = n_out * b // BURSTS, n_err * b // BURSTS
        while o < o_end or e < e_end:
            if o < o_end:
                o += 1
                out.write((line(svc, "out", o) + "\n").encode())
            if e < e_end and (e * n_out <= o * n_err or o >= o_end):
                e += 1
                err.write((line(svc, "err", e) + "\n").encode())
                err.flush()
        out.flush()
        time.sleep(PAUSE)
    with open(done, "w"):
        pass
    if len(sys.argv) > 5 and sys.argv[5] == "--stay":
        os.execvp("sleep", ["sleep", "3600"])


if __name__ == "__main__":
    main()
