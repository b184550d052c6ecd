// A router of workers across processes: the primary launches and supervises them, and a killed
// worker is replaced.
import { filter, firstValueFrom } from 'rxjs';
import { launchedChild, startActorSystem } from '../../src/index.js';

interface Squarer {
  square: { msg: number; reply: { n: number; by: string } };
}

const me = launchedChild(); // undefined in the primary; { index, serial, name, pool } in a worker

if (!me) {
  const system = await startActorSystem({ filePrefix: `guide_router_${process.pid}`, procType: 'primary' });
  // The router follows the group 'squarers': workers that join, leave or die are tracked.
  const router = system.router<Squarer>('squares', { strategy: 'round-robin', group: 'squarers' });
  // Three processes of this very file, ready once each one's actor is in the group: the router
  // of that group routes to all three as soon as launch() returns.
  const pool = await system.launch(new URL(import.meta.url), { count: 3, name: 'sq', ready: { group: 'squarers' } });

  const restarted = firstValueFrom(pool.events$.pipe(filter((e) => e.type === 'restarted')));
  const asks = [...Array(30).keys()].map((n) => router.ref.ask('square', n));
  process.kill(pool.pids()[0]!, 'SIGKILL'); // asks in flight at sq-1 are given to the other workers
  const answers = await Promise.all(asks);
  const allRight = answers.every((a, i) => a.n === i * i);
  console.log('all 30 answered:', allRight);
  console.log('per worker:', router.stats().perWorker, 'given again:', router.stats().redelivered);

  await restarted; // the pool started a new process in the killed one's slot
  console.log('slot 0 now runs', pool.children()[0]!.child!.name, 'after', pool.children()[0]!.restarts, 'restart');
  await pool.scale(2); // the worker of the highest slot leaves its group, finishes its work and exits
  const names = pool.children().map((slot) => slot.child!.name);
  console.log('after scale(2):', names.join(', '));
  await system.close(); // stops the pool first, then leaves the group
} else {
  const system = await startActorSystem(); // joins the parent's group as a secondary
  await system.spawn<Squarer>(me.name, { square: (n) => ({ n: n * n, by: me.name }) }, { groups: ['squarers'] });
}
