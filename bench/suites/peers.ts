/**
 * Peers: the same job done by mpbus actors and by what a user would otherwise pick, on the same
 * machine in the same run. One caller process and two worker processes (bench/peers/peer-caller.ts
 * and the peer-worker-*.ts scripts); the caller asks the workers to `square` a 64-byte value:
 * sequential asks (p50/p99), 128 asks in flight (throughput, p99), one-way tells (throughput).
 * - mpbus actors: through a router in the caller over the workers' actors, and direct (the
 *   two named actors in turn); the router also with 32 to 10,000 asks in flight;
 * - `child_process.fork` with correlation ids and a Map of pending promises (json and advanced
 *   serialization; the faster is the row);
 * - Moleculer 0.14, TCP transporter on loopback, JSON and MsgPack serializers.
 * Also `peersWaitingCpu`: the CPU the mpbus processes use while they wait with no traffic,
 * alone and with busy processes on every CPU. The ratios are computed by bench/figures.ts.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { GroupFiles } from '../../src/runtime/group.js';
import { freePort } from '../../samples/lib/nats.js';
import type { BenchContext, BenchRow } from '../lib.js';
import type { CallerConfig, CallerMessage, ConfigResult } from '../peers/peer-caller.js';
import { killPid, SQUARE_BYTES } from '../peers/square.js';

const here = dirname(fileURLToPath(import.meta.url));
const callerScript = join(here, '..', 'peers', 'peer-caller.js');

interface Settings {
  seconds: number;
  seqAsks: number;
  warmupSeconds: number;
  routerWindows: number[];
  cpuMs: number;
}

/** CPU time (ns) of every thread of `pid` so far; /proc/<pid>/stat's ticks when schedstat is missing. */
function cpuNs(pid: number): number {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    return ns;
  } catch {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / 100) * 1e9; // utime + stime, USER_HZ 100
  }
}

/** Percent of one CPU each process used over the next `ms`. */
async function cpuPercent(pids: number[], ms: number): Promise<number[]> {
  const before = pids.map(cpuNs);
  const t0 = process.hrtime.bigint();
  await sleep(ms);
  const wallNs = Number(process.hrtime.bigint() - t0);
  return pids.map((pid, i) => Math.round(((cpuNs(pid) - before[i]!) / wallNs) * 10000) / 100);
}

/** Busy-loop processes, one per CPU: more runnable processes than CPUs once anyone else runs. */
async function withBusyProcesses<T>(work: (count: number) => Promise<T>): Promise<T> {
  const count = availableParallelism();
  const busy: ChildProcess[] = [];
  try {
    for (let i = 0; i < count; i++) busy.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
    await sleep(300);
    return await work(count);
  } finally {
    for (const b of busy) killPid(b.pid!);
    await Promise.all(busy.map((b) => (b.exitCode === null && b.signalCode === null ? once(b, 'exit') : undefined)));
  }
}

/**
 * Runs one caller (and through it two workers) until it reports; `whileWaiting` runs while the
 * processes wait idle after the measurements. Every process is ended by PID at the end.
 */
async function runCaller(ctx: BenchContext, config: CallerConfig, timeoutMs: number, whileWaiting?: (callerPid: number, workerPids: number[]) => Promise<void>): Promise<ConfigResult[]> {
  const caller = fork(callerScript, [JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const workerPids: number[] = [];
  const exited = once(caller, 'exit');
  try {
    const result = await new Promise<ConfigResult[]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`peers ${config.impl}: no result within ${timeoutMs / 1000} s`)), timeoutMs);
      caller.on('message', (m: CallerMessage) => {
        if (m.pid !== undefined) workerPids.push(m.pid);
        if (m.result || m.error) clearTimeout(timer);
        if (m.result) resolve(m.result);
        if (m.error) reject(new Error(`peers ${config.impl}: ${m.error}`));
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`peers ${config.impl}: the caller exited (${caller.exitCode ?? caller.signalCode})`));
      });
    });
    if (whileWaiting) await whileWaiting(caller.pid!, workerPids);
    return result;
  } finally {
    if (caller.exitCode === null && caller.signalCode === null) {
      if (caller.connected) caller.send({ stop: true });
      const timer = setTimeout(() => killPid(caller.pid!), 10_000);
      await exited;
      clearTimeout(timer);
    }
    for (const pid of workerPids) killPid(pid);
    ctx.progress(`peers ${config.impl}: processes ended`);
  }
}

const k = (n: number): string => `${Math.round(n / 1000)} k/s`;
const us = (n: number | undefined): string => (n === undefined ? '-' : `${n.toFixed(1)} µs`);

/** The rows of one configuration: `<id>_seq`, `<id>_window<N>` each, `<id>_tell`. */
function rowsOf(id: string, r: ConfigResult, what: string): BenchRow[] {
  const round = (n: number | undefined): number | undefined => (n === undefined ? undefined : Math.round(n * 10) / 10);
  const rows: BenchRow[] = [{ transport: `${id}_seq`, payloadBytes: SQUARE_BYTES, throughputMsgsPerSec: Math.round(r.seq.perSec), rttP50Us: round(r.seq.p50Us), rttP99Us: round(r.seq.p99Us), notes: `${what}: sequential square asks, 2 workers in turn` }];
  for (const [w, p] of Object.entries(r.windows)) {
    rows.push({ transport: `${id}_window${w}`, payloadBytes: SQUARE_BYTES, throughputMsgsPerSec: Math.round(p.perSec), rttP50Us: round(p.p50Us), rttP99Us: round(p.p99Us), notes: `${what}: ${Number(w).toLocaleString('en-US')} square asks in flight; caller peak RSS ${p.callerMaxRssMb} MB` });
  }
  rows.push({ transport: `${id}_tell`, payloadBytes: SQUARE_BYTES, throughputMsgsPerSec: Math.round(r.tell.perSec), notes: `${what}: one-way count tells, 2 workers in turn, counted when the workers' totals (asked) reach every tell` });
  return rows;
}

export async function run(ctx: BenchContext): Promise<void> {
  const s: Settings = ctx.quick
    ? { seconds: 0.3, seqAsks: 2000, warmupSeconds: 0.05, routerWindows: [128, 1024, 10_000], cpuMs: 1000 }
    : { seconds: 1, seqAsks: 50_000, warmupSeconds: 0.2, routerWindows: [32, 128, 256, 1024, 10_000], cpuMs: 2000 };
  const base = { seconds: s.seconds, seqAsks: s.seqAsks, warmupSeconds: s.warmupSeconds, windows: [128] };
  const timeoutMs = 180_000;
  const rows: BenchRow[] = [];

  // mpbus actors, router and direct, in one group; then the waiting processes' CPU.
  ctx.progress('peers: mpbus actors (router and direct)');
  const prefix = `mpbench_peers_${process.pid}`;
  try {
    const mpbus = await runCaller(ctx, { ...base, impl: 'mpbus', filePrefix: prefix, windows: s.routerWindows }, timeoutMs, async (callerPid, workerPids) => {
      ctx.progress('peers: CPU of the mpbus processes waiting with no traffic');
      await sleep(500);
      const pids = [callerPid, ...workerPids];
      const quiet = await cpuPercent(pids, s.cpuMs);
      const busy = await withBusyProcesses(async (count) => ({ count, percent: await cpuPercent(pids, s.cpuMs) }));
      const worst = (p: number[]): number => Math.max(...p.slice(1));
      ctx.setField('peersWaitingCpu', {
        ms: s.cpuMs,
        quiet: { callerPercent: quiet[0], workerPercent: quiet.slice(1) },
        busyProcesses: busy.count,
        withBusy: { callerPercent: busy.percent[0], workerPercent: busy.percent.slice(1) },
        spins: worst(quiet) >= 1 || worst(busy.percent) >= 1,
      });
      ctx.progress(`peers: waiting worker CPU ${worst(quiet)}% (caller ${quiet[0]}%); with ${busy.count} busy processes ${worst(busy.percent)}% (caller ${busy.percent[0]}%)`);
    });
    const [router, direct] = mpbus;
    rows.push(...rowsOf('peers_mpbus_router', router!, 'mpbus actors, a router in the caller over 2 worker processes'));
    rows.push(...rowsOf('peers_mpbus_direct', direct!, 'mpbus actors, the caller asks the 2 named actors in turn'));
    ctx.progress(`peers mpbus: router ${k(router!.windows['128']!.perSec)} at 128 in flight, seq p50 ${us(router!.seq.p50Us)}; direct ${k(direct!.windows['128']!.perSec)}, seq p50 ${us(direct!.seq.p50Us)}`);
  } finally {
    const group = new GroupFiles(prefix);
    if (!group.primaryAlive()) group.removeLeftovers(false);
  }

  // child_process.fork RPC: both serializations, the faster at 128 in flight is the row.
  const forks: ConfigResult[] = [];
  for (const serialization of ['json', 'advanced'] as const) {
    ctx.progress(`peers: child_process.fork RPC, serialization '${serialization}'`);
    forks.push((await runCaller(ctx, { ...base, impl: 'fork', serialization }, timeoutMs))[0]!);
  }
  forks.sort((a, b) => b.windows['128']!.perSec - a.windows['128']!.perSec);
  const [bestFork, otherFork] = forks as [ConfigResult, ConfigResult];
  const forkName = (r: ConfigResult): string => r.name.replace('fork_', '');
  rows.push(...rowsOf('peers_cp_fork', bestFork, `child_process.fork RPC (correlation ids, a Map of pending promises), serialization '${forkName(bestFork)}' (faster at 128 in flight than '${forkName(otherFork)}': ${k(otherFork.windows['128']!.perSec)})`));
  ctx.progress(`peers fork: ${forkName(bestFork)} ${k(bestFork.windows['128']!.perSec)} at 128 in flight, seq p50 ${us(bestFork.seq.p50Us)}`);

  // Moleculer, TCP transporter on loopback, each serializer.
  for (const serializer of ['JSON', 'MsgPack'] as const) {
    ctx.progress(`peers: Moleculer TCP, ${serializer}`);
    const nodes = [];
    for (const nodeID of ['caller', 'worker-1', 'worker-2']) nodes.push({ nodeID: `${nodeID}-${process.pid}`, port: await freePort() });
    const cluster = { namespace: `peers-${process.pid}`, serializer, nodes };
    const [r] = await runCaller(ctx, { ...base, impl: 'moleculer', cluster }, timeoutMs);
    rows.push(...rowsOf(`peers_moleculer_tcp_${serializer.toLowerCase()}`, r!, `Moleculer 0.14 TCP transporter on loopback (no UDP discovery), ${serializer} serializer, logging/metrics/tracing off; calls balanced round-robin, tells are balanced events`));
    ctx.progress(`peers moleculer ${serializer}: ${k(r!.windows['128']!.perSec)} at 128 in flight, seq p50 ${us(r!.seq.p50Us)}`);
  }
  ctx.addRows(rows);
}
