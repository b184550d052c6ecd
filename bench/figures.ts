/**
 * The summary after the table of `npm run bench`: the peers suite's mpbus/peer ratios and the
 * figures of the actor-speed issue, each a ratio of two rows measured in the same run (rows
 * kept from an earlier results.json are never mixed in: a figure whose rows were not both
 * measured in this run shows '-' and names the suites to run).
 */
import { YOUNG_FLAGS, type BenchRow } from './lib.js';

/** One ratio of the mpbus/peer table: mpbus's advantage, so above 1 means mpbus is better. */
export interface PeerRatio {
  mpbus: string;
  peer: string;
  /** Asks per second with 128 in flight, mpbus / peer. */
  window128Throughput?: number;
  /** Sequential ask p50, peer / mpbus. */
  seqP50?: number;
  /** p99 with 128 in flight, peer / mpbus. */
  window128P99?: number;
  /** Tells per second, mpbus / peer. */
  tellThroughput?: number;
}

/** One figure of the issue's table. */
export interface Figure {
  figure: string;
  value?: number;
  unit: 'ratio' | 'x' | 'ms' | '%';
  target: string;
  /** Undefined when the rows were not in this run, or the target needs a quiet machine to judge. */
  met?: boolean;
  /** What is missing, or how the value was made. */
  note?: string;
}

const PEERS = ['peers_cp_fork', 'peers_moleculer_tcp_json', 'peers_moleculer_tcp_msgpack'];
const MPBUS = ['peers_mpbus_router', 'peers_mpbus_direct'];

const round = (n: number, digits = 2): number => Number(n.toFixed(digits));

function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a !== undefined && b !== undefined && b > 0 ? round(a / b) : undefined;
}

export function peerRatios(rows: BenchRow[]): PeerRatio[] {
  const get = (t: string): BenchRow | undefined => rows.find((r) => r.transport === t);
  const out: PeerRatio[] = [];
  for (const m of MPBUS) {
    for (const p of PEERS) {
      if (!get(`${m}_window128`) || !get(`${p}_window128`)) continue;
      out.push({
        mpbus: m.replace('peers_', ''),
        peer: p.replace('peers_', ''),
        window128Throughput: ratio(get(`${m}_window128`)?.throughputMsgsPerSec, get(`${p}_window128`)?.throughputMsgsPerSec),
        seqP50: ratio(get(`${p}_seq`)?.rttP50Us, get(`${m}_seq`)?.rttP50Us),
        window128P99: ratio(get(`${p}_window128`)?.rttP99Us, get(`${m}_window128`)?.rttP99Us),
        tellThroughput: ratio(get(`${m}_tell`)?.throughputMsgsPerSec, get(`${p}_tell`)?.throughputMsgsPerSec),
      });
    }
  }
  return out;
}

/** The part of the peers suite's `peersWaitingCpu` field the figures read. */
export interface WaitingCpu {
  quiet: { workerPercent: number[] };
  withBusy: { workerPercent: number[] };
  busyProcesses: number;
}

/** The issue's figures from this run's rows (and the peers suite's `peersWaitingCpu` field). */
export function issueFigures(rows: BenchRow[], waiting: WaitingCpu | undefined): Figure[] {
  const get = (t: string, bytes = 64): BenchRow | undefined => rows.find((r) => r.transport === t && r.payloadBytes === bytes);
  const mpbus = get('mpbus');
  const figures: Figure[] = [];
  const add = (
    figure: string,
    value: number | undefined,
    unit: Figure['unit'],
    target: string,
    ok: ((v: number) => boolean) | undefined,
    missing: string,
    note?: string,
  ): void => {
    if (value === undefined) figures.push({ figure, unit, target, note: `needs ${missing} in this run` });
    else figures.push({ figure, value, unit, target, ...(ok ? { met: ok(value) } : {}), ...(note ? { note } : {}) });
  };
  const pct = (a: number | undefined, b: number | undefined): number | undefined => (a !== undefined && b ? round((a / b) * 100, 1) : undefined);

  add(
    'actors_router throughput / mpbus',
    pct(get('actors_router')?.throughputMsgsPerSec, mpbus?.throughputMsgsPerSec),
    '%',
    '>= 15% (stretch 25%)',
    (v) => v >= 15,
    'suites actors, mailbox',
  );
  add(
    'actors_router throughput / mpbus beside it',
    pct(get('actors_router')?.throughputMsgsPerSec, get('actors_mailbox_baseline')?.throughputMsgsPerSec),
    '%',
    '>= 15% (stretch 25%)',
    (v) => v >= 15,
    'suite actors',
    'the mailbox measured right before each flagship run, in the actors suite',
  );
  add(
    'router, 128 in flight / child_process.fork RPC',
    ratio(get('peers_mpbus_router_window128')?.throughputMsgsPerSec, get('peers_cp_fork_window128')?.throughputMsgsPerSec),
    'x',
    '>= 3x (stretch 5x)',
    (v) => v >= 3,
    'suite peers',
  );
  const moleculer = ['peers_moleculer_tcp_json_window128', 'peers_moleculer_tcp_msgpack_window128'].map((t) => get(t)?.throughputMsgsPerSec ?? 0);
  const bestMoleculer = Math.max(...moleculer) || undefined;
  add(
    'router, 128 in flight / Moleculer (its faster serializer)',
    ratio(get('peers_mpbus_router_window128')?.throughputMsgsPerSec, bestMoleculer),
    'x',
    '>= 15x',
    (v) => v >= 15,
    'suite peers',
    moleculer[0]! >= moleculer[1]! ? 'JSON was faster' : 'MsgPack was faster',
  );
  // Each also against the same mailbox measurement taken in the peers suite a second before the
  // actor rows (`peers_mailbox_baseline`): the mailbox suite runs a minute apart, and a slow
  // stretch of the machine that hits only one suite swings a ratio across suites the most.
  const beside = get('peers_mailbox_baseline');
  const besideNote = 'the mailbox measured beside the actor rows, in the peers suite';
  for (const kind of ['direct', 'router'] as const) {
    const tells = get(`peers_mpbus_${kind}_tell`)?.throughputMsgsPerSec;
    add(`tells across processes (${kind}) / mpbus`, pct(tells, mpbus?.throughputMsgsPerSec), '%', '>= 40%', (v) => v >= 40, 'suites peers, mailbox');
    add(
      `tells across processes (${kind}) / mpbus beside it`,
      pct(tells, beside?.throughputMsgsPerSec),
      '%',
      '>= 40%',
      (v) => v >= 40,
      'suite peers',
      besideNote,
    );
  }
  for (const [kind, target] of [
    ['direct', 2],
    ['router', 3],
  ] as const) {
    const what = kind === 'direct' ? 'direct' : 'via router';
    const seq = get(`peers_mpbus_${kind}_seq`)?.rttP50Us;
    const ok = (v: number): boolean => v <= target;
    add(`sequential ask p50, ${what} / mpbus RTT p50`, ratio(seq, mpbus?.rttP50Us), 'x', `<= ${target}x`, ok, 'suites peers, mailbox');
    add(`sequential ask p50, ${what} / mpbus RTT p50 beside it`, ratio(seq, beside?.rttP50Us), 'x', `<= ${target}x`, ok, 'suite peers', besideNote);
  }
  const p99 = get('peers_mpbus_router_window128')?.rttP99Us;
  add(
    'router p99, 128 in flight',
    p99 === undefined ? undefined : round(p99 / 1000),
    'ms',
    '<= 2 ms on a quiet machine',
    undefined,
    'suite peers',
    'judge on a quiet machine only',
  );
  const windows = rows.filter((r) => /^peers_mpbus_router_window\d+$/.test(r.transport));
  const best = windows.reduce<BenchRow | undefined>((a, r) => ((r.throughputMsgsPerSec ?? 0) > (a?.throughputMsgsPerSec ?? 0) ? r : a), undefined);
  for (const w of [1024, 10000]) {
    add(
      `router, ${w.toLocaleString('en-US')} in flight / best window`,
      ratio(get(`peers_mpbus_router_window${w}`)?.throughputMsgsPerSec, best?.throughputMsgsPerSec),
      'ratio',
      '>= 0.8, memory bounded',
      (v) => v >= 0.8,
      'suite peers',
      best ? `best: ${best.transport.replace('peers_mpbus_router_', '')}` : undefined,
    );
  }
  // The same caller run with a larger young generation, against the best window of the default one.
  add(
    `router, 10,000 in flight / best window, caller with node ${YOUNG_FLAGS.join(' ')}`,
    ratio(get('peers_mpbus_router_young_window10000')?.throughputMsgsPerSec, best?.throughputMsgsPerSec),
    'ratio',
    '(a setting of the application: docs/actors.md)',
    undefined,
    'suite peers',
  );
  // Beside a busy process (no target in the issue: how mpbus keeps its lead when the machine also runs other work).
  add(
    'beside a busy process: router, 128 in flight / child_process.fork RPC',
    ratio(get('peers_mpbus_router_busy_window128')?.throughputMsgsPerSec, get('peers_cp_fork_busy_window128')?.throughputMsgsPerSec),
    'x',
    '(no target)',
    undefined,
    'suite peers',
  );
  add(
    'beside a busy process: sequential ask p50, child_process.fork RPC / direct',
    ratio(get('peers_cp_fork_busy_seq')?.rttP50Us, get('peers_mpbus_direct_busy_seq')?.rttP50Us),
    'x',
    '(no target)',
    undefined,
    'suite peers',
  );
  const worst = (p: number[] | undefined): number | undefined => (p && p.length > 0 ? Math.max(...p) : undefined);
  add('waiting worker CPU, no traffic', worst(waiting?.quiet.workerPercent), '%', '< 1%', (v) => v < 1, 'suite peers');
  add(
    `waiting worker CPU, ${waiting?.busyProcesses ?? 'N'} busy processes alongside`,
    worst(waiting?.withBusy.workerPercent),
    '%',
    '< 1% (no spinning)',
    (v) => v < 1,
    'suite peers',
  );
  return figures;
}
