//! Syslog message formats: RFC 3164 for the local socket, RFC 5424 (or, when
//! asked, RFC 3164 with a HOSTNAME) for a collector, octet-counted (RFC 6587
//! 3.4.1, RFC 5425) or newline-framed on TCP and TLS; the names of facilities
//! and severities, and the escaping and splitting of a line into texts.

use std::borrow::Cow;
use std::time::SystemTime;

use crate::backlog;

/// The longest message text, in bytes; a longer line is sent in numbered
/// parts. RFC 5424 receivers must take 480 bytes and should take 2048.
pub const MAX_TEXT: usize = 2000;
/// The longest tag (RFC 5424's APP-NAME).
const MAX_TAG: usize = 48;

const FACILITIES: [(&str, u8); 20] = [
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

const LEVELS: [(&str, u8); 11] = [
    ("emerg", 0),
    ("panic", 0),
    ("alert", 1),
    ("crit", 2),
    ("err", 3),
    ("error", 3),
    ("warning", 4),
    ("warn", 4),
    ("notice", 5),
    ("info", 6),
    ("debug", 7),
];

/// detach's own messages: this severity, the tag `detach`.
pub(super) const OWN_LEVEL: u8 = 4;
pub(super) const OWN_TAG: &str = "detach";

fn lookup(table: &[(&str, u8)], name: &str, what: &str) -> std::result::Result<u8, String> {
    let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
    table
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
        .ok_or_else(|| format!("unknown syslog {what} '{name}' (one of: {})", names.join(", ")))
}

/// `--syslog-facility`: a facility name, as in syslog.conf.
pub fn parse_facility(name: &str) -> std::result::Result<u8, String> {
    lookup(&FACILITIES, name, "facility")
}

/// `--syslog-*-priority`: a severity name, as in syslog.conf.
pub fn parse_level(name: &str) -> std::result::Result<u8, String> {
    lookup(&LEVELS, name, "priority")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Local,
    Udp,
    Tcp,
    Tls,
}

impl Kind {
    /// A byte stream, where messages need framing.
    pub(super) fn is_stream(self) -> bool {
        matches!(self, Kind::Tcp | Kind::Tls)
    }
}

/// `--syslog-format`: what a remote collector gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID - - MSG`, UTC with milliseconds
    #[default]
    Rfc5424,
    /// `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG`, local time (BSD syslog)
    Rfc3164,
}

/// `--syslog-framing`: how messages are delimited on TCP and TLS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Framing {
    /// `LEN MSG` (RFC 6587 3.4.1; the framing RFC 5425 mandates)
    #[default]
    Octet,
    /// `MSG\n` (RFC 6587 3.4.2; Fluent Bit's and fluentd's default)
    Newline,
}

/// The two timestamps of a batch of messages, made once per batch.
pub(super) struct Stamp {
    /// RFC 3164, local time: `Nov 23 17:01:41`.
    pub(super) local: String,
    /// RFC 5424: `2026-11-23T17:01:41.603Z`.
    pub(super) utc: String,
}

impl Stamp {
    pub(super) fn now() -> Stamp {
        let now = SystemTime::now();
        Stamp { local: local_time(now), utc: backlog::rfc3339(now) }
    }
}

/// `Mmm dd hh:mm:ss` in local time, as syslog(3) writes it.
fn local_time(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as libc::time_t;
    // SAFETY: localtime_r writes only the struct tm we own and pass; `secs`
    // is a live time_t. It reads the time zone, which no thread changes.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&secs, &mut tm);
        tm
    };
    let month = MONTHS[tm.tm_mon.clamp(0, 11) as usize];
    format!("{month} {:2} {:02}:{:02}:{:02}", tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec)
}

/// What every message carries: who and where.
pub(super) struct Formatter {
    pub(super) facility: u8,
    pub(super) tag: String,
    pub(super) host: String,
    /// The command's pid (the latest run's).
    pub(super) pid: u32,
    /// The supervisor's, for detach's own messages.
    pub(super) own_pid: u32,
    /// What a remote collector gets.
    pub(super) format: Format,
    pub(super) framing: Framing,
}

impl Formatter {
    pub(super) fn pri(&self, level: u8) -> u8 {
        self.facility * 8 + level
    }

    pub(super) fn own_pri(&self) -> u8 {
        self.pri(OWN_LEVEL)
    }

    /// One message, framed for its transport. Newline framing needs no
    /// escaping of its own: [`texts`] has already turned every control
    /// character of a line, LF included, into `#ooo`.
    pub(super) fn message(&self, kind: Kind, stamp: &Stamp, pri: u8, tag: &str, pid: u32, text: &str) -> Vec<u8> {
        let host = &self.host;
        let msg = match (kind, self.format) {
            (Kind::Local, _) => return format!("<{pri}>{} {tag}[{pid}]: {text}", stamp.local).into_bytes(),
            (_, Format::Rfc5424) => format!("<{pri}>1 {} {host} {tag} {pid} - - {text}", stamp.utc),
            (_, Format::Rfc3164) => format!("<{pri}>{} {host} {tag}[{pid}]: {text}", stamp.local),
        };
        match (kind.is_stream(), self.framing) {
            (false, _) => msg.into_bytes(),
            (true, Framing::Octet) => format!("{} {msg}", msg.len()).into_bytes(),
            (true, Framing::Newline) => format!("{msg}\n").into_bytes(),
        }
    }
}

/// A tag as syslog wants it: printable ASCII without spaces, `[` or `:`,
/// at most 48 bytes.
pub(super) fn clean_tag(tag: &str) -> String {
    let tag: String = tag
        .chars()
        .map(|c| if c.is_ascii_graphic() && !matches!(c, '[' | ']' | ':') { c } else { '_' })
        .take(MAX_TAG)
        .collect();
    if tag.is_empty() { "-".into() } else { tag }
}

/// The text of one line (without its newline) as the message texts it
/// becomes: control characters but TAB, and bytes that are not UTF-8, as
/// `#ooo` (octal, as rsyslog escapes them); longer than [`MAX_TEXT`], in
/// parts `[part 1/N] ...`, never split inside a character or an escape.
pub fn texts(line: &[u8]) -> Vec<Cow<'_, str>> {
    let plain = |b: u8| b >= 0x20 && b != 0x7f || b == b'\t';
    if line.len() <= MAX_TEXT
        && line.iter().all(|&b| plain(b))
        && let Ok(text) = std::str::from_utf8(line)
    {
        return vec![Cow::Borrowed(text)];
    }
    let mut parts = vec![String::new()];
    let mut add = |unit: &str| {
        let part = parts.last_mut().expect("one part at least");
        if part.len() + unit.len() > MAX_TEXT {
            parts.push(String::new());
        }
        parts.last_mut().expect("one part at least").push_str(unit);
    };
    let mut buf = [0u8; 4];
    for chunk in line.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                c if c.is_ascii() && !plain(c as u8) => add(&format!("#{:03o}", c as u8)),
                c => add(c.encode_utf8(&mut buf)),
            }
        }
        for &b in chunk.invalid() {
            add(&format!("#{b:03o}"));
        }
    }
    let n = parts.len();
    if n == 1 {
        return parts.into_iter().map(Cow::Owned).collect();
    }
    parts.into_iter().enumerate().map(|(i, p)| Cow::Owned(format!("[part {}/{n}] {p}", i + 1))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_escape_and_split() {
        assert_eq!(texts(b"plain \xc3\xa9t\xc3\xa9\tok"), ["plain \u{e9}t\u{e9}\tok"]);
        assert_eq!(texts(b"a\0b\x1b[0m\xff"), ["a#000b#033[0m#377"]);
        let long = vec![b'x'; MAX_TEXT * 2 + 1];
        let parts = texts(&long);
        assert_eq!(parts.len(), 3);
        assert!(parts[0].starts_with("[part 1/3] xxx") && parts[2] == "[part 3/3] x");
        // An escape is never cut: 1999 x's, then a NUL that does not fit.
        let mut edge = vec![b'x'; MAX_TEXT - 1];
        edge.push(0);
        assert_eq!(texts(&edge)[1], "[part 2/2] #000");
    }

    #[test]
    fn formats_and_framings() {
        let mut f = Formatter {
            facility: 3,
            tag: "app".into(),
            host: "h".into(),
            pid: 7,
            own_pid: 1,
            format: Format::Rfc5424,
            framing: Framing::Octet,
        };
        let stamp = Stamp { local: "Nov 23 17:01:41".into(), utc: "2026-11-23T17:01:41.603Z".into() };
        let msg = |f: &Formatter, kind| String::from_utf8(f.message(kind, &stamp, 30, "app", 7, "hi")).unwrap();
        assert_eq!(msg(&f, Kind::Tls), "45 <30>1 2026-11-23T17:01:41.603Z h app 7 - - hi");
        assert_eq!(msg(&f, Kind::Udp), "<30>1 2026-11-23T17:01:41.603Z h app 7 - - hi");
        f.framing = Framing::Newline;
        assert_eq!(msg(&f, Kind::Tcp), "<30>1 2026-11-23T17:01:41.603Z h app 7 - - hi\n");
        f.format = Format::Rfc3164;
        assert_eq!(msg(&f, Kind::Tcp), "<30>Nov 23 17:01:41 h app[7]: hi\n");
        assert_eq!(msg(&f, Kind::Local), "<30>Nov 23 17:01:41 app[7]: hi");
        // A newline inside a line cannot end a newline-framed message early.
        assert_eq!(texts(b"one\ntwo"), ["one#012two"]);
    }
}
