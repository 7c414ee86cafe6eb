# A producer of the chaos suite (tests/chaos.rs). Writes sequence-numbered records
#   R|<svc>|<out|err>|<seq>|<len>|<len bytes of chr(97 + seq % 26)>|E
# one os.write per record (loops only on a partial write), so the test can tell a whole
# record from a torn one whatever tend did with the bytes (splits, rotation, restarts).
#
# Exactly-once oracle: before writing record n of a stream the producer stores n in its
# state file (one pwrite of a fixed-width number: atomic against SIGKILL), then writes it.
# A restart resumes at stored+1 and appends its start points to <svc>.starts. So a seq is
# never written twice by a producer, and a seq can be missing (or torn) only if it is
# start-1 of some later incarnation (the one stored by an incarnation that was killed).
import os, random, signal, sys, time

name, mode = sys.argv[1], sys.argv[2]
out = os.environ["OUT"]
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
st = os.open(f"{out}/{name}.state", os.O_RDWR | os.O_CREAT, 0o644)


def load(slot):
    b = os.pread(st, 20, slot * 32).strip(b"\0 ")
    return int(b) if b else 0


def save(slot, n):
    os.pwrite(st, b"%020d" % n, slot * 32)


seq = [load(0), load(1)]
with open(f"{out}/{name}.starts", "a") as f:
    f.write(f"{seq[0] + 1} {seq[1] + 1}\n")
rnd = random.Random(int(os.environ.get("CHAOS_SEED", "1")) * 1000003 + os.getpid())
TAG = [b"out", b"err"]


def writeall(fd, b):
    while b:
        n = os.write(fd, b)
        b = b[n:]


def record(slot, size, nl=b"\n", junk=b""):
    seq[slot] += 1
    n = seq[slot]
    save(slot, n)
    body = bytes([97 + n % 26]) * size
    writeall(1 + slot, junk + b"R|%s|%s|%d|%d|" % (name.encode(), TAG[slot], n, size) + body + b"|E" + nl)


def junk():
    if rnd.random() < 0.5:
        return b""
    raw = rnd.randbytes(rnd.randrange(1, 600))
    # Anything but '|' and 'R', so junk can never look like the start of a record.
    return bytes(c for c in raw if c not in (0x7C, 0x52))


def fork_batch(k):
    """Double-forks k orphans: each middle child exits at once, so its child is re-parented
    to tend (some exit before, some after that; a few linger 100 ms)."""
    for _ in range(k):
        pid = os.fork()
        if pid == 0:
            if os.fork() == 0:
                if rnd.random() < 0.05:
                    time.sleep(0.1)
                os._exit(0)
            os._exit(0)
        os.waitpid(pid, 0)
    save(2, load(2) + k)


def orphans(total):
    """Forks orphans in batches until `total` have been made (resumes after a kill)."""
    while load(2) < total and not stop:
        fork_batch(min(200, total - load(2)))
        record(0, 40)
        time.sleep(0.02)


def big_lines():
    """A step of the "big" modes: a 1 MiB stdout record every 0.5 s, a small one otherwise."""
    last = 0.0

    def step():
        nonlocal last
        if time.monotonic() - last > 0.5:
            last = time.monotonic()
            record(0, 1 << 20)
        else:
            record(0, rnd.randrange(100, 2000))

    return step


def main():
    if mode == "steady":
        while not stop:
            record(0, rnd.randrange(10, 400))
            record(1, rnd.randrange(10, 400))
            time.sleep(0.002)
    elif mode == "big":
        # 1 MiB lines on stdout (split by tend into 16 KiB P pieces and an F) while a
        # second thread writes small stderr records every few ms: they are waiting
        # whenever a line is being split, and must stay out of it (nor cut it short).
        import threading

        def errs():
            while not stop:
                record(1, rnd.randrange(10, 100))
                time.sleep(0.005)

        threading.Thread(target=errs, daemon=True).start()
        big = big_lines()
        while not stop:
            big()
            time.sleep(0.01)
    elif mode == "runmix":
        # For `tend run`: big lines and stderr records as "big", plus 2,000 orphans.
        big = big_lines()
        while not stop:
            big()
            record(1, rnd.randrange(10, 100))
            if load(2) < 2000:
                fork_batch(20)
            time.sleep(0.01)
    elif mode == "junk":
        while not stop:
            record(0, rnd.randrange(10, 300), nl=b"\n" if rnd.random() < 0.7 else b"", junk=junk())
            time.sleep(0.003)
    elif mode == "nonl":
        for _ in range(rnd.randrange(50, 150)):
            if stop:
                break
            record(0, rnd.randrange(10, 200))
            record(1, rnd.randrange(10, 200))
            time.sleep(0.01)
        # The last record of each stream has no newline; the next incarnation glues on.
        record(0, 20, nl=b"")
        record(1, 20, nl=b"")
    elif mode == "crash":
        record(0, 30)
        record(1, 30, nl=b"")
        os._exit(1)
    elif mode == "forker":
        delay = float(os.environ.get("FORK_DELAY", "1"))
        if load(2) == 0:
            t = time.monotonic()
            while not stop and time.monotonic() - t < delay:
                record(0, 50)
                time.sleep(0.02)
        orphans(10000)
        while not stop:
            record(0, 50)
            time.sleep(0.02)


try:
    main()
except BaseException as e:  # never let a traceback into the streams under test
    os.write(os.open(f"{out}/{name}.error", os.O_WRONLY | os.O_CREAT | os.O_APPEND), repr(e).encode() + b"\n")
    os._exit(3)
os._exit(0)
