//! The one integration test binary: every test runs the real `detach`.

mod core;
mod docs;
mod faults;
mod library;
mod pidfiles;
mod restart;
mod supervise;
mod syslog;
mod systemd;
mod util;
