# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_detach_global_optspecs
    string join \n log= stdout= stderr= pidfile= child-pidfile= title= foreground exec chdir= umask= user= group= reopen-signal= no-watch log-mode= log-owner= log-buffer= syslog syslog-socket= syslog-server= syslog-facility= syslog-tag= syslog-stdout-priority= syslog-stderr-priority= syslog-format= syslog-framing= syslog-ca= syslog-cert= syslog-key= stop-signal= stop-group success-status= kill-timeout= drain-timeout= restart= restart-delay= restart-max-delay= restart-limit= notify-passthrough start-seconds= ready= ready-timeout= h/help V/version
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
complete -c detach -n "__fish_detach_needs_command" -l user -d 'Run the command as USER (name or uid) with its groups; logs and pidfiles are opened first' -r
complete -c detach -n "__fish_detach_needs_command" -l group -d 'Run the command with primary group GROUP (name or gid)' -r
complete -c detach -n "__fish_detach_needs_command" -l reopen-signal -d 'Signal that makes the supervisor reopen its logs (HUP is then forwarded)' -r
complete -c detach -n "__fish_detach_needs_command" -l log-mode -d 'Mode of the log files detach creates, octal, before the umask; at most 0666 (no execute, setuid, setgid or sticky bit)' -r
complete -c detach -n "__fish_detach_needs_command" -l log-owner -d 'Owner of the log files detach creates' -r
complete -c detach -n "__fish_detach_needs_command" -l log-buffer -d 'Most bytes held per log while it cannot be written (disk full); past it the oldest are dropped, and a line says how many once writing works again. Suffixes K, M, G (powers of 1024)' -r
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
complete -c detach -n "__fish_detach_needs_command" -l foreground -d 'Do not fork or detach: supervise in the foreground, exit with the command\'s status'
complete -c detach -n "__fish_detach_needs_command" -l exec -d 'Daemonize and exec the command itself: no supervisor, so no log reopening'
complete -c detach -n "__fish_detach_needs_command" -l no-watch -d 'Do not check once a second whether a log was moved or deleted'
complete -c detach -n "__fish_detach_needs_command" -l syslog -d 'Also send each line to the local syslog socket, /dev/log (journald or rsyslog)'
complete -c detach -n "__fish_detach_needs_command" -l stop-group -d 'Send the stop signal to the command\'s whole process group, not only to the command (its children too: a `sh -c` or npm wrapper\'s)'
complete -c detach -n "__fish_detach_needs_command" -l notify-passthrough -d 'Under systemd Type=notify: let the command notify systemd itself (NOTIFY_SOCKET is passed to it; needs NotifyAccess=all) instead of detach sending READY=1 once it was exec\'d'
complete -c detach -n "__fish_detach_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c detach -n "__fish_detach_needs_command" -s V -l version -d 'Print version'
complete -c detach -n "__fish_detach_needs_command" -a "status" -d 'Is the daemon of PIDFILE running? Exit 0 (running: prints pid, uptime, command, logs), 1 (dead, pidfile left), 3 (not running; for a child pidfile, also between two runs), 4 (pidfile unreadable or not trusted)'
complete -c detach -n "__fish_detach_needs_command" -a "reopen" -d 'Make the daemon of PIDFILE reopen its logs (logrotate\'s postrotate). Exit 0 once delivered (with --wait: once the supervisor confirmed it), 1 no answer in time, 4 pidfile not trusted or the daemon takes no requests (--exec), 7 not running'
complete -c detach -n "__fish_detach_needs_command" -a "stop" -d 'Stop the daemon of PIDFILE: TERM, wait, then KILL. Exit 0 once it is gone and its pidfile removed (also when it was not running), 1 if it would not die, 4 pidfile not trusted'
complete -c detach -n "__fish_detach_needs_command" -a "restart" -d 'Make the supervisor of PIDFILE stop its command and start it again, in place. Exit 0 once the new run has been exec\'d, 1 no answer in time, 4 pidfile not trusted or no supervisor (--exec), 7 not running; the supervisor\'s error otherwise'
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
complete -c detach -n "__fish_detach_using_subcommand signal" -l pidfile -r -F
complete -c detach -n "__fish_detach_using_subcommand signal" -l timeout -d 'Seconds to wait for the supervisor\'s answer' -r
complete -c detach -n "__fish_detach_using_subcommand signal" -s h -l help -d 'Print help'
complete -c detach -n "__fish_detach_using_subcommand help; and not __fish_seen_subcommand_from status reopen stop restart signal help" -f -a "status" -d 'Is the daemon of PIDFILE running? Exit 0 (running: prints pid, uptime, command, logs), 1 (dead, pidfile left), 3 (not running; for a child pidfile, also between two runs), 4 (pidfile unreadable or not trusted)'
complete -c detach -n "__fish_detach_using_subcommand help; and not __fish_seen_subcommand_from status reopen stop restart signal help" -f -a "reopen" -d 'Make the daemon of PIDFILE reopen its logs (logrotate\'s postrotate). Exit 0 once delivered (with --wait: once the supervisor confirmed it), 1 no answer in time, 4 pidfile not trusted or the daemon takes no requests (--exec), 7 not running'
complete -c detach -n "__fish_detach_using_subcommand help; and not __fish_seen_subcommand_from status reopen stop restart signal help" -f -a "stop" -d 'Stop the daemon of PIDFILE: TERM, wait, then KILL. Exit 0 once it is gone and its pidfile removed (also when it was not running), 1 if it would not die, 4 pidfile not trusted'
complete -c detach -n "__fish_detach_using_subcommand help; and not __fish_seen_subcommand_from status reopen stop restart signal help" -f -a "restart" -d 'Make the supervisor of PIDFILE stop its command and start it again, in place. Exit 0 once the new run has been exec\'d, 1 no answer in time, 4 pidfile not trusted or no supervisor (--exec), 7 not running; the supervisor\'s error otherwise'
complete -c detach -n "__fish_detach_using_subcommand help; and not __fish_seen_subcommand_from status reopen stop restart signal help" -f -a "signal" -d 'Make the supervisor of PIDFILE send SIG (name or number) to its command. Exit 0 once sent, 1 no answer in time, 4 pidfile not trusted or no supervisor (--exec), 7 not running; the supervisor\'s error otherwise (ESRCH: no command running)'
complete -c detach -n "__fish_detach_using_subcommand help; and not __fish_seen_subcommand_from status reopen stop restart signal help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
