/**
 * What a pool's `placement` does to applications of different shapes (docs/benchmarks.md,
 * "Placement and the application's shape"): a router in the launcher over two worker processes
 * with light jobs (the peers suite's shape) and with jobs of 200 µs of CPU each, and a third
 * child of the launcher that asks the workers through a router of its own (children that talk to
 * children: a front end, a pipeline) or through the launcher's router (which relays each ask
 * and its answer: docs/actors.md, section 5). Each placement runs in a primary of its own, the
 * placements alternated round by round so that load from elsewhere hits them alike. Prints
 * asks/s per shape and placement (the range over rounds) and, per round, each placement against
 * the first one named.
 *
 * Run (after tsc): node dist/bench/placement-shapes.js [rounds=3] [seconds=1.5] [placements=spread,float]
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { launchedChild, startActorSystem, type ActorRef, type ActorSystem, type Placement } from '../src/index.js';

interface Squarer {
  square: { msg: { n: number; workUs: number }; reply: number };
}
interface Shape {
  /** Who asks: the launcher, or a child through its own router or through the launcher's. */
  from: 'launcher' | 'child' | 'child via launcher';
  window: number;
  /** CPU each job takes in the worker. */
  workUs: number;
}
interface Client {
  /** `router`: the launcher's router, or undefined for the child's own. */
  run: { msg: Shape & { ms: number; router: string | undefined }; reply: number };
}

const SHAPES: Record<string, Shape> = {
  'launcher, 128 in flight': { from: 'launcher', window: 128, workUs: 0 },
  'launcher, sequential': { from: 'launcher', window: 1, workUs: 0 },
  'launcher, 64 in flight, 200 µs jobs': { from: 'launcher', window: 64, workUs: 200 },
  'child, 128 in flight': { from: 'child', window: 128, workUs: 0 },
  'child, sequential': { from: 'child', window: 1, workUs: 0 },
  'child, 64 in flight, 200 µs jobs': { from: 'child', window: 64, workUs: 200 },
  "child via the launcher's router, 128 in flight": { from: 'child via launcher', window: 128, workUs: 0 },
  "child via the launcher's router, sequential": { from: 'child via launcher', window: 1, workUs: 0 },
};
const WARMUP_MS = 300;

/** Asks per second over `ms`, `window` asks at a time. */
async function askFor(ref: ActorRef<Squarer>, ms: number, window: number, workUs: number): Promise<number> {
  const end = performance.now() + ms;
  let asks = 0;
  const t0 = performance.now();
  const lane = async (): Promise<void> => {
    while (performance.now() < end) {
      const n = asks++;
      if ((await ref.ask('square', { n, workUs })) !== n * n) throw new Error('a wrong answer');
    }
  };
  await Promise.all(Array.from({ length: window }, lane));
  return asks / ((performance.now() - t0) / 1000);
}

function burn(us: number): void {
  for (const end = performance.now() + us / 1000; performance.now() < end;);
}

/** A router of this process over the group's two workers, once both are in it. */
async function routerOverWorkers(system: ActorSystem): Promise<ActorRef<Squarer>> {
  const router = system.router<Squarer>(routerName(process.pid), { group: 'squarers' });
  while (system.transport.members('squarers').length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
  return router.ref;
}

function routerName(pid: number): string {
  return `squares-${pid}`;
}

const me = launchedChild();
if (me) {
  const system = await startActorSystem();
  if (me.pool === 'worker') {
    await system.spawn<Squarer>(me.name, { square: ({ n, workUs }) => (burn(workUs), n * n) }, { groups: ['squarers'] });
  } else {
    const squares = await routerOverWorkers(system);
    await system.spawn<Client>(me.name, {
      run: async ({ ms, window, workUs, router }) => {
        const ref = router === undefined ? squares : system.ref<Squarer>(router);
        await askFor(ref, WARMUP_MS, window, workUs);
        return askFor(ref, ms, window, workUs);
      },
    });
  }
} else if (process.argv[2] === 'primary') {
  const placement = process.argv[3] as Placement;
  const ms = Number(process.argv[4]) * 1000;
  const system = await startActorSystem({ filePrefix: `mpbench_place_${process.pid}`, procType: 'primary', askTimeoutMs: 60_000 });
  await system.launch(new URL(import.meta.url), { name: 'worker', count: 2, placement, ready: { group: 'squarers' } });
  const clients = await system.launch(new URL(import.meta.url), { name: 'client', placement, ready: { actors: (child) => [child.name] } });
  const client = system.ref<Client>(clients.children()[0]!.child!.name);
  const squares = await routerOverWorkers(system);
  const perSec: Record<string, number> = {};
  for (const [name, shape] of Object.entries(SHAPES)) {
    if (shape.from !== 'launcher') {
      const router = shape.from === 'child via launcher' ? routerName(process.pid) : undefined;
      perSec[name] = await client.ask('run', { ...shape, ms, router });
    } else {
      await askFor(squares, WARMUP_MS, shape.window, shape.workUs);
      perSec[name] = await askFor(squares, ms, shape.window, shape.workUs);
    }
  }
  console.log(JSON.stringify({ placement, launcherCpus: system.runtime.cpus, perSec }));
  await system.close();
} else {
  const rounds = Number(process.argv[2] ?? 3);
  const seconds = process.argv[3] ?? '1.5';
  const placements = (process.argv[4] ?? 'spread,float').split(',') as Placement[];
  const runs: Record<string, Array<Record<string, number>>> = Object.fromEntries(placements.map((p) => [p, []]));
  for (let r = 0; r < rounds; r++) {
    // alternated: each placement goes first in some round
    const order = placements.map((_, i) => placements[(i + r) % placements.length]!);
    for (const placement of order) {
      process.stderr.write(`\rround ${r + 1}/${rounds}: ${placement}      `);
      const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'primary', placement, seconds], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      const line = out.split('\n').find((l) => l.startsWith('{"placement"'));
      if (code !== 0 || !line) throw new Error(`the ${placement} run ended with ${code}: ${out}`);
      runs[placement]!.push((JSON.parse(line) as { perSec: Record<string, number> }).perSec);
    }
  }
  process.stderr.write('\n');
  const k = (x: number): string => `${(x / 1000).toFixed(1)}k`;
  const range = (xs: number[]): string => (xs.length === 1 ? k(xs[0]!) : `${k(Math.min(...xs))}-${k(Math.max(...xs))}`);
  const base = placements[0]!;
  console.table(
    Object.keys(SHAPES).map((shape) => {
      const row: Record<string, string> = { shape };
      for (const p of placements) row[`${p} asks/s`] = range(runs[p]!.map((perSec) => perSec[shape]!));
      for (const p of placements.slice(1))
        row[`${p} / ${base}, by round`] = runs[p]!.map((perSec, i) => (perSec[shape]! / runs[base]![i]![shape]!).toFixed(2)).join(' ');
      return row;
    }),
  );
}
