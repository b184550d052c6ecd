/**
 * What a routed ask allocates in its caller (docs/benchmarks.md, "Thirty-fourth pass"): this
 * process is the caller of bench/peers/client-mpbus.ts (a router over the actors of two worker
 * processes, 64-byte `square` asks, as the peers suite's router rows) and runs V8's sampling
 * heap profiler, collected objects included, around one windowed phase; it prints the bytes
 * allocated per ask, in all and by the function that allocated them (the largest).
 *
 * Run (after tsc): node dist/bench/alloc-per-ask.js [window=128] [seconds=2] [top=15]
 */
import { GroupFiles } from '../src/runtime/group.js';
import { MpbusClients } from './peers/client-mpbus.js';
import { windowed } from './peers/square-phases.js';
import { sampledAllocations, topSites } from './allocations.js';

const window = Number(process.argv[2] ?? 128);
const seconds = Number(process.argv[3] ?? 2);
const top = Number(process.argv[4] ?? 15);
const prefix = `mpbench_alloc_${process.pid}`;

const clients = await MpbusClients.start(prefix, () => {});
try {
  await windowed(clients.router, window, 1); // JIT and buffers
  const { result: run, total, bySite } = await sampledAllocations(() => windowed(clients.router, window, seconds));
  console.log(
    `window ${window}: ${run.count} asks, ${Math.round(run.perSec / 1000)} k/s; ${Math.round(total / run.count)} bytes allocated per ask in the caller`,
  );
  for (const line of topSites(bySite, run.count, top)) console.log(line);
} finally {
  await clients.close();
  const group = new GroupFiles(prefix);
  if (!group.primaryAlive()) group.removeLeftovers(false);
}
