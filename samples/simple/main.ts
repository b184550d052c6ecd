/**
 * Two peers exchanging messages, like DPDK's simple_mp: a primary and a secondary process, each
 * with one actor. The primary launches the secondary (`system.launch`: ready once its actor is
 * there), tells the secondary's actor a few greetings and asks it to ping; the secondary's actor
 * answers, and tells the primary's actor back. Then the primary closes: the secondary is stopped
 * first (it finishes what it holds and exits), then the primary leaves the group.
 *
 * Run: node dist/samples/simple/main.js [--messages N]
 */
import 'reflect-metadata';
import { fileURLToPath } from 'node:url';
import { launchedChild, startActorSystem } from '../../src/index.js';
import { intFlag, sampleArgs } from '../lib/args.js';
import { leftovers, until } from '../lib/processes.js';

/** What the secondary's actor understands. */
interface SecondaryPeer {
  greet: { msg: string; reply: void };
  ping: { msg: number; reply: string };
}
/** What the primary's actor understands. */
interface PrimaryPeer {
  thanks: { msg: string; reply: void };
}

const usage = `mpbus simple: a primary and a secondary exchanging messages

usage: node dist/samples/simple/main.js [--messages N]
  --messages N   greetings the primary tells (0-1000, default 3)
  --help         this text`;
// (a launched child is started with no flags of its own)
const { values } = sampleArgs(usage, { messages: { type: 'string' } });
const messages = intFlag(usage, 'messages', values.messages, 3, 0, 1000);

async function primary(): Promise<number> {
  const prefix = `mpbus_simple_${process.pid}`;
  const system = await startActorSystem({ filePrefix: prefix, procType: 'primary' });
  const thanks: string[] = [];
  await system.spawn('primary-peer', { thanks: (text: string) => void thanks.push(text) });
  console.log(`[primary   pid ${process.pid}] spawned actor 'primary-peer'; starting the secondary`);
  const pool = await system.launch(fileURLToPath(import.meta.url), { count: 1, name: 'secondary', ready: { actors: ['secondary-peer'] } });
  let secondaryOk = false;
  pool.events$.subscribe((e) => {
    if (e.type === 'exited') secondaryOk = e.reason !== 'crashed' && e.code === 0;
  });
  const peer = system.ref<SecondaryPeer>('secondary-peer');
  for (let i = 1; i <= messages; i++) peer.tell('greet', `hello ${i} from the primary`);
  for (let i = 1; i <= messages; i++) {
    const t0 = performance.now();
    const answer = await peer.ask('ping', i, { timeoutMs: 5000 });
    console.log(`[primary   pid ${process.pid}] ping ${i} -> '${answer}' in ${Math.round((performance.now() - t0) * 1000)} us`);
  }
  await until(() => thanks.length === messages, 10_000, 'the thanks');
  console.log(`[primary   pid ${process.pid}] got ${thanks.length} thanks back: '${thanks[0]}' ...`);
  await system.close(); // stops the secondary first (it exits 0), then leaves the group
  const ok = secondaryOk;
  const left = leftovers(prefix);
  console.log(left.length === 0 && ok ? 'done: both peers left the group, nothing left behind' : `FAILED: secondary ok=${ok}, left ${left.join(', ')}`);
  return left.length === 0 && ok ? 0 : 1;
}

/** Launched by the primary: joins its group (from the environment) and serves until stopped. */
async function secondary(): Promise<void> {
  const system = await startActorSystem();
  const back = system.ref<PrimaryPeer>('primary-peer');
  await system.spawn<SecondaryPeer>('secondary-peer', {
    greet: (text) => {
      console.log(`[secondary pid ${process.pid}] got '${text}'`);
      back.tell('thanks', `thanks for '${text}'`);
    },
    ping: (n) => `pong ${n} from pid ${process.pid}`,
  });
  console.log(`[secondary pid ${process.pid}] spawned actor 'secondary-peer'`);
}

if (launchedChild()) await secondary();
else process.exitCode = await primary();
