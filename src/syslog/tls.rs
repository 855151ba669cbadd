//! TLS to a syslog collector (RFC 5425): a rustls client driven by hand over
//! the non-blocking TCP socket that the supervisor's poll loop watches. No
//! async runtime and no thread: records are read when poll says readable
//! (`read_tls`, `process_new_packets`), written when rustls wants to and the
//! socket takes them (`write_tls`); `wants_write` becomes POLLOUT.
//!
//! The configuration (roots, client certificate) is read once, at start,
//! before detach forks: a bad file is an error on the caller's terminal, not
//! a warning in a log nobody reads.

use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

pub use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConnection, RootCertStore};

/// The system's roots when no `--syslog-ca` is given: Debian's bundle of
/// /etc/ssl/certs (update-ca-certificates), else every PEM file there.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
const SYSTEM_DIR: &str = "/etc/ssl/certs";
/// Plaintext plus records held by rustls before the socket takes them: the
/// rest waits in the destination's backlog, which counts and drops.
const BUFFER_LIMIT: usize = 64 * 1024;

/// What `--syslog-ca`, `--syslog-cert` and `--syslog-key` name.
pub struct Files<'a> {
    pub ca: Option<&'a Path>,
    pub cert: Option<&'a Path>,
    pub key: Option<&'a Path>,
}

/// The client's configuration: TLS 1.2 and 1.3, the ring provider, the
/// collector's certificate verified against the roots and the URL's host,
/// a client certificate when one is given.
pub fn config(files: &Files) -> Result<Arc<ClientConfig>, String> {
    let roots = match files.ca {
        Some(ca) => roots_from(ca, "--syslog-ca")?,
        None if Path::new(SYSTEM_BUNDLE).exists() => roots_from(Path::new(SYSTEM_BUNDLE), "the system's CA bundle")?,
        None => system_dir_roots()?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots);
    let config = match (files.cert, files.key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(cert, "--syslog-cert")?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("cannot read --syslog-key '{}': {}", key.display(), pem_error(e)))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| format!("--syslog-cert and --syslog-key: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(err) => err.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM item of that kind in it".into(),
        e => format!("not PEM: {e}"),
    }
}

fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bad = |e| format!("cannot read {what} '{}': {}", path.display(), pem_error(e));
    let certs = CertificateDer::pem_file_iter(path).map_err(bad)?.collect::<Result<Vec<_>, _>>().map_err(bad)?;
    if certs.is_empty() {
        return Err(format!("cannot read {what} '{}': no certificate in it", path.display()));
    }
    Ok(certs)
}

fn roots_from(path: &Path, what: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certificates(path, what)?);
    if added == 0 {
        return Err(format!("cannot read {what} '{}': no usable CA certificate in it", path.display()));
    }
    Ok(roots)
}

fn system_dir_roots() -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let entries = std::fs::read_dir(SYSTEM_DIR).map_err(|e| format!("cannot read '{SYSTEM_DIR}': {e}"))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "pem" || e == "crt")
            && let Ok(certs) = certificates(&path, "a CA file")
        {
            roots.add_parsable_certificates(certs);
        }
    }
    if roots.is_empty() {
        return Err(format!(
            "no CA certificates in '{SYSTEM_DIR}' (install ca-certificates, or give --syslog-ca FILE)"
        ));
    }
    Ok(roots)
}

/// One TLS connection's state, over a socket its owner keeps.
pub struct Session(ClientConnection);

impl Session {
    /// A client for `host` (a name, or an IP address checked against the
    /// certificate's IP addresses), its ClientHello ready to be written.
    pub fn new(config: &Arc<ClientConfig>, host: &str) -> io::Result<Session> {
        let name = ServerName::try_from(host.to_owned()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut conn = ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
        conn.set_buffer_limit(Some(BUFFER_LIMIT));
        Ok(Session(conn))
    }

    pub fn handshaking(&self) -> bool {
        self.0.is_handshaking()
    }

    /// Records wait to be written: poll for POLLOUT when the socket is full.
    pub fn wants_write(&self) -> bool {
        self.0.wants_write()
    }

    /// Reads what the collector sent (handshake, session tickets, alerts,
    /// close_notify) until the socket is empty. A fatal alert, a certificate
    /// refused, or the end of the connection is an error that says why.
    pub fn read(&mut self, stream: &mut TcpStream) -> io::Result<()> {
        loop {
            match self.0.read_tls(stream) {
                Ok(0) => {
                    return Err(io::Error::new(io::ErrorKind::ConnectionReset, "connection closed by the collector"));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let state = match self.0.process_new_packets() {
                Ok(state) => state,
                Err(e) => {
                    // Tell the collector why (the alert rustls queued), if the
                    // socket takes it now; the connection is over either way.
                    let _ = self.0.write_tls(stream);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            };
            // A collector has nothing to say; whatever it says is dropped.
            let mut sink = [0u8; 512];
            let mut left = state.plaintext_bytes_to_read();
            while left > 0 {
                let n = self.0.reader().read(&mut sink)?;
                left = left.saturating_sub(n.max(1));
            }
            if state.peer_has_closed() {
                return Err(io::Error::new(io::ErrorKind::ConnectionReset, "connection closed by the collector"));
            }
        }
    }

    /// Writes the records waiting, as far as the socket takes them:
    /// `WouldBlock` when it is full.
    pub fn write(&mut self, stream: &mut TcpStream) -> io::Result<()> {
        while self.0.wants_write() {
            match self.0.write_tls(stream) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Ends the session politely (close_notify, RFC 5425 4.4), as far as
    /// the socket takes it now: the collector then logs no error.
    pub fn close(&mut self, stream: &mut TcpStream) {
        self.0.send_close_notify();
        let _ = self.write(stream);
    }

    /// Hands messages to rustls, as many bytes as its buffer takes.
    pub fn send(&mut self, slices: &[IoSlice]) -> io::Result<usize> {
        self.0.writer().write_vectored(slices)
    }
}
