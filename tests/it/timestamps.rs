//! `--timestamp` (issue 15): every format parses with the tools that read it, stamps never go
//! backwards, a line flushed in pieces has one stamp, and local time follows TZ.

use crate::util::{Guard, detach, read, s, wait_child, wait_for_text};
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// Runs `sh -c SCRIPT` under `detach --foreground --timestamp=FORMAT --log LOG` to its end;
/// returns the log.
fn run_stamped(g: &Guard, format: &str, script: &str, env: &[(&str, &str)]) -> String {
    let log = g.path(&format!("{format}.log"));
    let mut cmd = detach();
    cmd.args(["--foreground", &format!("--timestamp={format}"), "--log", s(&log), "--", "sh", "-c", script]);
    cmd.current_dir(g.dir.path()).envs(env.iter().copied());
    let (mut child, _, err) = g.spawn(&mut cmd);
    wait_child(&mut child, || format!("detach did not end; stderr: {}", read(&err)));
    read(&log)
}

/// The stamp of `line` (before the first space), as seconds since the epoch, parsed by the
/// tool that reads `format`.
fn parse_stamp(format: &str, line: &str) -> f64 {
    let stamp = line.split_once(' ').unwrap_or_else(|| panic!("no stamp on {line:?}")).0;
    let text = match format {
        "unix" => stamp.to_string(),
        "iso" | "utc" => run_tool(Command::new("date").args(["-d", stamp, "+%s.%N"]), ""),
        "tai64n" => {
            let local = run_tool(Command::new("tai64nlocal").env("TZ", "UTC"), &format!("{stamp} x\n"));
            let local = local.strip_suffix(" x").unwrap_or_else(|| panic!("tai64nlocal gave {local:?}"));
            run_tool(Command::new("date").env("TZ", "UTC").args(["-d", local, "+%s.%N"]), "")
        }
        _ => unreachable!(),
    };
    text.trim().parse().unwrap_or_else(|_| panic!("{format} stamp {stamp:?} read as {text:?}"))
}

fn run_tool(cmd: &mut Command, input: &str) -> String {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim_end().to_string()
}

#[test]
fn every_timestamp_format_parses_and_tells_the_time() {
    let g = Guard::new();
    for format in ["iso", "utc", "tai64n", "unix"] {
        let before = now();
        // The command dies by a signal: detach's own line about it is stamped too.
        let log = run_stamped(&g, format, "echo one; echo two; kill -KILL $$", &[]);
        let after = now();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 3, "{format}: {log:?}");
        for (line, text) in lines.iter().zip(["one", "two", "detach: 'sh' was killed by SIGKILL"]) {
            assert!(line.ends_with(&format!(" {text}")), "{format}: {line:?}");
            let t = parse_stamp(format, line);
            // Microsecond stamps: the bounds are widened by that much.
            assert!(t >= before - 1e-5 && t <= after + 1e-5, "{format}: {t} not in [{before}, {after}]: {line:?}");
        }
    }
}

#[test]
fn timestamps_never_go_backwards() {
    let g = Guard::new();
    let script = "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done";
    let log = run_stamped(&g, "unix", script, &[]);
    let stamps: Vec<f64> = log.lines().map(|l| parse_stamp("unix", l)).collect();
    assert_eq!(stamps.len(), 3000);
    for (i, w) in stamps.windows(2).enumerate() {
        assert!(w[0] <= w[1], "line {} is stamped before line {i}: {} > {}", i + 1, w[0], w[1]);
    }
}

#[test]
fn a_line_flushed_in_two_pieces_has_one_stamp() {
    let g = Guard::new();
    let log = g.path("unix.log");
    let go = g.path("go");
    // The first piece waits in the pump for its end, which comes only after the test saw the
    // piece in the log: so the line surely reached the file in two writes.
    let script =
        format!("printf first; while [ ! -e {} ]; do sleep 0.01; done; printf ' second\\n'; echo next", s(&go));
    let mut cmd = detach();
    cmd.args(["--foreground", "--timestamp=unix", "--log", s(&log), "--", "sh", "-c", &script]);
    let (mut child, _, err) = g.spawn(&mut cmd);
    wait_for_text(&log, "first");
    std::fs::write(&go, "").unwrap();
    wait_child(&mut child, || format!("detach did not end; stderr: {}", read(&err)));
    let text = read(&log);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text:?}");
    let (stamp, rest) = lines[0].split_once(' ').unwrap();
    assert_eq!(rest, "first second", "one stamp, at the start: {text:?}");
    assert!(parse_stamp("unix", lines[0]) <= parse_stamp("unix", lines[1]), "{text:?}: {stamp}");
}

#[test]
fn local_time_follows_tz_asia_kolkata() {
    if !Path::new("/usr/share/zoneinfo/Asia/Kolkata").exists() {
        println!("SKIP: local_time_follows_tz_asia_kolkata needs tzdata");
        return;
    }
    let g = Guard::new();
    let before = now();
    let log = run_stamped(&g, "iso", "echo hello", &[("TZ", "Asia/Kolkata")]);
    let line = log.lines().next().unwrap_or_default();
    let stamp = line.split(' ').next().unwrap();
    assert!(stamp.ends_with("+05:30"), "{line:?}");
    assert!(parse_stamp("iso", line) >= before - 1e-5, "{line:?}");
}
