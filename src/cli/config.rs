//! The command line, parsed, turned into the [`Config`] that `run` takes:
//! the checks that need several options at once, and the defaults that
//! depend on the mode.

use clap::ValueEnum;

use super::Cli;
use crate::cli_values::Seconds;
use crate::error::Error;
use crate::ready;
use crate::syslog;
use crate::{Config, Daemon, LogPaths, Mode, RestartPolicy, RestartWhen, SuperviseOptions};

impl Cli {
    pub(super) fn into_config(mut self) -> crate::Result<Config> {
        if self.exec && self.restart != RestartWhen::Never {
            // Checked here, not with clap's conflicts_with: the explicit
            // default `--restart never` is fine with --exec.
            let when = self.restart.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
            return Err(Error::Usage(format!(
                "--restart {when} needs a supervisor to restart the command; --exec has none"
            )));
        }
        if self.chroot.is_some() && matches!(self.ready, Some(ready::Check::Notify)) {
            return Err(Error::Usage(
                "--ready notify's socket lives outside the --chroot, where the command cannot reach it".into(),
            ));
        }
        if self.notify_passthrough && matches!(self.ready, Some(ready::Check::Notify)) {
            return Err(Error::Usage(
                "--ready notify gives the command a NOTIFY_SOCKET of detach's own; --notify-passthrough gives it systemd's".into(),
            ));
        }
        let logged = self.log.is_some() || self.stdout.is_some() || self.stderr.is_some();
        let syslogged = self.syslog || self.syslog_socket.is_some() || self.syslog_server.is_some();
        if self.foreground && !logged && !syslogged && matches!(self.ready, Some(ready::Check::Line(_))) {
            return Err(Error::Usage(
                "--ready line: reads the command's output, which --foreground without --log, --stdout, --stderr or syslog leaves to the caller".into(),
            ));
        }
        let mode = match (self.foreground, self.exec) {
            (true, _) => Mode::Foreground,
            (_, true) => Mode::Exec,
            _ => Mode::Daemon,
        };
        // The command's world (issue 16). With --chroot, --chdir names a
        // directory inside the new root: the command changes to it, and
        // detach itself stays where it would be without --chdir.
        let env = crate::env::EnvSettings {
            clear: self.clear_env,
            files: self.env_file,
            set: self.env,
            unset: self.unset_env,
        };
        let confinement = crate::limits::Settings {
            chroot: self.chroot.clone(),
            chdir: self.chroot.is_some().then(|| self.chdir.take()).flatten(),
            limits: self.limit,
            nice: self.nice,
            ionice: self.ionice,
            oom_score_adj: self.oom_score_adj,
        };
        // In the foreground, a service manager has already set the directory
        // and umask it wants: keep them unless asked.
        let (chdir, umask) = match mode {
            Mode::Foreground => (self.chdir, self.umask),
            _ => (Some(self.chdir.unwrap_or_else(|| "/".into())), Some(self.umask.unwrap_or(0o022))),
        };
        let mut daemon = Daemon {
            logs: LogPaths { log: self.log, stdout: self.stdout, stderr: self.stderr },
            pidfile: self.pidfile,
            user: self.user,
            group: self.group,
            log_owner: self.log_owner,
            ..Daemon::default()
        }
        .chdir(chdir)
        .umask(umask);
        daemon.log_options.mode = self.log_mode.get();
        let syslog = syslog::Settings {
            socket: self.syslog_socket.or_else(|| self.syslog.then(|| "/dev/log".into())),
            server: self.syslog_server,
            facility: self.syslog_facility,
            tag: self.syslog_tag,
            stdout_level: self.syslog_stdout_priority,
            stderr_level: self.syslog_stderr_priority,
            buffer: self.log_buffer,
            format: self.syslog_format,
            framing: self.syslog_framing,
            ca: self.syslog_ca,
            cert: self.syslog_cert,
            key: self.syslog_key,
        };
        Ok(Config {
            env,
            confinement,
            syslog,
            daemon,
            mode,
            command: self.command,
            child_pidfile: self.child_pidfile,
            title: self.title,
            notify_passthrough: self.notify_passthrough,
            ready: ready::Options {
                check: self.ready,
                start_seconds: self.start_seconds.map(Seconds::get),
                timeout: self.ready_timeout.get(),
            },
            supervise: SuperviseOptions {
                reopen_signal: self.reopen_signal.number(),
                watch: !self.no_watch,
                stop_signal: self.stop_signal.number(),
                stop_group: self.stop_group,
                success: self.success_status.unwrap_or_default(),
                kill_timeout: self.kill_timeout.get(),
                drain_timeout: self.drain_timeout.map(Seconds::get),
                log_buffer: self.log_buffer,
                logging: crate::Logging {
                    timestamp: self.timestamp,
                    rotation: crate::Rotation {
                        size: self.rotate_size.map(|n| n as u64),
                        every: self.rotate_every,
                        keep: self.rotate_keep,
                    },
                    compress: self.rotate_compress,
                },
                restart: RestartPolicy {
                    when: self.restart,
                    delay: self.restart_delay.get(),
                    max_delay: self.restart_max_delay.get().max(self.restart_delay.get()),
                    limit: self.restart_limit,
                },
            },
        })
    }
}
