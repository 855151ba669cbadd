//! A Rust server that daemonizes itself with detach's library, keeps its
//! stdout and stderr in a log, and reopens that log on SIGHUP (logrotate).
//!
//!     cargo run --example daemon -- /tmp/example.log /tmp/example.pid
//!     tail -f /tmp/example.log
//!     mv /tmp/example.log /tmp/example.log.1; kill -HUP "$(cat /tmp/example.pid)"
//!     kill "$(cat /tmp/example.pid)"
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(log), Some(pidfile)) = (args.next(), args.next()) else {
        eprintln!("usage: daemon LOG PIDFILE");
        return ExitCode::from(64);
    };
    // Returns in the daemon only; the caller gets exit 0 once it is set up,
    // or the error (printed here, with its sysexits code).
    let daemon = match detach::Daemon::new().log(log).pidfile(pidfile).start() {
        Ok(daemon) => daemon,
        Err(e) => {
            eprintln!("daemon: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    // Threads may start now that the forks are done.
    let _reopener = daemon.reopen_on_signal(detach::ReopenSignal::HUP).expect("reopen on SIGHUP");
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(libc::SIGTERM, stop.clone()).expect("catch SIGTERM");

    let mut tick = 0u64;
    while !stop.load(Ordering::Relaxed) {
        println!("tick {tick}");
        eprintln!("stderr tick {tick}");
        tick += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    println!("stopping after {tick} ticks");
    ExitCode::SUCCESS // `daemon` drops here: the pidfile is removed
}
