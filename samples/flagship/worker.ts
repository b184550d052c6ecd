/**
 * A flagship worker process: one JobWorker actor (which joins the group 'workers') named after
 * this child (`worker-<serial>`). Launched and supervised by main.ts (or host.ts with --hosts)
 * through `system.launch()`: its plain `startActorSystem()` joins the parent's group as a
 * secondary, and the pool stops it (or it ends when its primary goes away). Not run by hand.
 */
import 'reflect-metadata';
import { launchedChild, startActorSystem } from '../../src/index.js';
import { JobWorker } from './jobs.js';

const me = launchedChild();
if (!me) {
  console.error('worker.js is launched by samples/flagship/main.js');
  process.exit(2);
}

const system = await startActorSystem();
await system.spawn(JobWorker, { name: me.name });
