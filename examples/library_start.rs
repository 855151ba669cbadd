//! `Daemon::start` with the options the tests need, and what the caller is
//! left with when it fails (tests/it/hardening.rs):
//!
//!     library_start LOG PIDFILE LOG_MODE [--thread] [--hold FILE]
//!
//! The daemon writes one line to LOG and exits. A failed start prints the
//! caller's working directory and umask afterwards, then exits with the
//! error's code: both must be as they were before the call.
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [log, pidfile, mode, rest @ ..] = args.as_slice() else {
        eprintln!("usage: library_start LOG PIDFILE LOG_MODE [--thread]");
        return ExitCode::from(64);
    };
    let mode = u32::from_str_radix(mode, 8).expect("octal LOG_MODE");
    if rest.iter().any(|a| a == "--thread") {
        // A thread makes the process unfit to fork: start() must refuse.
        std::thread::spawn(|| std::thread::sleep(Duration::from_secs(30)));
    }
    // --hold FILE: a file opened before start(), written to after it; without
    // close-on-exec, as nix::unistd::pipe() makes them: still the program's.
    let held = rest.windows(2).find(|w| w[0] == "--hold").map(|w| {
        let file = std::fs::OpenOptions::new().append(true).create(true).open(&w[1]).expect("open the held file");
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        // SAFETY: fcntl(2) on an fd this File owns; it clears one flag.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
        file
    });
    let started = detach::Daemon::new()
        .log(log)
        .pidfile(pidfile)
        .log_mode(mode)
        .chdir(Some("/".into()))
        .umask(Some(0o077))
        .start();
    match started {
        Ok(_daemon) => {
            println!("started");
            // A file the program opened before start() is still its own.
            if let Some(mut held) = held {
                std::io::Write::write_all(&mut held, b"still mine\n").expect("write to the held file");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            // SAFETY: umask(2) cannot fail; it is set back at once.
            let mask = unsafe { libc::umask(0o022) };
            // SAFETY: as above.
            unsafe { libc::umask(mask) };
            let cwd = std::env::current_dir().expect("current dir");
            println!("cwd={}\numask={mask:03o}", cwd.display());
            eprintln!("library_start: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
