//! The one integration test binary: every test runs the real `detach`.

mod core;
mod environment;
mod faults;
mod hardening;
mod library;
mod logs_verb;
mod paths;
mod pidfiles;
mod readiness;
mod real_systemd;
mod restart;
mod rotation;
mod rotation_settling;
mod stopping;
mod supervise;
mod syslog;
#[cfg(feature = "tls")]
mod syslog_tls;
mod systemd;
mod timestamps;
mod util;
