/*
 * A plain C DPDK secondary that sends raw messages to an mpbus mailbox by the wire format and
 * ownership protocol of docs/mailboxes.md ("Descriptor and buffer format", "Ownership"), used by
 * test/c-interop.test.ts (built by the test, never committed as a binary).
 *
 *   mbx_peer <EAL args> -- <receiverSlot> <mailboxId> <count> <repeat>
 *
 * Sends <count> messages "from C #i" to mailbox <mailboxId> of the process in <receiverSlot>;
 * with <repeat> 1 it enqueues every descriptor twice (a buggy peer: the receiver must refuse
 * each second copy). Prints "SENT <n> CONFLICTS <m>", then waits for stdin to close, returns
 * its lcore's cached pool buffers and leaves.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <rte_ring.h>

/* The buffer header, 32 bytes, little endian. */
struct mbx_header {
	uint32_t magic;      /* 0x4d50424d "MPBM" */
	uint16_t version;    /* 2 */
	uint16_t flags;      /* codec: 0 raw */
	uint32_t length;     /* payload bytes after the header */
	uint32_t mailbox_id;
	uint32_t sender_slot;
	uint32_t large_index;
	uint32_t owner;      /* generation << 16 | holder << 8 | slot */
	uint32_t reserved;
};

enum { HOLDER_FREE = 0x00, HOLDER_WRITING = 0x57, HOLDER_IN_FLIGHT = 0x46 };

static uint32_t owner_word(uint32_t generation, uint32_t holder, uint32_t slot) {
	return ((generation & 0xffff) << 16) | (holder << 8) | (slot & 0xff);
}

/* Take: free@g -> writing(me)@g+1 by CAS. Returns g+1, or -1 when the buffer is not free. */
static int take(struct mbx_header *h, uint32_t me) {
	uint32_t w = __atomic_load_n(&h->owner, __ATOMIC_RELAXED);
	while (((w >> 8) & 0xff) == HOLDER_FREE) {
		uint32_t taken = owner_word((w >> 16) + 1, HOLDER_WRITING, me);
		if (__atomic_compare_exchange_n(&h->owner, &w, taken, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return (int)(taken >> 16);
	}
	return -1;
}

/* Publish: writing(me)@g -> inFlight(receiver)@g by CAS (release: the receiver sees the whole buffer). */
static int publish(struct mbx_header *h, uint32_t generation, uint32_t me, uint32_t receiver) {
	uint32_t w = owner_word(generation, HOLDER_WRITING, me);
	return __atomic_compare_exchange_n(&h->owner, &w, owner_word(generation, HOLDER_IN_FLIGHT, receiver), 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

int main(int argc, char **argv) {
	int used = rte_eal_init(argc, argv);
	if (used < 0) {
		fprintf(stderr, "EAL init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	argc -= used;
	argv += used;
	if (argc != 5) {
		fprintf(stderr, "usage: mbx_peer <EAL> -- <receiverSlot> <mailboxId> <count> <repeat>\n");
		return 2;
	}
	uint32_t receiver = (uint32_t)strtoul(argv[1], NULL, 10);
	uint32_t mailbox_id = (uint32_t)strtoul(argv[2], NULL, 10);
	int count = atoi(argv[3]);
	int repeat = atoi(argv[4]);
	uint32_t me = rte_lcore_id();
	char inbox_name[RTE_RING_NAMESIZE];
	snprintf(inbox_name, sizeof inbox_name, "mpbus_ib_%u", receiver);
	struct rte_mempool *pool = rte_mempool_lookup("mpbus_mbx_pool");
	struct rte_ring *inbox = rte_ring_lookup(inbox_name);
	if (pool == NULL || inbox == NULL) {
		fprintf(stderr, "no mpbus pool or inbox %s\n", inbox_name);
		return 1;
	}
	int sent = 0, conflicts = 0;
	for (int i = 0; i < count; i++) {
		void *obj;
		int generation = -1;
		while (generation < 0) {
			if (rte_mempool_get(pool, &obj) != 0) {
				usleep(1000);
				continue;
			}
			generation = take(obj, me);
			if (generation < 0) conflicts++; /* held by someone: dropped, not put back */
		}
		struct mbx_header *h = obj;
		char text[64];
		int n = snprintf(text, sizeof text, "from C #%d", i);
		h->magic = 0x4d50424d;
		h->version = 2;
		h->flags = 0;
		h->length = (uint32_t)n;
		h->mailbox_id = mailbox_id;
		h->sender_slot = me;
		h->large_index = 0;
		h->reserved = 0;
		memcpy(h + 1, text, (size_t)n);
		if (!publish(h, (uint32_t)generation, me, receiver)) {
			conflicts++;
			continue;
		}
		/* The descriptor: the address, and the generation in the high 16 bits. The generic
		 * enqueue follows the inbox's sync mode (RTS): rte_ring_mp_enqueue would corrupt it. */
		void *descriptor = (void *)((uintptr_t)h | ((uintptr_t)generation << 48));
		for (int copy = 0; copy < (repeat ? 2 : 1); copy++) {
			while (rte_ring_enqueue(inbox, descriptor) != 0) usleep(1000);
		}
		sent++;
	}
	printf("SENT %d CONFLICTS %d\n", sent, conflicts);
	fflush(stdout);
	char buf[16];
	while (read(0, buf, sizeof buf) > 0) {
	}
	/* Buffers this lcore's cache took from the pool's ring go back before we leave. */
	struct rte_mempool_cache *cache = rte_mempool_default_cache(pool, me);
	if (cache != NULL) rte_mempool_cache_flush(cache, pool);
	rte_eal_cleanup();
	return 0;
}
