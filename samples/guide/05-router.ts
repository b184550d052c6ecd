// A router of workers across processes, surviving a killed worker.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startActorSystem } from '../../src/index.js';

interface Squarer {
  square: { msg: number; reply: { n: number; by: string } };
}

const [filePrefix, workerName] = process.argv.slice(2);

if (!filePrefix) {
  const prefix = `guide_router_${process.pid}`;
  const system = await startActorSystem({ filePrefix: prefix, procType: 'primary' });
  // The router follows the group 'squarers': workers that join, leave or die are tracked.
  const router = system.router<Squarer>('squares', { strategy: 'round-robin', group: 'squarers' });
  const workers: ChildProcess[] = ['sq-1', 'sq-2', 'sq-3'].map((name) => fork(fileURLToPath(import.meta.url), [prefix, name]));
  const exited = workers.map((w) => new Promise((resolve) => w.once('exit', resolve)));
  while (router.workers().length < 3) await new Promise((resolve) => setTimeout(resolve, 20));

  const asks = [...Array(30).keys()].map((n) => router.ref.ask('square', n));
  workers[0]!.kill('SIGKILL'); // asks in flight at sq-1 are given to the other workers
  const answers = await Promise.all(asks);
  console.log('all 30 answered:', answers.every((a, i) => a.n === i * i));
  console.log('per worker:', router.stats().perWorker, 'given again:', router.stats().redelivered);

  for (const w of workers.slice(1)) w.send('quit');
  await Promise.all(exited);
  await system.close();
} else {
  const system = await startActorSystem({ filePrefix, procType: 'secondary' });
  await system.spawn<Squarer>(workerName!, { square: (n) => ({ n: n * n, by: workerName! }) }, { groups: ['squarers'] });
  process.once('message', () => void system.close().then(() => process.disconnect()));
}
