/**
 * A flagship worker process: joins the group as a secondary, spawns one JobWorker actor (which
 * joins the group 'workers') and serves jobs until the primary says stop (or goes away).
 * Started by main.ts; not meant to be run by hand.
 */
import 'reflect-metadata';
import { startActorSystem } from '../../src/index.js';
import { JobWorker } from './jobs.js';

const [filePrefix, index] = process.argv.slice(2);
if (!filePrefix || !index || !process.send) {
  console.error('worker.js is started by samples/flagship/main.js');
  process.exit(2);
}

const system = await startActorSystem({ filePrefix, procType: 'secondary' });
const name = `worker-${index}`;
await system.spawn(JobWorker, { name });

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await system.close({ timeoutMs: 2000 });
  process.exit(0);
}
process.on('message', (msg: { type?: string }) => {
  if (msg?.type === 'stop') void stop();
});
// The primary went away (killed, or interrupted): leave the group cleanly rather than linger.
process.on('disconnect', () => void stop());
process.send({ type: 'ready', name, pid: process.pid });
