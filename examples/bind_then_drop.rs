//! Bind a privileged port as root, then daemonize as `nobody`, keeping the
//! listener (what the `daemonize` crate's `privileged_action` is for):
//!
//!     sudo bind_then_drop 0.0.0.0:80 /var/log/hello.log /run/hello.pid [ROOT]
//!
//! It prints the address it listens on (port 0 picks a free one), starts
//! (inside ROOT, with `Daemon::chroot`, if given), and in the daemon serves
//! one connection: a line saying who answered.
use std::io::Write;
use std::net::TcpListener;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (addr, log, pidfile, root) = match args.as_slice() {
        [a, l, p] => (a, l, p, None),
        [a, l, p, r] => (a, l, p, Some(r)),
        _ => {
            eprintln!("usage: bind_then_drop ADDR LOG PIDFILE [ROOT]");
            return ExitCode::from(64);
        }
    };
    // As root: a port below 1024 needs it.
    let listener = match TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bind_then_drop: cannot bind {addr}: {e}");
            return ExitCode::from(71);
        }
    };
    println!("listening on {}", listener.local_addr().expect("local address"));
    let _ = std::io::stdout().flush();
    // start() closes every inherited fd but the listener, and drops to nobody.
    let daemon = detach::Daemon::new().log(log).pidfile(pidfile).user("nobody").keep_fd(&listener);
    // SAFETY: the listener is the only fd above 2 this program owns, and it is spared.
    let mut daemon = unsafe { daemon.close_inherited_fds() };
    if let Some(root) = root {
        daemon = daemon.chroot(root);
    }
    let started = daemon.start();
    let _daemon = match started {
        Ok(d) => d,
        Err(e) => {
            eprintln!("bind_then_drop: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    // In the daemon, as nobody, with the listener bound by root.
    // SAFETY: getuid(2) cannot fail.
    let uid = unsafe { libc::getuid() };
    let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
    let mut entries: Vec<String> = std::fs::read_dir("/")
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    entries.sort();
    println!("cwd {cwd}, / holds: {}", entries.join(" "));
    println!("serving as uid {uid}");
    match listener.accept() {
        Ok((mut conn, peer)) => {
            let _ = writeln!(conn, "hello from uid {uid}");
            println!("served {peer}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bind_then_drop: accept: {e}");
            ExitCode::from(71)
        }
    }
}
