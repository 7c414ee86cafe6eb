//! Process and command-line contract of `run` and `init` (SPEC §6): bytes not text, bad
//! flags exit 111, `--expect-exit`, inherited signal mask, realtime signals, user env.

mod support;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

const LIMIT: Duration = Duration::from_secs(30);

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_non_utf8_argument_reaches_the_command_as_bytes() {
    // As PID 1 a panic here would abort (134): arguments are bytes and pass through as such.
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child", tend()])
        .args(["run", "--no-capture", "--", "printf", "%s"])
        .arg(OsStr::from_bytes(b"a\xffb"))
        .stdin(Stdio::null());
    let out = output_within(cmd, LIMIT);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"a\xffb");
}

#[test]
fn a_non_utf8_argument_is_captured_too() {
    let dir = TempDir::new("nonutf8cap");
    let root = dir.join("logs");
    let mut cmd = Command::new(tend());
    cmd.args(["run", "--format", "plain", "--log-root"])
        .arg(&root)
        .args(["--", "printf", "%s\\n"])
        .arg(OsStr::from_bytes(b"\xfe\xff"))
        .env("TEND_NAMESPACE", "ns")
        .env("TEND_APP", "app")
        .env("TEND_POD", "pod")
        .stdin(Stdio::null());
    let out = output_within(cmd, LIMIT);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let got = std::fs::read(root.join("ns/app/pod/main/current")).unwrap();
    assert_eq!(got, b"\xfe\xff\n");
}

#[test]
fn a_non_utf8_flag_is_a_clear_error() {
    let mut cmd = Command::new(tend());
    cmd.args(["run", "--name"])
        .arg(OsStr::from_bytes(b"x\xff"))
        .args(["--", "true"]);
    let out = output_within(cmd, LIMIT);
    assert_eq!(code(out.status), 111, "{}", stderr(&out));
    assert!(stderr(&out).contains("not valid UTF-8"), "{}", stderr(&out));
}

#[test]
fn a_non_utf8_tend_variable_is_named() {
    for job in ["run", "init"] {
        let mut cmd = Command::new(tend());
        cmd.args([job, "--no-capture", "--", "true"])
            .env("TEND_NAME", OsStr::from_bytes(b"m\xff"));
        if job == "init" {
            cmd = Command::new(tend());
            cmd.args([job, "--", "true"])
                .env("TEND_NAME", OsStr::from_bytes(b"m\xff"));
        }
        let dir = TempDir::new("nonutf8env");
        cmd.env("TEND_RUN_DIR", dir.path())
            .env("TEND_LOG_ROOT", dir.join("logs"));
        let out = output_within(cmd, LIMIT);
        assert_eq!(code(out.status), 111, "{job}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("TEND_NAME") && stderr(&out).contains("UTF-8"),
            "{job}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn bad_flags_exit_111_with_the_reason() {
    let cases: &[&[&str]] = &[
        &["run", "--bogus", "--", "true"],
        &[
            "run",
            "--name",
            "a",
            "--name",
            "b",
            "--no-capture",
            "--",
            "true",
        ],
        &["run", "--no-capture", "--name"],
        &["init", "--no-such-flag"],
        &["log", "--keep"],
    ];
    for args in cases {
        let out = output_within(plain(args), LIMIT);
        assert_eq!(code(out.status), 111, "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).trim().is_empty(), "{args:?}: no reason given");
    }
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["help"],
        &["--version"],
    ] {
        let out = output_within(plain(args), LIMIT);
        assert_eq!(code(out.status), 0, "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn expect_exit_maps_the_command_code_to_zero() {
    let run = |extra: &[&str], env: Option<&str>, exit: &str| {
        let mut args = vec!["run", "--no-capture"];
        args.extend_from_slice(extra);
        let script = format!("exit {exit}");
        args.extend_from_slice(&["--", "sh", "-c", &script]);
        let mut cmd = pid1(&args);
        if let Some(v) = env {
            cmd.env("TEND_EXPECT_EXIT", v);
        }
        code(output_within(cmd, LIMIT).status)
    };
    assert_eq!(run(&["--expect-exit", "143"], None, "143"), 0);
    assert_eq!(
        run(&["--expect-exit", "3", "--expect-exit", "143"], None, "143"),
        0
    );
    assert_eq!(run(&["--expect-exit", "143"], None, "7"), 7);
    assert_eq!(run(&[], Some("5, 143"), "143"), 0);
    assert_eq!(run(&[], Some("5,143"), "5"), 0);
    assert_eq!(run(&[], Some("5"), "6"), 6);
    assert_eq!(run(&["--expect-exit", "256"], None, "0"), 111);
    assert_eq!(run(&[], Some("x"), "0"), 111);
}

#[test]
fn expect_exit_applies_to_init_cmd_killed_by_term() {
    // A JVM-like CMD: exits 143 after SIGTERM, which the container should report as 0.
    let tree = Tree::new("expect-init");
    let ready = tree.out().join("ready");
    let script = format!(
        "trap 'exit 143' TERM; echo > {}; while :; do sleep 0.05; done",
        ready.display()
    );
    let mut cmd = tree.init(&["sh", "-c", &script]);
    cmd.env("TEND_EXPECT_EXIT", "143");
    let (mut child, pid) = spawn_pid1(cmd, Stdio::null());
    assert!(wait_for(Duration::from_secs(10), || ready.exists()));
    signal(pid, "TERM");
    let status = child.wait().unwrap();
    assert_eq!(code(status), 0);
}

#[test]
fn a_service_with_user_gets_home_user_and_logname() {
    let tree = Tree::new("userenv");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tree.out(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let got = tree.out().join("env");
    tree.longrun(
        "svc",
        &format!(
            "echo \"$HOME $USER $LOGNAME\" > {}; exec sleep 100",
            got.display()
        ),
    )
    .file("svc", "user", "nobody\n", false);
    let (mut child, pid) = tree.spawn_init_with(
        &[("HOME", "/root"), ("USER", "root"), ("LOGNAME", "root")],
        Stdio::null(),
    );
    let seen = wait_for(Duration::from_secs(10), || read(&got).ends_with('\n'));
    signal(pid, "TERM");
    let _ = child.wait();
    assert!(seen, "service did not start");
    let home = read_passwd_home("nobody");
    assert_eq!(read(&got).trim(), format!("{home} nobody nobody"));
}

fn read_passwd_home(user: &str) -> String {
    let pw = std::fs::read_to_string("/etc/passwd").unwrap();
    pw.lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&user)).then(|| f[5].to_owned())
        })
        .unwrap_or_else(|| panic!("no {user} in /etc/passwd"))
}

/// A mask field (`SigIgn:`, `SigBlk:`) of /proc/self/status as printed by the command.
fn mask_field(status: &str, field: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    u64::from_str_radix(line[field.len()..].trim(), 16).unwrap()
}

fn bit(sig: u32) -> u64 {
    1 << (sig - 1)
}

#[test]
fn the_command_starts_with_the_callers_mask_and_ignored_signals() {
    // The caller (a python3 wrapper) ignores USR1 and TTOU and blocks USR2 before exec'ing
    // tend; the command reports its own /proc/self/status.
    for (job, pid1) in [("run", true), ("run", false), ("init", true)] {
        let dir = TempDir::new("sigmask");
        let wrapper = "import os, signal, sys\n\
            signal.signal(signal.SIGUSR1, signal.SIG_IGN)\n\
            signal.signal(signal.SIGTTOU, signal.SIG_IGN)\n\
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})\n\
            os.execvp(sys.argv[1], sys.argv[1:])\n";
        let mut cmd = Command::new("python3");
        cmd.args(["-c", wrapper]);
        if pid1 {
            cmd.args(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]);
        }
        cmd.arg(tend()).arg(job);
        if job == "run" {
            cmd.arg("--no-capture");
        }
        cmd.args(["--", "cat", "/proc/self/status"])
            .env("TEND_RUN_DIR", dir.path())
            .env("TEND_SERVICES", dir.join("none"))
            .stdin(Stdio::null());
        if job == "init" {
            std::fs::create_dir_all(dir.join("none")).unwrap();
            cmd.env("TEND_LOG_ROOT", dir.join("logs"))
                .env("TEND_FORMAT", "plain")
                .env("TEND_NAMESPACE", "ns")
                .env("TEND_APP", "app")
                .env("TEND_POD", "pod");
        }
        let out = output_within(cmd, LIMIT);
        assert_eq!(code(out.status), 0, "{job}: {}", stderr(&out));
        let status = if job == "init" {
            read(&dir.join("logs/ns/app/pod/main/current"))
        } else {
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let ign = mask_field(&status, "SigIgn:");
        let blk = mask_field(&status, "SigBlk:");
        let what = format!("{job} (pid1 {pid1}): SigIgn {ign:x} SigBlk {blk:x}");
        assert_eq!(ign & bit(10), bit(10), "USR1 not ignored: {what}");
        assert_eq!(ign & bit(22), bit(22), "TTOU not ignored: {what}");
        assert_eq!(ign & bit(21), 0, "TTIN ignored: {what}");
        assert_eq!(blk, bit(12), "mask is not just USR2: {what}");
    }
}

#[test]
fn realtime_signals_are_forwarded() {
    let dir = TempDir::new("rt");
    let got = dir.join("got");
    let ready = dir.join("ready");
    let child = format!(
        "import signal, time\n\
         seen = []\n\
         def h(n, f):\n\
         \x20   seen.append(n)\n\
         \x20   open('{got}', 'a').write('%d\\n' % n)\n\
         for n in (signal.SIGRTMIN, signal.SIGRTMIN + 3, signal.SIGRTMAX, signal.SIGUSR1):\n\
         \x20   signal.signal(n, h)\n\
         open('{ready}', 'w').write('x')\n\
         while len(seen) < 4:\n\
         \x20   time.sleep(0.02)\n",
        got = got.display(),
        ready = ready.display()
    );
    let cmd = pid1(&["run", "--no-capture", "--", "python3", "-c", &child]);
    let (mut tend_proc, pid) = spawn_pid1(cmd, Stdio::null());
    assert!(wait_for(Duration::from_secs(10), || ready.exists()));
    // By number: kill(1) names for realtime signals vary between implementations.
    let sent = ["34", "37", "64", "10"];
    for (i, s) in sent.iter().enumerate() {
        signal(pid, s);
        let ok = wait_for(Duration::from_secs(5), || read(&got).lines().count() > i);
        if !ok {
            signal(pid, "KILL");
            let _ = tend_proc.wait();
            panic!("SIG{s} did not reach the child; got {:?}", read(&got));
        }
    }
    assert_eq!(
        read(&got).lines().collect::<Vec<_>>(),
        ["34", "37", "64", "10"]
    );
    assert_eq!(code(tend_proc.wait().unwrap()), 0);
}

/// Drives `tend init -- bash -i` as PID 1 in a pseudo-terminal, like `docker run -it`: the
/// prompt shows, a command's output comes back, ^C interrupts a foreground job without
/// killing the shell, a window-size change reaches it, and `exit 3` is the container's code.
const PTY_DRIVER: &str = r#"
import os, pty, sys, time, select, fcntl, termios, struct
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
buf = b""
def expect(what, secs=15):
    global buf
    end = time.time() + secs
    while what not in buf:
        left = end - time.time()
        if left <= 0:
            print("TIMEOUT waiting for %r; got %r" % (what, buf)); os.kill(pid, 9); sys.exit(90)
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                print("EOF waiting for %r; got %r" % (what, buf)); sys.exit(91)
            buf += chunk
    buf = buf[buf.index(what) + len(what):]
expect(b"bash")
os.write(fd, b"PS1='tendprompt$ '\n")
expect(b"tendprompt$ ")
os.write(fd, b"echo sum=$((40+2))\n")
expect(b"sum=42")
expect(b"tendprompt$ ")
os.write(fd, b"sleep 60\n")
time.sleep(0.5)
os.write(fd, b"\x03")
expect(b"tendprompt$ ", 10)
os.write(fd, b"echo after=$?\n")
expect(b"after=130")
expect(b"tendprompt$ ")
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
os.write(fd, b"echo size=$(stty size)\n")
expect(b"size=33 101")
os.write(fd, b"exit 3\n")
_, status = os.waitpid(pid, 0)
print("code=%d" % os.waitstatus_to_exitcode(status))
"#;

#[test]
fn init_cmd_on_a_terminal_keeps_it() {
    let dir = TempDir::new("tty");
    let mut cmd = Command::new("python3");
    cmd.args([
        "-c",
        PTY_DRIVER,
        "unshare",
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
    ])
    .args([tend(), "init", "--", "bash", "--norc", "--noprofile", "-i"])
    .env("TEND_RUN_DIR", dir.path())
    .env("TEND_SERVICES", dir.join("services"))
    .env("TEND_LOG_ROOT", dir.join("logs"));
    std::fs::create_dir_all(dir.join("services")).unwrap();
    let out = output_within(cmd, Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("code=3"), "{text}\n{}", stderr(&out));
}
