/**
 * The actor layer alone (docs/benchmarks.md, "One actor ask across processes"): the flagship's
 * shape (a router over two workers, 128 asks in flight, a job of a 64-byte payload) over the
 * in-process transport, so no codec, no mailbox and no other process is involved: what is left
 * is the ask path itself (ask, pending asks, deadlines, router, cell, reply). Its time per job
 * moves with the machine's load; its instructions per job do not, so two builds compare under
 * load with callgrind (the difference of two job counts cancels start-up and compilation):
 *
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null node dist/bench/profile-actor-layer.js 20000
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null node dist/bench/profile-actor-layer.js 60000
 *   # instructions per job = (I refs of the second - I refs of the first) / 40000
 *
 * With a window of 1 it measures sequential asks (each one waits for the answer of the one before).
 *
 * Run (after tsc): node dist/bench/profile-actor-layer.js [jobs=200000] [window=128]
 */
import 'reflect-metadata';
import { ActorSystem, InProcessHub } from '../src/index.js';

interface Job {
  id: number;
  key: string;
  payload: Uint8Array;
}
interface JobContract {
  job: { msg: Job; reply: { id: number; worker: string; checksum: number } };
}

const jobs = Number(process.argv[2] ?? 200_000);
const window = Number(process.argv[3] ?? 128);
const hub = new InProcessHub();
const caller = new ActorSystem({ transport: hub.connect(), askTimeoutMs: 120_000 });
const workers = new ActorSystem({ transport: hub.connect() });
for (const name of ['w1', 'w2']) await workers.spawn(name, { job: (j: Job) => ({ id: j.id, worker: name, checksum: j.id * 3 }) }, { groups: ['workers'] });
const router = caller.router<JobContract>('jobs', { group: 'workers' });
const payload = new Uint8Array(64);
let answered = 0;
let sent = 0;
let inFlight = 0;
const t0 = performance.now();
await new Promise<void>((resolve) => {
  const push = (): void => {
    while (inFlight < window && sent < jobs) {
      const id = sent++;
      inFlight++;
      void router.ref.ask('job', { id, key: 'k', payload }, { timeoutMs: 120_000 }).then(() => {
        inFlight--;
        if (++answered === jobs) resolve();
        else if (inFlight < window / 2) push();
      });
    }
  };
  push();
});
console.log(`actor layer alone: ${jobs} jobs, ${window} in flight, ${(((performance.now() - t0) * 1000) / jobs).toFixed(2)} us per job`);
await caller.close();
await workers.close();
