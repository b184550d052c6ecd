/**
 * The interrupt relay: latency of an event from the primary's DPDK callback (an eventfd on the
 * EAL interrupt thread) to a secondary's subscriber, with two healthy secondaries, then with one
 * of them stopped by SIGSTOP (what a stuck peer costs the other and the primary), and how the
 * stopped one catches up after SIGCONT.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { percentile, type BenchContext, type BenchRow } from '../lib.js';

const here = dirname(fileURLToPath(import.meta.url));
const INTERVAL_MS = 2;

interface Report {
  latenciesUs: number[];
  seqs: number[];
}

interface FireResult {
  maxGapMs: number;
  relay: { batches: number; events: number; largestBatch: number; failed: number; beacons: number; replays: number };
}

function removeGroupFiles(prefix: string): void {
  rmSync(join('/var/run/dpdk', prefix), { recursive: true, force: true });
  for (const f of readdirSync('/dev/hugepages')) if (f.startsWith(`${prefix}map_`)) rmSync(join('/dev/hugepages', f), { force: true });
}

async function start(role: string, prefix: string): Promise<ChildProcess> {
  const child = fork(join(here, '..', 'peers', 'intr-peer.js'), [role, prefix], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await once(child, 'message');
  return child;
}

async function ask<T>(child: ChildProcess, message: unknown): Promise<T> {
  const reply = once(child, 'message');
  child.send(message as object);
  return ((await reply) as [T])[0];
}

function gapFree(seqs: number[]): boolean {
  return seqs.every((s, i) => i === 0 || s === seqs[i - 1]! + 1);
}

export async function run(ctx: BenchContext): Promise<void> {
  const n = ctx.quick ? 200 : 2000;
  const prefix = `mpbench_intr_${process.pid}`;
  const children: ChildProcess[] = [];
  try {
    const primary = await start('primary', prefix);
    children.push(primary);
    const [s1, s2] = [await start('secondary', prefix), await start('secondary', prefix)] as [ChildProcess, ChildProcess];
    children.push(s1, s2);

    ctx.progress(`interrupts: ${n} events, every ${INTERVAL_MS} ms, two healthy secondaries...`);
    const healthy = await ask<FireResult>(primary, { fire: n, intervalMs: INTERVAL_MS });
    const both = [...(await ask<Report>(s1, { report: true })).latenciesUs, ...(await ask<Report>(s2, { report: true })).latenciesUs];
    const rows: BenchRow[] = [
      {
        transport: 'intr_relay',
        payloadBytes: 0,
        rttP50Us: percentile(both, 50),
        rttP99Us: percentile(both, 99),
        notes: `one-way: primary eventfd callback -> secondary subscriber, 2 secondaries; primary loop longest stall ${healthy.maxGapMs.toFixed(1)} ms`,
      },
    ];

    ctx.progress(`interrupts: ${n} events with one secondary stopped (SIGSTOP)...`);
    process.kill(s1.pid!, 'SIGSTOP');
    let stopped: FireResult;
    let other: Report;
    try {
      stopped = await ask<FireResult>(primary, { fire: n, intervalMs: INTERVAL_MS });
      other = await ask<Report>(s2, { report: true });
    } finally {
      process.kill(s1.pid!, 'SIGCONT');
    }
    const resumedAt = performance.now();
    const lastSeq = other.seqs.at(-1);
    const late: Report = { latenciesUs: [], seqs: [] };
    while (late.seqs.at(-1) !== lastSeq && performance.now() - resumedAt < 15_000) {
      late.seqs.push(...(await ask<Report>(s1, { report: true })).seqs);
      await new Promise((r) => setTimeout(r, 5));
    }
    const relay = stopped.relay;
    rows.push({
      transport: 'intr_relay_peer_stopped',
      payloadBytes: 0,
      rttP50Us: percentile(other.latenciesUs, 50),
      rttP99Us: percentile(other.latenciesUs, 99),
      notes:
        `the running secondary's latency while the other is stopped; primary loop longest stall ${stopped.maxGapMs.toFixed(1)} ms; ` +
        `relay so far: ${relay.batches} batches for ${relay.events} events (largest ${relay.largestBatch}), ${relay.failed} failed, ${relay.beacons} beacons; ` +
        `the stopped one had ${late.seqs.length} events, gap-free ${gapFree(late.seqs)}, ${(performance.now() - resumedAt).toFixed(0)} ms after SIGCONT`,
    });
    ctx.addRows(rows);
  } finally {
    for (const c of children) if (c.connected) c.disconnect();
    for (const c of children) if (c.exitCode === null) await Promise.race([once(c, 'exit'), new Promise((r) => setTimeout(r, 5000))]);
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    removeGroupFiles(prefix);
  }
}
