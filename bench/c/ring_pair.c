/*
 * The c_rte_ring benchmark rows: two C DPDK processes (a primary and a secondary) passing
 * values through rte_ring the way a C application would, as the ceiling for any transport
 * built on rings. Built at bench time by bench/suites/baselines.ts (never committed as a binary).
 *
 *   ring_pair <EAL args> -- primary <payloadBytes> <seconds> <roundTrips>
 *   ring_pair <EAL args> -- secondary <payloadBytes>
 *
 * Throughput: the secondary takes buffers from a mempool in bursts of 32, copies the payload
 * into each and enqueues their addresses on ring "bench_a"; the primary dequeues bursts, copies
 * each payload out and puts the buffers back. Counted at the primary for <seconds>.
 * Round trip: the primary sends one buffer on "bench_ping", the secondary sends it back on
 * "bench_pong"; both spin. The primary prints
 *   RESULT <payloadBytes> <msgs/s> <rtt p50 us> <rtt p99 us> <round trips measured>
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_debug.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_mempool.h>
#include <rte_pause.h>
#include <rte_ring.h>

#define BURST 32
#define POOL_SIZE 8191
#define RING_SIZE 4096
/* Marks on the ring (not pool objects): the end of the throughput phase, and of the run. */
#define END_THROUGHPUT ((void *)1)
#define END_RUN ((void *)2)

static double now_us(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void enqueue_all(struct rte_ring *r, void **objs, unsigned n) {
	unsigned done = 0;
	while (done < n) done += rte_ring_enqueue_burst(r, objs + done, n - done, NULL);
}

static void *dequeue_one(struct rte_ring *r) {
	void *obj;
	while (rte_ring_dequeue(r, &obj) != 0) rte_pause();
	return obj;
}

static int run_secondary(size_t payload) {
	struct rte_mempool *pool = rte_mempool_lookup("bench_pool");
	struct rte_ring *a = rte_ring_lookup("bench_a"), *ctl = rte_ring_lookup("bench_ctl");
	struct rte_ring *ping = rte_ring_lookup("bench_ping"), *pong = rte_ring_lookup("bench_pong");
	if (!pool || !a || !ctl || !ping || !pong) {
		fprintf(stderr, "secondary: objects not found\n");
		return 1;
	}
	char *src = malloc(payload);
	memset(src, 'a', payload);
	void *objs[BURST];
	/* Produce until the primary has counted enough and says stop (a mark on bench_ctl). */
	void *mark = NULL;
	while (rte_ring_dequeue(ctl, &mark) != 0) {
		if (rte_mempool_get_bulk(pool, objs, BURST) != 0) {
			rte_pause();
			continue;
		}
		for (int i = 0; i < BURST; i++) memcpy(objs[i], src, payload);
		enqueue_all(a, objs, BURST);
	}
	void *end = END_THROUGHPUT;
	enqueue_all(a, &end, 1);
	/* Echo until the end of the run (on other rings: the primary may still be draining "a"). */
	for (;;) {
		void *obj = dequeue_one(ping);
		if (obj == END_RUN) break;
		enqueue_all(pong, &obj, 1);
	}
	return 0;
}

static int run_primary(size_t payload, double seconds, int round_trips) {
	struct rte_mempool *pool = rte_mempool_create("bench_pool", POOL_SIZE, payload, 0, 0, NULL, NULL, NULL, NULL, SOCKET_ID_ANY, 0);
	struct rte_ring *a = rte_ring_create("bench_a", RING_SIZE, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	struct rte_ring *ctl = rte_ring_create("bench_ctl", 4, SOCKET_ID_ANY, 0);
	struct rte_ring *ping = rte_ring_create("bench_ping", 4, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	struct rte_ring *pong = rte_ring_create("bench_pong", 4, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	if (!pool || !a || !ctl || !ping || !pong) {
		fprintf(stderr, "primary: cannot create objects: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	printf("READY\n");
	fflush(stdout);
	char *dst = malloc(payload);
	void *objs[BURST];
	/* Throughput: count from the first message for `seconds`. */
	uint64_t received = 0;
	double start = 0, stop = 0;
	int ended = 0, stopped = 0;
	while (!ended) {
		unsigned n = rte_ring_dequeue_burst(a, objs, BURST, NULL);
		if (n == 0) {
			rte_pause();
			continue;
		}
		if (start == 0) start = now_us();
		unsigned puts = 0;
		for (unsigned i = 0; i < n; i++) {
			if (objs[i] == END_THROUGHPUT) {
				ended = 1;
				continue;
			}
			memcpy(dst, objs[i], payload);
			objs[puts++] = objs[i];
		}
		rte_mempool_put_bulk(pool, objs, puts);
		if (!stopped) {
			received += puts;
			double t = now_us();
			if (t - start >= seconds * 1e6) {
				stop = t;
				stopped = 1;
				void *mark = END_RUN;
				enqueue_all(ctl, &mark, 1);
			}
		}
	}
	double throughput = received / ((stop - start) / 1e6);
	/* Round trips: at most round_trips, and no longer than `seconds` (a loaded machine can
	 * deschedule the spinning peer for a whole time slice per trip). */
	double *rtt = malloc(sizeof(double) * round_trips);
	int warmup = round_trips / 10, measured = 0;
	double rtt_deadline = now_us() + seconds * 1e6;
	for (int i = 0; i < round_trips + warmup && (i < warmup + 100 || now_us() < rtt_deadline); i++) {
		void *obj;
		while (rte_mempool_get(pool, &obj) != 0) rte_pause();
		double t0 = now_us();
		memcpy(obj, dst, payload);
		enqueue_all(ping, &obj, 1);
		void *back = dequeue_one(pong);
		memcpy(dst, back, payload);
		double t1 = now_us();
		rte_mempool_put(pool, back);
		if (i >= warmup) rtt[measured++] = t1 - t0;
	}
	void *end = END_RUN;
	enqueue_all(ping, &end, 1);
	qsort(rtt, measured, sizeof(double), cmp_double);
	printf("RESULT %zu %.0f %.3f %.3f %d\n", payload, throughput, rtt[measured / 2], rtt[(int)(measured * 0.99)], measured);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv) {
	int eal_args = rte_eal_init(argc, argv);
	if (eal_args < 0) rte_exit(EXIT_FAILURE, "rte_eal_init failed: %s\n", rte_strerror(rte_errno));
	char **app = argv + eal_args; /* DPDK puts the program name in app[0] */
	int app_count = argc - eal_args;
	int rc = 2;
	if (app_count >= 5 && strcmp(app[1], "primary") == 0) {
		rc = run_primary((size_t)atoi(app[2]), atof(app[3]), atoi(app[4]));
	} else if (app_count >= 3 && strcmp(app[1], "secondary") == 0) {
		rc = run_secondary((size_t)atoi(app[2]));
	} else {
		fprintf(stderr, "usage: ring_pair <EAL args> -- primary <bytes> <seconds> <roundTrips> | secondary <bytes>\n");
	}
	rte_eal_cleanup();
	return rc;
}
