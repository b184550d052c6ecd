/*
 * A plain C DPDK program that exchanges messages with Node processes of the same group through
 * rte_ring and rte_mempool, used by test/c-interop.test.ts (built by the test, never committed
 * as a binary).
 *
 *   peer <EAL args> -- primary|secondary <pool> <inRing> <outRing> <greetings>
 *
 * As primary it creates the pool (1023 objects of 256 bytes) and both rings; as secondary it
 * looks them up (a Node primary created them). A message is a pool object holding a 32-bit
 * little-endian length and that many bytes of text; the ring carries the object's address.
 * The program sends <greetings> messages "from C #i" on <outRing>, then answers every message
 * from <inRing> with "C echo: <text>" until it gets "quit". Then it prints "DONE <n>" and waits
 * for stdin to close before leaving the group (so a Node secondary can leave first).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#define OBJ_SIZE 256
#define POOL_SIZE 1023
#define RING_SIZE 1024

/* The pool's object addresses, sorted: an address from the ring is used only if it is one. */
static uintptr_t *objects;
static unsigned n_objects;

static void collect(struct rte_mempool *mp, void *arg, void *obj, unsigned idx) {
	(void)mp; (void)arg; (void)idx;
	objects[n_objects++] = (uintptr_t)obj;
}

static int cmp_addr(const void *a, const void *b) {
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

static int is_object(void *p) {
	uintptr_t key = (uintptr_t)p;
	return bsearch(&key, objects, n_objects, sizeof(key), cmp_addr) != NULL;
}

static int send_text(struct rte_mempool *pool, struct rte_ring *ring, const char *text) {
	void *obj;
	uint32_t len = (uint32_t)strlen(text);
	if (len > OBJ_SIZE - 4) len = OBJ_SIZE - 4;
	while (rte_mempool_get(pool, &obj) != 0) usleep(100);
	memcpy(obj, &len, 4);
	memcpy((char *)obj + 4, text, len);
	while (rte_ring_enqueue(ring, obj) != 0) usleep(100);
	return 0;
}

int main(int argc, char **argv) {
	int used = rte_eal_init(argc, argv);
	if (used < 0) {
		fprintf(stderr, "rte_eal_init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	argc -= used;
	argv += used;
	if (argc < 6) {
		fprintf(stderr, "usage: peer <EAL args> -- primary|secondary <pool> <inRing> <outRing> <greetings>\n");
		return 2;
	}
	int primary = strcmp(argv[1], "primary") == 0;
	const char *pool_name = argv[2], *in_name = argv[3], *out_name = argv[4];
	int greetings = atoi(argv[5]);
	struct rte_mempool *pool;
	struct rte_ring *in, *out;
	if (primary) {
		pool = rte_mempool_create(pool_name, POOL_SIZE, OBJ_SIZE, 0, 0, NULL, NULL, NULL, NULL, SOCKET_ID_ANY, 0);
		in = rte_ring_create(in_name, RING_SIZE, SOCKET_ID_ANY, RING_F_SC_DEQ);
		out = rte_ring_create(out_name, RING_SIZE, SOCKET_ID_ANY, RING_F_SP_ENQ);
		/* A ring of 16-byte elements, which Node must refuse to treat as a pointer ring. */
		if (rte_ring_create_elem("c_elem16", 16, 64, SOCKET_ID_ANY, 0) == NULL) {
			fprintf(stderr, "cannot create c_elem16: %s\n", rte_strerror(rte_errno));
			return 1;
		}
	} else {
		pool = rte_mempool_lookup(pool_name);
		in = rte_ring_lookup(in_name);
		out = rte_ring_lookup(out_name);
	}
	if (pool == NULL || in == NULL || out == NULL) {
		fprintf(stderr, "cannot %s pool/rings: %s\n", primary ? "create" : "find", rte_strerror(rte_errno));
		return 1;
	}
	objects = calloc(pool->size, sizeof(*objects));
	rte_mempool_obj_iter(pool, collect, NULL);
	qsort(objects, n_objects, sizeof(*objects), cmp_addr);

	printf("READY lcore=%u\n", rte_lcore_id());
	fflush(stdout);

	char text[OBJ_SIZE + 16];
	for (int i = 0; i < greetings; i++) {
		snprintf(text, sizeof(text), "from C #%d", i);
		send_text(pool, out, text);
	}

	int answered = 0, rejected = 0, quit = 0;
	while (!quit) {
		void *obj = NULL;
		if (rte_ring_dequeue(in, &obj) != 0) {
			usleep(200); /* a test peer: yield the CPU instead of spinning */
			continue;
		}
		if (!is_object(obj)) {
			rejected++;
			continue;
		}
		uint32_t len;
		memcpy(&len, obj, 4);
		if (len > OBJ_SIZE - 4) {
			rejected++;
			rte_mempool_put(pool, obj);
			continue;
		}
		char got[OBJ_SIZE];
		memcpy(got, (char *)obj + 4, len);
		got[len] = 0;
		rte_mempool_put(pool, obj);
		if (strcmp(got, "quit") == 0) {
			quit = 1;
		} else {
			snprintf(text, sizeof(text), "C echo: %s", got);
			send_text(pool, out, text);
			answered++;
		}
	}
	printf("DONE answered=%d rejected=%d\n", answered, rejected);
	fflush(stdout);
	/* Leave the group only when told (stdin closed), so a Node secondary can detach first. */
	char buf[64];
	while (read(0, buf, sizeof(buf)) > 0) {
	}
	rte_eal_cleanup();
	return 0;
}
