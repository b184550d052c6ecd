/**
 * Actor messages to one worker process without a router (docs/benchmarks.md, "One actor ask
 * across processes"): sequential asks (round trip p50/p99) and tells (one-way throughput) from
 * the primary to a flagship worker process (samples/flagship/worker.ts), with 64-byte payloads.
 * Compare with the `mpbus` rows of the same machine (`npm run bench -- mailbox`).
 *
 * Run (after tsc): node dist/bench/profile-actor-direct.js [asks=20000] [tells=200000]
 */
import 'reflect-metadata';
import { startActorSystem } from '../src/index.js';
import type { JobContract } from '../samples/flagship/jobs.js';
import { launchWorkers } from '../samples/flagship/workers.js';
import { percentile } from './lib.js';

const asks = Number(process.argv[2] ?? 20_000);
const tells = Number(process.argv[3] ?? 200_000);
const prefix = `mpbench_actor_direct_${process.pid}`;
const system = await startActorSystem({ filePrefix: prefix, procType: 'primary', askTimeoutMs: 60_000 });
const pool = await launchWorkers(system, 1);
try {
  const worker = system.ref<JobContract>(pool.children()[0]!.child!.name);
  const payload = new Uint8Array(64).map((_, i) => i);
  const job = (id: number): { id: number; key: string; payload: Uint8Array } => ({ id, key: 'k', payload });
  for (let i = 0; i < 2000; i++) await worker.ask('job', job(i)); // warm-up
  const rtts: number[] = [];
  for (let i = 0; i < asks; i++) {
    const t0 = performance.now();
    await worker.ask('job', job(i));
    rtts.push((performance.now() - t0) * 1000);
  }
  console.log(`sequential asks, direct: p50 ${percentile(rtts, 50).toFixed(1)} us, p99 ${percentile(rtts, 99).toFixed(1)} us (${asks} asks)`);
  // Tells in chunks of 1,000 per turn of the event loop (as an app producing them would), then
  // one ask: answered after every tell before it (order per sender).
  const t0 = performance.now();
  for (let sent = 0; sent < tells;) {
    for (const end = Math.min(tells, sent + 1000); sent < end; sent++) worker.tell('job', job(sent));
    await new Promise((resolve) => setImmediate(resolve));
  }
  await worker.ask('job', job(-1));
  const seconds = (performance.now() - t0) / 1000;
  console.log(`tells, direct: ${Math.round(tells / seconds).toLocaleString('en-US')} msgs/s (${tells} tells)`);
} finally {
  await system.close({ timeoutMs: 2000 }); // stops the worker pool first
}
