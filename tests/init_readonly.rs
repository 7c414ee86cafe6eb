//! `tend init` as a non-root user on a read-only root, with only the log root writable:
//! `tend ctl` still works, over the abstract socket.

mod support;
use std::process::Command;
use std::time::Duration;
use support::*;

#[test]
fn non_root_on_a_read_only_root_needs_only_the_log_root() {
    let t = Tree::new("ro");
    t.longrun("svc", "echo hello from $(id -u); exec sleep 600");
    let logs = t.tmp.join("logs");
    let services = t.tmp.join("services");
    // A private mount namespace: a tmpfs log root owned by nobody, then / read-only.
    let script = format!(
        "set -e; mount --make-rprivate /; mount -t tmpfs -o mode=0755 tmpfs {logs}; chown 65534:65534 {logs}; \
         mount -o remount,bind,ro /; \
         touch /ro-probe 2>/dev/null && {{ echo root is writable; exit 99; }}; \
         exec setpriv --reuid=65534 --regid=65534 --clear-groups {tend} init --tee --services {services} --log-root {logs} -- \
           sh -c 'i=0; until grep -q hello {logs}/ns/app/pod/svc/current 2>/dev/null || [ $i -ge 200 ]; do sleep 0.05; i=$((i+1)); done; \
                  cat {logs}/ns/app/pod/svc/current; id -u; \
                  {tend} ctl ready svc main && echo ctl-ready-ok; {tend} ctl status svc | grep -q \"^svc  *up \" && echo ctl-status-ok'",
        logs = logs.display(),
        services = services.display(),
        tend = tend(),
    );
    let mut cmd = Command::new("unshare");
    // Its own network namespace too: the abstract socket is per network namespace.
    cmd.args([
        "--mount",
        "--net",
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
        "sh",
        "-c",
        &script,
    ]);
    cmd.env("TEND_NAMESPACE", "ns")
        .env("TEND_APP", "app")
        .env("TEND_POD", "pod");
    cmd.env("TEND_RUN_DIR", "/run/tend-readonly-test");
    let out = output_within(cmd, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(out.status), 0, "stdout: {stdout}\nstderr: {stderr}");
    // --tee copies every line to tend's stdout (`NAME | line` under init): the service's
    // own line, and CMD's uid.
    assert!(
        stdout.lines().any(|l| l == "svc | hello from 65534"),
        "{stdout}"
    );
    assert!(stdout.lines().any(|l| l == "main | 65534"), "{stdout}");
    // The run directory is on the read-only root: control moved to @tend/control, and
    // CMD (the same non-root uid) reached it.
    assert!(stderr.contains("listening on @tend/control"), "{stderr}");
    for m in ["ctl-ready-ok", "ctl-status-ok"] {
        assert!(
            stdout.lines().any(|l| l == format!("main | {m}")),
            "{m}: {stdout}\n{stderr}"
        );
    }
}
