//! The one integration test binary: every test runs the real `detach`.

mod core;
mod docs;
mod faults;
mod hardening;
mod library;
mod paths;
mod pidfiles;
mod readiness;
mod real_systemd;
mod restart;
mod stopping;
mod supervise;
mod syslog;
mod syslog_tls;
mod systemd;
mod util;
