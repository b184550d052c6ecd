/**
 * Peers: the same job done by mpbus actors and by what a user would otherwise pick, on the same
 * machine in the same run. Per implementation one caller process and two worker processes
 * (bench/peers/peer-caller.ts and the peer-worker-*.ts scripts); the caller asks the workers to
 * `square` a 64-byte value: sequential asks (p50/p99), 128 asks in flight (throughput, p50/p99),
 * one-way tells (throughput).
 * - mpbus actors: through a router in the caller over the workers' actors, and direct (the two
 *   named actors in turn); the router also with 32, 256, 1,024 and 10,000 asks in flight, and
 *   with 128, 1,024 and 10,000 from a second caller whose young generation is larger
 *   (`YOUNG_FLAGS` in bench/lib.ts);
 * - `child_process.fork` with correlation ids and a Map of pending promises (json and advanced
 *   serialization; the faster at 128 in flight is the row);
 * - Moleculer 0.14, TCP transporter on loopback, JSON and MsgPack serializers.
 * Every implementation is started first; then the measurements are interleaved (each round runs
 * one phase for all of them in turn, the order rotating per round) and each row is the median
 * of the rounds, so a burst of load from elsewhere on the machine hits every implementation
 * alike. Each round also measures the mailbox bus the way the mailbox suite's `mpbus` row does
 * (its own three processes: 64-byte msgpack values one way, and round trips to an echo), right
 * before the actor rows it is the baseline of: row `peers_mailbox_baseline`, so that tells /
 * mailbox and sequential ask / RTT are also taken a second apart, not a suite apart. Last,
 * `peersWaitingCpu`: the CPU the mpbus processes use while they wait with no traffic, alone and
 * with a busy process per CPU. The ratios are computed by bench/figures.ts.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { GroupFiles } from '../../src/runtime/group.js';
import { freePort } from '../../samples/lib/nats.js';
import { describePlacement, YOUNG_FLAGS, type BenchContext, type BenchRow } from '../lib.js';
import type { CallerConfig, CallerMessage, PhaseCommand } from '../peers/peer-caller.js';
import type { PhaseResult } from '../peers/square-phases.js';
import { killPid, SQUARE_BYTES } from '../peers/square.js';
import { cpuNs } from '../../samples/lib/processes.js';
import { MailboxBaseline } from './mailbox.js';

const here = dirname(fileURLToPath(import.meta.url));
/** CPU share of a waiting process from which `peersWaitingCpu.spins` says it spins. */
const SPIN_PERCENT = 5;
const callerScript = join(here, '..', 'peers', 'peer-caller.js');

interface Settings {
  /** Rounds of interleaved measurements; rows are their medians. */
  rounds: number;
  seconds: number;
  seqAsks: number;
  warmupSeconds: number;
  /** The router's windows besides 128. */
  routerWindows: number[];
  /** The windows of the router whose caller has a larger young generation ({@link YOUNG_FLAGS}). */
  youngWindows: number[];
  cpuMs: number;
  /** Round trips of the mailbox baseline per round (it also stops after `seconds`). */
  mailboxRttRounds: number;
  /** Each one-way run of the mailbox baseline: the mailbox suite's, so that it reads as the `mpbus` row does. */
  mailboxSeconds: number;
}

/** A caller process and, through it, its two workers; every one ended by PID in stop(). */
class Caller {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: PhaseResult) => void; reject: (e: Error) => void }>();
  readonly workerPids: number[] = [];
  private readonly exited: Promise<unknown>;

  private constructor(
    readonly label: string,
    readonly child: ChildProcess,
  ) {
    this.exited = once(child, 'exit');
    child.on('message', (m: CallerMessage) => {
      if (m.pid !== undefined) this.workerPids.push(m.pid);
      if (m.id === undefined) return;
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.result) p?.resolve(m.result);
      else p?.reject(new Error(`peers ${label}: ${m.error}`));
    });
    void this.exited.then(() => {
      for (const p of this.pending.values()) p.reject(new Error(`peers ${label}: the caller exited (${child.exitCode ?? child.signalCode})`));
      this.pending.clear();
    });
  }

  /** Starts the caller; resolves once it and its workers are ready (at most `timeoutMs`). */
  static async start(label: string, config: CallerConfig, timeoutMs: number, started: Caller[], nodeFlags: readonly string[] = []): Promise<Caller> {
    const child = fork(callerScript, [JSON.stringify(config)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: [...process.execArgv, ...nodeFlags],
    });
    const caller = new Caller(label, child);
    started.push(caller);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`peers ${label}: not ready within ${timeoutMs / 1000} s`)), timeoutMs);
      caller.child.on('message', (m: CallerMessage) => {
        if (m.ready) resolve();
        if (m.error && m.id === undefined) reject(new Error(`peers ${label}: ${m.error}`));
        if (m.ready || m.error) clearTimeout(timer);
      });
      void caller.exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`peers ${label}: the caller exited while starting`));
      });
    });
    return caller;
  }

  run(cmd: Omit<PhaseCommand, 'id'>, timeoutMs: number): Promise<PhaseResult> {
    const id = this.nextId++;
    return new Promise<PhaseResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`peers ${this.label}: ${cmd.phase} ${cmd.config} not done within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      const settle = (): void => clearTimeout(timer);
      this.pending.set(id, { resolve: (r) => (settle(), resolve(r)), reject: (e) => (settle(), reject(e)) });
      this.child.send({ id, ...cmd });
    });
  }

  /** Asks the caller to stop its workers and itself; SIGKILLs by PID whatever is left after 10 s. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      if (this.child.connected) this.child.send({ stop: true });
      const timer = setTimeout(() => killPid(this.child.pid!), 10_000);
      await this.exited;
      clearTimeout(timer);
    }
    for (const pid of this.workerPids) killPid(pid);
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

/** Runs `work` while `count` busy-loop processes run alongside (default one per CPU). */
async function withBusyProcesses<T>(work: (count: number) => Promise<T>, count = availableParallelism()): Promise<T> {
  const busy: ChildProcess[] = [];
  try {
    for (let i = 0; i < count; i++) busy.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
    await sleep(300);
    return await work(count);
  } finally {
    const gone = busy.filter((b) => b.exitCode === null && b.signalCode === null).map((b) => once(b, 'exit'));
    for (const b of busy) killPid(b.pid!);
    await Promise.all(gone);
  }
}

/** One configuration measured: rows `<id>_seq`, `<id>_window<N>`, `<id>_tell`. */
interface Config {
  id: string;
  caller: Caller;
  config: string;
  what: string;
}

function median(values: Array<number | undefined>): number | undefined {
  const v = values.filter((x): x is number => x !== undefined && !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  return v.length % 2 === 1 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
}

/** The median of each figure over the rounds. */
function medianOf(samples: PhaseResult[]): PhaseResult {
  return {
    perSec: median(samples.map((s) => s.perSec))!,
    count: median(samples.map((s) => s.count))!,
    p50Us: median(samples.map((s) => s.p50Us)),
    p99Us: median(samples.map((s) => s.p99Us)),
    peakRssMb: Math.max(...samples.map((s) => s.peakRssMb ?? 0)),
    perWorker: samples.at(-1)?.perWorker,
  };
}

const kps = (n: number): string => `${Math.round(n / 1000)} k/s`;
const us = (n: number | undefined): string => (n === undefined ? '-' : `${n.toFixed(1)} µs`);
const round1 = (n: number | undefined): number | undefined => (n === undefined ? undefined : Math.round(n * 10) / 10);

function row(transport: string, r: PhaseResult, notes: string): BenchRow {
  return { transport, payloadBytes: SQUARE_BYTES, throughputMsgsPerSec: Math.round(r.perSec), rttP50Us: round1(r.p50Us), rttP99Us: round1(r.p99Us), notes };
}

export async function run(ctx: BenchContext): Promise<void> {
  const s: Settings = ctx.quick
    ? {
        rounds: 1,
        seconds: 0.2,
        seqAsks: 2000,
        warmupSeconds: 0.05,
        routerWindows: [1024, 10_000],
        youngWindows: [128, 10_000],
        cpuMs: 1000,
        mailboxRttRounds: 20_000,
        mailboxSeconds: 0.3,
      }
    : {
        rounds: 3,
        seconds: 0.5,
        seqAsks: 30_000,
        warmupSeconds: 0.1,
        routerWindows: [32, 256, 1024, 10_000],
        youngWindows: [128, 1024, 10_000],
        cpuMs: 2000,
        mailboxRttRounds: 150_000,
        mailboxSeconds: 1,
      };
  const timeoutMs = 60_000;
  const phaseTimeoutMs = s.seconds * 1000 + 120_000;
  const prefix = `mpbench_peers_${process.pid}`;
  const callers: Caller[] = [];
  let mailbox: MailboxBaseline | undefined;
  const mailboxPrefix = `${prefix}_mbx`;
  try {
    ctx.progress('peers: starting mpbus actors, child_process.fork RPC, Moleculer (a caller and 2 workers each)');
    const mpbus = await Caller.start('mpbus', { impl: 'mpbus', filePrefix: prefix, placement: ctx.placement }, timeoutMs, callers);
    const mpbusYoung = await Caller.start(
      'mpbus young',
      { impl: 'mpbus', filePrefix: `${prefix}_young`, placement: ctx.placement },
      timeoutMs,
      callers,
      YOUNG_FLAGS,
    );
    const forkJson = await Caller.start('fork json', { impl: 'fork', serialization: 'json' }, timeoutMs, callers);
    const forkAdvanced = await Caller.start('fork advanced', { impl: 'fork', serialization: 'advanced' }, timeoutMs, callers);
    const moleculer: Caller[] = [];
    for (const serializer of ['JSON', 'MsgPack'] as const) {
      const nodes = [];
      for (const node of ['caller', 'worker-1', 'worker-2']) nodes.push({ nodeID: `${node}-${process.pid}`, port: await freePort() });
      moleculer.push(
        await Caller.start(
          `moleculer ${serializer}`,
          { impl: 'moleculer', cluster: { namespace: `peers-${process.pid}-${serializer}`, serializer, nodes } },
          timeoutMs,
          callers,
        ),
      );
    }
    const molWhat = (serializer: string): string =>
      `Moleculer 0.14 TCP transporter on loopback (no UDP discovery), ${serializer} serializer, logging/metrics/tracing off; calls balanced by Moleculer (round-robin), tells are events (one sq instance each)`;
    const forkWhat = 'child_process.fork RPC (correlation ids, a Map of pending promises; the caller alternates between the 2 workers)';
    const configs: Config[] = [
      {
        id: 'peers_mpbus_router',
        caller: mpbus,
        config: 'router',
        what: `mpbus actors: a round-robin router in the caller over the actors of 2 worker processes, ${describePlacement(ctx.placement)}`,
      },
      {
        id: 'peers_mpbus_direct',
        caller: mpbus,
        config: 'direct',
        what: `mpbus actors: the caller asks (tells) the 2 workers' named actors in turn, ${describePlacement(ctx.placement)}`,
      },
      { id: 'fork_json', caller: forkJson, config: 'fork', what: forkWhat },
      { id: 'fork_advanced', caller: forkAdvanced, config: 'fork', what: forkWhat },
      { id: 'peers_moleculer_tcp_json', caller: moleculer[0]!, config: 'moleculer', what: molWhat('JSON') },
      { id: 'peers_moleculer_tcp_msgpack', caller: moleculer[1]!, config: 'moleculer', what: molWhat('MsgPack') },
    ];
    // The mailbox baseline: a primary and two secondaries, as in the mailbox suite.
    mailbox = await MailboxBaseline.start(mailboxPrefix);
    const mbx = mailbox;
    const mailboxRtt: Array<{ p50: number; p99: number }> = [];
    const mailboxOneWay: number[] = [];

    // Its windows only: what sizing the young generation does to asks in flight (rows beside the router's).
    const young: Config = {
      id: 'peers_mpbus_router_young',
      caller: mpbusYoung,
      config: 'router',
      what: `${configs[0]!.what}; the caller run with node ${YOUNG_FLAGS.join(' ')}`,
    };

    const samples = new Map<string, PhaseResult[]>();
    const measure = async (c: Config, key: string, cmd: Omit<PhaseCommand, 'id' | 'config'>): Promise<void> => {
      const r = await c.caller.run({ ...cmd, config: c.config }, phaseTimeoutMs);
      const list = samples.get(`${c.id}|${key}`) ?? [];
      list.push(r);
      samples.set(`${c.id}|${key}`, list);
    };
    // The second caller's first phases would run cold (the first caller warms up in its
    // sequential and 128-in-flight phases before its other windows): one untimed run first.
    await young.caller.run({ config: young.config, phase: 'window', window: 128, seconds: s.seconds, warmupSeconds: s.warmupSeconds }, phaseTimeoutMs);
    for (let round = 0; round < s.rounds; round++) {
      const order = configs.map((_, i) => configs[(i + round) % configs.length]!);
      ctx.progress(`peers round ${round + 1}/${s.rounds}: mailbox round trips, sequential asks`);
      mailboxRtt.push(await mbx.roundTrips(SQUARE_BYTES, s.mailboxRttRounds, s.seconds));
      for (const c of order) await measure(c, 'seq', { phase: 'seq', seconds: s.seconds, maxAsks: s.seqAsks });
      ctx.progress(`peers round ${round + 1}/${s.rounds}: 128 asks in flight`);
      for (const c of order) await measure(c, 'window128', { phase: 'window', window: 128, seconds: s.seconds, warmupSeconds: s.warmupSeconds });
      ctx.progress(`peers round ${round + 1}/${s.rounds}: router with ${s.routerWindows.join(', ')} asks in flight`);
      for (const w of s.routerWindows)
        await measure(configs[0]!, `window${w}`, { phase: 'window', window: w, seconds: s.seconds, warmupSeconds: s.warmupSeconds });
      ctx.progress(`peers round ${round + 1}/${s.rounds}: router, caller with node ${YOUNG_FLAGS.join(' ')}, ${s.youngWindows.join(', ')} asks in flight`);
      for (const w of s.youngWindows) await measure(young, `window${w}`, { phase: 'window', window: w, seconds: s.seconds, warmupSeconds: s.warmupSeconds });
      ctx.progress(`peers round ${round + 1}/${s.rounds}: mailbox one way, tells`);
      mailboxOneWay.push(await mbx.oneWay(SQUARE_BYTES, s.mailboxSeconds));
      for (const c of order) await measure(c, 'tell', { phase: 'tell', seconds: s.seconds });
    }

    // One round beside a busy process: more runnable processes than CPUs, as on a machine that
    // also runs other work (a waiting process that yields its CPU to such a process loses it for
    // that process's whole time slice; docs/benchmarks.md, "Ninth pass: waiting beside a busy process").
    ctx.progress('peers: beside a busy process: sequential asks, 128 in flight');
    await withBusyProcesses(async () => {
      for (const c of configs) {
        await measure(c, 'busySeq', { phase: 'seq', seconds: s.seconds, maxAsks: s.seqAsks });
        await measure(c, 'busyWindow128', { phase: 'window', window: 128, seconds: s.seconds, warmupSeconds: s.warmupSeconds });
      }
    }, 1);

    const of = (id: string, key: string): PhaseResult => medianOf(samples.get(`${id}|${key}`)!);
    const rounds = s.rounds > 1 ? `median of ${s.rounds} interleaved rounds of ${s.seconds} s` : `${s.seconds} s`;
    const windowRows = (rowId: string, c: Config, what: string, windows: number[]): BenchRow[] =>
      [...windows]
        .sort((a, b) => a - b)
        .map((w) => {
          const r = of(c.id, `window${w}`);
          return row(
            `${rowId}_window${w}`,
            r,
            `${what}: ${w.toLocaleString('en-US')} square asks in flight (${rounds}); the caller's peak RSS during the measurement ${r.peakRssMb} MB`,
          );
        });
    const rowsOf = (rowId: string, c: Config, what: string): BenchRow[] => {
      const tell = of(c.id, 'tell');
      return [
        row(`${rowId}_seq`, of(c.id, 'seq'), `${what}: sequential square asks (${rounds})`),
        ...windowRows(rowId, c, what, [128, ...(c === configs[0] ? s.routerWindows : [])]),
        row(
          `${rowId}_tell`,
          tell,
          `${what}: one-way count tells (${rounds}), counted when the workers' totals (asked) reach every tell; per worker ${tell.perWorker?.map((n) => n.toLocaleString('en-US')).join(' / ') ?? '-'} (last round)`,
        ),
        row(`${rowId}_busy_seq`, of(c.id, 'busySeq'), `${what}: sequential square asks beside one busy-loop process (${s.seconds} s)`),
        row(`${rowId}_busy_window128`, of(c.id, 'busyWindow128'), `${what}: 128 square asks in flight beside one busy-loop process (${s.seconds} s)`),
      ];
    };
    const rows: BenchRow[] = [];
    const [forkA, forkB] = [configs[2]!, configs[3]!].sort((a, b) => of(b.id, 'window128').perSec - of(a.id, 'window128').perSec) as [Config, Config];
    const ser = (c: Config): string => c.id.replace('fork_', '');
    for (const c of configs) {
      if (c === forkB) continue;
      if (c === forkA)
        rows.push(
          ...rowsOf(
            'peers_cp_fork',
            c,
            `${c.what}, serialization '${ser(c)}' (faster at 128 in flight than '${ser(forkB)}': ${kps(of(forkB.id, 'window128').perSec)})`,
          ),
        );
      else rows.push(...rowsOf(c.id, c, c.what));
      ctx.progress(
        `peers ${c.id}: ${kps(of(c.id, 'window128').perSec)} at 128 in flight, p99 ${us(of(c.id, 'window128').p99Us)}; sequential p50 ${us(of(c.id, 'seq').p50Us)}; tells ${kps(of(c.id, 'tell').perSec)}`,
      );
    }
    rows.push(...windowRows(young.id, young, young.what, s.youngWindows));
    const baseline = {
      // the best round, as the `mpbus` row is the best of its runs: a round that a slow stretch
      // of the machine hit does not make the actor rows look closer to the bus than they are
      perSec: Math.max(...mailboxOneWay),
      count: 0,
      p50Us: median(mailboxRtt.map((r) => r.p50)),
      p99Us: median(mailboxRtt.map((r) => r.p99)),
    };
    rows.push(
      row(
        'peers_mailbox_baseline',
        baseline,
        `the mailbox bus measured as the mailbox suite's mpbus row (64-byte msgpack values between two processes: one way, the better of 64 per call and one per call, best of ${s.rounds} rounds; RTT to an echo, median of the rounds), in each round just before the actor rows`,
      ),
    );
    ctx.progress(`peers mailbox baseline: ${kps(baseline.perSec)} one way, RTT p50 ${us(baseline.p50Us)}`);
    ctx.addRows(rows);

    ctx.progress('peers: CPU of the mpbus processes waiting with no traffic');
    const pids = [mpbus.child.pid!, ...mpbus.workerPids];
    const quiet = await cpuPercent(pids, s.cpuMs);
    const busy = await withBusyProcesses(async (count) => ({ count, percent: await cpuPercent(pids, s.cpuMs) }));
    const worst = (p: number[]): number => Math.max(...p.slice(1));
    ctx.setField('peersWaitingCpu', {
      ms: s.cpuMs,
      quiet: { callerPercent: quiet[0], workerPercent: quiet.slice(1) },
      busyProcesses: busy.count,
      withBusy: { callerPercent: busy.percent[0], workerPercent: busy.percent.slice(1) },
      // A spinning waiter takes a large share of a CPU even against busy processes; timers alone take well under 5%.
      spins: worst(quiet) >= SPIN_PERCENT || worst(busy.percent) >= SPIN_PERCENT,
    });
    ctx.progress(
      `peers: a waiting mpbus worker used ${worst(quiet)}% CPU (the caller ${quiet[0]}%); with ${busy.count} busy processes ${worst(busy.percent)}% (the caller ${busy.percent[0]}%)`,
    );
  } finally {
    await Promise.all(callers.map((c) => c.stop()));
    await mailbox?.stop();
    // (the mailbox baseline removed its own group's files; these are the two mpbus callers')
    for (const p of [prefix, `${prefix}_young`]) {
      const group = new GroupFiles(p);
      if (!group.primaryAlive()) group.removeLeftovers(false);
    }
    ctx.progress('peers: every process ended');
  }
}
