// openbench: the cost of opening files (bench/open_ab.sh).
//
//   openbench DIR NFILES [PHASE]
//
// PHASE 1 writes NFILES files of 4 KiB in DIR; PHASE 2 times NFILES x
// (open O_RDONLY + read 4 KiB + close) of them and prints opens per second;
// PHASE 0 (default) does both, then removes the files.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: openbench DIR NFILES [PHASE]\n");
    return 2;
  }
  int n = atoi(argv[2]), phase = argc > 3 ? atoi(argv[3]) : 0;
  char p[4096], buf[4096] = {1};
  if (phase == 0 || phase == 1)
    for (int i = 0; i < n; ++i) {
      snprintf(p, sizeof p, "%s/o%d", argv[1], i);
      int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
      if (fd < 0 || write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) return perror(p), 1;
      close(fd);
    }
  if (phase == 1) return 0;
  double t0 = now_s();
  for (int i = 0; i < n; ++i) {
    snprintf(p, sizeof p, "%s/o%d", argv[1], i);
    int fd = open(p, O_RDONLY);
    if (fd < 0 || read(fd, buf, sizeof buf) != (ssize_t)sizeof buf) return perror(p), 1;
    close(fd);
  }
  printf("%.0f\n", n / (now_s() - t0));
  if (phase == 0)
    for (int i = 0; i < n; ++i) {
      snprintf(p, sizeof p, "%s/o%d", argv[1], i);
      unlink(p);
    }
  return 0;
}
