//! The one integration test binary: every test runs the real `detach`.

mod core;
mod library;
mod supervise;
mod util;
