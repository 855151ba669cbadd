//! The one integration test binary: every test runs the real `detach`.

mod core;
mod docs;
mod faults;
mod library;
mod real_systemd;
mod restart;
mod supervise;
mod syslog;
mod systemd;
mod util;
