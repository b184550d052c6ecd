/**
 * N peer processes doing the same work, like DPDK's symmetric_mp: every process runs this same
 * code (the first to start becomes the primary, the others secondaries), spawns one actor in
 * the group 'peers', and, once all N are there, asks every peer (itself included) to sum the
 * squares of its share of 1..M. Each process checks its total; peers wait for each other before
 * leaving, so nobody leaves while others still ask it.
 *
 * Run: node dist/samples/symmetric/main.js [--peers N] [--numbers M]
 */
import 'reflect-metadata';
import { fileURLToPath } from 'node:url';
import { Runtime, startActorSystem } from '../../src/index.js';
import { intFlag, sampleArgs } from '../lib/args.js';
import { leftovers, start, until, verdict, waitAll } from '../lib/processes.js';

interface Peer {
  sumOfSquares: { msg: { from: number; to: number }; reply: number };
  finished: { msg: string; reply: void };
}

const usage = `mpbus symmetric: N identical peer processes, each summing squares for all

usage: node dist/samples/symmetric/main.js [--peers N] [--numbers M]
  --peers N     peer processes (1-16, default 3)
  --numbers M   sum the squares of 1..M (1-10000000, default 30000)
  --help        this text`;
const { values, positionals } = sampleArgs(usage, { peers: { type: 'string' }, numbers: { type: 'string' } });
const peers = intFlag(usage, 'peers', values.peers, 3, 1, 16);
const numbers = intFlag(usage, 'numbers', values.numbers, 30_000, 1, 10_000_000);

/** The launcher: starts N identical peer processes and waits for them. */
async function launch(): Promise<number> {
  const prefix = `mpbus_symmetric_${process.pid}`;
  console.log(`starting ${peers} peer processes in group '${prefix}'`);
  const script = fileURLToPath(import.meta.url);
  const children = [];
  for (let i = 1; i <= peers; i++) {
    const child = start(script, ['peer', prefix, String(i), `--peers=${peers}`, `--numbers=${numbers}`]);
    children.push(child);
    // Every peer starts with procType 'auto': the first becomes the primary. Wait until it is
    // up before starting the others, so they find it and become secondaries.
    if (i === 1) await new Promise<void>((resolve) => child.child.once('message', () => resolve()));
  }
  // The primary leaves last: a group's files are removed by the last process to leave, and
  // DPDK sees a primary as alive until its process ends, so it waits for the others first.
  const [first, ...others] = children;
  const othersOk = await waitAll(others, 120_000);
  first!.child.send('leave');
  const ok = (await waitAll([first!], 30_000)) && othersOk;
  const left = leftovers(prefix);
  return verdict(ok && left.length === 0, `done: ${peers} peers did the same work and left, nothing left behind`, `FAILED: ok=${ok}, left ${left.join(', ')}`);
}

/** One peer: identical code in every process. */
async function peer(prefix: string, index: number): Promise<number> {
  const system = await startActorSystem({ filePrefix: prefix, procType: 'auto' });
  process.send?.('up');
  const name = `peer-${index}`;
  const finished = new Set<string>();
  await system.spawn<Peer>(
    name,
    {
      sumOfSquares: ({ from, to }) => {
        let sum = 0;
        for (let n = from; n <= to; n++) sum += n * n;
        return sum;
      },
      finished: (who) => void finished.add(who),
    },
    { groups: ['peers'] },
  );
  await until(() => system.transport.members('peers').length === peers, 30_000, 'all peers');
  const members = system.transport.members('peers');
  const share = Math.ceil(numbers / members.length);
  const parts = await Promise.all(
    members.map((m, i) => system.ref<Peer>(m).ask('sumOfSquares', { from: i * share + 1, to: Math.min(numbers, (i + 1) * share) }, { timeoutMs: 30_000 })),
  );
  const total = parts.reduce((a, b) => a + b, 0);
  const expected = (numbers * (numbers + 1) * (2 * numbers + 1)) / 6;
  const role = Runtime.current()?.processType;
  console.log(
    `[${name} pid ${process.pid} ${role}] sum of squares 1..${numbers} from ${members.length} peers = ${total} ${total === expected ? '(correct)' : `(WRONG, expected ${expected})`}`,
  );
  for (const m of members) system.ref<Peer>(m).tell('finished', name);
  await until(() => finished.size === members.length, 30_000, 'every peer to finish');
  if (index === 1) await new Promise((resolve) => process.once('message', resolve));
  await system.close();
  return total === expected ? 0 : 1;
}

if (positionals[0] === 'peer') {
  process.exit(await peer(positionals[1]!, Number(positionals[2])));
} else {
  process.exitCode = await launch();
}
