//! The guarantees of issue 6: `--restart never|on-failure|always` restarts the command with a
//! doubling delay and a limit, the supervisor stays the same process across restarts, each
//! restart is said in the log, and TERM or a reopen still work between two runs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Instant;

use crate::util::{
    DEADLINE, Guard, alive, detach, read, read_pid, s, signal, start_named, wait_child, wait_for_text, wait_until,
};

/// How many lines of `text` are exactly `line`.
fn count(text: &str, line: &str) -> usize {
    text.lines().filter(|l| *l == line).count()
}

/// The restart lines of a log: `(K, "X")` for each `...; restart K in X s`, in order.
fn restarts(text: &str) -> Vec<(u32, String)> {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("detach: ")?.split_once("; restart ")?.1;
            let (n, delay) = rest.split_once(" in ")?;
            let delay = delay.strip_suffix(" s")?;
            Some((n.parse().ok()?, delay.to_string()))
        })
        .collect()
}

/// The numbers of the restart lines of `text`.
fn restart_numbers(text: &str) -> Vec<u32> {
    restarts(text).into_iter().map(|(n, _)| n).collect()
}

/// A command that counts its runs in COUNTER and prints "run N" (N from 1).
fn counting(counter: &Path, then: &str) -> String {
    format!("n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}; echo \"run $n\"; {then}", c = s(counter))
}

/// The N of the "run N" lines of `text`, in order.
fn runs(text: &str) -> Vec<u32> {
    text.lines().filter_map(|l| l.strip_prefix("run ")?.parse().ok()).collect()
}

/// The lines of `text` split into detach's own ("detach: ...") and the command's, each in order.
/// The order between the two kinds is the subject of one test only.
fn split(text: &str) -> (Vec<&str>, Vec<&str>) {
    text.lines().partition(|l| l.starts_with("detach: "))
}

/// Checks that `text` holds exactly the lines `own` of detach and `command` of the command,
/// each in this order.
fn assert_lines(text: &str, own: &[&str], command: &[&str]) {
    let (got_own, got_command) = split(text);
    assert_eq!(got_own, own, "detach's lines differ in:\n{text}");
    assert_eq!(got_command, command, "the command's lines differ in:\n{text}");
}

// 1. Restarts counted in the log over a window.

#[test]
fn always_restarts_a_clean_exit_and_numbers_each_restart_in_the_log() {
    let g = Guard::new();
    let log = g.path("app.log");
    let counter = g.path("runs");
    let script = counting(&counter, "exit 0");
    let started = start_named(
        &g,
        "",
        &["--log", s(&log), "--restart", "always", "--restart-delay", "0.05", "--restart-max-delay", "0.05"],
        &["sh", "-c", &script],
    );
    let enough = wait_until(|| runs(&read(&log)).len() >= 10, DEADLINE);
    assert!(enough, "fewer than 10 runs in {DEADLINE:?}: {:?}", read(&log));
    signal(started.sup, libc::SIGTERM);
    started.wait_exit(&log);

    let text = read(&log);
    let runs = runs(&text);
    let numbers = restart_numbers(&text);
    assert!(runs.len() >= 10, "{text}");
    assert_eq!(runs, (1..=runs.len() as u32).collect::<Vec<_>>(), "runs lost or doubled: {text}");
    assert_eq!(read(&counter).trim(), runs.len().to_string(), "a run's output is missing from the log: {text}");
    // The TERM came during a run (no line for it) or during a backoff (a line, no run).
    let n = numbers.len();
    assert!(n == runs.len() - 1 || n == runs.len(), "{} runs but {n} restart lines: {text}", runs.len());
    assert_eq!(numbers, (1..=n as u32).collect::<Vec<_>>(), "restarts not numbered 1, 2, 3...: {text}");
    let delays: Vec<String> = restarts(&text).into_iter().map(|(_, d)| d).collect();
    assert!(delays.windows(2).all(|w| w[0] == w[1]), "a fixed delay changed: {delays:?}");
    let exits = text.lines().filter(|l| l.starts_with("detach: 'sh' exited with status 0; restart ")).count();
    assert_eq!(exits, n, "restart lines do not say how the run ended: {text}");
}

/// Each restart line follows the output of the run it reports on, and precedes that of the
/// next run: "run 1", "restart 1", "run 2", "restart 2", ...
#[test]
fn each_restart_line_comes_between_the_runs_it_separates() {
    let g = Guard::new();
    let log = g.path("app.log");
    let counter = g.path("runs");
    let script = counting(&counter, "exit 3");
    let started = start_named(
        &g,
        "",
        &["--log", s(&log), "--restart", "on-failure", "--restart-delay", "0.02", "--restart-max-delay", "0.02"],
        &["sh", "-c", &script],
    );
    let enough = wait_until(|| runs(&read(&log)).len() >= 20, DEADLINE);
    assert!(enough, "fewer than 20 runs in {DEADLINE:?}: {:?}", read(&log));
    signal(started.sup, libc::SIGTERM);
    started.wait_exit(&log);

    let text = read(&log);
    let mut expected_run = 1;
    let mut expected_restart = 1;
    let mut want_run = true;
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("run ") {
            assert!(want_run, "{line:?} came before the restart line of the run before it:\n{text}");
            assert_eq!(n, expected_run.to_string(), "{text}");
            expected_run += 1;
            want_run = false;
        } else if line.contains("; restart ") {
            assert!(!want_run, "{line:?} came before the output of the run it reports on:\n{text}");
            // A run that outlasts --restart-max-delay (20 ms: a busy machine) resets the count.
            if line.ends_with("; restart 1 in 0.0 s") {
                expected_restart = 1;
            }
            // 0.02 s, then the 0.1 s floor.
            let delay = if expected_restart == 1 { "0.0" } else { "0.1" };
            let want = format!("detach: 'sh' exited with status 3; restart {expected_restart} in {delay} s");
            assert_eq!(line, want, "{text}");
            expected_restart += 1;
            want_run = true;
        } else {
            panic!("unexpected line {line:?} in:\n{text}");
        }
    }
}

// 2. on-failure: a clean exit is not restarted, a failure is.

#[test]
fn on_failure_does_not_restart_a_clean_exit() {
    let g = Guard::new();
    let log = g.path("app.log");
    let out =
        g.run(
            detach()
                .args(["--foreground", "--log", s(&log), "--restart", "on-failure", "--restart-delay", "0.01"])
                .args(["--", "sh", "-c", "echo run; exit 0"]),
        );
    assert_eq!(out.code(), Some(0), "{out:?}");
    let text = read(&log);
    assert_eq!(text, "run\n", "a clean exit was restarted or reported: {text:?}");
    assert_eq!(out.stderr, "", "{out:?}");
}

#[test]
fn on_failure_restarts_a_failed_exit_and_a_kill_it_did_not_send() {
    let g = Guard::new();
    for (script, status, how) in [
        ("echo run; exit 3", "exit 3", "exited with status 3"),
        ("echo run; kill -KILL $$", "killed by 9", "was killed by SIGKILL"),
    ] {
        let log = g.path(&format!("app{}.log", status.len()));
        let out = g.run(
            detach()
                .args(["--foreground", "--log", s(&log), "--restart", "on-failure", "--restart-delay", "0.01"])
                .args(["--restart-limit", "1", "--", "sh", "-c", script]),
        );
        let text = read(&log);
        assert_eq!(out.how(), status, "{out:?} log: {text:?}");
        let own = [
            format!("detach: 'sh' {how}; restart 1 in 0.0 s"),
            format!("detach: 'sh' {how}; giving up after 1 restarts"),
        ];
        assert_lines(&text, &[&own[0], &own[1]], &["run", "run"]);
    }
}

#[test]
fn never_is_the_default_and_restarts_nothing() {
    let g = Guard::new();
    for opts in [&[][..], &["--restart", "never"][..]] {
        let log = g.path("app.log");
        let _ = fs::remove_file(&log);
        let out = g.run(detach().args(["--foreground", "--log", s(&log)]).args(opts).args([
            "--",
            "sh",
            "-c",
            "echo run; exit 3",
        ]));
        assert_eq!(out.code(), Some(3), "{opts:?} {out:?}");
        assert_eq!(read(&log), "run\n", "{opts:?} restarted or reported something");
    }
}

// 3. The delay doubles, up to the maximum; a long run resets it.

#[test]
fn doubling_backoff_gives_far_fewer_runs_than_a_fixed_delay() {
    let g = Guard::new();
    let (dlog, flog, clog) = (g.path("doubling.log"), g.path("fixed.log"), g.path("capped.log"));
    let argv = ["sh", "-c", "echo run; exit 1"];
    let t0 = Instant::now();
    // The doubling one starts first: its window is the longer one.
    let doubling = start_named(
        &g,
        "d",
        &["--log", s(&dlog), "--restart", "always", "--restart-delay", "0.1", "--restart-max-delay", "10"],
        &argv,
    );
    let capped = start_named(
        &g,
        "c",
        &["--log", s(&clog), "--restart", "always", "--restart-delay", "0.1", "--restart-max-delay", "0.4"],
        &argv,
    );
    let fixed = start_named(
        &g,
        "f",
        &["--log", s(&flog), "--restart", "always", "--restart-delay", "0.05", "--restart-max-delay", "0.05"],
        &argv,
    );
    let window = wait_until(|| count(&read(&flog), "run") >= 15, DEADLINE);
    let doubling_runs = count(&read(&dlog), "run");
    let elapsed = t0.elapsed().as_secs_f64();
    assert!(window, "the fixed delay gave fewer than 15 runs in {DEADLINE:?}: {:?}", read(&flog));
    let fixed_runs = count(&read(&flog), "run");
    println!("in {elapsed:.2} s: {fixed_runs} runs with a fixed delay, {doubling_runs} with a doubling one");
    // Restart k comes 0.1 * (2^k - 1) s or more after the first run: in `elapsed`, at most
    // log2(10 * elapsed + 1) restarts. A fixed delay would have given as many as the other.
    let bound = 1 + (10.0 * elapsed + 1.0).log2().floor() as usize;
    assert!(doubling_runs <= bound, "{doubling_runs} runs in {elapsed:.2} s: the delay did not double");
    assert!(doubling_runs * 2 <= fixed_runs, "{doubling_runs} runs with a doubling delay, {fixed_runs} fixed");

    // The capped one: 0.1, 0.2, then 0.4 again and again.
    let capped_enough = wait_until(|| restarts(&read(&clog)).len() >= 6, DEADLINE);
    assert!(capped_enough, "fewer than 6 restarts with delays up to 0.4 s: {:?}", read(&clog));
    for started in [&doubling, &capped, &fixed] {
        signal(started.sup, libc::SIGTERM);
    }
    doubling.wait_exit(&dlog);
    capped.wait_exit(&clog);
    fixed.wait_exit(&flog);

    let delays = |log: &Path| restarts(&read(log)).into_iter().map(|(_, d)| d).collect::<Vec<_>>();
    let doubled = delays(&dlog);
    let expected = ["0.1", "0.2", "0.4", "0.8", "1.6", "3.2", "6.4", "10.0", "10.0"];
    assert!(!doubled.is_empty() && doubled.len() <= expected.len(), "{doubled:?}");
    assert_eq!(doubled, expected[..doubled.len()], "the delay did not double from 0.1 s");
    let capped_delays = delays(&clog);
    assert_eq!(capped_delays[..6], ["0.1", "0.2", "0.4", "0.4", "0.4", "0.4"], "the delay is not capped at 0.4 s");
    assert!(capped_delays.iter().skip(2).all(|d| d == "0.4"), "{capped_delays:?}");
    let fixed_delays = delays(&flog);
    assert!(fixed_delays.windows(2).all(|w| w[0] == w[1]), "a fixed delay changed: {fixed_delays:?}");
}

/// A run longer than the max delay resets the delay and the count of the limit: with
/// `--restart-limit 2`, runs 1 and 2 fail at once, run 3 lasts past the max delay, then runs 4
/// and 5 fail at once: 5 runs, not 3.
#[test]
fn a_run_longer_than_the_max_delay_resets_the_delay_and_the_limit() {
    let g = Guard::new();
    let log = g.path("app.log");
    let counter = g.path("runs");
    let script = counting(&counter, "[ $n = 3 ] && sleep 1.5; exit 1");
    let out =
        g.run(
            detach()
                .args(["--foreground", "--log", s(&log), "--restart", "on-failure", "--restart-delay", "0.1"])
                .args(["--restart-max-delay", "1", "--restart-limit", "2", "--", "sh", "-c", &script]),
        );
    let text = read(&log);
    assert_eq!(out.code(), Some(1), "{out:?} log: {text:?}");
    assert_eq!(runs(&text), [1, 2, 3, 4, 5], "{text}");
    let fail = "detach: 'sh' exited with status 1";
    let own = [
        format!("{fail}; restart 1 in 0.1 s"),
        format!("{fail}; restart 2 in 0.2 s"),
        format!("{fail}; restart 1 in 0.1 s"),
        format!("{fail}; restart 2 in 0.2 s"),
        format!("{fail}; giving up after 2 restarts"),
    ];
    let own: Vec<&str> = own.iter().map(String::as_str).collect();
    assert_lines(&text, &own, &["run 1", "run 2", "run 3", "run 4", "run 5"]);
}

// 4. The limit: N restarts, N+1 runs, the last status.

#[test]
fn limit_gives_n_plus_one_runs_and_the_last_status_without_a_log() {
    let g = Guard::new();
    let out = g.run(detach().args([
        "--foreground",
        "--restart",
        "on-failure",
        "--restart-delay",
        "0.01",
        "--restart-limit",
        "3",
        "--",
        "sh",
        "-c",
        "echo run; exit 7",
    ]));
    assert_eq!(out.code(), Some(7), "{out:?}");
    assert_eq!(out.stdout, "run\nrun\nrun\nrun\n", "not 4 runs: {out:?}");
    // Without a log, detach's own lines go to its stderr.
    let restart = |k, delay| format!("detach: 'sh' exited with status 7; restart {k} in {delay} s");
    // 0.01 s, then doubling from the 0.1 s floor.
    let expected = [
        restart(1, "0.0"),
        restart(2, "0.1"),
        restart(3, "0.2"),
        "detach: 'sh' exited with status 7; giving up after 3 restarts".into(),
    ];
    assert_eq!(out.stderr.lines().collect::<Vec<_>>(), expected, "{out:?}");
}

#[test]
fn limit_in_daemon_mode_ends_the_supervisor_and_removes_its_pidfiles() {
    let g = Guard::new();
    let log = g.path("app.log");
    let started = start_named(
        &g,
        "",
        &["--log", s(&log), "--restart", "always", "--restart-delay", "0.01", "--restart-limit", "2"],
        &["sh", "-c", "echo run; exit 0"],
    );
    started.wait_exit(&log);
    let text = read(&log);
    assert_eq!(count(&text, "run"), 3, "{text}");
    assert_eq!(restart_numbers(&text), [1, 2], "{text}");
    assert_eq!(count(&text, "detach: 'sh' exited with status 0; giving up after 2 restarts"), 1, "{text}");
    assert!(!started.child_pidfile.exists(), "the child pidfile was left behind");
}

// 5. TERM during a backoff ends the supervisor at once.

#[test]
fn term_during_backoff_ends_the_supervisor_at_once() {
    let g = Guard::new();
    let opts = ["--restart", "on-failure", "--restart-delay", "30", "--restart-max-delay", "60"];
    let argv = ["--", "sh", "-c", "echo run; exit 1"];
    let line = "detach: 'sh' exited with status 1; restart 1 in 30.0 s";

    // Daemon mode.
    let log = g.path("app.log");
    let started = start_named(&g, "", &[&["--log", s(&log)][..], &opts].concat(), &argv[1..]);
    // Foreground, at the same time.
    let flog = g.path("fg.log");
    let (mut child, _, err) = g.spawn(detach().args(["--foreground", "--log", s(&flog)]).args(opts).args(argv));

    wait_for_text(&log, line);
    wait_for_text(&flog, line);
    let t0 = Instant::now();
    signal(started.sup, libc::SIGTERM);
    signal(child.id() as i32, libc::SIGTERM);
    // Well before the 30 s of the backoff.
    started.wait_exit(&log);
    let status = wait_child(&mut child, || "detach --foreground did not exit after TERM during a backoff".into());
    println!("both left {:.2} s after TERM; foreground status {status:?}", t0.elapsed().as_secs_f64());
    assert!(status.code().is_some(), "detach --foreground was killed: {status:?}; stderr {:?}", read(&err));
    assert!(!started.child_pidfile.exists(), "the child pidfile was left behind");
    for log in [&log, &flog] {
        assert_lines(&read(log), &[line], &["run"]);
    }
}

// 6. TERM during a run stops the command and does not restart it.

#[test]
fn term_during_a_run_stops_the_command_and_does_not_restart_it() {
    let g = Guard::new();
    // The second ignores TERM: the KILL detach sends after --kill-timeout is no failure either.
    // The KILL after --kill-timeout is said in the log: the command did not honour the stop.
    let stubborn_log = "run\ndetach: 'sh' was killed by SIGKILL\n";
    for (name, script, expected) in
        [("plain", "echo run; exec sleep 60", "run\n"), ("stubborn", "trap '' TERM; echo run; sleep 60", stubborn_log)]
    {
        let log = g.path(&format!("{name}.log"));
        let started = start_named(
            &g,
            name,
            &["--log", s(&log), "--restart", "always", "--restart-delay", "0.01", "--kill-timeout", "0.3"],
            &["sh", "-c", script],
        );
        wait_for_text(&log, "run\n");
        let cmd = started.wait_cmd(&g);
        signal(started.sup, libc::SIGTERM);
        started.wait_exit(&log);
        assert!(!alive(cmd), "{name}: the command (pid {cmd}) outlived its supervisor");
        assert!(!started.child_pidfile.exists(), "{name}: the child pidfile was left behind");
        let text = read(&log);
        assert_eq!(text, expected, "{name}: restarted after a TERM to the supervisor");
    }
}

// 7. The supervisor stays the same process; --child-pidfile follows each run.

#[test]
fn pidfile_keeps_the_supervisor_while_the_child_pidfile_follows_each_run() {
    let g = Guard::new();
    let log = g.path("app.log");
    let child_pidfile = g.path("c.pid");
    // Each run waits (a while at most) until the child pidfile names it, then prints both.
    let script = format!(
        "i=0; while [ \"$(cat {c})\" != $$ ] && [ $i -lt 300 ]; do sleep 0.01; i=$((i+1)); done; \
         echo \"run $$ $(cat {c})\"",
        c = s(&child_pidfile)
    );
    let started = start_named(
        &g,
        "",
        &["--log", s(&log), "--restart", "always", "--restart-delay", "0.05", "--restart-max-delay", "0.05"],
        &["sh", "-c", &script],
    );
    assert_eq!(started.child_pidfile, child_pidfile);
    let runs_in = |text: &str| text.lines().filter(|l| l.starts_with("run ")).count();
    let mut checks = 0;
    let enough = wait_until(
        || {
            assert_eq!(read_pid(&started.pidfile), Some(started.sup), "the pidfile changed during restarts");
            assert!(alive(started.sup), "the supervisor (pid {}) died", started.sup);
            checks += 1;
            runs_in(&read(&log)) >= 6
        },
        DEADLINE,
    );
    assert!(enough, "fewer than 6 runs: {:?}", read(&log));
    assert_eq!(read_pid(&started.pidfile), Some(started.sup));
    signal(started.sup, libc::SIGTERM);
    started.wait_exit(&log);

    let text = read(&log);
    let mut pids = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("run ")) {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 3, "{line:?}");
        assert_eq!(fields[1], fields[2], "the child pidfile did not name the run: {line:?}\n{text}");
        let pid: i32 = fields[1].parse().unwrap();
        assert_ne!(pid, started.sup, "{text}");
        assert!(!pids.contains(&pid), "pid {pid} ran twice: {text}");
        pids.push(pid);
    }
    println!("{} runs, pids {pids:?}, {checks} checks of the pidfile", pids.len());
    assert!(pids.len() >= 6);
}

// 8. A reopen during a backoff.

#[test]
fn hup_during_a_backoff_reopens_the_log() {
    let g = Guard::new();
    let log = g.path("app.log");
    let old = g.path("app.log.1");
    let counter = g.path("runs");
    let script = counting(&counter, "exit 0");
    // --no-watch: only the HUP can make a new file at the path.
    let started = start_named(
        &g,
        "",
        &["--log", s(&log), "--no-watch", "--restart", "always", "--restart-delay", "2", "--restart-limit", "1"],
        &["sh", "-c", &script],
    );
    let line = "detach: 'sh' exited with status 0; restart 1 in 2.0 s";
    wait_for_text(&log, line);
    fs::rename(&log, &old).unwrap();
    signal(started.sup, libc::SIGHUP);
    let reopened = wait_until(|| log.exists(), DEADLINE);
    assert!(reopened, "the log was not reopened by a HUP during the backoff");
    assert_eq!(read(&counter).trim(), "1", "the HUP was handled only after the backoff, or it restarted the command");
    started.wait_exit(&log);
    assert_lines(&read(&old), &[line], &["run 1"]);
    assert_lines(&read(&log), &["detach: 'sh' exited with status 0; giving up after 1 restarts"], &["run 2"]);
}

// 9. A restart that cannot exec counts as a failed run.

#[test]
fn a_restart_that_cannot_exec_is_reported_and_counts_as_a_failed_run() {
    let g = Guard::new();
    let log = g.path("app.log");
    let script = g.path("vanishing.sh");
    fs::write(&script, "#!/bin/sh\necho run\nrm -f \"$0\"\nexit 1\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let out =
        g.run(
            detach()
                .args(["--foreground", "--log", s(&log), "--restart", "on-failure", "--restart-delay", "0.01"])
                .args(["--restart-limit", "2", "--", s(&script)]),
        );
    let text = read(&log);
    assert_eq!(out.code(), Some(127), "{out:?} log: {text:?}");
    assert!(!script.exists());
    let prog = s(&script);
    let cannot = format!("detach: cannot execute '{prog}': No such file or directory (os error 2)");
    let own = [
        format!("detach: '{prog}' exited with status 1; restart 1 in 0.0 s"),
        cannot.clone(),
        format!("detach: '{prog}' did not start; restart 2 in 0.1 s"),
        cannot,
        format!("detach: '{prog}' did not start; giving up after 2 restarts"),
    ];
    let own: Vec<&str> = own.iter().map(String::as_str).collect();
    assert_lines(&text, &own, &["run"]);
}

// 10. --restart with --exec is a usage error.

#[test]
fn restart_with_exec_is_a_usage_error() {
    let g = Guard::new();
    let marker = g.path("never-created");
    for when in ["always", "on-failure"] {
        let out = g.run(detach().args(["--restart", when, "--exec", "--", "touch", s(&marker)]));
        assert_eq!(out.code(), Some(64), "--restart {when} --exec: {out:?}");
        assert!(out.stderr.contains("--exec"), "{out:?}");
        assert!(!marker.exists(), "the command ran");
    }
}
