/*
 * A plain C DPDK program that talks rte_mp with Node processes of the same group, using its own
 * raw byte layouts (no mpbus header). Used by test/mp-c.test.ts, which builds it (never committed
 * as a binary).
 *
 *   mp_peer <EAL args>
 *
 * It registers the action "c-echo", which answers every request with the request's bytes
 * reversed. It then reads commands from stdin, one per line, and prints one result line each:
 *   send <name> <hex>       rte_mp_sendmsg             -> "SENT <rc>"
 *   request <name> <hex>    rte_mp_request_sync (5 s)  -> "REPLY <rc> <nb_sent> <nb_received> <hex of first reply>"
 *   quit                    leaves the group
 * "READY" is printed once the EAL is up and the action registered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_eal.h>
#include <rte_errno.h>

static int echo_reversed(const struct rte_mp_msg *msg, const void *peer) {
	struct rte_mp_msg reply;
	int i;
	memset(&reply, 0, sizeof(reply));
	strncpy(reply.name, msg->name, RTE_MP_MAX_NAME_LEN - 1);
	reply.len_param = msg->len_param;
	for (i = 0; i < msg->len_param; i++) reply.param[i] = msg->param[msg->len_param - 1 - i];
	return rte_mp_reply(&reply, peer);
}

static int parse_hex(const char *hex, uint8_t *out, int max) {
	int n = 0;
	while (hex[0] && hex[1] && n < max) {
		unsigned v;
		if (sscanf(hex, "%2x", &v) != 1) return -1;
		out[n++] = (uint8_t)v;
		hex += 2;
	}
	return n;
}

static void print_hex(const uint8_t *p, int n) {
	int i;
	for (i = 0; i < n; i++) printf("%02x", p[i]);
}

int main(int argc, char **argv) {
	char line[1024], cmd[16], name[RTE_MP_MAX_NAME_LEN], hex[600];
	if (rte_eal_init(argc, argv) < 0) {
		fprintf(stderr, "EAL init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	if (rte_mp_action_register("c-echo", echo_reversed) < 0) {
		fprintf(stderr, "register failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("READY\n");
	while (fgets(line, sizeof(line), stdin) != NULL) {
		struct rte_mp_msg msg;
		hex[0] = '\0';
		if (sscanf(line, "%15s %63s %599s", cmd, name, hex) < 1) continue;
		if (strcmp(cmd, "quit") == 0) break;
		memset(&msg, 0, sizeof(msg));
		strncpy(msg.name, name, RTE_MP_MAX_NAME_LEN - 1);
		msg.len_param = parse_hex(hex, msg.param, RTE_MP_MAX_PARAM_LEN);
		if (msg.len_param < 0) msg.len_param = 0;
		if (strcmp(cmd, "send") == 0) {
			printf("SENT %d\n", rte_mp_sendmsg(&msg));
		} else if (strcmp(cmd, "request") == 0) {
			struct rte_mp_reply reply;
			struct timespec ts = {.tv_sec = 5, .tv_nsec = 0};
			int rc = rte_mp_request_sync(&msg, &reply, &ts);
			printf("REPLY %d %d %d ", rc, reply.nb_sent, reply.nb_received);
			if (rc == 0 && reply.nb_received > 0) print_hex(reply.msgs[0].param, reply.msgs[0].len_param);
			printf("\n");
			if (rc == 0) free(reply.msgs);
		}
	}
	rte_mp_action_unregister("c-echo");
	rte_eal_cleanup();
	return 0;
}
