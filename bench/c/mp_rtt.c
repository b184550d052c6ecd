/*
 * The physical limit of rte_mp request/reply on this machine, for bench/suites/rte-mp.ts (built
 * by the bench into a temp dir, never committed as a binary).
 *
 *   mp_rtt <EAL args> -- primary            registers "bench-echo" (replies with the request's
 *                                           bytes, on DPDK's IPC thread), prints READY, runs
 *                                           until stdin closes
 *   mp_rtt <EAL args> -- secondary N BYTES  N sequential rte_mp_request_sync of BYTES bytes to
 *                                           the primary; prints "RTT_NS <ns> <ns> ..." (one
 *                                           figure per request, after 10% warm-up)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_eal.h>
#include <rte_errno.h>

static int echo(const struct rte_mp_msg *msg, const void *peer) {
	struct rte_mp_msg reply;
	memcpy(&reply, msg, sizeof(reply));
	reply.num_fds = 0;
	return rte_mp_reply(&reply, peer);
}

static long long now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
	int consumed = rte_eal_init(argc, argv);
	if (consumed < 0) {
		fprintf(stderr, "EAL init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	argc -= consumed;
	argv += consumed;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && strcmp(argv[1], "primary") == 0) {
		char buf[64];
		if (rte_mp_action_register("bench-echo", echo) < 0) return 1;
		printf("READY\n");
		while (fgets(buf, sizeof(buf), stdin) != NULL) {}
	} else if (argc >= 4 && strcmp(argv[1], "secondary") == 0) {
		int n = atoi(argv[2]), bytes = atoi(argv[3]), warm = n / 10, i;
		long long *rtt = calloc(n, sizeof(*rtt));
		struct rte_mp_msg msg;
		struct timespec ts = {.tv_sec = 5, .tv_nsec = 0};
		memset(&msg, 0, sizeof(msg));
		strcpy(msg.name, "bench-echo");
		msg.len_param = bytes > RTE_MP_MAX_PARAM_LEN ? RTE_MP_MAX_PARAM_LEN : bytes;
		for (i = 0; i < warm + n; i++) {
			struct rte_mp_reply reply;
			long long t0 = now_ns();
			if (rte_mp_request_sync(&msg, &reply, &ts) < 0 || reply.nb_received != 1) {
				fprintf(stderr, "request %d failed: %s\n", i, rte_strerror(rte_errno));
				return 1;
			}
			free(reply.msgs);
			if (i >= warm) rtt[i - warm] = now_ns() - t0;
		}
		printf("RTT_NS");
		for (i = 0; i < n; i++) printf(" %lld", rtt[i]);
		printf("\n");
	} else {
		fprintf(stderr, "usage: mp_rtt <EAL args> -- primary | secondary N BYTES\n");
		return 2;
	}
	rte_eal_cleanup();
	return 0;
}
