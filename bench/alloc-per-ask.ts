/**
 * What a routed ask allocates in its caller (docs/benchmarks.md, "Thirty-fourth pass"): this
 * process is the caller of bench/peers/client-mpbus.ts (a router over the actors of two worker
 * processes, 64-byte `square` asks, as the peers suite's router rows) and runs V8's sampling
 * heap profiler, collected objects included, around one windowed phase; it prints the bytes
 * allocated per ask, in all and by the function that allocated them (the largest).
 *
 * Run (after tsc): node dist/bench/alloc-per-ask.js [window=128] [seconds=2] [top=15]
 */
import { Session } from 'node:inspector/promises';
import { GroupFiles } from '../src/runtime/group.js';
import { MpbusClients } from './peers/client-mpbus.js';
import { windowed } from './peers/square-phases.js';

interface SamplingNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingNode[];
}

const window = Number(process.argv[2] ?? 128);
const seconds = Number(process.argv[3] ?? 2);
const top = Number(process.argv[4] ?? 15);
const prefix = `mpbench_alloc_${process.pid}`;

const clients = await MpbusClients.start(prefix, () => {});
const session = new Session();
session.connect();
try {
  await windowed(clients.router, window, 1); // JIT and buffers
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 256,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  const run = await windowed(clients.router, window, seconds);
  const { profile } = (await session.post('HeapProfiler.stopSampling')) as { profile: { head: SamplingNode } };
  const bySite = new Map<string, number>();
  let total = 0;
  const visit = (node: SamplingNode): void => {
    if (node.selfSize > 0) {
      const { functionName, url, lineNumber } = node.callFrame;
      const site = `${functionName || '(anonymous)'} ${url.split('/').slice(-2).join('/')}:${lineNumber + 1}`;
      bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    for (const child of node.children) visit(child);
  };
  visit(profile.head);
  console.log(
    `window ${window}: ${run.count} asks, ${Math.round(run.perSec / 1000)} k/s; ${Math.round(total / run.count)} bytes allocated per ask in the caller`,
  );
  for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(`${String(Math.round(bytes / run.count)).padStart(6)}  ${site}`);
} finally {
  session.disconnect();
  await clients.close();
  const group = new GroupFiles(prefix);
  if (!group.primaryAlive()) group.removeLeftovers(false);
}
