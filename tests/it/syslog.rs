//! The guarantees of issue 4: syslog output to a local socket and to a remote collector over
//! TCP and UDP, checked against a real `rsyslogd` started by each test with a config of its
//! own (inputs on a socket in the test's temp dir and on free 127.0.0.1 ports, one output file
//! that shows input, facility, severity, program name, PROCID and message of every message).
//!
//! rsyslogd's own escaping of control characters is turned off in that config, so what the
//! output file holds is what detach sent: a raw control byte there is a detach bug.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use crate::util::{
    DEADLINE, Guard, cpu_ticks_over, detach, is_root, pids_with_arg, read, s, start, wait_child, wait_for_text,
    wait_until,
};

/// How long a test waits for many messages to arrive: only a hang reaches it.
pub(crate) const LONG: Duration = Duration::from_secs(60);

/// The tag of the harness's own readiness probes; the tests look at other tags only.
const PROBE: &str = "rsprobe";

// 0. The harness: a real rsyslogd.

/// One message as rsyslogd wrote it to the output file.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Msg {
    /// `imuxsock`, `imtcp` or `imudp`: how it arrived.
    pub(crate) input: String,
    pub(crate) facility: String,
    pub(crate) severity: String,
    /// rsyslog's `programname`: the tag (RFC 3164) or APP-NAME (RFC 5424).
    pub(crate) tag: String,
    /// The PID in `tag[pid]:` (RFC 3164) or PROCID (RFC 5424), `-` when none.
    pub(crate) procid: String,
    /// The message text, bytes as received (rsyslogd's escaping is off), a leading BOM removed.
    pub(crate) text: Vec<u8>,
}

impl Msg {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.text).into_owned()
    }

    /// `facility.severity`
    pub(crate) fn pri(&self) -> String {
        format!("{}.{}", self.facility, self.severity)
    }
}

/// rsyslogd, if installed: in $PATH or in the sbin directories a non-root $PATH may lack.
fn rsyslogd_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    dirs.map(|d| d.join("rsyslogd")).find(|p| p.is_file())
}

/// UDP ports handed out in this process, so that two tests running at once never pick the same.
static UDP_PORTS: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// A UDP port free on 127.0.0.1 right now (bound, then released for rsyslogd to bind).
fn free_udp_port() -> u16 {
    let mut taken = UDP_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
        let port = socket.local_addr().unwrap().port();
        if !taken.contains(&port) {
            taken.push(port);
            return port;
        }
    }
}

/// A running rsyslogd with an imuxsock input on [`Rsyslog::sock`], imtcp on 127.0.0.1
/// [`Rsyslog::tcp`] and imudp on 127.0.0.1 [`Rsyslog::udp`], every message of those inputs
/// written to [`Rsyslog::out`]. Its own messages go elsewhere (`internal.log`). Stopped on drop.
pub(crate) struct Rsyslog {
    bin: PathBuf,
    conf: PathBuf,
    pidfile: PathBuf,
    stderr: PathBuf,
    pub(crate) sock: PathBuf,
    pub(crate) dir: PathBuf,
    out: PathBuf,
    tcp: u16,
    udp: u16,
    /// Inputs of a test's own, besides the three above.
    pub(crate) extra: Vec<Input>,
    child: Option<Child>,
    /// Probes sent so far: each start sends new ones and waits for them.
    probes: u32,
}

/// An imtcp input of a test's own (TLS, newline framing, another address): its messages have
/// `name` as their input. Its port is picked by rsyslogd the first time (port 0), and kept.
pub(crate) struct Input {
    pub(crate) name: String,
    pub(crate) address: String,
    /// More of imtcp's input parameters (`streamDriver.*`, `supportOctetCountedFraming`).
    pub(crate) params: String,
    pub(crate) port: u16,
}

impl Rsyslog {
    /// Starts rsyslogd in `g`'s temp dir and waits until all three inputs deliver; None (after
    /// a SKIP line) when rsyslogd is not installed.
    fn start(g: &Guard, test: &str) -> Option<Rsyslog> {
        Rsyslog::start_with(g, test, Vec::new())
    }

    /// The same, with inputs of the test's own, which are ready once they take a connection.
    pub(crate) fn start_with(g: &Guard, test: &str, extra: Vec<Input>) -> Option<Rsyslog> {
        let Some(bin) = rsyslogd_binary() else {
            eprintln!("SKIP: {test}: rsyslogd is not installed (apt-get install -y rsyslog); CI installs it");
            return None;
        };
        let dir = g.path("rsyslog");
        fs::create_dir_all(&dir).expect("mkdir rsyslog");
        let sock = dir.join("log.sock");
        assert!(sock.as_os_str().len() < 108, "socket path too long for sun_path: {}", sock.display());
        let mut rs = Rsyslog {
            bin,
            conf: dir.join("rsyslog.conf"),
            pidfile: dir.join("rsyslogd.pid"),
            stderr: dir.join("rsyslogd.stderr"),
            out: dir.join("out.log"),
            sock,
            dir,
            tcp: 0,
            udp: 0,
            extra,
            child: None,
            probes: 0,
        };
        // The UDP port is picked here, and another process may take it before rsyslogd binds
        // it: then try another.
        for attempt in 1..=5 {
            rs.udp = free_udp_port();
            rs.spawn();
            if !read(&rs.stderr).contains("imudp") || attempt == 5 {
                break;
            }
            rs.stop();
        }
        rs.check_stderr();
        rs.probe();
        Some(rs)
    }

    /// The config: port 0 and a port file for imtcp the first time, the same port after that.
    fn write_conf(&self) {
        let d = s(&self.dir);
        let tcp = if self.tcp == 0 {
            format!(r#"port="0" listenPortFileName="{d}/tcp.port""#)
        } else {
            format!(r#"port="{}""#, self.tcp)
        };
        let extra: String = self
            .extra
            .iter()
            .map(|i| {
                let port = match i.port {
                    0 => format!(r#"port="0" listenPortFileName="{d}/{}.port""#, i.name),
                    p => format!(r#"port="{p}""#),
                };
                format!(
                    "input(type=\"imtcp\" name=\"{}\" address=\"{}\" {port} {} ruleset=\"detach_test\")\n",
                    i.name, i.address, i.params
                )
            })
            .collect();
        let conf = format!(
            r#"# detach's syslog tests: nothing here touches /dev/log or the system's logs.
global(workDirectory="{d}"
       parser.escapeControlCharactersOnReceive="off"
       parser.escapeControlCharacterTab="off")
# One worker: messages written in the order received (with more, whole batches of 256 swap).
main_queue(queue.workerThreads="1")
module(load="imuxsock" SysSock.Use="off")
module(load="imtcp")
module(load="imudp")
template(name="detach_test" type="string"
         string="%inputname% %syslogfacility-text%.%syslogseverity-text% %programname% %procid% %msg%\n")
# RFC 5424 first; RFC 3164 without the space after "TAG:" in the message.
parser(name="detach_test_3164" type="pmrfc3164" remove.msgFirstSpace="on")
ruleset(name="detach_test" parser=["rsyslog.rfc5424", "detach_test_3164"]) {{
    action(type="omfile" file="{out}" template="detach_test")
}}
input(type="imuxsock" Socket="{sock}" UseSpecialParser="off" RateLimit.Interval="0" ruleset="detach_test")
input(type="imtcp" address="127.0.0.1" {tcp} ruleset="detach_test")
input(type="imudp" address="127.0.0.1" port="{udp}" rcvbufSize="4m" ruleset="detach_test")
{extra}# rsyslogd's own messages, apart.
action(type="omfile" file="{d}/internal.log")
"#,
            out = s(&self.out),
            sock = s(&self.sock),
            udp = self.udp,
        );
        fs::write(&self.conf, conf).expect("write rsyslog.conf");
    }

    /// Writes the config, starts `rsyslogd -n` and waits for its socket and TCP port.
    fn spawn(&mut self) {
        self.write_conf();
        let _ = fs::remove_file(self.dir.join("tcp.port"));
        for i in &self.extra {
            let _ = fs::remove_file(self.dir.join(format!("{}.port", i.name)));
        }
        let child = Command::new(&self.bin)
            .arg("-n")
            .arg("-f")
            .arg(&self.conf)
            .arg("-i")
            .arg(&self.pidfile)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&self.stderr).expect("create rsyslogd.stderr"))
            .spawn()
            .expect("spawn rsyslogd");
        self.child = Some(child);
        let port_file = self.dir.join("tcp.port");
        let ready = wait_until(
            || {
                if self.child.as_mut().unwrap().try_wait().expect("try_wait").is_some() {
                    panic!("rsyslogd exited at start: {}", read(&self.stderr));
                }
                if self.tcp == 0 {
                    self.tcp = read(&port_file).trim().parse().unwrap_or(0);
                }
                for i in self.extra.iter_mut().filter(|i| i.port == 0) {
                    i.port = read(&self.dir.join(format!("{}.port", i.name))).trim().parse().unwrap_or(0);
                }
                let extra_up =
                    self.extra.iter().all(|i| i.port != 0 && TcpStream::connect((i.address.as_str(), i.port)).is_ok());
                self.sock.exists() && self.tcp != 0 && TcpStream::connect(("127.0.0.1", self.tcp)).is_ok() && extra_up
            },
            DEADLINE,
        );
        assert!(ready, "rsyslogd never got ready (socket, TCP port): {}", read(&self.stderr));
    }

    /// Fails on a config rsyslogd did not take whole: it starts anyway, without what it refused.
    fn check_stderr(&self) {
        let err = read(&self.stderr);
        let bad = ["error during parsing", "not known", "could not load", "imudp", "imtcp", "imuxsock"];
        assert!(!bad.iter().any(|b| err.contains(b)), "rsyslogd refused part of its config: {err}");
    }

    /// Sends one probe through each input and waits until all three are in the output file:
    /// then all of rsyslogd is up. UDP may be lost before imudp binds: resent until seen.
    fn probe(&mut self) {
        self.probes += 1;
        let n = self.probes;
        let unix = format!("<14>{PROBE}: unix {n}");
        let tcp = format!("<14>1 - - {PROBE} - - - tcp {n}");
        let udp = format!("<14>1 - - {PROBE} - - - udp {n}");
        let unix_socket = UnixDatagram::unbound().expect("unix datagram socket");
        let udp_socket = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        let mut tcp_stream = TcpStream::connect(("127.0.0.1", self.tcp)).expect("connect to imtcp");
        write!(tcp_stream, "{} {tcp}", tcp.len()).expect("send the TCP probe");
        let mut polls = 0;
        let mut seen = HashSet::new();
        let arrived = wait_until(
            || {
                if polls % 10 == 0 {
                    let _ = unix_socket.send_to(unix.as_bytes(), &self.sock);
                    let _ = udp_socket.send_to(udp.as_bytes(), ("127.0.0.1", self.udp));
                }
                polls += 1;
                seen = self.tagged(PROBE).iter().map(|m| format!("{} {}", m.input, m.text())).collect();
                ["imuxsock unix", "imtcp tcp", "imudp udp"].iter().all(|i| seen.contains(&format!("{i} {n}")))
            },
            DEADLINE,
        );
        assert!(arrived, "rsyslogd's inputs never delivered probes {n}: {seen:?}; stderr: {}", read(&self.stderr));
    }

    /// Stops rsyslogd with TERM and waits for it to exit.
    pub(crate) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        wait_child(&mut child, || "rsyslogd did not exit on TERM".to_string());
    }

    /// Sends SIGSTOP or SIGCONT: a collector that hangs, with its sockets open.
    fn signal(&self, sig: libc::c_int) {
        let pid = self.child.as_ref().expect("rsyslogd running").id() as i32;
        crate::util::signal(pid, sig);
    }

    /// Starts it again, on the same socket and ports, and waits until it delivers.
    pub(crate) fn restart(&mut self) {
        self.spawn();
        self.check_stderr();
        self.probe();
    }

    /// Every complete message in the output file, in order.
    pub(crate) fn messages(&self) -> Vec<Msg> {
        let data = fs::read(&self.out).unwrap_or_default();
        let mut lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
        lines.pop(); // after the last '\n': empty, or a line being written
        lines.into_iter().map(parse).collect()
    }

    /// The messages with this tag (program name), in order.
    pub(crate) fn tagged(&self, tag: &str) -> Vec<Msg> {
        self.messages().into_iter().filter(|m| m.tag == tag).collect()
    }

    /// The messages with this tag that came by `input`, in order.
    pub(crate) fn tagged_via(&self, tag: &str, input: &str) -> Vec<Msg> {
        self.tagged(tag).into_iter().filter(|m| m.input == input).collect()
    }

    /// Waits until a message with this tag, by `input`, has the text `last`; returns all the
    /// messages with that tag by that input. For a command whose last line is `last`.
    pub(crate) fn wait_last(&self, tag: &str, input: &str, last: &str) -> Vec<Msg> {
        self.wait_last_for(tag, input, last, DEADLINE)
    }

    pub(crate) fn wait_last_for(&self, tag: &str, input: &str, last: &str, timeout: Duration) -> Vec<Msg> {
        let found = wait_until(|| self.tagged_via(tag, input).iter().any(|m| m.text == last.as_bytes()), timeout);
        assert!(found, "{tag} {last:?} never arrived by {input}; output: {}", self.dump());
        self.tagged_via(tag, input)
    }

    /// The output file, shortened, for failure messages.
    pub(crate) fn dump(&self) -> String {
        let data = fs::read(&self.out).unwrap_or_default();
        if data.len() <= 4000 {
            return String::from_utf8_lossy(&data).into_owned();
        }
        let (head, tail) = (&data[..2000], &data[data.len() - 2000..]);
        format!("{}\n[...]\n{}", String::from_utf8_lossy(head), String::from_utf8_lossy(tail))
    }

    pub(crate) fn server(&self, proto: &str) -> String {
        let port = if proto == "udp" { self.udp } else { self.tcp };
        format!("{proto}://127.0.0.1:{port}")
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Parses one line of the template `%inputname% %fac%.%sev% %programname% %procid% %msg%`.
fn parse(line: &[u8]) -> Msg {
    let mut fields = line.splitn(5, |&b| b == b' ');
    let mut next = || String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let (input, pri, tag, procid) = (next(), next(), next(), next());
    let text = fields.next().unwrap_or_else(|| {
        panic!("a line of rsyslogd's output does not parse (a raw newline in a message?): {line:?}")
    });
    let text = text.strip_prefix("\u{feff}".as_bytes()).unwrap_or(text).to_vec();
    let (facility, severity) = pri.split_once('.').map(|(f, s)| (f.to_string(), s.to_string())).unwrap_or_default();
    Msg { input, facility, severity, tag, procid, text }
}

/// Starts rsyslogd for this test, or returns (the test skipped) when it is not installed.
macro_rules! rsyslog {
    ($g:expr, $test:expr) => {
        match Rsyslog::start(&$g, $test) {
            Some(rs) => rs,
            None => return,
        }
    };
}

/// `detach --foreground OPTS -- ARGV`, run to its end; returns its exit code.
pub(crate) fn run_fg(g: &Guard, opts: &[&str], argv: &[&str]) -> i32 {
    let out = g.run(detach().arg("--foreground").args(opts).arg("--").args(argv));
    out.code().unwrap_or_else(|| panic!("detach was killed: {out:?}"))
}

/// The messages' texts, as strings.
fn texts(msgs: &[Msg]) -> Vec<String> {
    msgs.iter().map(Msg::text).collect()
}

/// The numbers N of the texts `PREFIX N`, in order.
pub(crate) fn numbers(msgs: &[Msg], prefix: &str) -> Vec<u64> {
    msgs.iter().filter_map(|m| m.text().strip_prefix(prefix)?.parse().ok()).collect()
}

/// The N of each message `line N SUFFIX` a writer sent (its final `end` left out); panics on
/// any other text.
pub(crate) fn writer_numbers(msgs: &[Msg], suffix: &str) -> Vec<u64> {
    msgs.iter()
        .filter(|m| m.text != b"end")
        .map(|m| {
            let n = m.text().strip_prefix("line ").and_then(|r| r.split(' ').next()?.parse().ok());
            let n = n.unwrap_or_else(|| panic!("not a line of the writer: {m:?}"));
            assert_eq!(m.text(), format!("line {n} {suffix}"), "{m:?}");
            n
        })
        .collect()
}

/// Checks that `got` is exactly 0, 1, ..., n-1: every line once, in order; names the first
/// difference.
pub(crate) fn assert_sequence(got: &[u64], n: u64, what: &str) {
    for (i, &k) in got.iter().enumerate() {
        assert_eq!(k, i as u64, "{what}: message {i} is line {k} (lost, doubled or reordered)");
    }
    assert_eq!(got.len() as u64, n, "{what}: {} of {n} lines arrived", got.len());
}

/// The harness itself, with util-linux `logger` as the sender: each input delivers, the
/// template parses back, and rsyslogd passes control bytes through unescaped. When this fails,
/// the other tests' failures say nothing about detach.
#[test]
fn harness_receives_what_logger_sends() {
    let g = Guard::new();
    let mut rs = rsyslog!(g, "harness_receives_what_logger_sends");
    let tcp = rs.tcp.to_string();
    let udp = rs.udp.to_string();
    let sends: [Vec<&str>; 4] = [
        vec!["-u", s(&rs.sock), "-p", "local3.warning", "--id=4242", "-t", "lg-unix"],
        vec!["-u", s(&rs.sock), "--rfc5424", "-p", "local7.err", "-t", "lg-unix5424"],
        vec!["--tcp", "--server", "127.0.0.1", "--port", &tcp, "--octet-count", "-p", "daemon.debug", "-t", "lg-tcp"],
        vec!["--udp", "--server", "127.0.0.1", "--port", &udp, "-p", "auth.crit", "-t", "lg-udp"],
    ];
    for args in &sends {
        let out = g.run(Command::new("logger").args(args).arg("  two spaces,\ta tab\x01 and trailing  "));
        if out.status.code() == Some(127) || (out.stderr.contains("No such file") && out.stderr.contains("logger")) {
            eprintln!("SKIP: harness_receives_what_logger_sends: no logger (util-linux)");
            return;
        }
        assert_eq!(out.code(), Some(0), "logger {args:?}: {out:?}");
    }
    let want = [
        ("lg-unix", "imuxsock", "local3.warning", "4242"),
        ("lg-unix5424", "imuxsock", "local7.err", "-"),
        ("lg-tcp", "imtcp", "daemon.debug", "-"),
        ("lg-udp", "imudp", "auth.crit", "-"),
    ];
    for (tag, input, pri, procid) in want {
        assert!(wait_until(|| !rs.tagged(tag).is_empty(), DEADLINE), "{tag}: {}", rs.dump());
        let m = &rs.tagged(tag)[0];
        assert_eq!((m.input.as_str(), m.pri(), m.procid.as_str()), (input, pri.to_string(), procid), "{m:?}");
        assert_eq!(m.text(), "  two spaces,\ta tab\x01 and trailing  ", "{m:?}");
    }
    // Raw bytes straight to the socket: rsyslogd's escaping is off.
    let raw = UnixDatagram::unbound().unwrap();
    raw.send_to(b"<30>raw[7]: a\tb\x01c\xffd", &rs.sock).unwrap();
    assert!(wait_until(|| !rs.tagged("raw").is_empty(), DEADLINE), "{}", rs.dump());
    assert_eq!(rs.tagged("raw")[0].text, b"a\tb\x01c\xffd");
    assert_eq!(rs.tagged("raw")[0].pri(), "daemon.info");
    // A restart: same socket, same ports, the output file appended to.
    rs.stop();
    assert!(TcpStream::connect(("127.0.0.1", rs.tcp)).is_err(), "rsyslogd still listens after stop");
    rs.restart();
    let out = g.run(Command::new("logger").args(["-T", "-n", "127.0.0.1", "-P", &tcp, "-t", "lg-again", "again"]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert!(wait_until(|| !rs.tagged("lg-again").is_empty(), DEADLINE), "{}", rs.dump());
    assert_eq!(rs.tagged("lg-tcp").len(), 1, "{}", rs.dump());
}

// 1. Facility, severity, tag and PROCID.

#[test]
fn stdout_and_stderr_lines_get_daemon_info_and_err_tag_and_pid() {
    let g = Guard::new();
    let rs = rsyslog!(g, "stdout_and_stderr_lines_get_daemon_info_and_err_tag_and_pid");
    let pidfile = g.path("sh.pid");
    // The last stdout line has no newline: it is still one message, at EOF.
    let script = format!(
        "echo $$ > {}; echo out one; echo err one >&2; echo '  spaced  out  '; echo err two >&2; echo; printf 'tail'",
        s(&pidfile)
    );
    let code = run_fg(&g, &["--syslog-socket", s(&rs.sock)], &["sh", "-c", &script]);
    assert_eq!(code, 0);
    let pid = read(&pidfile).trim().to_string();
    let msgs = rs.wait_last("sh", "imuxsock", "tail");
    let (out, err): (Vec<Msg>, Vec<Msg>) = msgs.iter().cloned().partition(|m| m.severity == "info");
    assert_eq!(texts(&out), ["out one", "  spaced  out  ", "", "tail"], "{msgs:#?}");
    assert_eq!(texts(&err), ["err one", "err two"], "{msgs:#?}");
    for m in &msgs {
        assert_eq!(m.facility, "daemon", "{m:?}");
        assert!(m.severity == "info" || m.severity == "err", "{m:?}");
        assert_eq!(m.procid, pid, "PROCID is not the command's pid: {m:?}");
    }
}

/// The default tag is the basename of argv[0], by every transport; PROCID the command's pid.
#[test]
fn the_default_tag_is_the_commands_basename() {
    let g = Guard::new();
    let rs = rsyslog!(g, "the_default_tag_is_the_commands_basename");
    let bin = g.path("bin");
    fs::create_dir(&bin).unwrap();
    let script = bin.join("my-daemon");
    fs::write(&script, "#!/bin/sh\necho \"pid $$\"\necho \"oops $$\" >&2\necho end\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    for (input, opts) in [
        ("imuxsock", vec!["--syslog-socket", s(&rs.sock)]),
        ("imtcp", vec!["--syslog-server", &rs.server("tcp")]),
        ("imudp", vec!["--syslog-server", &rs.server("udp")]),
    ] {
        assert_eq!(run_fg(&g, &opts, &[s(&script)]), 0, "{input}");
        let msgs = rs.wait_last("my-daemon", input, "end");
        let pid = msgs.iter().find_map(|m| m.text().strip_prefix("pid ").map(str::to_string));
        let pid = pid.unwrap_or_else(|| panic!("{input}: no 'pid' line: {msgs:?}"));
        let want: Vec<(String, String, String)> = [("daemon.info", "pid"), ("daemon.err", "oops")]
            .iter()
            .map(|(pri, word)| (pri.to_string(), pid.clone(), format!("{word} {pid}")))
            .chain([("daemon.info".to_string(), pid.clone(), "end".to_string())])
            .collect();
        let mut got: Vec<(String, String, String)> =
            msgs.iter().map(|m| (m.pri(), m.procid.clone(), m.text())).collect();
        // stdout and stderr are two pipes: only the order within each is kept.
        got.sort_by_key(|(_, _, text)| if text == "end" { 2 } else { u8::from(text.starts_with("oops")) });
        assert_eq!(got, want, "{input}: {}", rs.dump());
    }
    let other = rs.messages().into_iter().filter(|m| m.tag != "my-daemon" && m.tag != PROBE).collect::<Vec<_>>();
    assert!(other.is_empty(), "messages with another tag: {other:?}");
}

/// Every facility and priority name, the aliases, and --syslog-tag.
#[test]
fn a_chosen_facility_priorities_and_tag() {
    let g = Guard::new();
    let rs = rsyslog!(g, "a_chosen_facility_priorities_and_tag");
    let sock = s(&rs.sock);
    let facilities = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "local0",
        "local1", "local2", "local3", "local4", "local5", "local6", "local7",
    ];
    for f in facilities {
        let tag = format!("fac-{f}");
        let opts = ["--syslog-socket", sock, "--syslog-facility", f, "--syslog-tag", &tag];
        assert_eq!(run_fg(&g, &opts, &["sh", "-c", "echo out; echo err >&2"]), 0, "{f}");
        assert!(wait_until(|| rs.tagged(&tag).len() >= 2, DEADLINE), "{tag}: {}", rs.dump());
        let mut got: Vec<String> = rs.tagged(&tag).iter().map(|m| format!("{} {}", m.pri(), m.text())).collect();
        got.sort();
        assert_eq!(got, [format!("{f}.err err"), format!("{f}.info out")], "--syslog-facility {f}");
    }
    let levels = [
        ("emerg", "emerg"),
        ("alert", "alert"),
        ("crit", "crit"),
        ("err", "err"),
        ("error", "err"),
        ("warning", "warning"),
        ("warn", "warning"),
        ("notice", "notice"),
        ("info", "info"),
        ("debug", "debug"),
    ];
    for (i, (level, shown)) in levels.iter().enumerate() {
        // stdout gets the level, stderr the next one in the list: both options at once.
        let (other, other_shown) = levels[(i + 1) % levels.len()];
        let tag = format!("lvl-{level}");
        let opts = [
            "--syslog-socket",
            sock,
            "--syslog-facility",
            "local4",
            "--syslog-tag",
            &tag,
            "--syslog-stdout-priority",
            level,
            "--syslog-stderr-priority",
            other,
        ];
        assert_eq!(run_fg(&g, &opts, &["sh", "-c", "echo out; echo err >&2"]), 0, "{level}");
        assert!(wait_until(|| rs.tagged(&tag).len() >= 2, DEADLINE), "{tag}: {}", rs.dump());
        let mut got: Vec<String> = rs.tagged(&tag).iter().map(|m| format!("{} {}", m.pri(), m.text())).collect();
        got.sort();
        let mut want = [format!("local4.{shown} out"), format!("local4.{other_shown} err")];
        want.sort();
        assert_eq!(got, want, "--syslog-stdout-priority {level} --syslog-stderr-priority {other}");
    }
}

// 2. Transports and volume.

/// 20,000 lines over TCP: every one arrives, once, in order.
#[test]
fn twenty_thousand_lines_over_tcp_arrive_once_and_in_order() {
    const N: u64 = 20_000;
    let g = Guard::new();
    let rs = rsyslog!(g, "twenty_thousand_lines_over_tcp_arrive_once_and_in_order");
    let awk = format!(
        "BEGIN {{ for (i = 0; i < {N}; i++) printf \"line %d of a fast writer, padded to look like a log\\n\", i; print \"end\" }}"
    );
    let code = run_fg(&g, &["--syslog-server", &rs.server("tcp")], &["awk", &awk]);
    assert_eq!(code, 0);
    let msgs = rs.wait_last_for("awk", "imtcp", "end", LONG);
    let lines = writer_numbers(&msgs, "of a fast writer, padded to look like a log");
    assert_sequence(&lines, N, "20,000 lines over TCP");
    assert_eq!(msgs.last().unwrap().text, b"end");
}

/// A few hundred lines over UDP on loopback, every one asked for, in order. Loopback loses a
/// datagram only when the receiver's buffer is full, and the kernel charges each small datagram
/// about 1 KiB of it: with the default 208 KiB buffer a burst of 300 loses the lines past 256
/// or so (seen). So the harness's imudp asks for a 4 MiB buffer (rcvbufSize; rsyslogd forces it
/// as root, else up to net.core.rmem_max). A failure names the kernel's count of datagrams
/// dropped for a full buffer meanwhile (/proc/net/snmp RcvbufErrors, all sockets).
#[test]
fn udp_lines_arrive() {
    const N: u64 = 300;
    let g = Guard::new();
    let rs = rsyslog!(g, "udp_lines_arrive");
    let full_before = udp_rcvbuf_errors();
    let awk = format!(
        "BEGIN {{ for (i = 0; i < {N}; i++) printf \"udp %d\\n\", i; print \"err\" > \"/dev/stderr\"; print \"end\" }}"
    );
    let code = run_fg(&g, &["--syslog-server", &rs.server("udp"), "--syslog-tag", "udp-test"], &["awk", &awk]);
    assert_eq!(code, 0);
    let found = wait_until(|| rs.tagged_via("udp-test", "imudp").iter().any(|m| m.text == b"end"), DEADLINE);
    let msgs = rs.tagged_via("udp-test", "imudp");
    let got = numbers(&msgs, "udp ");
    let full = udp_rcvbuf_errors() - full_before;
    assert!(
        found && got.len() as u64 == N,
        "{} of {N} UDP lines arrived; full receive buffers meanwhile: {full}",
        got.len()
    );
    assert_sequence(&got, N, "UDP lines");
    let errs: Vec<String> = msgs.iter().filter(|m| m.severity == "err").map(Msg::text).collect();
    assert_eq!(errs, ["err"]);
    assert!(msgs.iter().all(|m| m.facility == "daemon"), "{msgs:?}");
}

/// Daemon mode, `--log` plus the local socket plus a TCP server: the file and both syslog
/// inputs have every line.
#[test]
fn log_file_socket_and_tcp_all_get_every_line() {
    const N: u64 = 500;
    let g = Guard::new();
    let rs = rsyslog!(g, "log_file_socket_and_tcp_all_get_every_line");
    let log = g.path("app.log");
    let tcp = rs.server("tcp");
    let go = g.path("go");
    // Waits for GO: start() sees the command's pidfile before the command exits.
    let script = format!(
        "while [ ! -e {go} ]; do sleep 0.01; done; for i in $(seq 0 {}); do echo \"out $i\"; echo \"err $i\" >&2; done; echo end",
        N - 1,
        go = s(&go)
    );
    let opts = ["--log", s(&log), "--syslog-socket", s(&rs.sock), "--syslog-server", &tcp];
    let (daemon, _) = start(&g, &opts, &["sh", "-c", &script, "sh", &g.marker()]);
    fs::write(&go, "").unwrap();
    daemon.wait_exit(&log);
    let text = read(&log);
    let file_out: Vec<u64> = text.lines().filter_map(|l| l.strip_prefix("out ")?.parse().ok()).collect();
    let file_err: Vec<u64> = text.lines().filter_map(|l| l.strip_prefix("err ")?.parse().ok()).collect();
    assert_sequence(&file_out, N, "stdout in the file");
    assert_sequence(&file_err, N, "stderr in the file");
    assert_eq!(text.lines().count() as u64, 2 * N + 1, "{text}");
    for input in ["imuxsock", "imtcp"] {
        let msgs = rs.wait_last("sh", input, "end");
        let (out, err): (Vec<Msg>, Vec<Msg>) = msgs.into_iter().partition(|m| m.severity == "info");
        assert_sequence(&numbers(&out, "out "), N, &format!("stdout by {input}"));
        assert_sequence(&numbers(&err, "err "), N, &format!("stderr by {input}"));
        assert!(err.iter().all(|m| m.severity == "err"), "{input}: {err:?}");
    }
}

/// The kernel's count of UDP datagrams dropped because a receive buffer was full.
fn udp_rcvbuf_errors() -> i64 {
    let snmp = read(Path::new("/proc/net/snmp"));
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp: "));
    let (names, values) = (udp.next().unwrap_or_default(), udp.next().unwrap_or_default());
    let at = names.split_whitespace().position(|n| n == "RcvbufErrors");
    at.and_then(|i| values.split_whitespace().nth(i)?.parse().ok()).unwrap_or(0)
}

// 3. The collector going away.

/// A slow writer until STOP exists: "tick 0", "tick 1", ... every 20 ms.
pub(crate) fn ticker(stop: &Path) -> String {
    format!("i=0; while [ ! -e {} ]; do echo \"tick $i\"; i=$((i+1)); sleep 0.02; done; echo end", s(stop))
}

/// The last "tick N" in the file.
pub(crate) fn last_tick(path: &Path) -> Option<u64> {
    read(path).lines().filter_map(|l| l.strip_prefix("tick ")?.parse().ok()).next_back()
}

/// rsyslogd stopped and started again while a command writes, to TCP and to the local socket
/// (which rsyslogd recreates): detach reconnects; every line written once the collector is
/// back arrives, once and in order; what was written while it was down waits in the backlog
/// and follows (only what was in flight when rsyslogd died may be lost, and only as one gap);
/// nothing is dropped; the file log has every line.
#[test]
fn rsyslogd_restarted_mid_stream_over_tcp() {
    let g = Guard::new();
    let mut rs = rsyslog!(g, "rsyslogd_restarted_mid_stream_over_tcp");
    let tcp = rs.server("tcp");
    let sock = s(&rs.sock).to_string();
    restart_mid_stream(&g, &mut rs, &["--syslog-server", &tcp, "--syslog-socket", &sock], &["imtcp", "imuxsock"]);
}

/// `CMD --foreground --log LOG OPTS -- sh -c TICKER` (CMD: detach, or a wrapper that runs it),
/// ticking until STOP exists; its stderr in `detach.stderr`. Tracked by the guard.
pub(crate) fn spawn_ticker(g: &Guard, mut cmd: Command, opts: &[&str], log: &Path, stop: &Path) -> Child {
    let child = cmd
        .args(["--foreground", "--log", s(log)])
        .args(opts)
        .args(["--", "sh", "-c", &ticker(stop)])
        .arg("sh")
        .arg(g.marker())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(g.path("detach.stderr")).unwrap())
        .spawn()
        .expect("spawn detach");
    g.track(child.id() as i32);
    child
}

/// The body of the restart tests (here and over TLS): a ticker under `detach --foreground
/// --log app.log OPTS`; rsyslogd stopped, started again; the ticks checked by each of `inputs`.
pub(crate) fn restart_mid_stream(g: &Guard, rs: &mut Rsyslog, opts: &[&str], inputs: &[&str]) {
    let (log, stop) = (g.path("app.log"), g.path("stop"));
    let mut child = spawn_ticker(g, detach(), opts, &log, &stop);
    g.track(child.id() as i32);
    let ticks = |rs: &Rsyslog, input| numbers(&rs.tagged_via("sh", input), "tick ");
    let both = |rs: &Rsyslog, least: u64| inputs.iter().all(|i| ticks(rs, i).last().is_some_and(|&t| t >= least));
    assert!(wait_until(|| both(rs, 10), DEADLINE), "no ticks by {inputs:?}: {}", rs.dump());

    rs.stop();
    // The last line written before rsyslogd was gone for sure.
    let dead = last_tick(&log).expect("ticks in the file");
    // An outage of 25 lines or more (half a second), then rsyslogd again.
    assert!(wait_until(|| last_tick(&log).is_some_and(|t| t >= dead + 25), DEADLINE), "the command stalled");
    rs.restart();
    let back = last_tick(&log).unwrap();
    // Then 50 more lines (a second, past the longest backoff) with the collector up.
    assert!(wait_until(|| both(rs, back + 50), LONG), "no reconnection: {}", rs.dump());
    fs::write(&stop, "").unwrap();
    let status = wait_child(&mut child, || format!("detach did not exit: {}", read(&g.path("detach.stderr"))));
    assert_eq!(status.code(), Some(0), "{}", read(&g.path("detach.stderr")));

    // The file log: every tick, in order.
    let text = read(&log);
    let file: Vec<u64> = text.lines().filter_map(|l| l.strip_prefix("tick ")?.parse().ok()).collect();
    let total = file.len() as u64;
    assert_sequence(&file, total, "ticks in the file log");
    assert!(text.ends_with("end\n"), "{text}");

    for &input in inputs {
        let msgs = rs.wait_last_for("sh", input, "end", LONG);
        let got = numbers(&msgs, "tick ");
        // In order, never twice.
        for pair in got.windows(2) {
            assert!(pair[0] < pair[1], "ticks doubled or reordered by {input}: {got:?}");
        }
        // At most one gap, the lines in flight when rsyslogd went away: it ends before the
        // outage was 10 lines old (detach notices a dead connection at its next writes, and from
        // then on every line waits in the backlog); after it every line arrived.
        let gaps: Vec<(u64, u64)> = got.windows(2).filter(|p| p[1] != p[0] + 1).map(|p| (p[0], p[1])).collect();
        assert!(got.first() == Some(&0), "{input}: the first lines are missing: {got:?}");
        assert!(got.last() == Some(&(total - 1)), "{input}: the last lines are missing: {got:?}");
        assert!(gaps.len() <= 1, "{input}: more than one gap in the ticks: {gaps:?}");
        if let Some(&(_, after)) = gaps.first() {
            assert!(
                after <= dead + 10,
                "{input}: lines written while rsyslogd was down were lost: {gaps:?}, dead at {dead}"
            );
        }
        println!("ticks 0..{total}; rsyslogd down from tick {dead} to {back}; gaps by {input}: {gaps:?}");
    }
    let own = rs.tagged("detach");
    assert!(!own.iter().any(|m| m.text().contains("dropped")), "a short outage dropped lines: {own:?}");
    assert!(own.iter().all(|m| m.severity == "warning" && m.facility == "daemon"), "{own:?}");
}

/// A TCP collector down at start is not an error; when the backlog bound is passed the oldest
/// lines go, and once connected detach says how many: `dropped N lines (REASON) between T1
/// and T2`, tag detach; the lines that arrive are the newest, contiguous; the file log has all;
/// the command was never blocked.
#[test]
fn tcp_collector_down_at_start_then_a_backlog_overflow_is_reported() {
    const N: u64 = 3000;
    let g = Guard::new();
    let mut rs = rsyslog!(g, "tcp_collector_down_at_start_then_a_backlog_overflow_is_reported");
    rs.stop();
    let (log, go) = (g.path("app.log"), g.path("go"));
    let tcp = rs.server("tcp");
    // N lines of 100 bytes (300 KB) at full speed against a 16 KiB backlog, then waits for GO.
    let script = format!(
        "awk 'BEGIN {{ for (i = 0; i < {N}; i++) printf \"burst %06d %s\\n\", i, \"{pad}\" }}'; \
         while [ ! -e {go} ]; do sleep 0.02; done; echo end",
        pad = "x".repeat(86),
        go = s(&go),
    );
    let opts = ["--log", s(&log), "--log-buffer", "16K", "--syslog-server", &tcp];
    let (daemon, _) = start(&g, &opts, &["sh", "-c", &script, "sh", &g.marker()]);
    // Never blocked: all N lines reach the file while the collector is down.
    let all = wait_until(|| read(&log).lines().filter(|l| l.starts_with("burst ")).count() as u64 == N, DEADLINE);
    assert!(all, "the command was blocked: {} lines in the file", read(&log).lines().count());
    rs.restart();
    let own = || rs.tagged("detach").into_iter().filter(|m| m.text().contains("dropped ")).collect::<Vec<_>>();
    assert!(wait_until(|| !own().is_empty(), LONG), "no 'dropped' message: {}", rs.dump());
    fs::write(&go, "").unwrap();
    daemon.wait_exit(&log);

    let drops = own();
    assert_eq!(drops.len(), 1, "{drops:?}");
    let m = &drops[0];
    assert_eq!((m.facility.as_str(), m.severity.as_str()), ("daemon", "warning"), "{m:?}");
    let text = m.text();
    // dropped N lines (REASON) between T1 and T2
    let rest = text.split_once("dropped ").unwrap().1;
    let (count, rest) = rest.split_once(" lines (").unwrap_or_else(|| panic!("{text:?}"));
    let dropped: u64 = count.parse().unwrap_or_else(|_| panic!("{text:?}"));
    let (reason, rest) = rest.split_once(") between ").unwrap_or_else(|| panic!("{text:?}"));
    assert!(!reason.is_empty() && rest.contains(" and "), "{text:?}");

    let msgs = rs.wait_last_for("sh", "imtcp", "end", LONG);
    let pad = "x".repeat(86);
    let got: Vec<u64> = msgs
        .iter()
        .filter(|m| m.text != b"end")
        .map(|m| {
            let n = m.text().strip_prefix("burst ").and_then(|r| r.split(' ').next()?.parse().ok());
            let n = n.unwrap_or_else(|| panic!("not a burst line: {m:?}"));
            assert_eq!(m.text(), format!("burst {n:06} {pad}"), "a line arrived changed");
            n
        })
        .collect();
    assert!(!got.is_empty(), "no burst line arrived: the backlog held nothing");
    let first = got[0];
    let want: Vec<u64> = (first..N).collect();
    assert_eq!(got, want, "the lines that arrived are not the newest, contiguous");
    // Each line is counted once: dropped or delivered. detach's own warnings share the
    // backlog, and a dropped one of those may be counted too.
    assert!(
        (N..=N + 3).contains(&(dropped + got.len() as u64)),
        "{dropped} dropped + {} delivered != {N} lines: {text:?}",
        got.len()
    );
    assert_eq!(read(&log).lines().filter(|l| l.starts_with("burst ")).count() as u64, N);
}

/// A TCP collector down for the whole run: the command runs, detach exits with its status
/// (after a bounded grace), and the lines it never delivered are counted in the file log, not
/// lost without a word.
#[test]
fn lines_never_delivered_are_counted_at_exit() {
    let g = Guard::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = g.path("app.log");
    let server = format!("tcp://127.0.0.1:{port}");
    let code = run_fg(&g, &["--log", s(&log), "--syslog-server", &server], &["sh", "-c", "echo one; echo two; exit 3"]);
    assert_eq!(code, 3);
    let text = read(&log);
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with("detach: ")).collect();
    assert_eq!(lines, ["one", "two"], "{text}");
    let dropped: Vec<u64> = text
        .lines()
        .filter(|l| l.starts_with("detach: "))
        .filter_map(|l| l.split_once("dropped ")?.1.split_once(" lines")?.0.parse().ok())
        .collect();
    assert!(dropped.iter().sum::<u64>() >= 2, "the 2 undelivered lines are not counted in the file log: {text}");
}

/// A collector that hangs with its connection open (SIGSTOP): the command is never blocked (the
/// file log gets every line meanwhile); once it is back the oldest lines were dropped and said
/// so, the rest arrive in order, and each line is either delivered or counted; by TCP and by
/// the local socket.
#[test]
fn a_hung_collector_never_blocks_the_command() {
    const N: u64 = 100_000;
    let g = Guard::new();
    let rs = rsyslog!(g, "a_hung_collector_never_blocks_the_command");
    let (log, go) = (g.path("app.log"), g.path("go"));
    // 10 MB, past what the kernel's socket buffers hold, against a 64 KiB backlog.
    let script = format!(
        "while [ ! -e {go} ]; do sleep 0.01; done; \
         awk 'BEGIN {{ for (i = 0; i < {N}; i++) printf \"hung %06d %s\\n\", i, \"{pad}\" }}'; echo end",
        pad = "x".repeat(88),
        go = s(&go),
    );
    let opts = ["--log", s(&log), "--log-buffer", "64K", "--syslog-server", &rs.server("tcp")];
    let mut opts = opts.to_vec();
    opts.extend(["--syslog-socket", s(&rs.sock), "--syslog-tag", "hung"]);
    let (daemon, _) = start(&g, &opts, &["sh", "-c", &script, "sh", &g.marker()]);
    rs.signal(libc::SIGSTOP);
    fs::write(&go, "").unwrap();
    let all = wait_until(|| read(&log).ends_with("end\n"), LONG);
    assert!(all, "the command was blocked by a hung collector: {} lines in the file", read(&log).lines().count());
    rs.signal(libc::SIGCONT);
    daemon.wait_exit(&log);
    let text = read(&log);
    assert_eq!(text.lines().filter(|l| l.starts_with("hung ")).count() as u64, N, "the file log lost lines");
    let pad = "x".repeat(88);
    for input in ["imtcp", "imuxsock"] {
        let msgs = rs.wait_last_for("hung", input, "end", LONG);
        let got: Vec<u64> = msgs
            .iter()
            .filter(|m| m.text != b"end")
            .map(|m| {
                let n = m.text().strip_prefix("hung ").and_then(|r| r.split(' ').next()?.parse().ok());
                let n = n.unwrap_or_else(|| panic!("{input}: not a line of the command: {m:?}"));
                assert_eq!(m.text(), format!("hung {n:06} {pad}"), "{input}: a line arrived changed");
                n
            })
            .collect();
        for pair in got.windows(2) {
            assert!(pair[0] < pair[1], "{input}: lines doubled or reordered: {} then {}", pair[0], pair[1]);
        }
        let own: Vec<Msg> = rs.tagged_via("detach", input);
        let dropped: u64 = own
            .iter()
            .filter_map(|m| m.text().split_once("dropped ")?.1.split_once(" lines (")?.0.parse::<u64>().ok())
            .sum();
        assert!(dropped > 0, "{input}: nothing said dropped, {} of {N} arrived: {own:?}", got.len());
        assert!(
            (N..=N + 3).contains(&(dropped + got.len() as u64)),
            "{input}: {dropped} said dropped + {} delivered != {N}: {own:?}",
            got.len()
        );
        println!("{input}: {} of {N} delivered, {dropped} said dropped", got.len());
    }
}

// 4. What a message holds.

/// The message text of part `i` of `n`, or panics.
fn part_body(m: &Msg, i: usize, n: usize) -> Vec<u8> {
    let prefix = format!("[part {i}/{n}] ");
    let body = m.text.strip_prefix(prefix.as_bytes()).unwrap_or_else(|| panic!("part {i}/{n}: {m:?}"));
    assert!(body.len() <= 2000, "part {i}/{n} has {} bytes of text", body.len());
    assert!(!body.is_empty(), "part {i}/{n} is empty");
    body.to_vec()
}

/// Lines up to 2000 bytes are one message; longer ones are split into `[part I/N] ` messages
/// whose texts put together give the line back, never cut inside an escape or a UTF-8
/// character; by the local socket and by TCP.
#[test]
fn a_long_line_is_split_into_numbered_parts() {
    let g = Guard::new();
    let rs = rsyslog!(g, "a_long_line_is_split_into_numbered_parts");
    // Line k: its expected text (escaped) and the raw bytes the command writes.
    let exact: Vec<u8> = (0..2000).map(|i| b'a' + (i % 26) as u8).collect();
    let over: Vec<u8> = (0..2001).map(|i| b'A' + (i % 26) as u8).collect();
    let long: Vec<u8> = (0..9000).map(|i| b'0' + (i % 10) as u8).collect();
    let euro = "€".repeat(1500).into_bytes(); // 4500 bytes, 3 per character
    let controls = vec![1u8; 700]; // 2800 bytes once escaped
    let py = "import sys\nw = sys.stdout.buffer.write\n\
              for line in sys.argv[1:]:\n    w(bytes.fromhex(line) + b'\\n')\nw(b'end\\n')\n";
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let lines = [&exact, &over, &long, &euro, &controls];
    let args: Vec<String> = lines.iter().map(|l| hex(l)).collect();
    let mut argv = vec!["python3", "-c", py];
    argv.extend(args.iter().map(String::as_str));
    let opts = ["--syslog-socket", s(&rs.sock), "--syslog-server", &rs.server("tcp"), "--syslog-tag", "long"];
    assert_eq!(run_fg(&g, &opts, &argv), 0);
    for input in ["imuxsock", "imtcp"] {
        let msgs = rs.wait_last("long", input, "end");
        let mut at = 0;
        let mut next_line = |want: &[u8], check: &dyn Fn(&[u8])| -> usize {
            let first = &msgs[at];
            if !first.text.starts_with(b"[part 1/") {
                assert_eq!(first.text, want, "{input}: an unsplit line differs");
                at += 1;
                return 1;
            }
            let n: usize = first.text()[8..].split(']').next().unwrap().parse().expect("N of [part 1/N]");
            assert!(n >= 2 && at + n <= msgs.len(), "{input}: [part 1/{n}] and {} messages", msgs.len() - at);
            let mut whole = Vec::new();
            for i in 1..=n {
                let body = part_body(&msgs[at + i - 1], i, n);
                check(&body);
                whole.extend(body);
            }
            assert!(whole == want, "{input}: the parts put together differ from the line");
            at += n;
            n
        };
        assert_eq!(next_line(&exact, &|_| ()), 1, "{input}: a 2000-byte line was split");
        assert!(next_line(&over, &|_| ()) >= 2, "{input}: a 2001-byte line was not split");
        assert!(next_line(&long, &|_| ()) >= 5, "{input}: 9000 bytes in fewer than 5 parts of 2000");
        let utf8 = |b: &[u8]| assert!(std::str::from_utf8(b).is_ok(), "{input}: a part cuts a UTF-8 character");
        assert!(next_line(&euro, &utf8) >= 3, "{input}: 4500 bytes in fewer than 3 parts");
        let escaped = b"#001".repeat(700);
        let whole_escapes = |b: &[u8]| assert!(b.len().is_multiple_of(4), "{input}: a part cuts an escape: {b:?}");
        assert!(next_line(&escaped, &whole_escapes) >= 2, "{input}: 2800 escaped bytes in one part");
        assert_eq!(msgs[at].text, b"end", "{input}: messages after the last line");
    }
}

/// A line the command writes in two pieces, the second after the pump has flushed the first to
/// the file (it holds an incomplete line 100 ms), is still one message.
#[test]
fn a_line_written_in_pieces_is_one_message() {
    let g = Guard::new();
    let rs = rsyslog!(g, "a_line_written_in_pieces_is_one_message");
    let log = g.path("app.log");
    let script = "printf 'first half, '; sleep 0.5; echo 'second half'; echo end";
    let opts = ["--log", s(&log), "--syslog-socket", s(&rs.sock), "--syslog-server", &rs.server("tcp")];
    assert_eq!(run_fg(&g, &opts, &["sh", "-c", script]), 0);
    assert_eq!(read(&log), "first half, second half\nend\n");
    for input in ["imuxsock", "imtcp"] {
        let msgs = rs.wait_last("sh", input, "end");
        assert_eq!(texts(&msgs), ["first half, second half", "end"], "{input}: one line, two messages");
    }
}

/// A line longer than the pump's buffer (300,000 bytes) is never dropped: the parts' texts put
/// together give it back. (Only a line up to 128 KiB is numbered as one whole: the pump passes a
/// longer one on in buffer-sized pieces, each numbered `[part 1/N]` on.)
#[test]
fn a_line_longer_than_the_pump_buffer_is_never_dropped() {
    let g = Guard::new();
    let rs = rsyslog!(g, "a_line_longer_than_the_pump_buffer_is_never_dropped");
    let line: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let file = g.path("line");
    fs::write(&file, [&line[..], b"\nend\n"].concat()).unwrap();
    let opts = ["--syslog-socket", s(&rs.sock), "--syslog-tag", "huge"];
    assert_eq!(run_fg(&g, &opts, &["cat", s(&file)]), 0);
    let msgs = rs.wait_last("huge", "imuxsock", "end");
    let mut whole = Vec::new();
    let mut expect_i = 1;
    for m in &msgs[..msgs.len() - 1] {
        let text = m.text();
        let (i, n) = text
            .strip_prefix("[part ")
            .and_then(|r| r.split_once(']'))
            .and_then(|(nums, _)| nums.split_once('/'))
            .and_then(|(i, n)| Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?)))
            .unwrap_or_else(|| panic!("not a part: {:?}", &text[..text.len().min(40)]));
        if i == 1 {
            expect_i = 1;
        }
        assert_eq!(i, expect_i, "parts out of order");
        expect_i = if i == n { 1 } else { i + 1 };
        whole.extend(part_body(m, i, n));
    }
    assert_eq!(expect_i, 1, "the last part is missing");
    assert!(whole == line, "the parts put together ({} bytes) differ from the line (300000)", whole.len());
}

/// Control characters other than TAB, and bytes that are not UTF-8, arrive as `#ooo`; TAB and
/// valid UTF-8 arrive as they are. rsyslogd's own escaping is off: this is detach's.
#[test]
fn control_characters_and_invalid_utf8_are_escaped_as_octal() {
    let g = Guard::new();
    let rs = rsyslog!(g, "control_characters_and_invalid_utf8_are_escaped_as_octal");
    let py = r#"import sys; sys.stdout.buffer.write(b"a\tb\x01c\x00d\x1b[31m\r\xff\xc3 \xc3\xa9 ok\nend\n")"#;
    let opts = ["--syslog-socket", s(&rs.sock), "--syslog-server", &rs.server("tcp"), "--syslog-tag", "bin"];
    assert_eq!(run_fg(&g, &opts, &["python3", "-c", py]), 0);
    let want: &[u8] = b"a\tb#001c#000d#033[31m#015#377#303 \xc3\xa9 ok";
    for input in ["imuxsock", "imtcp"] {
        let msgs = rs.wait_last("bin", input, "end");
        assert_eq!(msgs.len(), 2, "{input}: {msgs:?}");
        assert!(
            msgs[0].text == want,
            "{input}: got {:?}, want {:?}",
            String::from_utf8_lossy(&msgs[0].text),
            String::from_utf8_lossy(want)
        );
    }
}

// 5. detach's own messages.

/// A restart note goes to syslog with tag detach at warning, in the chosen facility; each
/// run's lines carry that run's pid.
#[test]
fn detach_own_messages_go_to_syslog_tagged_detach() {
    let g = Guard::new();
    let rs = rsyslog!(g, "detach_own_messages_go_to_syslog_tagged_detach");
    let log = g.path("app.log");
    let opts = [
        "--log",
        s(&log),
        "--syslog-socket",
        s(&rs.sock),
        "--syslog-facility",
        "local2",
        "--restart",
        "on-failure",
        "--restart-limit",
        "1",
        "--restart-delay",
        "0.1",
    ];
    let out = g.run(detach().arg("--foreground").args(opts).args(["--", "sh", "-c", "echo \"run $$\"; exit 1"]));
    assert_eq!(out.code(), Some(1), "{out:?}");
    let note = "'sh' exited with status 1; restart 1 in 0.1 s";
    let last = "'sh' exited with status 1; giving up after 1 restarts";
    wait_for_text(&log, last);
    let found = wait_until(|| rs.tagged("detach").iter().any(|m| m.text().contains(last)), DEADLINE);
    assert!(found, "{last:?} never arrived under tag detach: {}", rs.dump());
    let own = rs.tagged("detach");
    assert_eq!(own.len(), 2, "{own:?}");
    assert!(own[0].text().ends_with(note), "{own:?}");
    assert!(own[1].text().ends_with(last), "{own:?}");
    for m in &own {
        assert_eq!(m.pri(), "local2.warning", "{m:?}");
        assert_eq!(m.procid, out.pid.to_string(), "PROCID of detach's own message is not the supervisor's pid");
    }
    let text = read(&log);
    let last_run = text.lines().rfind(|l| l.starts_with("run ")).unwrap_or_else(|| panic!("no run in the log: {text}"));
    let runs = rs.wait_last("sh", "imuxsock", last_run);
    assert_eq!(runs.len(), 2, "{runs:?}");
    for m in &runs {
        assert_eq!(m.pri(), "local2.info", "{m:?}");
        assert_eq!(m.text(), format!("run {}", m.procid), "PROCID is not this run's pid: {m:?}");
    }
    assert_ne!(runs[0].procid, runs[1].procid, "{runs:?}");
}

// 6. Errors at start.

/// Runs `detach OPTS -- sh -c 'touch MARKER'` in daemon mode with a pidfile; checks the exit
/// status, that nothing ran (no marker, no pidfile, no process naming the temp dir), and
/// returns stderr.
pub(crate) fn refused(g: &Guard, opts: &[&str], code: i32) -> String {
    let pidfile = g.pidfile("p.pid");
    let marker = g.path("ran");
    let touch = format!("touch {}", s(&marker));
    let out = g.run(detach().arg("--pidfile").arg(&pidfile).args(opts).args(["--", "sh", "-c", &touch]));
    assert_eq!(out.code(), Some(code), "{opts:?}: {out:?}");
    assert!(!pidfile.exists(), "{opts:?}: a pidfile was written");
    let left = pids_with_arg(&g.marker());
    assert!(left.is_empty(), "{opts:?}: processes left: {left:?}");
    assert!(!marker.exists(), "{opts:?}: the command ran");
    out.stderr
}

/// A socket that does not exist: exit 69, one line naming the path and the OS error.
#[test]
fn a_missing_socket_is_refused_at_start_with_69() {
    let g = Guard::new();
    let missing = g.path("no-such.sock");
    for opts in [
        vec!["--syslog-socket", s(&missing)],
        vec!["--syslog-socket", s(&missing), "--log", s(&g.path("app.log"))],
        vec!["--foreground", "--syslog-socket", s(&missing)],
    ] {
        let err = refused(&g, &opts, 69);
        assert!(err.starts_with("detach: ") && err.lines().count() == 1, "{opts:?}: {err:?}");
        assert!(err.contains(s(&missing)) && err.contains("No such file or directory"), "{opts:?}: {err:?}");
    }
    assert!(!g.path("app.log").exists(), "the log was created");
}

/// Malformed URLs, unknown facilities and priorities: exit 64 naming the bad value, nothing
/// started.
#[test]
fn malformed_urls_and_unknown_names_exit_64() {
    let g = Guard::new();
    let cases = [
        (vec!["--syslog-server", "tcp://nohost"], "nohost"),
        (vec!["--syslog-server", "ftp://x:1"], "ftp://x:1"),
        (vec!["--syslog-server", "tcp://127.0.0.1:notaport"], "notaport"),
        (vec!["--syslog-server", "udp://127.0.0.1:70000"], "70000"),
        (vec!["--syslog-server", "127.0.0.1:514"], "127.0.0.1:514"),
        (vec!["--syslog-server", "tcp://:514"], "tcp://:514"),
        (vec!["--syslog-facility", "local8", "--syslog-server", "udp://127.0.0.1:514"], "local8"),
        (vec!["--syslog-stdout-priority", "loud", "--syslog-server", "udp://127.0.0.1:514"], "loud"),
        (vec!["--syslog-stderr-priority", "errr", "--syslog-server", "udp://127.0.0.1:514"], "errr"),
    ];
    for (opts, names) in cases {
        let err = refused(&g, &opts, 64);
        assert!(err.contains(names), "{opts:?}: the message does not name {names:?}: {err:?}");
    }
}

// 7. --syslog: /dev/log.

/// In a private mount namespace whose /dev is a tmpfs with the few devices needed and
/// /dev/log a symlink to SOCK (or no /dev/log when SOCK is None), runs `detach ARGS`: the
/// host's /dev/log is never touched.
fn in_private_dev(g: &Guard, sock: Option<&Path>, args: &[&str]) -> crate::util::Out {
    let old = g.path("olddev");
    fs::create_dir_all(&old).unwrap();
    let link = sock.map(|p| format!("ln -s {} /dev/log &&", s(p))).unwrap_or_default();
    let setup = format!(
        "mount --rbind /dev {old} && mount -t tmpfs -o mode=755 tmpfs /dev && \
         for n in null zero full random urandom tty; do touch /dev/$n && mount --bind {old}/$n /dev/$n || exit 99; done && \
         ln -s /proc/self/fd /dev/fd && {link} exec \"$@\"",
        old = s(&old)
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &setup, "sh"]);
    cmd.arg(env!("CARGO_BIN_EXE_detach")).args(args);
    g.run(&mut cmd)
}

/// `--syslog` sends to /dev/log; without a /dev/log it is refused like a missing socket.
#[test]
fn syslog_option_uses_dev_log() {
    if !is_root("syslog_option_uses_dev_log") {
        return;
    }
    let g = Guard::new();
    let probe = g.run(Command::new("unshare").args(["--mount", "--propagation", "private", "true"]));
    if probe.code() != Some(0) {
        eprintln!("SKIP: syslog_option_uses_dev_log: no mount namespace here: {}", probe.stderr);
        return;
    }
    let rs = rsyslog!(g, "syslog_option_uses_dev_log");
    let out = in_private_dev(&g, Some(&rs.sock), &["--foreground", "--syslog", "--", "sh", "-c", "echo via dev log"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let msgs = rs.wait_last("sh", "imuxsock", "via dev log");
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0].pri(), "daemon.info");

    let marker = g.path("ran");
    let touch = format!("touch {}", s(&marker));
    let out = in_private_dev(&g, None, &["--foreground", "--syslog", "--", "sh", "-c", &touch]);
    assert_eq!(out.code(), Some(69), "{out:?}");
    assert!(out.stderr.starts_with("detach: ") && out.stderr.contains("/dev/log"), "{out:?}");
    assert!(!marker.exists(), "the command ran");
}

/// Issue 13, item 9: with a UDP collector that is down, the ICMP error left pending on the
/// socket made poll return at once forever (87% CPU between lines). An idle supervisor must
/// now sleep: over one second it may use a few ticks, a spinning one uses nearly all 100.
#[test]
fn udp_collector_down_does_not_spin_the_idle_supervisor() {
    let g = Guard::new();
    let port = free_udp_port(); // bound, then released: nobody listens there
    let log = g.path("app.log");
    let server = format!("udp://127.0.0.1:{port}");
    let script = "echo first; sleep 0.2; echo second; exec sleep 60";
    let (started, _) = start(&g, &["--log", s(&log), "--syslog-server", &server], &["sh", "-c", script]);
    // Two sends: the first draws the port-unreachable, the second meets it.
    wait_for_text(&log, "second\n");
    let ticks = cpu_ticks_over(started.sup, Duration::from_secs(1));
    assert!(ticks < 30, "the idle supervisor used {ticks} ticks in 1 s; log: {:?}", read(&log));
}

/// Without the `tls` cargo feature (the default build: it keeps the supervisor's RSS where it
/// was), a tls:// collector is refused before anything starts, saying why.
#[cfg(not(feature = "tls"))]
#[test]
fn without_tls_a_tls_server_is_a_usage_error_that_says_how_to_get_it() {
    let g = Guard::new();
    let out = g.run(detach().args(["--syslog-server", "tls://localhost:6514", "--", "true"]));
    assert_eq!(out.code(), Some(64), "{out:?}");
    assert!(out.stderr.contains("built without TLS (cargo feature `tls`)"), "{out:?}");
}
