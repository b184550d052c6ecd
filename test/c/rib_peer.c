/*
 * A C DPDK secondary that links librte_rib (it looks up a RIB by name), to test the tailq rule:
 * a secondary can only join a primary that registered every tailq the secondary's libraries
 * register (RTE_RIB here). Prints READY and the lookup's result, then exits 0.
 */
#include <stdio.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_rib.h>

int main(int argc, char **argv)
{
	if (rte_eal_init(argc, argv) < 0) {
		printf("EAL_INIT_FAILED %s\n", rte_strerror(rte_errno));
		return 1;
	}
	struct rte_rib *rib = rte_rib_find_existing("mpbus_test_rib");
	printf("READY rib=%s\n", rib == NULL ? "none" : "found");
	fflush(stdout);
	rte_eal_cleanup();
	return 0;
}
