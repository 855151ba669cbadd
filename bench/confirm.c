/*
 * confirm: the floor of a start-up that confirms the exec, for
 * bench/startup.sh.
 *
 *     confirm PROGRAM [ARG...]
 *
 * fork; the child calls setsid and forks again, and the grandchild execs
 * PROGRAM. The first process returns once the exec happened: a close-on-exec
 * pipe sees EOF then (exit 0), or a byte if the exec failed (exit 127). That
 * is what detach --exec does before it returns, with nothing else: no
 * argument parsing, no log file, no closing of inherited fds.
 *
 * Built by bench/startup.sh with gcc -O2; it is not part of the crate.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int p[2];
    if (argc < 2 || pipe2(p, O_CLOEXEC) != 0) return 64;
    pid_t mid = fork();
    if (mid > 0) {
        char c;
        close(p[1]);
        ssize_t n = read(p[0], &c, 1); /* EOF: exec'd; a byte: failed */
        waitpid(mid, NULL, 0);
        return n == 0 ? 0 : 127;
    }
    setsid();
    if (fork() > 0) _exit(0);
    close(p[0]);
    execv(argv[1], argv + 1);
    if (write(p[1], "x", 1) < 0) /* the parent sees EOF: nothing better to do */
        _exit(126);
    _exit(127);
}
