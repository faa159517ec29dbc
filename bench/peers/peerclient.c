/* peerclient.c - the workload client of bench/peers.sh (gcc -O2).
 *
 *   peerclient create  DIR N      open(DIR/fK, O_CREAT|O_EXCL|O_WRONLY, 0644) + close, K = 0..N-1
 *   peerclient stat    DIR N      stat(DIR/fK)
 *   peerclient unlink  DIR N      unlink(DIR/fK)
 *   peerclient readdir DIR        open(O_DIRECTORY) + getdents64 (64 KiB buffer) to the end;
 *                                 ops = entries other than . and ..
 *   peerclient write   FILE MB    create/truncate FILE, write MB × 1 MiB blocks, fsync, close;
 *                                 ops = MB (the rate is in MB/s, 10^6 bytes)
 *   peerclient read    FILE       read FILE to the end in 1 MiB blocks; ops = 1 MiB blocks
 *   peerclient statlist LIST      lstat() each path of LIST (one a line, as `find` prints them)
 *   peerclient mktree  DIR D F    mkdir DIR/dI (I < D) and create F empty files DIR/dI/fJ in each
 *                                 (run on the source directly, not through FUSE)
 *
 * Each prints one line "RESULT ops=N secs=S rate=R [mbs=M]" on success and exits 0;
 * the first failing call is reported with perror and exit status 1.
 * rate = ops/s (entries/s for readdir); mbs = MB/s (10^6 bytes) for write and read.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static int fail(const char *what) {
  perror(what);
  return 1;
}

static void result(long ops, double secs, double bytes) {
  if (secs <= 0) secs = 1e-9;
  if (bytes > 0)
    printf("RESULT ops=%ld secs=%.4f rate=%.1f mbs=%.1f\n", ops, secs, ops / secs, bytes / secs / 1e6);
  else
    printf("RESULT ops=%ld secs=%.4f rate=%.1f\n", ops, secs, ops / secs);
}

static int files(const char *op, const char *dir, long n) {
  char path[4096];
  struct stat st;
  double t0 = now();
  for (long i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/f%ld", dir, i);
    if (!strcmp(op, "create")) {
      int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
      if (fd < 0 || close(fd) < 0) return fail(path);
    } else if (!strcmp(op, "stat")) {
      if (stat(path, &st) < 0) return fail(path);
    } else {
      if (unlink(path) < 0) return fail(path);
    }
  }
  result(n, now() - t0, 0);
  return 0;
}

struct linux_dirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

static int readdir_all(const char *dir) {
  static char buf[65536];
  long n = 0;
  double t0 = now();
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd < 0) return fail(dir);
  for (;;) {
    long got = syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (got < 0) return fail("getdents64");
    if (got == 0) break;
    for (long off = 0; off < got;) {
      struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
      if (strcmp(d->d_name, ".") && strcmp(d->d_name, "..")) n++;
      off += d->d_reclen;
    }
  }
  close(fd);
  result(n, now() - t0, 0);
  return 0;
}

static int seq_write(const char *file, long mb) {
  size_t bs = 1 << 20;
  char *buf = aligned_alloc(4096, bs);
  for (size_t i = 0; i < bs; i++) buf[i] = (char)(i * 7 + 1);
  double t0 = now();
  int fd = open(file, O_CREAT | O_TRUNC | O_WRONLY, 0644);
  if (fd < 0) return fail(file);
  for (long i = 0; i < mb; i++) {
    buf[0] = (char)i;
    size_t done = 0;
    while (done < bs) {
      ssize_t w = write(fd, buf + done, bs - done);
      if (w <= 0) return fail("write");
      done += w;
    }
  }
  if (fsync(fd) < 0) return fail("fsync");
  if (close(fd) < 0) return fail("close");
  result(mb, now() - t0, (double)mb * bs);
  return 0;
}

static int seq_read(const char *file) {
  size_t bs = 1 << 20;
  char *buf = aligned_alloc(4096, bs);
  double total = 0;
  long blocks = 0;
  double t0 = now();
  int fd = open(file, O_RDONLY);
  if (fd < 0) return fail(file);
  for (;;) {
    ssize_t r = read(fd, buf, bs);
    if (r < 0) return fail("read");
    if (r == 0) break;
    total += r;
    blocks++;
  }
  close(fd);
  result(blocks, now() - t0, total);
  return 0;
}

static int statlist(const char *list) {
  FILE *f = fopen(list, "r");
  if (!f) return fail(list);
  char line[4096];
  struct stat st;
  long n = 0;
  double t0 = now();
  while (fgets(line, sizeof line, f)) {
    size_t l = strlen(line);
    if (l && line[l - 1] == '\n') line[--l] = 0;
    if (!l) continue;
    if (lstat(line, &st) < 0) return fail(line);
    n++;
  }
  fclose(f);
  result(n, now() - t0, 0);
  return 0;
}

static int mktree(const char *dir, long dirs, long per) {
  char path[4096];
  double t0 = now();
  for (long d = 0; d < dirs; d++) {
    snprintf(path, sizeof path, "%s/d%ld", dir, d);
    if (mkdir(path, 0755) < 0 && errno != EEXIST) return fail(path);
    for (long i = 0; i < per; i++) {
      snprintf(path, sizeof path, "%s/d%ld/f%ld", dir, d, i);
      int fd = open(path, O_CREAT | O_WRONLY, 0644);
      if (fd < 0 || close(fd) < 0) return fail(path);
    }
  }
  result(dirs * per, now() - t0, 0);
  return 0;
}

int main(int argc, char **argv) {
  const char *op = argc > 1 ? argv[1] : "";
  if ((!strcmp(op, "create") || !strcmp(op, "stat") || !strcmp(op, "unlink")) && argc == 4)
    return files(op, argv[2], atol(argv[3]));
  if (!strcmp(op, "readdir") && argc == 3) return readdir_all(argv[2]);
  if (!strcmp(op, "write") && argc == 4) return seq_write(argv[2], atol(argv[3]));
  if (!strcmp(op, "read") && argc == 3) return seq_read(argv[2]);
  if (!strcmp(op, "statlist") && argc == 3) return statlist(argv[2]);
  if (!strcmp(op, "mktree") && argc == 5) return mktree(argv[2], atol(argv[3]), atol(argv[4]));
  fprintf(stderr, "usage: peerclient create|stat|unlink DIR N | readdir DIR | write FILE MB | read FILE |"
                  " statlist LIST | mktree DIR DIRS FILES\n");
  return 2;
}
