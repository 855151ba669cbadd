//! `Daemon::start_deferred`: the caller's process returns only once the
//! daemon is really up (here: listening), or fails with the reason.
//!
//!     deferred LOG PIDFILE ADDR [--forget]
//!
//! The daemon binds ADDR, says it is ready, and serves one line per
//! connection. When the bind fails, the caller prints why and exits with the
//! error's code; with --forget the daemon never reports, and the caller
//! fails too.
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [log, pidfile, addr, rest @ ..] = args.as_slice() else {
        eprintln!("usage: deferred LOG PIDFILE ADDR [--forget]");
        return ExitCode::from(64);
    };
    let (_daemon, report) = match detach::Daemon::new().log(log).pidfile(pidfile).start_deferred() {
        Ok(started) => started,
        Err(e) => {
            eprintln!("deferred: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    if rest.iter().any(|a| a == "--forget") {
        drop(report); // a daemon that never says: the caller must not see a success
        return ExitCode::from(1);
    }
    let listener = match std::net::TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => report.fail(&detach::Error::os(format!("cannot bind {addr}"), e)),
    };
    println!("listening on {addr}");
    report.ready();
    for stream in listener.incoming().flatten().take(100) {
        let _ = (&stream).write_all(b"hello\n");
    }
    ExitCode::SUCCESS
}
