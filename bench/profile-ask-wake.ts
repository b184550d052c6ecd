/**
 * The wake path of one actor ask across processes, against the mailbox round trip, in the same
 * run (docs/benchmarks.md, "One actor ask across processes"): a primary and two worker
 * processes, each holding an echoing mailbox (the `mpbus` RTT row's echo: it answers inside the
 * drain) and an actor answering `square` (in the group `squarers`). The primary alternates
 * blocks of four kinds of sequential round trips: `rtt` (mailbox to worker 1's echo), `ask1`
 * (actor asks to worker 1), `ask2` (to the two workers in turn, as the peers suite's direct
 * row) and `router` (round-robin router over the group, as its router row), so load from
 * elsewhere hits all alike. It prints each block's p50/p99 and the ratios to `rtt`, each kind's
 * median p50 and mean over the blocks, then per round trip what the receive loops of the caller
 * and of both workers did (pump turns, drains, drains that found messages, parks, doorbell
 * wakes) and how often their main threads left the CPU (`switches`: the other worker, or any
 * other process, ran there meanwhile).
 *
 * Run (after tsc): node dist/bench/profile-ask-wake.js [blocks=6] [perBlock=3000] [kinds=ask1,ask2,router] [--placement=spread|float]
 * (`--placement=spread`, the default: the caller on one CPU, the workers on the others, as
 * `system.launch()` places a pool so; `float`: nothing pinned)
 */
import 'reflect-metadata';
import { fork, type ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { MailboxSystem, startActorSystem } from '../src/index.js';
import { GroupFiles } from '../src/runtime/group.js';
import { benchPlacement, loopSwitches, percentile, placementArg } from './lib.js';

interface Contract {
  square: { msg: { n: number; pad: string }; reply: number };
}
type Stats = MailboxSystem['loopStats'] & { switches: number };

const placement = placementArg(process.argv);
const [mode, prefixArg] = process.argv.slice(2);

if (mode === 'worker') {
  const cpus = process.argv[5];
  const system = await startActorSystem({ filePrefix: prefixArg!, procType: 'secondary', ...(cpus ? { cpus } : {}) });
  const me = process.argv[4]!;
  await system.spawn(`sq-${me}`, { square: (v: { n: number }) => v.n * v.n }, { groups: ['squarers'] });
  const mbs = MailboxSystem.open();
  const pong = mbs.ref('pong');
  mbs.open(`echo-${me}`, { capacity: 16 }).messages$.subscribe((v) => {
    if (pong.trySend(v) !== 'sent') throw new Error('echo send failed');
  });
  process.on('message', (m: string) => {
    if (m === 'stats') process.send!({ stats: { ...mbs.loopStats, switches: loopSwitches() } });
    if (m === 'stop') void system.close({ timeoutMs: 1000 }).then(() => process.exit(0));
  });
  process.send!({ ready: true });
} else {
  const blocks = Number(process.argv[2] ?? 6);
  const perBlock = Number(process.argv[3] ?? 3000);
  const prefix = `mpbench_askwake_${process.pid}`;
  const placed = benchPlacement(placement);
  const system = await startActorSystem({ filePrefix: prefix, procType: 'primary', askTimeoutMs: 60_000, ...(placed.caller ? { cpus: placed.caller } : {}) });
  const children = [1, 2].map((i) =>
    fork(fileURLToPath(import.meta.url), ['worker', prefix, String(i), placed.workers], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  );
  const fromChild = (c: ChildProcess): Promise<{ stats?: Stats; ready?: boolean }> => new Promise((resolve) => c.once('message', resolve as never));
  const workerStats = async (): Promise<Stats> => {
    const all = await Promise.all(children.map((c) => (c.send('stats'), fromChild(c))));
    const sum = { ...all[0]!.stats! };
    for (const k of Object.keys(sum) as Array<keyof Stats>) sum[k] += all[1]!.stats![k];
    return sum;
  };
  try {
    await Promise.all(children.map((c) => fromChild(c)));
    const router = system.router<Contract>('squares', { strategy: 'round-robin', group: 'squarers', workerTimeoutMs: 60_000 });
    while (router.workers().length < 2) await new Promise((r) => setTimeout(r, 10));
    const mbs = MailboxSystem.open();
    const echo = mbs.ref('echo-1');
    const v = { n: 1000, pad: 'x'.repeat(50) };
    let answered: (() => void) | undefined;
    mbs.open('pong', { capacity: 16 }).messages$.subscribe(() => answered!());
    const sq = [system.ref<Contract>('sq-1'), system.ref<Contract>('sq-2')];
    let turn = 0;
    const kinds: Record<string, () => Promise<unknown>> = {
      rtt: () =>
        new Promise<void>((resolve) => {
          answered = resolve;
          if (echo.trySend(v) !== 'sent') throw new Error('ping send failed');
        }),
      ask1: () => sq[0]!.ask('square', v),
      ask2: () => sq[turn++ & 1]!.ask('square', v),
      router: () => router.ref.ask('square', v),
    };
    // A fourth argument picks kinds (comma-separated), e.g. to count one kind's syscalls with `perf stat -p`.
    const names = process.argv[4] ? process.argv[4].split(',').filter((k) => k in kinds) : Object.keys(kinds);
    console.log(
      `pids: caller ${process.pid}, workers ${children.map((c) => c.pid).join(' ')}; placement ${placement} (caller CPUs ${system.runtime.cpus.join(',')}, workers ${placed.workers || 'any'})`,
    );
    const average = (r: number[]): number => r.reduce((a, b) => a + b, 0) / r.length;
    const block = async (one: () => Promise<unknown>, n: number): Promise<{ p50: number; p99: number; mean: number }> => {
      const us: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await one();
        us.push((performance.now() - t0) * 1000);
      }
      return { p50: percentile(us, 50), p99: percentile(us, 99), mean: average(us) };
    };
    for (const k of names) await block(kinds[k]!, 500);
    const ratios: Record<string, number[]> = {};
    const p50s: Record<string, number[]> = {};
    const means: Record<string, number[]> = {};
    const diff = (a: Stats, b: Stats): string =>
      Object.keys(a)
        .map((k) => `${k} ${((b[k as keyof Stats] - a[k as keyof Stats]) / perBlock).toFixed(2)}`)
        .join(', ');
    const counts: string[] = [];
    for (let b = 0; b < blocks; b++) {
      const order = names.map((_, i) => names[(i + b) % names.length]!);
      const got: Record<string, { p50: number; p99: number; mean: number }> = {};
      for (const kind of order) {
        const c0 = { ...mbs.loopStats, switches: loopSwitches() };
        const w0 = await workerStats();
        got[kind] = await block(kinds[kind]!, perBlock);
        const c1 = { ...mbs.loopStats, switches: loopSwitches() };
        const w1 = await workerStats();
        if (b === blocks - 1) counts.push(`${kind} per round trip: caller ${diff(c0, c1)}; workers ${diff(w0, w1)}`);
      }
      for (const k of names) (p50s[k] ??= []).push(got[k]!.p50);
      for (const k of names) (means[k] ??= []).push(got[k]!.mean);
      const line = names.map((k) => `${k} ${got[k]!.p50.toFixed(1)}/${got[k]!.p99.toFixed(0)}`).join(', ');
      const others = got.rtt ? names.filter((k) => k !== 'rtt') : [];
      for (const k of others) (ratios[k] ??= []).push(got[k]!.p50 / got.rtt!.p50);
      console.log(
        `block ${b + 1} (p50/p99 us): ${line}${others.length > 0 ? `; /RTT ${others.map((k) => (got[k]!.p50 / got.rtt!.p50).toFixed(2)).join(', ')}` : ''}`,
      );
    }
    for (const [k, r] of Object.entries(ratios)) {
      r.sort((a, b) => a - b);
      console.log(`${k}/RTT p50: median ${r[r.length >> 1]!.toFixed(2)}x, range ${r[0]!.toFixed(2)}-${r[r.length - 1]!.toFixed(2)}x`);
    }
    const median = (r: number[]): number => r.sort((a, b) => a - b)[r.length >> 1]!;
    console.log(`p50 median of the blocks (us): ${names.map((k) => `${k} ${median(p50s[k]!).toFixed(1)}`).join(', ')}`);
    // The mean turns counts taken over a time window (`perf stat -p <pids> -- sleep 4`) into counts per round trip.
    console.log(`mean of the blocks (us): ${names.map((k) => `${k} ${average(means[k]!).toFixed(1)}`).join(', ')}`);
    console.log(`load ${loadavg()[0]!.toFixed(1)}`);
    for (const c of counts) console.log(c);
  } finally {
    await Promise.all(
      children.map(
        (c) =>
          new Promise((resolve) => {
            const t = setTimeout(() => (c.kill('SIGKILL'), resolve(undefined)), 5000);
            c.once('exit', () => (clearTimeout(t), resolve(undefined)));
            c.send('stop');
          }),
      ),
    );
    await system.close({ timeoutMs: 2000 });
    const group = new GroupFiles(prefix);
    if (!group.primaryAlive()) group.removeLeftovers(false);
  }
}
