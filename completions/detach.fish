# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_detach_global_optspecs
    string join \n log= stdout= stderr= pidfile= child-pidfile= title= foreground exec chdir= umask= user= group= reopen-signal= no-watch log-mode= log-owner= log-buffer= timestamp= rotate-size= rotate-every= rotate-keep= rotate-compress syslog syslog-socket= syslog-server= syslog-facility= syslog-tag= syslog-stdout-priority= syslog-stderr-priority= syslog-format= syslog-framing= syslog-ca= syslog-cert= syslog-key= stop-signal= stop-group success-status= kill-timeout= drain-timeout= restart= restart-delay= restart-max-delay= restart-limit= notify-passthrough start-seconds= ready= ready-timeout= env= unset-env= env-file= clear-env chroot= limit= nice= ionice= oom-score-adj= h/help V/version
end

function __fish_detach_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_detach_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_detach_using_subcommand
    set -l cmd (__fish_detach_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c detach -n "__fish_detach_needs_command" -l log -d 'Append the command\'s stdout and stderr to PATH, in the order written' -r -F
complete -c detach -n "__fish_detach_needs_command" -l stdout -d 'Append the command\'s stdout to PATH (stderr to /dev/null unless --stderr)' -r -F
complete -c detach -n "__fish_detach_needs_command" -l stderr -d 'Append the command\'s stderr to PATH (stdout to /dev/null unless --stdout)' -r -F
complete -c detach -n "__fish_detach_needs_command" -l pidfile -d 'Write the supervisor\'s pid to PATH, locked while it runs, removed at exit' -r -F
complete -c detach -n "__fish_detach_needs_command" -l child-pidfile -d 'Write the command\'s own pid to PATH (locked and removed like --pidfile)' -r -F
complete -c detach -n "__fish_detach_needs_command" -l title -d 'Name of the supervisor as ps shows it [default: "detach: COMMAND"]' -r
complete -c detach -n "__fish_detach_needs_command" -l chdir -d 'Working directory [default: / ; with --foreground, the current one]' -r -F
complete -c detach -n "__fish_detach_needs_command" -l umask -d 'File mode creation mask, octal [default: 022 ; with --foreground, inherited]' -r
complete -c detach -n "__fish_detach_needs_command" -l user -d 'Run the command as USER (name or uid) with its groups, and its HOME, USER, LOGNAME and SHELL; logs and pidfiles are opened first' -r
complete -c detach -n "__fish_detach_needs_command" -l group -d 'Run the command with primary group GROUP (name or gid)' -r
complete -c detach -n "__fish_detach_needs_command" -l reopen-signal -d 'Signal that makes the supervisor reopen its logs (HUP is then forwarded)' -r
complete -c detach -n "__fish_detach_needs_command" -l log-mode -d 'Mode of the log files detach creates, octal, before the umask; at most 0666 (no execute, setuid, setgid or sticky bit)' -r
complete -c detach -n "__fish_detach_needs_command" -l log-owner -d 'Owner of the log files detach creates' -r
complete -c detach -n "__fish_detach_needs_command" -l log-buffer -d 'Most bytes held per log while it cannot be written (disk full); past it the oldest are dropped, and a line says how many once writing works again. Suffixes K, M, G (powers of 1024)' -r
complete -c detach -n "__fish_detach_needs_command" -l timestamp -d 'Start each line of the log files with the time detach read its first byte, then a space: iso (local time, 2026-11-29T23:57:19.123456+01:00), utc (2026-11-29T22:57:19.123456Z), tai64n (as s6-log and multilog: tai64nlocal decodes it) or unix (1764457039.123456). detach\'s own lines too; syslog is unchanged' -r -f -a "iso\t'RFC 3339 local time with microseconds and offset: 2026-11-29T23:57:19.123456+01:00'
utc\t'RFC 3339 UTC with microseconds: 2026-11-29T22:57:19.123456Z'
tai64n\t'TAI64N as s6-log and multilog write it (`tai64nlocal` decodes it): @4000000069...'
unix\t'Seconds since the epoch, with microseconds: 1764457039.123456'"
complete -c detach -n "__fish_detach_needs_command" -l rotate-size -d 'Rotate a log before a line would make it larger than SIZE (suffixes K, M, G); a line larger than SIZE gets a file of its own. Archives: PATH.1 (newest) to PATH.N' -r
complete -c detach -n "__fish_detach_needs_command" -l rotate-every -d 'Rotate the logs every PERIOD: hourly, daily, weekly, or a number with s, m, h or d (30s, 10m, 6h, 2d). An hour or more is aligned on local time (daily: at midnight; weekly: Monday at midnight); an empty log is not rotated' -r
complete -c detach -n "__fish_detach_needs_command" -l rotate-keep -d 'Archives kept per log (PATH.1 to PATH.N); older ones are deleted. Also what SIGALRM and `detach rotate` keep [default: 10]' -r
complete -c detach -n "__fish_detach_needs_command" -l syslog-socket -d 'Also send each line to the syslog socket at PATH (a datagram socket like /dev/log)' -r -F
complete -c detach -n "__fish_detach_needs_command" -l syslog-server -d 'Also send each line to a remote collector: udp://HOST:PORT, tcp://HOST:PORT, or tls://HOST[:PORT] (RFC 5425, port 6514, TLS 1.2 or 1.3, the certificate checked against HOST). TCP and TLS reconnect, looking HOST up again each time, and hold a backlog of up to --log-buffer meanwhile' -r
complete -c detach -n "__fish_detach_needs_command" -l syslog-facility -d 'Syslog facility (daemon, user, local0 to local7, ...)' -r
complete -c detach -n "__fish_detach_needs_command" -l syslog-tag -d 'Syslog tag (program name) of the command\'s lines [default: the command\'s basename]; detach\'s own messages are tagged `detach`' -r
complete -c detach -n "__fish_detach_needs_command" -l syslog-stdout-priority -d 'Syslog priority of stdout lines (emerg alert crit err warning notice info debug)' -r
complete -c detach -n "__fish_detach_needs_command" -l syslog-stderr-priority -d 'Syslog priority of stderr lines' -r
complete -c detach -n "__fish_detach_needs_command" -l syslog-format -d 'Message format for the remote collector: rfc5424, or rfc3164 for collectors that only parse the old BSD format' -r -f -a "rfc5424\t'`<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID - - MSG`, UTC with milliseconds'
rfc3164\t'`<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG`, local time (BSD syslog)'"
complete -c detach -n "__fish_detach_needs_command" -l syslog-framing -d 'Framing on tcp:// and tls://: octet (octet counting, RFC 6587 and RFC 5425) or newline (Fluent Bit\'s and fluentd\'s default; a newline inside a line is already escaped as #012)' -r -f -a "octet\t'`LEN MSG` (RFC 6587 3.4.1; the framing RFC 5425 mandates)'
newline\t'`MSG\\n` (RFC 6587 3.4.2; Fluent Bit\'s and fluentd\'s default)'"
complete -c detach -n "__fish_detach_needs_command" -l syslog-ca -d 'CA certificates (PEM) that the tls:// collector\'s certificate must chain to [default: the system\'s, /etc/ssl/certs]' -r -F
complete -c detach -n "__fish_detach_needs_command" -l syslog-cert -d 'Client certificate (PEM, with its chain) for a tls:// collector that asks for one' -r -F
complete -c detach -n "__fish_detach_needs_command" -l syslog-key -d 'The client certificate\'s private key (PEM: PKCS#8, PKCS#1 or SEC1)' -r -F
complete -c detach -n "__fish_detach_needs_command" -l stop-signal -d 'Signal a stop (TERM to detach, `detach stop`) sends the command: nginx wants QUIT, many servers INT (systemd\'s KillSignal=). A name (QUIT, SIGQUIT, RTMIN+2) or a number' -r
complete -c detach -n "__fish_detach_needs_command" -l success-status -d 'Exit statuses and signal names, comma-separated, that also count as clean: not restarted by --restart on-failure, and detach then exits 0 (systemd\'s SuccessExitStatus=)' -r
complete -c detach -n "__fish_detach_needs_command" -l kill-timeout -d 'After the stop signal, seconds to wait before the command\'s process group gets KILL' -r
complete -c detach -n "__fish_detach_needs_command" -l drain-timeout -d 'After the command exits, seconds to keep draining output of its orphans [default: no limit]' -r
complete -c detach -n "__fish_detach_needs_command" -l restart -d 'Restart the command when it exits: never, on-failure (as systemd\'s Restart=on-failure: not after exit 0, a death by HUP, INT, TERM or PIPE, or a --success-status ending), or always (unless detach is stopping)' -r -f -a "never\t'Never restart (the default)'
on-failure\t'After an unclean ending, as systemd\'s Restart=on-failure: not after exit 0, a death by HUP, INT, TERM or PIPE, or a --success-status one'
always\t'After every exit, unless detach is stopping'"
complete -c detach -n "__fish_detach_needs_command" -l restart-delay -d 'Seconds before a restart; doubles after each run shorter than --restart-max-delay. With 0 the first restart is immediate, and the next ones wait 0.1 s, 0.2 s, 0.4 s...' -r
complete -c detach -n "__fish_detach_needs_command" -l restart-max-delay -d 'Most seconds between restarts; a run that lasts longer resets the delay and the count' -r
complete -c detach -n "__fish_detach_needs_command" -l restart-limit -d 'Give up after N restarts in a row (N+1 runs), with the last run\'s status' -r
complete -c detach -n "__fish_detach_needs_command" -l start-seconds -d 'Started means still running SECONDS after its exec (supervisord\'s startsecs); with --ready, SECONDS after it was ready. Before that, detach waits, and an exit is a failure' -r
complete -c detach -n "__fish_detach_needs_command" -l ready -d 'Started means ready: notify (READY=1 on a NOTIFY_SOCKET of detach\'s own), line:REGEX (a line of output matches), tcp:[HOST:]PORT or unix:PATH (a connect succeeds)' -r
complete -c detach -n "__fish_detach_needs_command" -l ready-timeout -d 'Not ready this many seconds after its exec: stop the command and exit 124' -r
complete -c detach -n "__fish_detach_needs_command" -l env -d 'Set a variable in the command\'s environment (repeatable; overrides the files and --user\'s)' -r
complete -c detach -n "__fish_detach_needs_command" -l unset-env -d 'Remove a variable from the command\'s environment, whatever set it (repeatable)' -r
complete -c detach -n "__fish_detach_needs_command" -l env-file -d 'Read KEY=VALUE lines (systemd\'s EnvironmentFile= syntax: # and ; comments, quotes, \\ continuations) into the command\'s environment (repeatable); -PATH: ignored when missing' -r
complete -c detach -n "__fish_detach_needs_command" -l chroot -d 'Run the command with DIR as its root, looked up inside it; --chdir is then inside it too. Logs and pidfiles stay outside, opened by detach' -r -F
complete -c detach -n "__fish_detach_needs_command" -l limit -d 'Set a resource limit of the command (repeatable): prlimit\'s names (nofile, core, as, nproc, stack, ...); SOFT:HARD, SOFT: or :HARD, one value for both; K, M, G; unlimited' -r
complete -c detach -n "__fish_detach_needs_command" -l nice -d 'Scheduling priority (nice value) of the command, from -20 (highest) to 19 (lowest)' -r
complete -c detach -n "__fish_detach_needs_command" -l ionice -d 'I/O scheduling class of the command: realtime, best-effort or idle, with a LEVEL from 0 (highest) to 7 [default level: 4]' -r
complete -c detach -n "__fish_detach_needs_command" -l oom-score-adj -d 'The command\'s OOM score adjustment, from -1000 (never killed) to 1000 (killed first)' -r
complete -c detach -n "__fish_detach_needs_command" -l foreground -d 'Do not fork or detach: supervise in the foreground, and end as the command ended'
complete -c detach -n "__fish_detach_needs_command" -l exec -d 'Daemonize and exec the command itself: no supervisor, so no log reopening'
complete -c detach -n "__fish_detach_needs_command" -l no-watch -d 'Do not check once a second whether a log was moved or deleted'
complete -c detach -n "__fish_detach_needs_command" -l rotate-compress -d 'Gzip each archive (PATH.1.gz, ...) in the background, while a CPU is spare (an archive waits 5 s at most); a failure (disk full) leaves it uncompressed and says so once in the log'
complete -c detach -n "__fish_detach_needs_command" -l syslog -d 'Also send each line to the local syslog socket, /dev/log (journald or rsyslog)'
complete -c detach -n "__fish_detach_needs_command" -l stop-group -d 'Send the stop signal to the command\'s whole process group, not only to the command (its children too: a `sh -c` or npm wrapper\'s)'
complete -c detach -n "__fish_detach_needs_command" -l notify-passthrough -d 'Under systemd Type=notify: let the command notify systemd itself (NOTIFY_SOCKET is passed to it; needs NotifyAccess=all) instead of detach sending READY=1 once it was exec\'d'
complete -c detach -n "__fish_detach_needs_command" -l clear-env -d 'Start the command\'s environment empty but for a default PATH (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin); then come --user\'s HOME, USER, LOGNAME and SHELL, the files, and --env'
complete -c detach -n "__fish_detach_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c detach -n "__fish_detach_needs_command" -s V -l version -d 'Print version'
complete -c detach -n "__fish_detach_needs_command" -a "status" -d 'Is the daemon of PIDFILE running? Exit 0 (running: prints pid, uptime, command, logs), 1 (dead, pidfile left), 3 (not running; for a child pidfile, also between two runs), 4 (pidfile unreadable or not trusted)'
complete -c detach -n "__fish_detach_needs_command" -a "reopen" -d 'Make the daemon of PIDFILE reopen its logs (logrotate\'s postrotate). Exit 0 once delivered (with --wait: once the supervisor confirmed it), 1 no answer in time, 4 pidfile not trusted or the daemon takes no requests (--exec), 7 not running'
complete -c detach -n "__fish_detach_needs_command" -a "stop" -d 'Stop the daemon of PIDFILE: TERM, wait, then KILL. Exit 0 once it is gone and its pidfile removed (also when it was not running), 1 if it would not die, 4 pidfile not trusted'
complete -c detach -n "__fish_detach_needs_command" -a "restart" -d 'Make the supervisor of PIDFILE stop its command and start it again, in place. Exit 0 once the new run has been exec\'d (or is ready, with --ready), 1 no answer in time, 4 pidfile not trusted or no supervisor (--exec), 7 not running; the supervisor\'s error otherwise'
complete -c detach -n "__fish_detach_needs_command" -a "rotate" -d 'Make the supervisor of PIDFILE rotate its logs now (as SIGALRM does), keeping --rotate-keep archives (default 10). Exit 0 once done, 1 no answer in time, 4 pidfile not trusted or no supervisor (--exec), 7 not running'
complete -c detach -n "__fish_detach_needs_command" -a "logs" -d 'Print the last lines of the logs of the daemon of PIDFILE (the files its supervisor writes, found as status finds them); with -f, follow them across rotations and reopens until the daemon ends. Exit 0; 4 pidfile not trusted or no log file; 7 not running'
complete -c detach -n "__fish_detach_needs_command" -a "signal" -d 'Make the supervisor of PIDFILE send SIG (name or number) to its command. Exit 0 once sent, 1 no answer in time, 4 pidfile not trusted or no supervisor (--exec), 7 not running; the supervisor\'s error otherwise (ESRCH: no command running)'
complete -c detach -n "__fish_detach_needs_command" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c detach -n "__fish_detach_using_subcommand status" -l pidfile -r -F
complete -c detach -n "__fish_detach_using_subcommand status" -s h -l help -d 'Print help'
complete -c detach -n "__fish_detach_using_subcommand reopen" -l pidfile -r -F
complete -c detach -n "__fish_detach_using_subcommand reopen" -l signal -d 'The daemon\'s --reopen-signal (not used with --wait)' -r
complete -c detach -n "__fish_detach_using_subcommand reopen" -l timeout -d 'With --wait, seconds to wait for the answer' -r
complete -c detach -n "__fish_detach_using_subcommand reopen" -l wait -d 'Ask the supervisor to reopen, and return once it says it has'
complete -c detach -n "__fish_detach_using_subcommand reopen" -s h -l help -d 'Print help'
complete -c detach -n "__fish_detach_using_subcommand stop" -l pidfile -r -F
complete -c detach -n "__fish_detach_using_subcommand stop" -l timeout -d 'Seconds to wait after TERM before KILL (above the daemon\'s --kill-timeout)' -r
complete -c detach -n "__fish_detach_using_subcommand stop" -s h -l help -d 'Print help'
complete -c detach -n "__fish_detach_using_subcommand restart" -l pidfile -r -F
complete -c detach -n "__fish_detach_using_subcommand restart" -l timeout -d 'Seconds to wait for the new run (above the daemon\'s --kill-timeout)' -r
complete -c detach -n "__fish_detach_using_subcommand restart" -s h -l help -d 'Print help'
complete -c detach -n "__fish_detach_using_subcommand rotate" -l pidfile -r -F
complete -c detach -n "__fish_detach_using_subcommand rotate" -l timeout -d 'Seconds to wait for the supervisor\'s answer' -r
complete -c detach -n "__fish_detach_using_subcommand rotate" -s h -l help -d 'Print help'
complete -c detach -n "__fish_detach_using_subcommand logs" -l pidfile -r -F
complete -c detach -n "__fish_detach_using_subcommand logs" -s n -l lines -d 'How many lines to print from the end of each log' -r
complete -c detach -n "__fish_detach_using_subcommand logs" -s f -l follow -d 'Then print what is written, following rotations and reopens, until the daemon ends'
complete -c detach -n "__fish_detach_using_subcommand logs" -l stdout -d 'Only the command\'s stdout log (with --stdout and --stderr logs)'
complete -c detach -n "__fish_detach_using_subcommand logs" -l stderr -d 'Only the command\'s stderr log'
complete -c detach -n "__fish_detach_using_subcommand logs" -s h -l help -d 'Print help'
complete -c detach -n "__fish_detach_using_subcommand signal" -l pidfile -r -F
complete -c detach -n "__fish_detach_using_subcommand signal" -l timeout -d 'Seconds to wait for the supervisor\'s answer' -r
complete -c detach -n "__fish_detach_using_subcommand signal" -s h -l help -d 'Print help'
complete -c detach -n "__fish_detach_using_subcommand help; and not __fish_seen_subcommand_from status reopen stop restart rotate logs signal help" -f -a "status" -d 'Is the daemon of PIDFILE running? Exit 0 (running: prints pid, uptime, command, logs), 1 (dead, pidfile left), 3 (not running; for a child pidfile, also between two runs), 4 (pidfile unreadable or not trusted)'
complete -c detach -n "__fish_detach_using_subcommand help; and not __fish_seen_subcommand_from status reopen stop restart rotate logs signal help" -f -a "reopen" -d 'Make the daemon of PIDFILE reopen its logs (logrotate\'s postrotate). Exit 0 once delivered (with --wait: once the supervisor confirmed it), 1 no answer in time, 4 pidfile not trusted or the daemon takes no requests (--exec), 7 not running'
complete -c detach -n "__fish_detach_using_subcommand help; and not __fish_seen_subcommand_from status reopen stop restart rotate logs signal help" -f -a "stop" -d 'Stop the daemon of PIDFILE: TERM, wait, then KILL. Exit 0 once it is gone and its pidfile removed (also when it was not running), 1 if it would not die, 4 pidfile not trusted'
complete -c detach -n "__fish_detach_using_subcommand help; and not __fish_seen_subcommand_from status reopen stop restart rotate logs signal help" -f -a "restart" -d 'Make the supervisor of PIDFILE stop its command and start it again, in place. Exit 0 once the new run has been exec\'d (or is ready, with --ready), 1 no answer in time, 4 pidfile not trusted or no supervisor (--exec), 7 not running; the supervisor\'s error otherwise'
complete -c detach -n "__fish_detach_using_subcommand help; and not __fish_seen_subcommand_from status reopen stop restart rotate logs signal help" -f -a "rotate" -d 'Make the supervisor of PIDFILE rotate its logs now (as SIGALRM does), keeping --rotate-keep archives (default 10). Exit 0 once done, 1 no answer in time, 4 pidfile not trusted or no supervisor (--exec), 7 not running'
complete -c detach -n "__fish_detach_using_subcommand help; and not __fish_seen_subcommand_from status reopen stop restart rotate logs signal help" -f -a "logs" -d 'Print the last lines of the logs of the daemon of PIDFILE (the files its supervisor writes, found as status finds them); with -f, follow them across rotations and reopens until the daemon ends. Exit 0; 4 pidfile not trusted or no log file; 7 not running'
complete -c detach -n "__fish_detach_using_subcommand help; and not __fish_seen_subcommand_from status reopen stop restart rotate logs signal help" -f -a "signal" -d 'Make the supervisor of PIDFILE send SIG (name or number) to its command. Exit 0 once sent, 1 no answer in time, 4 pidfile not trusted or no supervisor (--exec), 7 not running; the supervisor\'s error otherwise (ESRCH: no command running)'
complete -c detach -n "__fish_detach_using_subcommand help; and not __fish_seen_subcommand_from status reopen stop restart rotate logs signal help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
