/* metaclient.c - metadata round trips for bench/passthrough.sh.
 *   metaclient DIR N
 * Does N times: create DIR/fK (open O_CREAT|O_EXCL, close), stat it, unlink it;
 * then prints "RESULT files=N secs=S rate=R" with R in files per second
 * (each file costs LOOKUP, CREATE, FLUSH, RELEASE, GETATTR (or not, cached) and UNLINK through FUSE).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: metaclient DIR N\n");
    return 2;
  }
  long n = atol(argv[2]);
  char path[4096];
  struct stat st;
  double t0 = now();
  for (long i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/f%ld", argv[1], i);
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd < 0 || close(fd) < 0 || stat(path, &st) < 0 || unlink(path) < 0) {
      perror(path);
      return 1;
    }
  }
  double secs = now() - t0;
  printf("RESULT files=%ld secs=%.3f rate=%.0f\n", n, secs, n / secs);
  return 0;
}
