/*
 * writer: the load generator of the log pump benchmark.
 *
 *     writer TOTAL_BYTES [LINE_LEN [WRITE_SIZE]]
 *
 * Writes TOTAL_BYTES (rounded down to whole lines) of LINE_LEN-byte lines
 * (newline included; default 100) to stdout, in write(2) calls of at most
 * WRITE_SIZE bytes (default 65536), each holding whole lines only. Every line
 * is its number, zero-padded, then filler, then '\n', so the output is
 * deterministic and can be compared byte for byte (cmp) between runs.
 * Line i (from 0) is:  "%0*llu" of width min(LINE_LEN-1, 20), 'x' padding, '\n'.
 *
 * Built by bench/pump.sh with gcc -O2; it is not part of the crate.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned long long parse(const char *s, const char *what) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || end == s) {
        fprintf(stderr, "writer: bad %s '%s'\n", what, s);
        exit(64);
    }
    return v;
}

/* Writes all of buf, retrying short writes and EINTR. */
static void write_all(const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("writer: write");
            exit(74);
        }
        buf += n;
        len -= (size_t)n;
    }
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: writer TOTAL_BYTES [LINE_LEN [WRITE_SIZE]]\n");
        return 64;
    }
    unsigned long long total = parse(argv[1], "total_bytes");
    size_t line = argc > 2 ? (size_t)parse(argv[2], "line_len") : 100;
    size_t wsize = argc > 3 ? (size_t)parse(argv[3], "write_size") : 65536;
    if (line < 1 || wsize < line) {
        fprintf(stderr, "writer: need 1 <= line_len <= write_size\n");
        return 64;
    }
    size_t per_write = wsize / line;             /* whole lines per write */
    size_t digits = line - 1 < 20 ? line - 1 : 20; /* width of the counter */
    unsigned long long lines = total / line;

    char *buf = malloc(per_write * line);
    char *num = malloc(digits + 2);
    if (!buf || !num) {
        perror("writer: malloc");
        return 71;
    }
    /* Pre-fill every slot with filler and newline; only the counter changes. */
    for (size_t i = 0; i < per_write; i++) {
        memset(buf + i * line, 'x', line - 1);
        buf[i * line + line - 1] = '\n';
    }

    /* Counter as a decimal string, incremented in place (cheaper than
     * snprintf per line, so the writer costs little next to the pump). */
    memset(num, '0', digits);
    unsigned long long i = 0;
    while (i < lines) {
        size_t n = lines - i < per_write ? (size_t)(lines - i) : per_write;
        for (size_t k = 0; k < n; k++, i++) {
            memcpy(buf + k * line, num, digits);
            for (size_t d = digits; d-- > 0;) { /* num += 1 (wraps silently) */
                if (num[d] != '9') {
                    num[d]++;
                    break;
                }
                num[d] = '0';
            }
        }
        write_all(buf, n * line);
    }
    return 0;
}
