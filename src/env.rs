//! The command's environment: `--env`, `--unset-env`, `--env-file`,
//! `--clear-env`, and what `--user` adds. Built whole before any fork: std's
//! `Command` turns it into the envp array in the parent, so nothing is
//! allocated between fork and exec.
//!
//! The order, last one wins: the inherited environment (or, with
//! `--clear-env`, only a default `PATH`), then `HOME`, `USER`, `LOGNAME` and
//! `SHELL` of `--user`, then the files in their order, then `--env`; then
//! `--unset-env` removes what it names, whoever set it.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::user::Login;

/// `PATH` of a cleared environment: systemd's default for services.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// systemd's socket activation variables (sd_listen_fds(3)). detach does not
/// pass the sockets on: the command would need LISTEN_PID set to its own pid,
/// which is known only after the fork, where setting an environment variable
/// allocates. Socket activation of a command under detach is not supported.
const SOCKET_ACTIVATION_ENV: [&str; 3] = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"];

/// What the command line says about the command's environment.
#[derive(Clone, Debug, Default)]
pub struct EnvSettings {
    /// `--clear-env`: start from nothing but [`DEFAULT_PATH`].
    pub clear: bool,
    /// `--env-file`, in order.
    pub files: Vec<EnvFile>,
    /// `--env KEY=VALUE`, in order.
    pub set: Vec<Assignment>,
    /// `--unset-env KEY`.
    pub unset: Vec<Name>,
}

/// A variable's name as systemd accepts it: letters, digits and `_`, not
/// starting with a digit (env_name_is_valid in systemd's env-util.c).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name(String);

impl std::str::FromStr for Name {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Name, String> {
        let valid = s.bytes().next().is_some_and(|b| !b.is_ascii_digit())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        match valid {
            true => Ok(Name(s.to_owned())),
            false => Err(format!("'{s}' is not a variable name (letters, digits and _, not starting with a digit)")),
        }
    }
}

/// `KEY=VALUE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub name: Name,
    pub value: String,
}

impl std::str::FromStr for Assignment {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Assignment, String> {
        let Some((name, value)) = s.split_once('=') else {
            return Err(format!("'{s}' is not KEY=VALUE"));
        };
        Ok(Assignment { name: name.parse()?, value: value.to_owned() })
    }
}

/// `--env-file PATH`, or `-PATH`: a file that may be missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvFile {
    pub path: PathBuf,
    pub optional: bool,
}

impl std::str::FromStr for EnvFile {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<EnvFile, String> {
        let (optional, path) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        if path.is_empty() {
            return Err("an empty path".into());
        }
        Ok(EnvFile { path: path.into(), optional })
    }
}

/// The settings with their files read: everything that can fail is done.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    settings: EnvSettings,
    from_files: Vec<(String, String)>,
}

impl EnvSettings {
    /// Reads and parses the files: a missing one (unless optional) or a
    /// malformed line is a usage error naming the file and the line. Called
    /// before anything is opened or started.
    pub fn load(&self) -> Result<Loaded> {
        let mut from_files = Vec::new();
        for file in &self.files {
            let text = match std::fs::read(&file.path) {
                Ok(text) => text,
                Err(e) if file.optional && e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(Error::Usage(format!("--env-file: cannot read '{}': {e}", file.path.display())));
                }
            };
            from_files.extend(parse_env_file(&file.path, &text)?);
        }
        Ok(Loaded { settings: self.clone(), from_files })
    }
}

impl Loaded {
    /// The command's whole environment. `login` is `--user`'s entry;
    /// `notify_passthrough` keeps `NOTIFY_SOCKET` (even with `--clear-env`:
    /// the command needs it to notify systemd).
    pub fn build(&self, login: Option<&Login>, notify_passthrough: bool) -> Vec<(OsString, OsString)> {
        let mut env: BTreeMap<OsString, OsString> = match self.settings.clear {
            true => [("PATH".into(), DEFAULT_PATH.into())].into(),
            false => std::env::vars_os().collect(),
        };
        // Socket activation's fds are closed with the caller's others, and
        // its LISTEN_PID names detach, not the command: none of it is the
        // command's.
        for var in SOCKET_ACTIVATION_ENV {
            env.remove(OsStr::new(var));
        }
        let notify = OsStr::new(crate::notify::ENV);
        match (notify_passthrough, std::env::var_os(notify)) {
            (true, Some(socket)) => {
                env.insert(notify.into(), socket);
            }
            // detach is the one that notifies: a command that also did
            // would say READY before detach knows it started.
            _ => {
                env.remove(notify);
            }
        }
        if let Some(l) = login {
            let name = OsStr::new(&l.name);
            for (key, value) in
                [("HOME", l.home.as_os_str()), ("USER", name), ("LOGNAME", name), ("SHELL", l.shell.as_os_str())]
            {
                env.insert(key.into(), value.into());
            }
        }
        for (key, value) in &self.from_files {
            env.insert(key.into(), value.into());
        }
        for a in &self.settings.set {
            env.insert((&a.name.0).into(), (&a.value).into());
        }
        for name in &self.settings.unset {
            env.remove(OsStr::new(&name.0));
        }
        env.into_iter().collect()
    }
}

/// systemd's `EnvironmentFile=` syntax (parse_env_file_internal in its
/// env-file.c): `KEY=VALUE` lines; `#` and `;` start a comment line; blanks
/// around the key and value are dropped; a value may be in single quotes
/// (kept as is) or double quotes (where `\"`, `\\`, `` \` `` and `\$` are
/// escapes); outside single quotes a backslash at the end of a line continues
/// it; `KEY="a"b` is `ab`, as in the shell. Unlike systemd, which skips what it
/// cannot read, a line without `=`, a bad name, an unclosed quote or a value
/// that is not UTF-8 is an error naming the file and the line.
pub fn parse_env_file(path: &Path, text: &[u8]) -> Result<Vec<(String, String)>> {
    Parser { path, text, pos: 0, line: 1 }.parse()
}

struct Parser<'a> {
    path: &'a Path,
    text: &'a [u8],
    pos: usize,
    line: usize,
}

impl Parser<'_> {
    fn parse(mut self) -> Result<Vec<(String, String)>> {
        let mut vars = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' | b'\n' => {
                    self.next();
                }
                b'#' | b';' => self.skip_comment(),
                _ => vars.push(self.assignment()?),
            }
        }
        Ok(vars)
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn error(&self, line: usize, what: &str) -> Error {
        Error::Usage(format!("--env-file '{}' line {line}: {what}", self.path.display()))
    }

    /// A comment runs to the end of its line; a backslash before the end
    /// continues it, as systemd reads it.
    fn skip_comment(&mut self) {
        while let Some(c) = self.next() {
            match c {
                b'\\' => {
                    self.next();
                }
                b'\n' => return,
                _ => {}
            }
        }
    }

    fn assignment(&mut self) -> Result<(String, String)> {
        let line = self.line;
        let mut key = Vec::new();
        loop {
            match self.next() {
                Some(b'=') => break,
                Some(b'\n') | None => return Err(self.error(line, "not KEY=VALUE")),
                Some(c) => key.push(c),
            }
        }
        let key = String::from_utf8_lossy(&key).trim_end_matches([' ', '\t']).to_owned();
        key.parse::<Name>().map_err(|e| self.error(line, &e))?;
        let value = self.value(line)?;
        let value = String::from_utf8(value).map_err(|_| self.error(line, "the value is not UTF-8"))?;
        Ok((key, value))
    }

    /// The value, up to the end of its (continued) line. Quotes open only
    /// where the value starts or right after a closing quote (blanks
    /// between are skipped); elsewhere they are plain characters.
    fn value(&mut self, line: usize) -> Result<Vec<u8>> {
        let mut value = Vec::new();
        // Bytes of trailing blanks outside quotes, dropped at the end.
        let mut blanks = 0;
        let mut quote_may_open = true;
        loop {
            if quote_may_open {
                self.skip_blanks();
            }
            let Some(c) = self.next() else { break };
            match c {
                b'\n' => break,
                b'\'' | b'"' if quote_may_open => {
                    self.quoted(line, c, &mut value)?;
                    blanks = 0;
                    continue;
                }
                b'\\' => match self.next() {
                    Some(b'\n') | None => {}
                    Some(c) => {
                        value.push(c);
                        blanks = 0;
                    }
                },
                b' ' | b'\t' | b'\r' => {
                    value.push(c);
                    blanks += 1;
                }
                c => {
                    value.push(c);
                    blanks = 0;
                }
            }
            quote_may_open = false;
        }
        value.truncate(value.len() - blanks);
        Ok(value)
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r')) {
            self.next();
        }
    }

    /// Inside quotes, after the opening one.
    fn quoted(&mut self, line: usize, quote: u8, value: &mut Vec<u8>) -> Result<()> {
        loop {
            match self.next() {
                None => return Err(self.error(line, &format!("no closing {}", quote as char))),
                Some(c) if c == quote => return Ok(()),
                Some(b'\\') if quote == b'"' => match self.next() {
                    Some(c @ (b'"' | b'\\' | b'`' | b'$')) => value.push(c),
                    Some(b'\n') => {}
                    Some(c) => value.extend([b'\\', c]),
                    None => return Err(self.error(line, "no closing \"")),
                },
                Some(c) => value.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> std::result::Result<Vec<(String, String)>, String> {
        parse_env_file(Path::new("/f"), text.as_bytes()).map_err(|e| e.to_string())
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn plain_lines_comments_and_blanks() {
        let text = "# a comment\n; another\n\nA=1\n  B = two words  \nC=\n";
        assert_eq!(parse(text).unwrap(), vars(&[("A", "1"), ("B", "two words"), ("C", "")]));
    }

    #[test]
    fn quotes_and_escapes() {
        let text = "A='single $X \\n'\nB=\"double \\\"q\\\" \\$X \\n\"\nC=\"a\" 'b'c'd'\nD=\\#x\n";
        assert_eq!(
            parse(text).unwrap(),
            vars(&[("A", "single $X \\n"), ("B", "double \"q\" $X \\n"), ("C", "abc'd'"), ("D", "#x")])
        );
    }

    #[test]
    fn continuations() {
        let text = "A=one \\\ntwo\nB=\"x\\\ny\"\n# comment \\\nC=not a key\nD=4";
        assert_eq!(parse(text).unwrap(), vars(&[("A", "one two"), ("B", "xy"), ("D", "4")]));
    }

    #[test]
    fn quoted_newlines_are_kept() {
        assert_eq!(parse("A='x\ny'\nB=2\n").unwrap(), vars(&[("A", "x\ny"), ("B", "2")]));
    }

    #[test]
    fn malformed_lines_name_the_file_and_line() {
        assert_eq!(parse("A=1\n\nJUNK\n").unwrap_err(), "--env-file '/f' line 3: not KEY=VALUE");
        assert!(parse("A=1\n1X=2\n").unwrap_err().starts_with("--env-file '/f' line 2: '1X' is not a variable name"));
        assert_eq!(parse("A=1\nB='open\n").unwrap_err(), "--env-file '/f' line 2: no closing '");
        assert_eq!(parse("A.B=1\n").unwrap_err().split(':').next(), Some("--env-file '/f' line 1"));
    }

    #[test]
    fn names_and_assignments() {
        assert!("A_1".parse::<Name>().is_ok());
        assert!("_".parse::<Name>().is_ok());
        for bad in ["", "1A", "A-B", "A=B", "A B"] {
            assert!(bad.parse::<Name>().is_err(), "{bad:?}");
        }
        let a: Assignment = "K=v=w".parse().unwrap();
        assert_eq!((a.name.0.as_str(), a.value.as_str()), ("K", "v=w"));
        assert!("K".parse::<Assignment>().is_err());
        assert!("=v".parse::<Assignment>().is_err());
    }

    #[test]
    fn env_file_dash_means_optional() {
        assert_eq!("-/x".parse::<EnvFile>().unwrap(), EnvFile { path: "/x".into(), optional: true });
        assert_eq!("/x".parse::<EnvFile>().unwrap(), EnvFile { path: "/x".into(), optional: false });
        assert!("-".parse::<EnvFile>().is_err());
    }
}
