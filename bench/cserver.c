/* cserver.c - kernel-probes' rtt server (mode `st`) as a standalone server,
 * so that bench/statclient can be run against a C server too.
 *
 *   cserver MOUNTPOINT        (build: gcc -O2 -pthread -I<kernel-probes> cserver.c)
 *
 * `rtt` forks its own clients and unmounts as soon as they finish (with 0
 * clients it unmounts at once), so it cannot serve an external client. This
 * program is rtt.c's server unchanged: kp.h's mount, INIT (same flags), test
 * filesystem and the same one-thread read loop with the GETATTR fast path
 * (attr_valid 0; LOOKUP entry_valid 3600 s) - without the built-in clients.
 * It serves until SIGTERM/SIGINT, then unmounts, prints
 * "STATS getattr=N requests=N" and exits. Prints "READY" once INIT is answered.
 * Pin with `taskset -c CPU cserver ...` (the server thread inherits it).
 */
#include "kp.h"
#include <pthread.h>

struct srv {
	int fd;
	unsigned long n, getattr;
	struct kp_fs fs;
};

static void *srv_loop(void *a) /* = rtt.c's srv_loop without the pinning */
{
	struct srv *s = a;
	char *buf = malloc(KP_BUFSZ);
	for (;;) {
		ssize_t n = read(s->fd, buf, KP_BUFSZ);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			break; /* ENODEV after umount */
		}
		struct fuse_in_header *ih = (void *)buf;
		s->n++;
		if (ih->opcode == FUSE_GETATTR) {
			struct fuse_attr_out ao;
			memset(&ao, 0, sizeof(ao));
			kp_fill_attr(&ao.attr, ih->nodeid, ih->nodeid == 1, ih->nodeid == 1 ? 0 : 4096);
			kp_reply(s->fd, ih->unique, 0, &ao, sizeof(ao));
			s->getattr++;
		} else {
			kp_handle(s->fd, buf, n, &s->fs);
		}
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: cserver MOUNTPOINT\n");
		return 2;
	}
	setenv("KP_MNT", argv[1], 1);
	const char *mnt = kp_mnt();

	/* block the stop signals in every thread; main waits for them */
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	pthread_sigmask(SIG_BLOCK, &ss, NULL);

	int fd = kp_mount(mnt, NULL);
	if (fd < 0)
		return 1;
	struct kp_init_out t = { 0 };
	kp_do_init(fd, FUSE_ASYNC_READ | FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES, &t, NULL);

	struct srv S;
	memset(&S, 0, sizeof(S));
	S.fs = (struct kp_fs){ .fsize = 4096, .entry_valid = 3600, .attr_valid = 0, .data_fd = -1 };
	S.fd = fd;
	pthread_t th;
	pthread_create(&th, NULL, srv_loop, &S);
	printf("READY\n");

	int sig;
	sigwait(&ss, &sig);
	kp_umount(mnt); /* umount2, MNT_DETACH if busy; the read loop ends with ENODEV */
	pthread_join(th, NULL);
	printf("STATS getattr=%lu requests=%lu\n", S.getattr, S.n);
	return 0;
}
