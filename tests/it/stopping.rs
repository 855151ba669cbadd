//! Issue 12: how detach stops its command (--stop-signal, --stop-group), what counts as clean
//! (--success-status, on-failure as systemd counts it), and issue 13's item 19: signals blocked
//! and read, with no handler and no ignored disposition in the way.

use std::os::unix::process::CommandExt;

use crate::util::{
    DEADLINE, Guard, alive, detach, proc_status, read, s, signal, start, wait_child, wait_for_text, wait_until,
};

/// The bits of a /proc/PID/status signal mask ("SigBlk", "SigCgt", ...).
fn mask(pid: i32, field: &str) -> u64 {
    u64::from_str_radix(&proc_status(pid, field).expect("the process is alive"), 16).expect("a hex mask")
}

fn bit(sig: i32) -> u64 {
    1 << (sig - 1)
}

#[test]
fn stop_signal_quit_is_what_the_command_sees_when_detach_is_stopped() {
    let g = Guard::new();
    let log = g.path("app.log");
    let script = "trap 'echo got QUIT; exit 0' QUIT; trap 'echo got TERM; exit 1' TERM; echo ready; \
                  while :; do sleep 0.05; done";
    let (started, _) = start(&g, &["--log", s(&log), "--stop-signal", "QUIT"], &["sh", "-c", script]);
    wait_for_text(&log, "ready\n");
    signal(started.sup, libc::SIGTERM);
    started.wait_exit(&log);
    assert_eq!(read(&log), "ready\ngot QUIT\n");
}

#[test]
fn stop_signal_by_number_and_rtmin_name_are_accepted_and_bad_ones_are_usage_errors() {
    let g = Guard::new();
    for good in ["3", "SIGQUIT", "quit", "RTMIN+2", "KILL"] {
        let out = g.run(detach().args(["--foreground", "--stop-signal", good, "--", "true"]));
        assert_eq!(out.code(), Some(0), "--stop-signal {good}: {out:?}");
    }
    for bad in ["0", "-1", "65", "99999999999", "NOPE", "RTMIN+99", ""] {
        let out = g.run(detach().args(["--foreground", "--stop-signal", bad, "--", "true"]));
        assert_eq!(out.code(), Some(64), "--stop-signal {bad:?}: {out:?}");
    }
}

/// A wrapper (`sh -c`, npm) whose child does the work: without --stop-group only the wrapper
/// gets the stop signal, and its child waits for the KILL; with it, the child gets TERM too.
#[test]
fn stop_group_sends_the_stop_signal_to_a_grandchild_too() {
    let g = Guard::new();
    let inner = "trap 'echo grandchild got TERM; exit 0' TERM; echo grandchild ready; while :; do sleep 0.05; done";
    for (name, group) in [("group", true), ("alone", false)] {
        let log = g.path(&format!("{name}.log"));
        let mut opts = vec!["--log", s(&log), "--kill-timeout", "1"];
        if group {
            opts.push("--stop-group");
        }
        let script = format!("sh -c \"{inner}\" & wait");
        let (started, _) = start(&g, &opts, &["sh", "-c", &script]);
        wait_for_text(&log, "grandchild ready\n");
        signal(started.sup, libc::SIGTERM);
        started.wait_exit(&log);
        let got = read(&log).contains("grandchild got TERM");
        assert_eq!(got, group, "{name}: {:?}", read(&log));
    }
}

#[test]
fn success_status_makes_listed_endings_clean_and_detach_exit_0() {
    let g = Guard::new();
    let cases = [("exit 3", "exit 0"), ("kill -USR1 $$", "exit 0"), ("exit 4", "exit 4")];
    for (script, ending) in cases {
        let log = g.path("app.log");
        let _ = std::fs::remove_file(&log);
        let out = g.run(
            detach()
                .args(["--foreground", "--log", s(&log), "--success-status", "3,SIGUSR1"])
                .args(["--restart", "on-failure", "--restart-delay", "0.01", "--restart-limit", "1"])
                .args(["--", "sh", "-c", &format!("echo run; {script}")]),
        );
        assert_eq!(out.how(), ending, "{script}: {out:?}");
        // Clean endings are not restarted; exit 4 is, once.
        let runs = read(&log).lines().filter(|l| *l == "run").count();
        assert_eq!(runs, if ending == "exit 0" { 1 } else { 2 }, "{script}: {:?}", read(&log));
    }
}

#[test]
fn success_status_rejects_what_is_not_a_status_or_signal() {
    let g = Guard::new();
    for bad in ["256", "-1", "USR9", "3,,NOPE", "0x10"] {
        let out = g.run(detach().args(["--foreground", "--success-status", bad, "--", "true"]));
        assert_eq!(out.code(), Some(64), "--success-status {bad:?}: {out:?}");
    }
}

/// systemd's Restart=on-failure: deaths by HUP, INT, TERM and PIPE are clean, not restarted.
#[test]
fn on_failure_does_not_restart_deaths_systemd_counts_as_clean() {
    let g = Guard::new();
    for (sig, number) in
        [("HUP", libc::SIGHUP), ("INT", libc::SIGINT), ("TERM", libc::SIGTERM), ("PIPE", libc::SIGPIPE)]
    {
        let log = g.path(&format!("{sig}.log"));
        let out = g.run(
            detach()
                .args(["--foreground", "--log", s(&log), "--restart", "on-failure", "--restart-delay", "0.01"])
                .args(["--", "sh", "-c", &format!("echo run; kill -{sig} $$")]),
        );
        assert_eq!(out.how(), format!("killed by {number}"), "{sig}: {out:?}");
        assert_eq!(read(&log).matches("run\n").count(), 1, "{sig} was restarted: {:?}", read(&log));
    }
}

/// Item 19: the supervisor installs no handler for the signals it handles; it blocks them and
/// reads them. Its command starts with none blocked.
#[test]
fn supervisor_blocks_its_signals_and_installs_no_handler_for_them() {
    let g = Guard::new();
    let log = g.path("app.log");
    let (started, cmd) = start(&g, &["--log", s(&log)], &["sh", "-c", "echo ready; exec sleep 60"]);
    wait_for_text(&log, "ready\n");
    let handled = [libc::SIGTERM, libc::SIGHUP, libc::SIGCHLD, libc::SIGINT, libc::SIGUSR1, libc::SIGWINCH];
    let handled = handled.iter().fold(0, |m, &s| m | bit(s));
    assert_eq!(mask(started.sup, "SigCgt") & handled, 0, "a handler is installed");
    assert_eq!(mask(started.sup, "SigBlk") & handled, handled, "not all are blocked");
    assert_eq!(mask(cmd, "SigBlk"), 0, "the command inherited blocked signals");
}

/// An ignored signal is never pending, so a signalfd would never see it: detach started under
/// `nohup` (HUP ignored) must still reopen its log on HUP, and forward TERM with TERM ignored.
#[test]
fn reopen_on_hup_works_when_detach_was_started_with_hup_and_term_ignored() {
    let g = Guard::new();
    let log = g.path("app.log");
    let mut cmd = detach();
    cmd.args(["--foreground", "--log", s(&log), "--", "sh", "-c", "echo one; exec sleep 60"]);
    // SAFETY: signal(2) between fork and exec, with constants.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            libc::signal(libc::SIGTERM, libc::SIG_IGN);
            Ok(())
        });
    }
    let (mut child, _, err) = g.spawn(&mut cmd);
    let pid = child.id() as i32;
    wait_for_text(&log, "one\n");
    std::fs::rename(&log, g.path("app.log.1")).unwrap();
    signal(pid, libc::SIGHUP);
    assert!(wait_until(|| log.exists(), DEADLINE), "HUP did not reopen the log: {}", read(&err));
    signal(pid, libc::SIGTERM);
    let status = wait_child(&mut child, || format!("TERM did not stop detach: {}", read(&err)));
    assert!(!alive(pid));
    assert_eq!(crate::util::how(&status), "killed by 15", "{}", read(&err));
}
