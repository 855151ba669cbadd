/*
 * reopen: the two halves of the reopen latency benchmark (bench/reopen.sh).
 *
 *     reopen write LINE_LEN RATE
 *         A steady writer: LINE_LEN-byte lines (newline included) to stdout,
 *         RATE lines a second, one write(2) per line, paced by an absolute
 *         clock; RATE 0: as fast as possible, in 64 KiB writes. Runs until
 *         its reader is gone (SIGPIPE).
 *
 *     reopen log FILE [PIDFILE]
 *         The floor: the least a logger can do. Copies stdin to FILE
 *         (O_APPEND, created 0644), and on SIGHUP closes FILE and opens it
 *         again by path, at once (the handler only sets a flag; read(2) is
 *         not restarted). Measured like the others, it shows what the
 *         harness, the writer's pace, the wake-ups and the file system cost
 *         by themselves. Writes its pid to PIDFILE once SIGHUP is handled.
 *
 *     reopen sizelog FILE SIZE KEEP
 *         The floor of a logger that rotates by size, as detach's
 *         --rotate-size SIZE --rotate-keep KEEP does: copies stdin to FILE,
 *         and before a write would make FILE larger than SIZE bytes, writes
 *         the whole lines that fit, deletes FILE.KEEP, renames FILE.i to
 *         FILE.i+1 (KEEP-1 down to 1) and FILE to FILE.1, and creates FILE
 *         again. It knows which archives it made, so it probes none (detach
 *         looks, since others may have moved them). What the renames, the
 *         deletion and the creation cost on this file system and kernel.
 *
 *     reopen rotate PIDFILE LOG INTERVAL_MS RENAME STOPFILE
 *         The rotator of bench/pump.sh: waits for PIDFILE to hold a pid, then
 *         every INTERVAL_MS, if RENAME is 1, renames LOG to LOG.000001,
 *         LOG.000002, ..., and sends SIGHUP to the pid, until the pid is gone.
 *         Then it waits for STOPFILE to exist (pump.sh creates it once the
 *         timed run is over, so that the rotator never exits inside it) and
 *         prints how many SIGHUPs it sent. In C rather than a shell loop: a
 *         fork of mv(1) per rotation would compete with the run for the CPUs.
 *
 *     reopen measure LOG PID SIGNAL COUNT INTERVAL_MS MODE
 *         COUNT times, INTERVAL_MS apart: notes LOG's inode; with MODE mv,
 *         renames LOG to LOG.old (replacing the previous LOG.old); sends
 *         SIGNAL (a number) to PID; then waits until LOG is a different file
 *         holding at least one byte. With MODE self, no rename: the logger
 *         moves LOG away itself on SIGNAL (s6-log, svlogd and multilog
 *         rotate their `current` on SIGALRM).
 *         The latency is the time from just before kill(2) to the moment
 *         stat(2) first shows the new file non-empty. Waiting blocks on
 *         inotify (the directory's IN_CREATE/IN_MODIFY events for LOG's
 *         name) rather than spinning, so that the measurer does not take a
 *         CPU from the writer and the logger. Prints one line:
 *             n=COUNT median_us=.. p90_us=.. p99_us=.. max_us=.. timeouts=N
 *         A reopen with no new byte after 2 s counts as a timeout (and is
 *         left out of the percentiles).
 *
 * Built by bench/reopen.sh with gcc -O2; it is not part of the crate.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static long long parse(const char *s, const char *what) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < 0) {
        fprintf(stderr, "reopen: bad %s '%s'\n", what, s);
        exit(64);
    }
    return v;
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void write_all_fd(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            exit(errno == EPIPE ? 0 : 74);
        }
        buf += n;
        len -= (size_t)n;
    }
}

static void write_all(const char *buf, size_t len) {
    write_all_fd(STDOUT_FILENO, buf, len);
}

static int do_write(size_t line, long long rate) {
    size_t per = rate ? 1 : 65536 / line;
    char *buf = malloc(per * line);
    if (!buf)
        return 71;
    for (size_t i = 0; i < per; i++) {
        memset(buf + i * line, 'x', line - 1);
        buf[i * line + line - 1] = '\n';
    }
    if (rate == 0)
        for (;;)
            write_all(buf, per * line);
    long long period = 1000000000LL / rate;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (;;) {
        write_all(buf, line);
        next.tv_nsec += period;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
}

static volatile sig_atomic_t hup;
static void on_hup(int sig) {
    (void)sig;
    hup = 1;
}

static int open_out(const char *path) {
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        perror("reopen: open");
        exit(73);
    }
    return fd;
}

static int do_log(const char *path, const char *pidfile) {
    static char buf[64 * 1024];
    struct sigaction sa = {.sa_handler = on_hup}; /* no SA_RESTART */
    sigaction(SIGHUP, &sa, NULL);
    int out = open_out(path);
    if (pidfile) {
        FILE *f = fopen(pidfile, "w");
        if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0) {
            perror("reopen: pidfile");
            return 73;
        }
    }
    for (;;) {
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
        if (hup) {
            hup = 0;
            close(out);
            out = open_out(path);
        }
        if (n == 0)
            return 0;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("reopen: read");
            return 74;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno != EINTR) {
                perror("reopen: write");
                return 74;
            }
            off += w > 0 ? w : 0;
        }
    }
}

/* Moves the archives up by one (the KEEPth deleted) and FILE to FILE.1. */
static void shift(const char *path, long keep, long archives) {
    char from[PATH_MAX], to[PATH_MAX];
    if (archives >= keep) {
        snprintf(to, sizeof to, "%s.%ld", path, keep);
        unlink(to);
    }
    for (long i = (archives < keep ? archives : keep - 1); i >= 1; i--) {
        snprintf(from, sizeof from, "%s.%ld", path, i);
        snprintf(to, sizeof to, "%s.%ld", path, i + 1);
        rename(from, to);
    }
    snprintf(to, sizeof to, "%s.1", path);
    if (rename(path, to) != 0) {
        perror("reopen: rename");
        exit(73);
    }
}

static int do_sizelog(const char *path, long long max, long keep) {
    static char buf[64 * 1024];
    int out = open_out(path);
    long long size = 0;
    long archives = 0;
    for (;;) {
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
        if (n == 0)
            return 0;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("reopen: read");
            return 74;
        }
        for (ssize_t off = 0; off < n;) {
            /* The whole lines that fit; at least one line into an empty file. */
            size_t len = (size_t)(n - off);
            if (size + (long long)len > max) {
                size_t room = max > size ? (size_t)(max - size) : 0;
                char *cut = room ? memrchr(buf + off, '\n', room < len ? room : len) : NULL;
                if (cut) {
                    len = (size_t)(cut - (buf + off)) + 1;
                } else if (size > 0) {
                    close(out);
                    shift(path, keep, archives++);
                    out = open_out(path);
                    size = 0;
                    continue;
                } else {
                    char *nl = memchr(buf + off, '\n', len);
                    len = nl ? (size_t)(nl - (buf + off)) + 1 : len;
                }
            }
            write_all_fd(out, buf + off, len);
            size += (long long)len;
            off += (ssize_t)len;
        }
    }
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int do_rotate(const char *pidfile, const char *log, long interval_ms, int rename_it, const char *stop) {
    pid_t pid = 0;
    long n = 0;
    while (pid <= 0 && access(stop, F_OK) != 0) {
        FILE *f = fopen(pidfile, "r");
        int v;
        if (f && fscanf(f, "%d", &v) == 1)
            pid = v;
        if (f)
            fclose(f);
        if (pid <= 0)
            sleep_ms(1);
    }
    while (pid > 0 && access(stop, F_OK) != 0) {
        if (rename_it) {
            char to[PATH_MAX];
            snprintf(to, sizeof to, "%s.%06ld", log, n + 1);
            rename(log, to); /* may fail if the last one was not reopened yet */
        }
        if (kill(pid, SIGHUP) != 0)
            break; /* gone */
        n++;
        sleep_ms(interval_ms);
    }
    while (access(stop, F_OK) != 0)
        sleep_ms(interval_ms);
    printf("%ld\n", n);
    return 0;
}

/* Is LOG a file other than OLD_INO, with a byte in it? */
static int new_and_written(const char *log, ino_t old_ino) {
    struct stat st;
    return stat(log, &st) == 0 && st.st_ino != old_ino && st.st_size > 0;
}

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static int do_measure(const char *log, pid_t pid, int sig, long count, long interval_ms, int rename_it) {
    char dir[PATH_MAX], old[PATH_MAX];
    const char *slash = strrchr(log, '/');
    const char *base = slash ? slash + 1 : log;
    if (slash)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - log), log);
    else
        strcpy(dir, ".");
    snprintf(old, sizeof old, "%s.old", log);

    int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (in < 0 || inotify_add_watch(in, dir[0] ? dir : "/", IN_CREATE | IN_MODIFY | IN_MOVED_TO) < 0) {
        perror("reopen: inotify");
        return 71;
    }
    long long *lat = calloc((size_t)count, sizeof *lat);
    long n = 0, timeouts = 0;
    char evbuf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
    struct timespec pause = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};

    for (long i = 0; i < count; i++) {
        nanosleep(&pause, NULL);
        struct stat st;
        if (stat(log, &st) != 0) { /* not there yet (the logger starts, or rotates) */
            i--;
            continue;
        }
        if (rename_it && rename(log, old) != 0) {
            perror("reopen: rename");
            return 71;
        }
        while (read(in, evbuf, sizeof evbuf) > 0) /* drop the events of before */
            ;
        long long t0 = now_ns();
        if (kill(pid, sig) != 0) {
            perror("reopen: kill");
            return 71;
        }
        long long t1 = 0;
        while (!t1) {
            if (new_and_written(log, st.st_ino)) {
                t1 = now_ns();
                break;
            }
            /* Sleep until something happens to a file named like LOG. */
            for (;;) {
                struct pollfd p = {in, POLLIN, 0};
                int left = (int)((t0 + 2000000000LL - now_ns()) / 1000000);
                if (left <= 0 || poll(&p, 1, left) == 0) {
                    t1 = -1;
                    break;
                }
                ssize_t len = read(in, evbuf, sizeof evbuf);
                int ours = 0;
                for (char *e = evbuf; len > 0 && e < evbuf + len;) {
                    struct inotify_event *ev = (struct inotify_event *)e;
                    if (ev->len && strcmp(ev->name, base) == 0)
                        ours = 1;
                    e += sizeof *ev + ev->len;
                }
                if (ours)
                    break;
            }
        }
        if (t1 < 0)
            timeouts++;
        else
            lat[n++] = t1 - t0;
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp_ll);
#define PCT(p) (n ? lat[(n - 1) * (p) / 100] / 1000.0 : 0.0)
    printf("n=%ld median_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f timeouts=%ld\n", n, PCT(50), PCT(90),
           PCT(99), n ? lat[n - 1] / 1000.0 : 0.0, timeouts);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "write") == 0) {
        long long line = parse(argv[2], "line_len");
        if (line < 1 || line > 65536) {
            fprintf(stderr, "reopen: need 1 <= line_len <= 65536\n");
            return 64;
        }
        return do_write((size_t)line, parse(argv[3], "rate"));
    }
    if (argc == 7 && strcmp(argv[1], "rotate") == 0)
        return do_rotate(argv[2], argv[3], (long)parse(argv[4], "interval_ms"), strcmp(argv[5], "1") == 0, argv[6]);
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "log") == 0)
        return do_log(argv[2], argc == 4 ? argv[3] : NULL);
    if (argc == 5 && strcmp(argv[1], "sizelog") == 0) {
        long long size = parse(argv[3], "size");
        long long keep = parse(argv[4], "keep");
        if (size < 1 || keep < 1) {
            fprintf(stderr, "reopen: need SIZE >= 1 and KEEP >= 1\n");
            return 64;
        }
        return do_sizelog(argv[2], size, (long)keep);
    }
    if (argc == 8 && strcmp(argv[1], "measure") == 0) {
        int rename_it = strcmp(argv[7], "mv") == 0;
        if (!rename_it && strcmp(argv[7], "self") != 0) {
            fprintf(stderr, "reopen: MODE is mv or self\n");
            return 64;
        }
        long count = (long)parse(argv[5], "count");
        if (count < 1) {
            fprintf(stderr, "reopen: need COUNT >= 1\n");
            return 64;
        }
        return do_measure(argv[2], (pid_t)parse(argv[3], "pid"), (int)parse(argv[4], "signal"), count,
                          (long)parse(argv[6], "interval_ms"), rename_it);
    }
    fprintf(stderr, "usage: reopen write LINE_LEN RATE\n"
                    "       reopen log FILE [PIDFILE]\n"
                    "       reopen sizelog FILE SIZE KEEP\n"
                    "       reopen rotate PIDFILE LOG INTERVAL_MS 0|1 STOPFILE\n"
                    "       reopen measure LOG PID SIGNAL COUNT INTERVAL_MS mv|self\n");
    return 64;
}
