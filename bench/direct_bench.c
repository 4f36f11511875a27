/* direct_bench: drives liblanefs-direct (include/lanefs/direct.h) the way
 * a data loader does, and prints one JSON line. Written in C: it also
 * proves the header is C.
 *
 *   direct_bench --mount M --file F [--rw read|write|randread|randwrite]
 *                [--bs BYTES] [--depth N] [--threads N] [--seconds S]
 *
 * Each thread opens F (O_RDWR for writes), makes its own ring of `depth`
 * entries and a buffer of depth * bs bytes, and keeps `depth` IOs in
 * flight for `seconds`: sequential ranges (each thread its own stripe of
 * the file) or random bs-aligned ones. Reports MB/s (MiB/s), IOPS, mean
 * latency and the process's CPU seconds (user + system) per GiB moved.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lanefs/direct.h"

static const char* g_mount;
static const char* g_file;
static int g_write, g_random;
static size_t g_bs = 1 << 20;
static unsigned g_depth = 16, g_threads = 1;
static double g_seconds = 5;
static uint64_t g_file_size;

struct worker {
  pthread_t t;
  int id;
  uint64_t ios, bytes, errors;
  double lat_sum;
  char err[256];
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_next(uint64_t* s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static void* run(void* arg) {
  struct worker* w = arg;
  int fd = open(g_file, g_write ? O_RDWR : O_RDONLY);
  lanefs_ring* ring = fd >= 0 ? lanefs_ring_create(g_mount, g_depth) : NULL;
  lanefs_buf* buf = ring ? lanefs_buf_create(g_mount, (size_t)g_depth * g_bs) : NULL;
  if (!buf) {
    snprintf(w->err, sizeof w->err, "setup: %s", fd < 0 ? strerror(errno) : lanefs_direct_error());
    return NULL;
  }
  const uint64_t blocks = g_file_size / g_bs;
  const uint64_t stripe = blocks / g_threads ? blocks / g_threads : 1;
  uint64_t next = (uint64_t)w->id * stripe, seed = 0x9e3779b97f4a7c15ull * (uint64_t)(w->id + 1);
  double* started = calloc(g_depth, sizeof(double));
  struct lanefs_cqe cqes[64];
  const double end = now_s() + g_seconds;
  unsigned inflight = 0;
  for (;;) {
    const int more = now_s() < end;
    if (more) {
      /* refill: slot = user_data, each slot its own part of the buffer */
      for (unsigned slot = 0; slot < g_depth && inflight < g_depth; ++slot) {
        if (started[slot] != 0) continue;
        uint64_t block = g_random ? rng_next(&seed) % blocks : next++ % blocks;
        int rc = g_write ? lanefs_prep_write(ring, buf, slot * g_bs, fd, block * g_bs, g_bs, slot)
                         : lanefs_prep_read(ring, buf, slot * g_bs, fd, block * g_bs, g_bs, slot);
        if (rc != 0) {
          snprintf(w->err, sizeof w->err, "prep: %s", lanefs_direct_error());
          goto out;
        }
        started[slot] = now_s();
        ++inflight;
      }
      lanefs_submit(ring);
    }
    if (inflight == 0) break;
    int n = lanefs_wait(ring, cqes, 64, 1, 30000);
    if (n < 0) {
      snprintf(w->err, sizeof w->err, "wait: %s", lanefs_direct_error());
      break;
    }
    const double t = now_s();
    for (int i = 0; i < n; ++i) {
      unsigned slot = (unsigned)cqes[i].user_data;
      w->lat_sum += t - started[slot];
      started[slot] = 0;
      --inflight;
      if (cqes[i].res < 0) {
        ++w->errors;
      } else {
        ++w->ios;
        w->bytes += (uint64_t)cqes[i].res;
      }
    }
  }
out:
  free(started);
  lanefs_buf_destroy(buf);
  lanefs_ring_destroy(ring);
  close(fd);
  return NULL;
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         (double)ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char** argv) {
  const char* rw = "read";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--mount")) g_mount = argv[i + 1];
    else if (!strcmp(argv[i], "--file")) g_file = argv[i + 1];
    else if (!strcmp(argv[i], "--rw")) rw = argv[i + 1];
    else if (!strcmp(argv[i], "--bs")) g_bs = strtoull(argv[i + 1], NULL, 0);
    else if (!strcmp(argv[i], "--depth")) g_depth = (unsigned)strtoul(argv[i + 1], NULL, 0);
    else if (!strcmp(argv[i], "--threads")) g_threads = (unsigned)strtoul(argv[i + 1], NULL, 0);
    else if (!strcmp(argv[i], "--seconds")) g_seconds = strtod(argv[i + 1], NULL);
    else {
      fprintf(stderr, "direct_bench: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  g_write = strstr(rw, "write") != NULL;
  g_random = strncmp(rw, "rand", 4) == 0;
  struct stat st;
  if (!g_mount || !g_file || stat(g_file, &st) != 0 || g_bs == 0 || g_depth == 0 || g_depth > 4096 ||
      g_threads == 0 || g_threads > 256 || (uint64_t)st.st_size < g_bs) {
    fprintf(stderr,
            "usage: direct_bench --mount M --file F [--rw read|write|randread|randwrite] [--bs B] [--depth N] "
            "[--threads N] [--seconds S] (F must exist and hold at least one block)\n");
    return 2;
  }
  g_file_size = (uint64_t)st.st_size;
  struct worker* ws = calloc(g_threads, sizeof *ws);
  const double c0 = cpu_s(), t0 = now_s();
  for (unsigned i = 0; i < g_threads; ++i) {
    ws[i].id = (int)i;
    pthread_create(&ws[i].t, NULL, run, &ws[i]);
  }
  uint64_t ios = 0, bytes = 0, errors = 0;
  double lat = 0;
  for (unsigned i = 0; i < g_threads; ++i) {
    pthread_join(ws[i].t, NULL);
    if (ws[i].err[0]) {
      fprintf(stderr, "direct_bench: thread %u: %s\n", i, ws[i].err);
      return 1;
    }
    ios += ws[i].ios;
    bytes += ws[i].bytes;
    errors += ws[i].errors;
    lat += ws[i].lat_sum;
  }
  const double secs = now_s() - t0, cpu = cpu_s() - c0;
  printf("{\"rw\": \"%s\", \"bs\": %zu, \"depth\": %u, \"threads\": %u, \"seconds\": %.3f, \"ios\": %llu, "
         "\"errors\": %llu, \"mib_s\": %.1f, \"iops\": %.0f, \"lat_us\": %.1f, \"cpu_s\": %.3f, "
         "\"cpu_s_per_gib\": %.3f}\n",
         rw, g_bs, g_depth, g_threads, secs, (unsigned long long)ios, (unsigned long long)errors,
         (double)bytes / 1048576.0 / secs, (double)ios / secs, ios ? lat / (double)ios * 1e6 : 0.0, cpu,
         bytes ? cpu / ((double)bytes / 1073741824.0) : 0.0);
  free(ws);
  return errors ? 1 : 0;
}
