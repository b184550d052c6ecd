// Actors in two processes of a DPDK group.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { firstValueFrom } from 'rxjs';
import { startActorSystem } from '../../src/index.js';

interface Inventory {
  reserve: { msg: { item: string; qty: number }; reply: { ok: boolean; left: number } };
}

const filePrefix = process.argv[2] ?? `guide_${process.pid}`;

if (process.argv[2] === undefined) {
  // The first process: the group's primary. It asks an actor that lives in the other process.
  const system = await startActorSystem({ filePrefix, procType: 'primary' });
  const child = fork(fileURLToPath(import.meta.url), [filePrefix]);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await new Promise((resolve) => child.once('message', resolve)); // the inventory is up
  const inventory = system.ref<Inventory>('inventory');
  console.log(await inventory.ask('reserve', { item: 'tea', qty: 3 }));
  console.log(await inventory.ask('reserve', { item: 'tea', qty: 9 }));
  const gone = firstValueFrom(system.watch(inventory)); // death watch, across processes
  child.send('quit');
  console.log('inventory stopped:', (await gone).reason);
  await exited;
  await system.close(); // also leaves the group: no runtime dir or hugepage file is left
} else {
  // The second process: a secondary of the same group, serving the inventory actor.
  const system = await startActorSystem({ filePrefix, procType: 'secondary' });
  let stock = 10;
  await system.spawn<Inventory>('inventory', {
    reserve: ({ qty }) => (qty <= stock ? { ok: true, left: (stock -= qty) } : { ok: false, left: stock }),
  });
  process.send!('up');
  process.once('message', () => void system.close().then(() => process.disconnect?.()));
}
