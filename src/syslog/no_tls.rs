//! Built without the `tls` feature: `tls://` servers are refused when the
//! command line is parsed, so no session ever exists; these types only keep
//! the transport code the same in both builds.

use std::io::{self, IoSlice};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

pub struct Files<'a> {
    pub ca: Option<&'a Path>,
    pub cert: Option<&'a Path>,
    pub key: Option<&'a Path>,
}

/// Never built: no TLS in this build.
pub enum ClientConfig {}

pub fn config(files: &Files) -> Result<Arc<ClientConfig>, String> {
    let _ = (files.ca, files.cert, files.key);
    Err("this detach was built without TLS (cargo feature `tls`)".into())
}

/// Never built: no TLS in this build.
pub enum Session {}

impl Session {
    pub fn new(config: &Arc<ClientConfig>, _: &str) -> io::Result<Session> {
        match **config {}
    }

    pub fn handshaking(&self) -> bool {
        match *self {}
    }

    pub fn wants_write(&self) -> bool {
        match *self {}
    }

    pub fn read(&mut self, _: &mut TcpStream) -> io::Result<()> {
        match *self {}
    }

    pub fn write(&mut self, _: &mut TcpStream) -> io::Result<()> {
        match *self {}
    }

    pub fn close(&mut self, _: &mut TcpStream) {
        match *self {}
    }

    pub fn send(&mut self, _: &[IoSlice]) -> io::Result<usize> {
        match *self {}
    }
}
