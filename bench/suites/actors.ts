/**
 * Actors: ask round trips and tell throughput within one process, and the flagship (a router
 * of worker processes over shared-memory mailboxes) for cross-process throughput and latency.
 * The 64-byte flagship runs in rounds, each right after the mailbox bus measured beside it
 * (`actors_mailbox_baseline`, its own processes): its row is the median run.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ActorSystem, InProcessHub } from '../../src/index.js';
import { percentile, type BenchContext, type BenchRow } from '../lib.js';
import { MailboxBaseline } from './mailbox.js';

/** Runs of the 64-byte flagship (the figure); its row is the median run. */
const FLAGSHIP_ROUNDS = 3;

const repoRoot = join(fileURLToPath(import.meta.url), '..', '..', '..', '..');

async function inProcess(ctx: BenchContext): Promise<void> {
  const system = new ActorSystem({ transport: new InProcessHub().connect() });
  let count = 0;
  const ref = await system.spawn('bench', { echo: (m: string) => m, count: () => ++count, total: () => count });
  const payload = 'x'.repeat(64);
  const asks = ctx.quick ? 2000 : 50_000;
  const rtts: number[] = [];
  for (let i = 0; i < asks; i++) {
    const t0 = performance.now();
    await ref.ask('echo', payload);
    rtts.push((performance.now() - t0) * 1000);
  }
  const tells = ctx.quick ? 20_000 : 500_000;
  const t0 = performance.now();
  for (let i = 0; i < tells; i++) ref.tell('count');
  await ref.ask('total');
  const seconds = (performance.now() - t0) / 1000;
  ctx.addRows([
    {
      transport: 'actors_local_ask',
      payloadBytes: 64,
      rttP50Us: percentile(rtts, 50),
      rttP99Us: percentile(rtts, 99),
      notes: 'actors in one process: sequential asks',
    },
    { transport: 'actors_local_tell', payloadBytes: 0, throughputMsgsPerSec: Math.round(tells / seconds), notes: 'actors in one process: tells' },
  ]);
  await system.close();
}

/**
 * Same-run A/B of what the shared counters add to the hot path: the counter increments replace
 * the plain object increments counters used before, one for one; what is new per ask is its
 * latency going to the target's histogram (a clock read and three increments). Rounds of
 * sequential asks alternate with it on and off (B swaps the recording for a no-op), and each
 * side's median and fastest per-ask times are compared (the fastest rounds are the least
 * disturbed by other load on the machine).
 */
async function countersAB(ctx: BenchContext): Promise<void> {
  const system = new ActorSystem({ transport: new InProcessHub().connect() });
  const ref = await system.spawn('ab', { echo: (m: string) => m });
  const stats = (system as unknown as { stats: { answered: unknown } }).stats;
  const perAsk: Record<'on' | 'off', number[]> = { on: [], off: [] };
  const asks = 1000;
  for (let round = 0; round < (ctx.quick ? 20 : 200); round++) {
    for (const mode of round % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
      if (mode === 'off') stats.answered = () => undefined;
      else delete stats.answered;
      const t0 = performance.now();
      for (let i = 0; i < asks; i++) await ref.ask('echo', 'x');
      perAsk[mode].push(((performance.now() - t0) * 1000) / asks);
    }
  }
  delete stats.answered;
  const [onMin, offMin] = [Math.min(...perAsk.on), Math.min(...perAsk.off)];
  const [on, off] = [percentile(perAsk.on, 50), percentile(perAsk.off, 50)];
  ctx.addRows([
    {
      transport: 'actors_local_ask_counters_on',
      payloadBytes: 0,
      rttP50Us: on,
      notes: `per-ask time of rounds of 1000 sequential asks with ask latencies recorded in the shared counters (median of rounds; fastest ${onMin.toFixed(3)} µs)`,
    },
    {
      transport: 'actors_local_ask_counters_off',
      payloadBytes: 0,
      rttP50Us: off,
      notes: `the same, interleaved, recording off (fastest ${offMin.toFixed(3)} µs): on/off = ${(on / off).toFixed(3)} median, ${(onMin / offMin).toFixed(3)} fastest`,
    },
  ]);
  await system.close();
}

function flagship(args: string[]): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, 'dist', 'samples', 'flagship', 'main.js'), ...args, '--json'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`flagship ${args.join(' ')} exited with ${code}`));
      else resolve(JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, number>);
    });
  });
}

export async function run(ctx: BenchContext): Promise<void> {
  ctx.progress('actors: in-process ask/tell');
  await inProcess(ctx);
  ctx.progress('actors: shared counters on/off (same run)');
  await countersAB(ctx);
  const jobs = ctx.quick ? '5000' : '200000';
  // Every other row of a run measures warmed-up processes (the mailbox and peers rows warm up
  // first); the flagship's first ~150,000 jobs are its three processes compiling the path.
  const warmup = ctx.quick ? '2000' : '150000';
  const cpu = (r: Record<string, unknown>): string => {
    const c = r.cpuPerJobUs as { caller: number; workers: number } | undefined;
    return c ? `; CPU per job: caller ${c.caller} µs, workers ${c.workers} µs together` : '';
  };
  // The 64-byte flagship is the figure: run in rounds, each right after the mailbox bus
  // measured as the `mpbus` row measures it (row `actors_mailbox_baseline`), so that one slow
  // stretch of the machine neither makes the row nor divides it by a number taken in another.
  const rounds = ctx.quick ? 1 : FLAGSHIP_ROUNDS;
  const prefix = `mpbench_actors_${process.pid}_mbx`;
  const mailbox = await MailboxBaseline.start(prefix);
  const runs: Array<Record<string, unknown>> = [];
  const oneWay: number[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      ctx.progress(`actors: flagship, payload 64 B, round ${round + 1}/${rounds}: the mailbox bus beside it, then the flagship`);
      oneWay.push(await mailbox.oneWay(64, ctx.quick ? 0.3 : 1)); // the mailbox suite's own seconds
      runs.push(await flagship(['--jobs', jobs, '--warmup', warmup, '--workers', '2', '--payload', '64']));
    }
  } finally {
    await mailbox.stop();
  }
  const byRate = [...runs].sort((a, b) => (a.throughputJobsPerSec as number) - (b.throughputJobsPerSec as number));
  const median = byRate[(byRate.length - 1) >> 1]!;
  const rates = runs.map((r) => Math.round((r.throughputJobsPerSec as number) / 1000)).join(', ');
  const inRounds = rounds > 1 ? `; the median of ${rounds} runs (${rates} k jobs/s), each after the mailbox row beside it` : '';
  const flagshipRow = (payload: number, r: Record<string, unknown>, how: string): BenchRow => ({
    transport: 'actors_router',
    payloadBytes: payload,
    throughputMsgsPerSec: r.throughputJobsPerSec as number,
    rttP50Us: r.latencyP50Us as number,
    rttP99Us: r.latencyP99Us as number,
    notes: `the flagship: a router to 2 worker processes; jobs/s after ${warmup} warm-up jobs; latency with 128 jobs in flight${cpu(r)}${how}`,
  });
  ctx.addRows([
    flagshipRow(64, median, inRounds),
    {
      transport: 'actors_mailbox_baseline',
      payloadBytes: 64,
      throughputMsgsPerSec: Math.round(Math.max(...oneWay)),
      notes: `the mailbox bus as the mpbus row measures it (64-byte msgpack values one way, own processes), right before each flagship run; the best of ${rounds}, as the mpbus row is the best of its runs`,
    },
  ]);
  ctx.progress('actors: flagship, payload 1024 B');
  ctx.addRows([flagshipRow(1024, await flagship(['--jobs', jobs, '--warmup', warmup, '--workers', '2', '--payload', '1024']), '')]);
  // Many asks in flight: throughput should stay near the 128-in-flight row's (backpressure
  // waits on the mailboxes' room doorbell; memory is bounded by the window).
  for (const window of [1024, 10_000]) {
    ctx.progress(`actors: flagship, ${window} in flight`);
    const r = await flagship(['--jobs', jobs, '--warmup', warmup, '--workers', '2', '--window', String(window)]);
    ctx.addRows([
      {
        transport: `actors_router_w${window}`,
        payloadBytes: 64,
        throughputMsgsPerSec: r.throughputJobsPerSec,
        rttP50Us: r.latencyP50Us,
        rttP99Us: r.latencyP99Us,
        notes: `the flagship with ${window} jobs in flight, after ${warmup} warm-up jobs (compare with actors_router, 128 in flight)${cpu(r)}`,
      },
    ]);
  }
  ctx.progress('actors: ask round trip across processes (window 1)');
  const seq = await flagship(['--jobs', ctx.quick ? '2000' : '20000', '--warmup', ctx.quick ? '200' : '2000', '--workers', '1', '--window', '1']);
  ctx.addRows([
    {
      transport: 'actors_router_ask',
      payloadBytes: 64,
      rttP50Us: seq.latencyP50Us,
      rttP99Us: seq.latencyP99Us,
      throughputMsgsPerSec: seq.throughputJobsPerSec,
      notes: 'sequential asks across processes through a router',
    },
  ]);
}
