/**
 * A worker process of the mpbus rows of the peers suite (bench/peers/client-mpbus.ts is its
 * caller): joins the caller's group as a secondary and spawns the actor `<name>` in the group
 * `squarers`, whose `square` replies the square, `count` counts tells and `total` replies the
 * count. Public actor API only, so the rows measure whatever path the actor system takes.
 *
 *   node peer-worker-mpbus.js <filePrefix> <name> [cpus]
 */
import 'reflect-metadata';
import { startActorSystem } from '../../src/index.js';
import { onStopRequest, square, type SquareValue } from './square.js';

const [filePrefix, name, cpus] = process.argv.slice(2);
if (!filePrefix || !name || !process.send) {
  console.error('peer-worker-mpbus.js is started by bench/peers/client-mpbus.ts');
  process.exit(2);
}

const system = await startActorSystem({ filePrefix, procType: 'secondary', ...(cpus ? { cpus } : {}) });
let counted = 0;
await system.spawn(
  name,
  {
    square: (v: SquareValue) => square(v),
    count: (_v: SquareValue) => {
      counted++;
    },
    total: () => counted,
  },
  { groups: ['squarers'] },
);
onStopRequest(() => system.close({ timeoutMs: 1000 }));
process.send({ ready: true });
