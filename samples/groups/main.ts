/**
 * Two independent groups side by side: each is a primary and a secondary with its own
 * `--file-prefix`. Both groups spawn an actor with the same name, 'counter', without conflict:
 * groups share nothing (no names, no memory, no messages). Each group's secondary counts with
 * its own group's counter and checks it cannot see the other group's actors.
 *
 * Run: node dist/samples/groups/main.js
 */
import 'reflect-metadata';
import { fileURLToPath } from 'node:url';
import { startActorSystem } from '../../src/index.js';
import { leftovers, start, verdict, waitAll } from '../lib/processes.js';

interface Counter {
  add: { msg: number; reply: number };
}

const groups = [
  { color: 'blue', adds: 3 },
  { color: 'green', adds: 5 },
];

async function launch(): Promise<number> {
  const script = fileURLToPath(import.meta.url);
  const runs = groups.map(async ({ color, adds }) => {
    const prefix = `mpbus_groups_${color}_${process.pid}`;
    const primary = start(script, ['primary', prefix, color]);
    await new Promise<void>((resolve) => primary.child.once('message', () => resolve()));
    const secondary = start(script, ['secondary', prefix, color, String(adds)]);
    const secondaryOk = await waitAll([secondary]);
    primary.child.send('bye');
    const primaryOk = await waitAll([primary]);
    const left = leftovers(prefix);
    return secondaryOk && primaryOk && left.length === 0;
  });
  const results = await Promise.all(runs);
  return verdict(results.every(Boolean), 'done: two groups ran side by side with the same actor name, and both left nothing behind', 'FAILED');
}

async function primary(prefix: string, color: string): Promise<number> {
  const system = await startActorSystem({ filePrefix: prefix, procType: 'primary' });
  let total = 0;
  await system.spawn<Counter>('counter', { add: (n) => (total += n) });
  await system.spawn(`only-in-${color}`, { hello: () => color });
  console.log(`[${color} primary   pid ${process.pid}] group '${prefix}': spawned 'counter' and 'only-in-${color}'`);
  process.send?.('up');
  await new Promise((resolve) => process.once('message', resolve));
  await system.close();
  return 0;
}

async function secondary(prefix: string, color: string, adds: number): Promise<number> {
  const system = await startActorSystem({ filePrefix: prefix, procType: 'secondary' });
  const counter = system.ref<Counter>('counter');
  let total = 0;
  for (let i = 0; i < adds; i++) total = await counter.ask('add', 1);
  const other = groups.find((g) => g.color !== color)!.color;
  const seesOwn = system.has(`only-in-${color}`);
  const seesOther = system.has(`only-in-${other}`);
  console.log(
    `[${color} secondary pid ${process.pid}] its counter says ${total} (expected ${adds}); sees only-in-${color}: ${seesOwn}, sees only-in-${other}: ${seesOther}`,
  );
  await system.close();
  return total === adds && seesOwn && !seesOther ? 0 : 1;
}

const [role, prefix, color, adds] = process.argv.slice(2);
if (role === 'primary') process.exit(await primary(prefix!, color!));
else if (role === 'secondary') process.exit(await secondary(prefix!, color!, Number(adds)));
else process.exitCode = await launch();
