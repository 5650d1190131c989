/* perf/flush_probe.c: latency of one durable small write on this disk, by mechanism.
 *
 * What the group commit's end-of-data -> 250 wait is made of, without mailroot: N times,
 * write REC bytes at the next offset of a 64 MiB file in DIR and make them durable, then
 * print p50/p90/p99 in microseconds. Mechanisms:
 *   msync-fallocate  memcpy into a MAP_SHARED mapping of a fallocated file + msync(MS_SYNC)
 *                    of the touched pages (what the spool does; MADV_RANDOM like the spool)
 *   msync-zeroed     the same on blocks written with zeros and fdatasynced first
 *   pwrite-fdatasync pwrite + fdatasync on pre-zeroed blocks
 *   odsync           pwrite on an O_DSYNC descriptor, pre-zeroed blocks
 *   odirect          pwrite on an O_DIRECT|O_DSYNC descriptor (REC rounded up to 4 KiB)
 *
 * Build and run: gcc -O2 -o /tmp/flush_probe perf/flush_probe.c
 *                /tmp/flush_probe DIR MECHANISM [N (3000)] [REC (5000)]
 * Writes only DIR/flush-probe.tmp (removed at the end). Bounded by N.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define FILE_BYTES (64UL << 20)
#define CHUNK (1UL << 20)

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int zero_fill(int fd) {
    char *z = calloc(1, CHUNK);
    for (size_t o = 0; o < FILE_BYTES; o += CHUNK)
        if (pwrite(fd, z, CHUNK, o) != (ssize_t)CHUNK) return -1;
    free(z);
    return fdatasync(fd);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s DIR MECHANISM [N] [REC]\n", argv[0]);
        return 2;
    }
    const char *m = argv[2];
    int n = argc > 3 ? atoi(argv[3]) : 3000;
    size_t rec = argc > 4 ? (size_t)atol(argv[4]) : 5000;
    if (n <= 0 || rec == 0 || rec > 65536 || (size_t)n * ((rec + 4095) & ~4095UL) > FILE_BYTES) {
        fprintf(stderr, "N x REC (REC rounded up to 4 KiB, at most 64 KiB) must fit in 64 MiB\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/flush-probe.tmp", argv[1]);
    unlink(path);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) { perror("open"); return 1; }
    int mapped = !strncmp(m, "msync", 5);
    if (!strcmp(m, "msync-fallocate")) {
        if (fallocate(fd, 0, 0, FILE_BYTES)) { perror("fallocate"); return 1; }
    } else if (zero_fill(fd)) { perror("zero fill"); return 1; }
    fdatasync(fd);
    if (!strcmp(m, "odsync") || !strcmp(m, "odirect")) {
        close(fd);
        fd = open(path, O_RDWR | O_DSYNC | (!strcmp(m, "odirect") ? O_DIRECT : 0));
        if (fd < 0) { perror("reopen"); return 1; }
        if (!strcmp(m, "odirect")) rec = (rec + 4095) & ~4095UL;
    } else if (!mapped && strcmp(m, "pwrite-fdatasync")) {
        fprintf(stderr, "unknown mechanism %s\n", m);
        return 2;
    }
    char *map = NULL;
    if (mapped) {
        map = mmap(NULL, FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) { perror("mmap"); return 1; }
        madvise(map, FILE_BYTES, MADV_RANDOM);
    }
    char *buf;
    if (posix_memalign((void **)&buf, 4096, 65536)) return 1;
    memset(buf, 'x', 65536);
    double *t = malloc(n * sizeof *t);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        double s = now_us();
        if (mapped) {
            memcpy(map + off, buf, rec);
            size_t page = off & ~4095UL;
            if (msync(map + page, off + rec - page, MS_SYNC)) { perror("msync"); return 1; }
        } else {
            if (pwrite(fd, buf, rec, off) != (ssize_t)rec) { perror("pwrite"); return 1; }
            if (!strcmp(m, "pwrite-fdatasync") && fdatasync(fd)) { perror("fdatasync"); return 1; }
        }
        t[i] = now_us() - s;
        off += rec;
    }
    qsort(t, n, sizeof *t, cmp);
    printf("%-17s rec %5zu B: p50 %4.0f  p90 %4.0f  p99 %4.0f us (%d writes)\n", m, rec, t[n / 2],
           t[n * 9 / 10], t[n * 99 / 100], n);
    unlink(path);
    return 0;
}
