//! Issue 18: syslog over TLS (RFC 5425), newline framing, RFC 3164 to a collector, and the
//! collector's name looked up again on reconnect. Against a real rsyslogd (the harness of
//! syslog.rs) with its gtls driver (Debian's rsyslog-gnutls) and certificates this file makes
//! with the openssl command line: a CA, a server certificate for `localhost` (and
//! `collector.test`), one for another name, and a client certificate.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use crate::syslog::{
    Input, LONG, Rsyslog, assert_sequence, last_tick, numbers, restart_mid_stream, run_fg, spawn_ticker, writer_numbers,
};
use crate::util::{DEADLINE, Guard, detach, is_root, read, s, wait_child, wait_until};

/// The certificates of one test, made by `openssl`: EC P-256, valid for a day.
struct Pki {
    ca: PathBuf,
    dir: PathBuf,
}

impl Pki {
    /// None (after a SKIP line) without openssl or rsyslog's gtls driver.
    fn make(g: &Guard, test: &str) -> Option<Pki> {
        let gtls = ["/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so", "/usr/lib/rsyslog/lmnsd_gtls.so"];
        let has_gtls = gtls.iter().any(|p| Path::new(p).exists())
            || Command::new("sh")
                .args(["-c", "ls /usr/lib/*/rsyslog/lmnsd_gtls.so"])
                .output()
                .is_ok_and(|o| o.status.success());
        if !has_gtls || Command::new("openssl").arg("version").output().is_err() {
            eprintln!(
                "SKIP: {test}: needs openssl and rsyslog-gnutls (apt-get install -y openssl rsyslog-gnutls); CI installs them"
            );
            return None;
        }
        let dir = g.path("pki");
        fs::create_dir_all(&dir).unwrap();
        let pki = Pki { ca: dir.join("ca.pem"), dir };
        pki.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=detach test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        pki.issue("server", "localhost", "DNS:localhost,DNS:collector.test", "serverAuth");
        pki.issue("other", "other.example", "DNS:other.example", "serverAuth");
        pki.issue("client", "detach-client", "DNS:detach-client", "clientAuth");
        Some(pki)
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl").args(args).current_dir(&self.dir).output().expect("run openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// NAME.pem and NAME.key, signed by the CA, for `cn` with these SANs and extended key usage.
    fn issue(&self, name: &str, cn: &str, san: &str, usage: &str) {
        let ext = format!("{name}.ext");
        fs::write(self.dir.join(&ext), format!("subjectAltName={san}\nextendedKeyUsage={usage}\n")).unwrap();
        let (key, csr, pem) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"));
        let subj = format!("/CN={cn}");
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            &subj,
            "-keyout",
            &key,
            "-out",
            &csr,
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &ext,
            "-out",
            &pem,
        ]);
    }

    fn file(&self, name: &str) -> String {
        s(&self.dir.join(name)).to_string()
    }

    /// A TLS input on 127.0.0.1 that shows certificate `cert` (server or other); `auth` is
    /// gtls's authMode: anon (no client certificate asked) or x509/certvalid (one required).
    fn input(&self, name: &str, cert: &str, auth: &str, more: &str) -> Input {
        Input {
            name: name.into(),
            address: "127.0.0.1".into(),
            params: format!(
                r#"streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="{auth}" streamDriver.CAFile="{}" streamDriver.CertFile="{}" streamDriver.KeyFile="{}" {more}"#,
                s(&self.ca),
                self.file(&format!("{cert}.pem")),
                self.file(&format!("{cert}.key")),
            ),
            port: 0,
        }
    }
}

/// rsyslogd and the certificates, or return (skipped).
macro_rules! setup {
    ($g:expr, $test:expr, |$pki:ident| $inputs:expr) => {{
        let Some($pki) = Pki::make(&$g, $test) else { return };
        let inputs = $inputs;
        match Rsyslog::start_with(&$g, $test, inputs) {
            Some(rs) => ($pki, rs),
            None => return,
        }
    }};
}

impl Rsyslog {
    /// `tls://localhost:PORT` of the extra input `name`.
    fn tls_url(&self, name: &str) -> String {
        let input = self.extra.iter().find(|i| i.name == name).expect("an input of that name");
        format!("tls://localhost:{}", input.port)
    }
}

/// A ticker under `detach --foreground --log app.log OPTS`, running until `stop()`.
struct Ticker {
    child: Child,
    log: PathBuf,
    stop: PathBuf,
}

impl Ticker {
    fn start(g: &Guard, wrap: &[&str], opts: &[&str]) -> Ticker {
        let (log, stop) = (g.path("app.log"), g.path("stop"));
        let cmd = match wrap.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(crate::util::detach().get_program());
                c
            }
            None => detach(),
        };
        let child = spawn_ticker(g, cmd, opts, &log, &stop);
        Ticker { child, log, stop }
    }

    fn stop(mut self, g: &Guard) -> String {
        fs::write(&self.stop, "").unwrap();
        let status = wait_child(&mut self.child, || format!("detach did not exit: {}", read(&g.path("detach.stderr"))));
        assert_eq!(status.code(), Some(0), "{}", read(&g.path("detach.stderr")));
        read(&self.log)
    }
}

/// 20,000 lines over TLS: every one arrives, once, in order.
#[test]
fn twenty_thousand_lines_over_tls_arrive_once_and_in_order() {
    const N: u64 = 20_000;
    let g = Guard::new();
    let test = "twenty_thousand_lines_over_tls_arrive_once_and_in_order";
    let (pki, rs) = setup!(g, test, |pki| vec![pki.input("tls", "server", "anon", "")]);
    let awk = format!(
        "BEGIN {{ for (i = 0; i < {N}; i++) printf \"line %d of a fast writer over TLS\\n\", i; print \"end\" }}"
    );
    let code = run_fg(&g, &["--syslog-server", &rs.tls_url("tls"), "--syslog-ca", s(&pki.ca)], &["awk", &awk]);
    assert_eq!(code, 0);
    let msgs = rs.wait_last_for("awk", "tls", "end", LONG);
    let lines = writer_numbers(&msgs, "of a fast writer over TLS");
    assert_sequence(&lines, N, "20,000 lines over TLS");
}

/// A collector whose certificate is for another name is refused: it is sent nothing, the log
/// says why once (not once per retry), and detach keeps retrying, so that once the collector
/// has the right certificate the lines flow, those held meanwhile first.
#[test]
fn a_certificate_for_another_name_is_refused_until_the_collector_is_fixed() {
    let g = Guard::new();
    let test = "a_certificate_for_another_name_is_refused_until_the_collector_is_fixed";
    let (pki, mut rs) = setup!(g, test, |pki| vec![pki.input("tls", "other", "anon", "")]);
    let url = rs.tls_url("tls");
    let ticker = Ticker::start(&g, &[], &["--syslog-server", &url, "--syslog-ca", s(&pki.ca)]);
    let why = "invalid peer certificate";
    assert!(wait_until(|| read(&ticker.log).contains(why), DEADLINE), "no refusal in the log: {}", read(&ticker.log));
    // Three seconds of retries (the backoff reaches 1 s), still one line.
    let first = last_tick(&ticker.log).unwrap();
    assert!(wait_until(|| last_tick(&ticker.log).is_some_and(|t| t >= first + 150), LONG), "the command stalled");
    let log = read(&ticker.log);
    let said: Vec<&str> = log.lines().filter(|l| l.contains(why)).collect();
    assert_eq!(said.len(), 1, "the refusal said more than once: {said:?}");
    assert!(said[0].contains(&url) && said[0].contains("not valid for name \"localhost\""), "{said:?}");
    assert!(rs.tagged("sh").is_empty(), "lines sent to a collector refused: {}", rs.dump());

    // The collector fixed: the held lines and the new ones arrive.
    rs.stop();
    rs.extra[0] = Input { port: rs.extra[0].port, ..pki.input("tls", "server", "anon", "") };
    rs.restart();
    let back = last_tick(&ticker.log).unwrap();
    let ticks = || numbers(&rs.tagged_via("sh", "tls"), "tick ");
    assert!(wait_until(|| ticks().last().is_some_and(|&t| t > back + 10), LONG), "no recovery: {}", rs.dump());
    ticker.stop(&g);
    let got = numbers(&rs.wait_last_for("sh", "tls", "end", LONG), "tick ");
    assert_sequence(&got, got.len() as u64, "ticks held while the certificate was refused, then the rest");
}

/// Mutual TLS: a collector that requires a client certificate signed by its CA takes detach's
/// (`--syslog-cert`, `--syslog-key`), and refuses a detach without one: nothing of it arrives
/// and its log says the collector ended the connection.
#[test]
fn mutual_tls_accepts_detachs_client_certificate_and_refuses_none() {
    let g = Guard::new();
    let test = "mutual_tls_accepts_detachs_client_certificate_and_refuses_none";
    let (pki, rs) = setup!(g, test, |pki| vec![pki.input("mtls", "server", "x509/certvalid", "")]);
    let url = rs.tls_url("mtls");
    let (cert, key) = (pki.file("client.pem"), pki.file("client.key"));
    let with = ["--syslog-server", &url, "--syslog-ca", s(&pki.ca), "--syslog-cert", &cert, "--syslog-key", &key];
    assert_eq!(run_fg(&g, &with, &["sh", "-c", "echo with a client certificate"]), 0);
    rs.wait_last("sh", "mtls", "with a client certificate");

    let ticker = Ticker::start(&g, &[], &["--syslog-server", &url, "--syslog-ca", s(&pki.ca)]);
    let refused = |log: &str| log.lines().any(|l| l.contains(&url) && l.contains("retrying"));
    assert!(wait_until(|| refused(&read(&ticker.log)), DEADLINE), "no refusal: {}", read(&ticker.log));
    let log = ticker.stop(&g);
    let said: Vec<&str> = log.lines().filter(|l| l.contains(&url)).collect();
    println!("without a client certificate: {said:?}");
    let ticks = numbers(&rs.tagged_via("sh", "mtls"), "tick ");
    assert!(ticks.is_empty(), "a client without a certificate got lines through: {ticks:?}");
}

/// rsyslogd stopped and started again while a command writes over TLS: as over TCP, detach
/// reconnects (a new handshake); the lines written once the collector is back arrive, in
/// order, and what was in flight when it died is at most one gap.
#[test]
fn rsyslogd_restarted_mid_stream_over_tls() {
    let g = Guard::new();
    let (pki, mut rs) =
        setup!(g, "rsyslogd_restarted_mid_stream_over_tls", |pki| vec![pki.input("tls", "server", "anon", "")]);
    let url = rs.tls_url("tls");
    restart_mid_stream(&g, &mut rs, &["--syslog-server", &url, "--syslog-ca", s(&pki.ca)], &["tls"]);
}

/// `--syslog-framing newline` to a collector that reads newline framing only (octet counting
/// off): each line is one message, none merged or cut, a tab and an escaped control byte kept.
#[test]
fn newline_framing_to_a_collector_configured_for_it() {
    const N: u64 = 2000;
    let g = Guard::new();
    let test = "newline_framing_to_a_collector_configured_for_it";
    let (pki, rs) =
        setup!(g, test, |pki| vec![pki.input("nl", "server", "anon", r#"supportOctetCountedFraming="off""#)]);
    let url = rs.tls_url("nl");
    let awk = format!("BEGIN {{ for (i = 0; i < {N}; i++) printf \"nl %d\\n\", i; printf \"a\\tb\\033c\\nend\\n\" }}");
    let opts = ["--syslog-server", &url, "--syslog-ca", s(&pki.ca), "--syslog-framing", "newline"];
    assert_eq!(run_fg(&g, &opts, &["awk", &awk]), 0);
    let msgs = rs.wait_last_for("awk", "nl", "end", LONG);
    assert_sequence(&numbers(&msgs, "nl "), N, "newline-framed lines");
    assert_eq!(msgs.len() as u64, N + 2, "{}", rs.dump());
    assert_eq!(msgs[N as usize].text(), "a\tb#033c");
}

/// `--syslog-format rfc3164`: rsyslogd's RFC 3164 parser finds the tag (%programname%), the
/// pid, the severity of stdout and stderr lines (%syslogseverity-text%), and the text.
#[test]
fn rfc3164_format_is_what_rsyslogd_parses() {
    let g = Guard::new();
    let (pki, rs) =
        setup!(g, "rfc3164_format_is_what_rsyslogd_parses", |pki| vec![pki.input("tls", "server", "anon", "")]);
    let opts = [
        "--syslog-server",
        &rs.tls_url("tls"),
        "--syslog-ca",
        s(&pki.ca),
        "--syslog-format",
        "rfc3164",
        "--syslog-tag",
        "webapp",
        "--syslog-facility",
        "local3",
    ];
    assert_eq!(run_fg(&g, &opts, &["sh", "-c", "echo to stdout; echo to stderr >&2; echo last"]), 0);
    let msgs = rs.wait_last("webapp", "tls", "last");
    // stdout and stderr are two pipes: their order between them is not kept.
    let mut got: Vec<(String, String)> = msgs.iter().map(|m| (m.pri(), m.text())).collect();
    got.sort();
    let want = [("local3.err", "to stderr"), ("local3.info", "last"), ("local3.info", "to stdout")];
    assert_eq!(got, want.map(|(p, t)| (p.to_string(), t.to_string())), "{}", rs.dump());
    assert!(msgs.iter().all(|m| m.procid.parse::<u32>().is_ok_and(|p| p > 1)), "{msgs:?}");
}

/// The collector moves: its name (in /etc/hosts, bind-mounted from a test file in a private
/// mount namespace) points at 127.0.0.2, then at 127.0.0.3 where rsyslogd comes back, while
/// detach runs; detach looks the name up again on reconnect and the lines follow, to the new
/// address (an input there of another name), with the certificate still checked against the
/// name.
#[test]
fn the_collectors_name_is_looked_up_again_on_reconnect() {
    let test = "the_collectors_name_is_looked_up_again_on_reconnect";
    if !is_root(test) {
        return;
    }
    let g = Guard::new();
    let (pki, mut rs) =
        setup!(g, test, |pki| vec![Input { address: "127.0.0.2".into(), ..pki.input("old", "server", "anon", "") }]);
    let port = rs.extra[0].port;
    let hosts = g.path("hosts");
    fs::write(&hosts, "127.0.0.1 localhost\n127.0.0.2 collector.test\n").unwrap();
    let url = format!("tls://collector.test:{port}");
    let mount = format!("mount --bind {} /etc/hosts && exec \"$0\" \"$@\"", s(&hosts));
    let ticker = Ticker::start(
        &g,
        &["unshare", "-m", "sh", "-c", &mount],
        &["--syslog-server", &url, "--syslog-ca", s(&pki.ca)],
    );
    let ticks = |rs: &Rsyslog, input| numbers(&rs.tagged_via("sh", input), "tick ");
    assert!(wait_until(|| ticks(&rs, "old").len() >= 10, DEADLINE), "no ticks to 127.0.0.2: {}", rs.dump());

    // Same inode, so the bind mount shows the new text.
    fs::write(&hosts, "127.0.0.1 localhost\n127.0.0.3 collector.test\n").unwrap();
    rs.stop();
    rs.extra[0] = Input { address: "127.0.0.3".into(), port, ..pki.input("new", "server", "anon", "") };
    rs.restart();
    let back = last_tick(&ticker.log).unwrap();
    assert!(
        wait_until(|| ticks(&rs, "new").last().is_some_and(|&t| t > back + 10), LONG),
        "the lines did not follow the name to 127.0.0.3: {}\n{}",
        rs.dump(),
        read(&ticker.log)
    );
    ticker.stop(&g);
    let (old, new) = (ticks(&rs, "old"), ticks(&rs, "new"));
    println!("to 127.0.0.2: ticks {:?}..; to 127.0.0.3: ticks {:?}..", old.first(), new.first());
    assert!(old.last() < new.first(), "old {old:?} new {new:?}");
}

/// TLS files that cannot be used stop detach before anything starts, with exit 64 and a line
/// naming the option, the file and why: a missing CA file, a file with no certificate, a
/// certificate without its key, TLS options for a tcp:// server, a tls:// URL without a host.
#[test]
fn unusable_tls_files_are_refused_at_start_with_64() {
    let g = Guard::new();
    let not_pem = g.path("not.pem");
    fs::write(&not_pem, "hello\n").unwrap();
    let missing = g.path("missing.pem");
    let server = ["--syslog-server", "tls://127.0.0.1:9"];
    let cases: [(Vec<&str>, &str); 5] = [
        ([&server[..], &["--syslog-ca", s(&missing)]].concat(), "cannot read --syslog-ca"),
        ([&server[..], &["--syslog-ca", s(&not_pem)]].concat(), "no certificate in it"),
        ([&server[..], &["--syslog-cert", s(&not_pem)]].concat(), "--syslog-key"),
        (vec!["--syslog-server", "tcp://127.0.0.1:9", "--syslog-ca", s(&not_pem)], "are for a tls:// server"),
        (vec!["--syslog-server", "tls://:6514"], "no host name"),
    ];
    for (opts, why) in cases {
        let err = crate::syslog::refused(&g, &opts, 64);
        assert!(err.contains(why), "{opts:?}: {err}");
    }
}

/// Neither a TLS connection that is up and idle nor one refused and being retried (the
/// handshake failing once a second) spins the supervisor: poll waits on the socket or the
/// backoff timer, never on a state it has already handled.
#[test]
fn idle_and_refused_tls_connections_do_not_spin_the_supervisor() {
    let g = Guard::new();
    let test = "idle_and_refused_tls_connections_do_not_spin_the_supervisor";
    let (pki, rs) =
        setup!(g, test, |pki| vec![pki.input("good", "server", "anon", ""), pki.input("bad", "other", "anon", ""),]);
    for (name, wait_for) in [("good", "arrived"), ("bad", "invalid peer certificate")] {
        let log = g.path(&format!("{name}.log"));
        let opts = ["--log", s(&log), "--syslog-server", &rs.tls_url(name), "--syslog-ca", s(&pki.ca)];
        let started = crate::util::start_named(&g, name, &opts, &["sh", "-c", "echo arrived; exec sleep 60"]);
        crate::util::wait_for_text(&log, wait_for);
        let ticks = crate::util::cpu_ticks_over(started.sup, std::time::Duration::from_secs(1));
        assert!(ticks < 30, "{name}: the idle supervisor used {ticks} ticks in 1 s; log: {:?}", read(&log));
    }
    assert!(!rs.tagged_via("sh", "good").is_empty(), "{}", rs.dump());
}
