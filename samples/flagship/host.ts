/**
 * A flagship host for `--hosts N`: the primary of a DPDK group of its own (standing in for
 * another machine), with its own worker processes (a supervised pool) and its own router 'jobs',
 * joined to the cluster through NATS. Jobs the main process pushes to 'jobs' reach one host's
 * router (a NATS queue group), which gives each to one of its local workers. Started by main.ts.
 */
import 'reflect-metadata';
import { startActorSystem, type RoutingStrategy } from '../../src/index.js';
import { until } from '../lib/processes.js';
import { launchWorkers } from './workers.js';

const [filePrefix, hostName, workerCount, servers, cluster, strategy] = process.argv.slice(2);
if (!filePrefix || !hostName || !workerCount || !servers || !cluster || !strategy || !process.send) {
  console.error('host.js is started by samples/flagship/main.js --hosts N');
  process.exit(2);
}

const system = await startActorSystem({ filePrefix, procType: 'primary', askTimeoutMs: 120_000, cluster: { servers, name: cluster } });
const router = system.router('jobs', {
  strategy: strategy as RoutingStrategy,
  group: 'workers',
  key: (msg) => (msg as { key: string }).key,
  workerTimeoutMs: 120_000,
});
const pool = await launchWorkers(system, Number(workerCount), `worker-${hostName}`);
await until(() => router.workers().length === pool.size, 10_000, 'the workers to join the group');

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await system.close({ timeoutMs: 2000 }); // stops the pool first
  process.exit(0);
}
process.on('message', (msg: { type?: string }) => {
  if (msg?.type === 'stop') void stop();
});
process.on('disconnect', () => void stop());
process.send({ type: 'ready', name: hostName, pid: process.pid, workers: pool.children().map((s) => ({ name: s.child!.name, pid: s.child!.pid })) });
