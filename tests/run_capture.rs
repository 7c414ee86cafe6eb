//! `tend run` with capture: the command's output lands in its log directory, all of it.

mod support;
use std::process::Command;
use std::time::Duration;
use support::*;

const LIMIT: Duration = Duration::from_secs(60);

fn run_in(dir: &TempDir, args: &[&str]) -> Command {
    let mut full = vec!["run", "--log-root", dir.path().to_str().unwrap()];
    full.extend_from_slice(args);
    let mut c = pid1(&full);
    c.env("TEND_NAMESPACE", "ns")
        .env("TEND_APP", "app")
        .env("TEND_POD", "pod");
    c
}

/// `tend run ARGS` (see [`run_in`]) to its end.
fn run_to_end(dir: &TempDir, args: &[&str]) -> std::process::Output {
    output_within(run_in(dir, args), LIMIT)
}

/// The `current` log file of job `name` under `dir`.
fn current(dir: &TempDir, name: &str) -> String {
    read(&dir.join(&format!("ns/app/pod/{name}/current")))
}

fn strip_cri(line: &str) -> &str {
    // "2026-11-23T10:00:00.123456789Z stdout F text": 30 + 1 bytes of time, then the rest.
    &line[31..]
}

#[test]
fn output_is_captured_tagged_by_stream() {
    let dir = TempDir::new("cap");
    let out = run_to_end(
        &dir,
        &["--", "sh", "-c", "echo one; echo two >&2; printf three"],
    );
    assert_eq!(
        code(out.status),
        0,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.is_empty(),
        "without --tee nothing reaches tend's stdout"
    );
    let text = current(&dir, "main");
    let mut recs: Vec<&str> = text.lines().map(strip_cri).collect();
    recs.sort();
    assert_eq!(recs, ["stderr F two", "stdout F one", "stdout F three"]);
}

#[test]
fn name_and_tee() {
    let dir = TempDir::new("tee");
    let out = run_to_end(&dir, &["--name", "job", "--tee", "--", "echo", "hi"]);
    assert_eq!(code(out.status), 0);
    let text = current(&dir, "job");
    assert_eq!(
        text.lines().map(strip_cri).collect::<Vec<_>>(),
        ["stdout F hi"]
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        text,
        "--tee copies the records"
    );
}

#[test]
fn a_bad_identity_is_refused_naming_the_variable() {
    let dir = TempDir::new("ident");
    let mut cmd = run_in(&dir, &["--", "true"]);
    cmd.env("TEND_APP", "../etc");
    let out = output_within(cmd, LIMIT);
    assert_eq!(code(out.status), 111);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("TEND_APP") && err.contains("'../etc'"),
        "{err}"
    );
}

#[test]
fn a_flood_then_exit_loses_nothing() {
    // 400k numbered lines written as fast as possible by a child that exits at once: the
    // pipes must be drained to EOF before tend exits.
    let dir = TempDir::new("flood");
    let out = run_to_end(&dir, &["--format", "plain", "--", "seq", "1", "400000"]);
    assert_eq!(code(out.status), 0);
    let text = current(&dir, "main");
    let want: String = (1..=400000).map(|i| format!("{i}\n")).collect();
    assert!(
        text == want,
        "captured {} bytes, expected {}",
        text.len(),
        want.len()
    );
}

#[test]
fn env_configures_logging_and_flags_win() {
    let dir = TempDir::new("envflags");
    let mut cmd = run_in(&dir, &["--format", "plain", "--", "echo", "x"]);
    cmd.env("TEND_FORMAT", "json");
    let out = output_within(cmd, LIMIT);
    assert_eq!(code(out.status), 0);
    assert_eq!(current(&dir, "main"), "x\n");
    let mut cmd = run_in(&dir, &["--", "echo", "y"]);
    cmd.env("TEND_FORMAT", "plain");
    output_within(cmd, LIMIT);
    assert_eq!(current(&dir, "main"), "x\ny\n");
    let mut cmd = run_in(&dir, &["--", "echo", "z"]);
    cmd.env("TEND_ROTATE_SIZE", "huge");
    let out = output_within(cmd, LIMIT);
    assert_eq!(code(out.status), 111);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--rotate-size") && err.contains("'huge'") && err.contains("TEND_ROTATE_SIZE"),
        "{err}"
    );
}

#[test]
fn tee_never_stalls_capture_when_stdout_is_not_read() {
    use std::process::Stdio;
    let dir = TempDir::new("tee-stall");
    // tend's stdout is a pipe that nobody reads: it fills after 64 KiB.
    let mut child = run_in(
        &dir,
        &[
            "--tee",
            "--rotate-size",
            "64MiB",
            "--",
            "sh",
            "-c",
            "yes 0123456789abcdefghijklmnopqrstuvwxyz | head -n 200000; echo done",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let end = std::time::Instant::now() + LIMIT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if std::time::Instant::now() > end {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let status = status.expect("capture stalled behind an unread --tee stdout");
    assert_eq!(code(status), 0);
    let text = current(&dir, "main");
    assert_eq!(text.lines().count(), 200_001, "the file is complete");
    assert!(text.ends_with(" stdout F done\n"));
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("--tee dropped"), "{err}");
}

#[test]
fn tee_formats_and_streams() {
    let dir = TempDir::new("tee-fmt");
    let script = "echo out; echo err >&2";
    let out = run_to_end(
        &dir,
        &[
            "--name",
            "job",
            "--tee",
            "--tee-format",
            "prefixed",
            "--",
            "sh",
            "-c",
            script,
        ],
    );
    assert_eq!(code(out.status), 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "job | out\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("job | err\n"));
    // plain, from the environment.
    let mut c = run_in(&dir, &["--name", "job2", "--tee", "--", "sh", "-c", script]);
    c.env("TEND_TEE_FORMAT", "plain");
    let out = output_within(c, LIMIT);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("err\n"));
    // same (the default for run): the file's records, stdout's on stdout.
    let out = run_to_end(&dir, &["--name", "job3", "--tee", "--", "sh", "-c", script]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        stdout.lines().map(strip_cri).collect::<Vec<_>>(),
        ["stdout F out"]
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(" stderr F err\n"));
    let out = run_to_end(&dir, &["--tee-format", "cri", "--", "true"]);
    assert_eq!(code(out.status), 111);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--tee-format: 'cri' is not a tee format")
    );
}

#[test]
fn tee_under_init_is_prefixed_by_default() {
    let t = Tree::new("tee-init");
    t.longrun("web", "echo web says hi\nexec sleep 30");
    // `Tree::init` puts CMD right after its flags; --tee must come before `--`.
    let services = t.tmp.join("services");
    let logs = t.tmp.join("logs");
    let mut c = pid1(&[
        "init",
        "--tee",
        "--services",
        services.to_str().unwrap(),
        "--log-root",
        logs.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "sleep 0.5; echo cmd says hi",
    ]);
    c.env("TEND_NAMESPACE", "ns")
        .env("TEND_APP", "app")
        .env("TEND_POD", "pod")
        .env("TEND_RUN_DIR", t.tmp.join("run"));
    let out = output_within(c, LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("web | web says hi\n"), "{stdout}");
    assert!(stdout.contains("main | cmd says hi\n"), "{stdout}");
}

#[test]
fn on_rotate_hooks_run_one_at_a_time_stoppable_and_do_not_hold_up_the_exit() {
    let dir = TempDir::new("hooks");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let hook = dir.join("hook.sh");
    put(
        dir.path(),
        "hook.sh",
        "#!/bin/sh\n\
         mkdir \"$OUT/busy\" 2>/dev/null || echo overlap >> \"$OUT/overlap\"\n\
         grep -E '^Sig(Blk|Ign):' /proc/self/status >> \"$OUT/sig\"\n\
         sleep 0.3\n\
         rmdir \"$OUT/busy\"\n\
         echo \"$1\" >> \"$OUT/done\"\n",
        true,
    );
    let t0 = std::time::Instant::now();
    // ~30 rotations in a burst, then 1.5 s for a few hooks to finish; at exit a hook is
    // still running (and more are queued): they must not delay the exit by the grace.
    let mut c = run_in(
        &dir,
        &[
            "--rotate-size",
            "4KiB",
            "--keep",
            "1000",
            "--on-rotate",
            hook.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "seq 1 20000; sleep 1.5",
        ],
    );
    c.env("OUT", &out).env("TEND_KILL_GRACE", "20000");
    let res = output_within(c, LIMIT);
    let took = t0.elapsed();
    assert_eq!(
        code(res.status),
        0,
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(took < Duration::from_secs(12), "tend run took {took:?}");
    assert!(
        !out.join("overlap").exists(),
        "two hooks of one service ran at once"
    );
    let done = read(&out.join("done"));
    assert!(done.lines().count() >= 2, "{done}");
    let sig = read(&out.join("sig"));
    assert!(!sig.is_empty());
    for l in sig.lines() {
        assert!(l.ends_with(":\t0000000000000000"), "hook started with {l}");
    }
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("--on-rotate is still busy"), "{err}");
}
