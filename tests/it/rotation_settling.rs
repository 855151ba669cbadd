//! The two halves of a built-in rotation (src/archiver.rs): the pump moves the log aside as
//! `.NAME.detach-rotated` and writes to a file made beforehand; a thread then moves the archives
//! up and makes the staged file `.1`. What a killed detach leaves is finished at the next start;
//! a settling that fails keeps every line and is finished by the next rotation; the new log gets
//! the mode and owner a created log gets; nothing of the machinery is left behind.

use crate::util::{DEADLINE, Guard, TICKER, assert_consecutive, detach, is_root, read, s, signal, start, wait_until};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

fn archive(log: &Path, i: u32) -> PathBuf {
    PathBuf::from(format!("{}.{i}", log.display()))
}

fn staged(log: &Path) -> PathBuf {
    log.with_file_name(format!(".{}.detach-rotated", log.file_name().unwrap().to_string_lossy()))
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> =
        fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    n.sort();
    n
}

#[test]
fn a_rotation_a_killed_detach_left_half_done_is_finished_at_the_next_start() {
    let g = Guard::new();
    let log = g.path("app.log");
    fs::write(archive(&log, 1), "oldest\n").unwrap();
    fs::write(staged(&log), "moved aside\n").unwrap();
    fs::write(&log, "current\n").unwrap();
    let out = g.run(detach().args(["--foreground", "--rotate-size", "1M", "--log", s(&log), "--", "echo", "new"]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert!(!staged(&log).exists(), "the staged log was left: {:?}", names(g.dir.path()));
    assert_eq!(read(&archive(&log, 2)), "oldest\n", "the archives did not move up");
    assert_eq!(read(&archive(&log, 1)), "moved aside\n", "the staged log is not .1");
    assert_eq!(read(&log), "current\nnew\n");
}

#[test]
fn rotations_leave_nothing_of_their_own_behind() {
    let g = Guard::new();
    let log = g.path("app.log");
    let (daemon, _) = start(&g, &["--log", s(&log), "--log-mode", "0600"], &["sh", "-c", TICKER]);
    for i in 1..=3 {
        assert!(wait_until(|| read(&log).contains("tick"), DEADLINE), "no tick after rotation {i}");
        let out = g.run(detach().args(["rotate", "--pidfile", s(&daemon.pidfile)]));
        assert_eq!(out.code(), Some(0), "{out:?}");
        // Settled when `rotate` returns: .1 to .i, no staged file.
        assert!(archive(&log, i).exists() && !staged(&log).exists(), "after rotate {i}: {:?}", names(g.dir.path()));
        assert_eq!(fs::metadata(&log).unwrap().permissions().mode() & 0o777, 0o600, "the new log's mode");
        assert_eq!(fs::metadata(&log).unwrap().nlink(), 1, "the new log has other links");
    }
    signal(daemon.sup, libc::SIGTERM);
    daemon.wait_exit(&log);
    let want = ["app.log", "app.log.1", "app.log.2", "app.log.3"];
    let left: Vec<String> = names(g.dir.path()).into_iter().filter(|n| n.contains("app.log")).collect();
    assert_eq!(left, want, "files of detach's own left behind");
    let texts: Vec<String> = [3, 2, 1].iter().map(|&i| read(&archive(&log, i))).chain([read(&log)]).collect();
    assert_consecutive(&texts.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn a_rotation_that_cannot_settle_loses_nothing_says_so_once_and_the_next_one_recovers() {
    let g = Guard::new();
    let log = g.path("app.log");
    // --rotate-keep 2 and a directory as archive 2: deleting the oldest archive fails (EISDIR).
    fs::write(archive(&log, 1), "oldest\n").unwrap();
    fs::create_dir(archive(&log, 2)).unwrap();
    fs::write(archive(&log, 2).join("inside"), "").unwrap();
    let (daemon, _) = start(&g, &["--log", s(&log), "--rotate-keep", "2"], &["sh", "-c", TICKER]);
    assert!(wait_until(|| read(&log).contains("tick 2"), DEADLINE));
    let rotate = || g.run(detach().args(["rotate", "--pidfile", s(&daemon.pidfile)]));
    let out = rotate();
    assert_ne!(out.code(), Some(0), "a rotation that failed was reported done: {out:?}");
    // The old log waits under its staged name; the new one goes on.
    assert!(staged(&log).exists(), "{:?}", names(g.dir.path()));
    let n = read(&log).lines().count();
    assert!(wait_until(|| read(&log).lines().count() > n + 2, DEADLINE), "lines stopped after the failure");
    let out = rotate();
    assert_ne!(out.code(), Some(0), "{out:?}");
    // Once the way is clear, the next rotation settles what waits, then rotates.
    fs::remove_dir_all(archive(&log, 2)).unwrap();
    let out = rotate();
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert!(!staged(&log).exists(), "{:?}", names(g.dir.path()));
    assert!(wait_until(|| read(&log).contains("tick"), DEADLINE));
    signal(daemon.sup, libc::SIGTERM);
    daemon.wait_exit(&log);
    // Keep 2: the staged log (ticks from 0) is .2, then .1, then the log.
    let texts: Vec<String> = [2, 1].iter().map(|&i| read(&archive(&log, i))).chain([read(&log)]).collect();
    let all = texts.concat();
    assert_eq!(all.matches("detach: cannot rotate").count(), 1, "the failure was not said once: {all}");
    assert!(all.contains("Is a directory"), "the failure does not say why: {all}");
    assert!(texts[0].starts_with("tick 0\n"), "the first lines are gone: {:?}", &texts[0][..40.min(texts[0].len())]);
    let ticks: Vec<&str> = texts.iter().map(String::as_str).collect();
    assert_consecutive(&ticks);
    assert!(!names(g.dir.path()).iter().any(|n| n == "app.log.3"), "more than 2 archives");
}

#[test]
fn a_rotated_log_is_created_with_the_log_owner_and_mode() {
    if !is_root("a_rotated_log_is_created_with_the_log_owner_and_mode") {
        return;
    }
    let g = Guard::new();
    let log = g.path("app.log");
    let opts = ["--log", s(&log), "--log-owner", "nobody:nogroup", "--log-mode", "0640", "--rotate-size", "2K"];
    let (daemon, _) = start(&g, &opts, &["sh", "-c", TICKER]);
    assert!(wait_until(|| archive(&log, 2).exists(), DEADLINE * 2), "no second rotation");
    signal(daemon.sup, libc::SIGTERM);
    daemon.wait_exit(&log);
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap().uid.as_raw();
    for f in [log.clone(), archive(&log, 1)] {
        let m = fs::metadata(&f).unwrap();
        assert_eq!((m.uid(), m.mode() & 0o777), (nobody, 0o640), "{}", f.display());
    }
}

#[test]
fn the_next_file_is_made_ahead_even_after_a_rotation_found_the_log_moved_away() {
    let g = Guard::new();
    let log = g.path("app.log");
    let (daemon, _) = start(&g, &["--log", s(&log)], &["sh", "-c", TICKER]);
    let rotate = || g.run(detach().args(["rotate", "--pidfile", s(&daemon.pidfile)]));
    assert!(wait_until(|| read(&log).contains("tick"), DEADLINE));
    assert_eq!(rotate().code(), Some(0));
    // Moved away by another program: the next rotation only reopens, and uses no file
    // made ahead; the one after must have one again.
    fs::rename(&log, g.path("app.log.moved")).unwrap();
    assert_eq!(rotate().code(), Some(0));
    assert!(!archive(&log, 2).exists(), "a moved log was rotated: {:?}", names(g.dir.path()));
    std::thread::sleep(std::time::Duration::from_millis(400));
    let before = std::time::SystemTime::now();
    assert_eq!(rotate().code(), Some(0));
    assert!(archive(&log, 2).exists(), "{:?}", names(g.dir.path()));
    match fs::metadata(&log).unwrap().created() {
        Ok(born) => {
            let ahead = before.duration_since(born).unwrap_or_default();
            assert!(ahead.as_millis() >= 100, "the new log was made by the rotation itself, not ahead");
        }
        Err(e) => println!("SKIP (the file system keeps no birth time: {e}): which file became the log"),
    }
    signal(daemon.sup, libc::SIGTERM);
    daemon.wait_exit(&log);
}

#[test]
fn a_rotation_after_the_log_directory_was_replaced_happens_in_the_new_one() {
    let g = Guard::new();
    let dir = g.path("logs");
    fs::create_dir(&dir).unwrap();
    let log = dir.join("app.log");
    let (daemon, _) = start(&g, &["--log", s(&log)], &["sh", "-c", TICKER]);
    let rotate = || g.run(detach().args(["rotate", "--pidfile", s(&daemon.pidfile)]));
    assert!(wait_until(|| read(&log).contains("tick"), DEADLINE));
    assert_eq!(rotate().code(), Some(0));
    // The directory is replaced; the watch reopens the log in the new one.
    fs::rename(&dir, g.path("logs.old")).unwrap();
    fs::create_dir(&dir).unwrap();
    assert!(wait_until(|| read(&log).contains("tick"), DEADLINE), "the watch did not reopen in the new directory");
    assert_eq!(rotate().code(), Some(0));
    assert!(archive(&log, 1).exists(), "no rotation in the new directory: {:?}", names(&dir));
    assert!(wait_until(|| read(&log).contains("tick"), DEADLINE));
    signal(daemon.sup, libc::SIGTERM);
    daemon.wait_exit(&log);
    let old = g.path("logs.old");
    assert!(!archive(&old.join("app.log"), 2).exists(), "rotated in the old directory: {:?}", names(&old));
    let texts: Vec<String> =
        [old.join("app.log.1"), old.join("app.log"), archive(&log, 1), log.clone()].iter().map(|f| read(f)).collect();
    assert_consecutive(&texts.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn a_log_name_too_long_to_stage_still_rotates_in_place() {
    let g = Guard::new();
    // 240 bytes: `.NAME.detach-rotated` passes NAME_MAX (255), `NAME.1` does not.
    let log = g.path(&"a".repeat(240));
    let script = "for i in $(seq 600); do echo \"tick $i\"; done";
    let opts = ["--foreground", "--rotate-size", "1K", "--rotate-keep", "2", "--log", s(&log)];
    let out = g.run(detach().args(opts).args(["--", "sh", "-c", script]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    let texts: Vec<String> = [2, 1].iter().map(|&i| read(&archive(&log, i))).chain([read(&log)]).collect();
    let all = texts.concat();
    assert!(!all.contains("detach:"), "detach complained: {all}");
    assert!(texts[0].starts_with("tick ") && all.ends_with("tick 600\n"), "{:?}", names(g.dir.path()));
    assert_consecutive(&texts.iter().map(String::as_str).collect::<Vec<_>>());
}
