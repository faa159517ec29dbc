/* statclient.c - stat() round-trip client for bench/rtt.sh.
 *
 *   statclient PATH [seconds [warmup-seconds]]      (default 5 s, no warm-up)
 *
 * The same loop as the client processes of kernel-probes' rtt.c: one stat()
 * to warm the dentry (the LOOKUP), then stat(PATH) in blocks of 64 until the
 * time is up, counting failures. With a warm-up time, the same loop runs
 * that long first, unmeasured (lets a JIT-compiled server reach steady state). Against a FUSE mount that answers GETATTR
 * with attr_valid 0, every stat() is one GETATTR round trip.
 * No pinning here: use `taskset -c CPU statclient ...`.
 *
 * Prints one line:
 *   RESULT ops=N secs=S rate=R us_per_op=U errors=E warmup_ops=W
 * Exit status: 0, or 1 if the warm-up stat() fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: statclient PATH [seconds]\n");
		return 2;
	}
	const char *path = argv[1];
	double secs = argc > 2 ? atof(argv[2]) : 5.0;
	double warm = argc > 3 ? atof(argv[3]) : 0.0;
	struct stat st;
	if (stat(path, &st) < 0) { /* warm the dentry (LOOKUP) */
		fprintf(stderr, "statclient: stat %s: %s\n", path, strerror(errno));
		return 1;
	}
	unsigned long cnt = 0, errs = 0, wcnt = 0;
	double t0, t1, t;
	if (warm > 0) {
		t1 = now() + warm;
		do {
			for (int k = 0; k < 64; k++, wcnt++)
				stat(path, &st);
		} while (now() < t1);
	}
	t0 = now(), t1 = t0 + secs;
	do {
		for (int k = 0; k < 64; k++) {
			if (stat(path, &st) < 0)
				errs++;
			cnt++;
		}
		t = now();
	} while (t < t1);
	double el = t - t0;
	printf("RESULT ops=%lu secs=%.3f rate=%.0f us_per_op=%.3f errors=%lu warmup_ops=%lu\n", cnt, el, cnt / el,
	       el * 1e6 / cnt, errs, wcnt);
	return 0;
}
