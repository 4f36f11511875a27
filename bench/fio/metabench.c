// metabench: the metadata job of bench/fio (fio's filecreate/filestat/
// filedelete engines lay files out before the create job runs, so creates
// would be measured as opens of existing files; this program does not).
//
//   metabench DIR NFILES [--drop-caches]
//
// In a fresh directory DIR/meta.<pid>: NFILES creates (open(O_CREAT|O_EXCL|
// O_WRONLY) + close, empty files), then NFILES stats, then NFILES unlinks, one
// at a time from one thread. With --drop-caches, `echo 2 >
// /proc/sys/vm/drop_caches` (dentries and inodes) runs before the stat and
// unlink phases so the kernel must look names up again. Prints one JSON
// object: per phase ops/s and mean/p50/p99 latency in microseconds.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static void drop_caches(void) {
  sync();
  FILE* f = fopen("/proc/sys/vm/drop_caches", "w");
  if (f) {
    fputs("2\n", f);
    fclose(f);
  }
}

static void report(const char* name, double total_s, double* lat, long n, int last) {
  qsort(lat, (size_t)n, sizeof *lat, cmp_double);
  double sum = 0;
  for (long i = 0; i < n; ++i) sum += lat[i];
  printf("  \"%s\": {\"ops\": %ld, \"seconds\": %.6f, \"ops_per_s\": %.1f, \"lat_mean_us\": %.1f, "
         "\"lat_p50_us\": %.1f, \"lat_p99_us\": %.1f}%s\n",
         name, n, total_s, (double)n / total_s, sum / (double)n * 1e6, lat[n / 2] * 1e6,
         lat[(long)((double)n * 0.99)] * 1e6, last ? "" : ",");
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s DIR NFILES [--drop-caches]\n", argv[0]);
    return 2;
  }
  long n = strtol(argv[2], NULL, 10);
  int drop = argc > 3 && strcmp(argv[3], "--drop-caches") == 0;
  if (n <= 0) return 2;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/meta.%ld", argv[1], (long)getpid());
  if (mkdir(dir, 0755) != 0) {
    fprintf(stderr, "metabench: mkdir %s: %s\n", dir, strerror(errno));
    return 1;
  }
  double* lat = calloc((size_t)n, sizeof *lat);
  char path[4200];
  struct stat st;

  double t0 = now_s();
  for (long i = 0; i < n; ++i) {
    snprintf(path, sizeof path, "%s/f%07ld", dir, i);
    double a = now_s();
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0 || close(fd) != 0) {
      fprintf(stderr, "metabench: create %s: %s\n", path, strerror(errno));
      return 1;
    }
    lat[i] = now_s() - a;
  }
  double t1 = now_s();
  printf("{\n");
  report("create", t1 - t0, lat, n, 0);

  if (drop) drop_caches();
  t0 = now_s();
  for (long i = 0; i < n; ++i) {
    snprintf(path, sizeof path, "%s/f%07ld", dir, i);
    double a = now_s();
    if (stat(path, &st) != 0) {
      fprintf(stderr, "metabench: stat %s: %s\n", path, strerror(errno));
      return 1;
    }
    lat[i] = now_s() - a;
  }
  t1 = now_s();
  report("stat", t1 - t0, lat, n, 0);

  if (drop) drop_caches();
  t0 = now_s();
  for (long i = 0; i < n; ++i) {
    snprintf(path, sizeof path, "%s/f%07ld", dir, i);
    double a = now_s();
    if (unlink(path) != 0) {
      fprintf(stderr, "metabench: unlink %s: %s\n", path, strerror(errno));
      return 1;
    }
    lat[i] = now_s() - a;
  }
  t1 = now_s();
  report("unlink", t1 - t0, lat, n, 1);
  printf("}\n");
  rmdir(dir);
  free(lat);
  return 0;
}
