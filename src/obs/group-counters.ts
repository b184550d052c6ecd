/**
 * A group's counters read from outside: its counters file (src/runtime/counters-layout.ts) read
 * with plain `pread`s, no EAL, no lcore, no message to any process, nothing written, so a
 * reader never disturbs the group (docs/observability.md). Every value another process wrote
 * is checked before use. Used by `mpbus ps`, `mpbus top`, the Prometheus exposition and
 * `system.groupCounters()`.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { GroupFiles, pidAlive } from '../runtime/group.js';
import {
  BUCKETS,
  COUNTERS_FILE,
  LAYOUT_MAGIC,
  NAME_MAX_BYTES,
  NAME_OFFSET,
  P,
  ProcState,
  quantileMs,
  R,
  ROW_BYTES,
  ROW_FIELDS,
  ROWS,
  RowKind,
  SLOT_BYTES,
  SLOTS,
  type RowKindName,
} from '../runtime/counters-layout.js';

/** One row of a process: an actor, a mailbox or the asks it made to one name. */
export interface RowCounters {
  name: string;
  kind: RowKindName;
  received: number;
  processed: number;
  failed: number;
  deadLettered: number;
  restarts: number;
  depth: number;
  capacity: number;
  /** Asks answered (by this name, asked from this process). */
  asks: number;
  askLatencySumMs: number;
  askFailed: number;
  askTimeouts: number;
  /** Ask latency histogram: counts per bucket (bounds: `bucketUpperMs`). */
  histogram: number[];
}

/** The ask counts of a row (or summed over rows): what {@link actorViews} adds up per actor. */
export type AskTotals = Pick<RowCounters, 'asks' | 'askFailed' | 'askTimeouts' | 'askLatencySumMs' | 'histogram'>;

/** Ask totals of nothing yet. */
export function emptyAskTotals(): AskTotals {
  return { asks: 0, askFailed: 0, askTimeouts: 0, askLatencySumMs: 0, histogram: new Array<number>(BUCKETS).fill(0) };
}

/** Adds `b`'s ask counts to `a`. */
export function addAskTotals(a: AskTotals, b: AskTotals): void {
  a.asks += b.asks;
  a.askFailed += b.askFailed;
  a.askTimeouts += b.askTimeouts;
  a.askLatencySumMs += b.askLatencySumMs;
  b.histogram.forEach((n, i) => (a.histogram[i]! += n));
}

/** One process of the group, as its slot says. */
export interface ProcessCounters {
  pid: number;
  role: 'primary' | 'secondary';
  lcore: number;
  /** 'alive', or 'dead' (killed: its slot was not cleared; shown until its lcore is taken again). */
  state: 'alive' | 'dead';
  /** What it runs (`node dir/script.js`). */
  command: string;
  startedAt: number;
  uptimeMs: number;
  /** When its gauges (depths, CPU, RSS) were written. */
  sampledAt: number;
  cpuUserUs: number;
  cpuSystemUs: number;
  rssBytes: number;
  heapUsedBytes: number;
  deadLetters: number;
  /** Names it could not count (its slot's rows were all taken). */
  rowsDropped: number;
  rows: RowCounters[];
}

/** Everything a group's counters file holds at one instant. */
export interface GroupCounters {
  prefix: string;
  /** When it was read (ms since the epoch). */
  readAt: number;
  processes: ProcessCounters[];
}

/** One actor of the group, merged from its process's row and the asks every process made to it. */
export interface ActorView {
  name: string;
  pid: number;
  received: number;
  processed: number;
  failed: number;
  deadLettered: number;
  restarts: number;
  depth: number;
  asks: number;
  askFailed: number;
  askTimeouts: number;
  /** Sum of the timed asks' latencies (the histogram's samples), ms. */
  askLatencySumMs: number;
  /** Ask latency quantiles (ms, upper bound of a bucket at most 25% wide); undefined before any ask. */
  p50Ms: number | undefined;
  p99Ms: number | undefined;
  histogram: number[];
}

const decoder = new TextDecoder('utf-8', { fatal: false });
const kindNames = new Map<number, RowKindName>(Object.entries(RowKind).map(([k, v]) => [v, k as RowKindName]));

/** The path of a group's counters file. */
export function countersPath(prefix: string): string {
  return join(new GroupFiles(prefix).runtimeDir, COUNTERS_FILE);
}

/**
 * Reads a group's counters; `undefined` when the group has no counters file (not an mpbus
 * group, or gone). Processes that left are not listed; killed ones are, as 'dead'.
 */
export function readGroupCounters(prefix: string): GroupCounters | undefined {
  let fd: number;
  try {
    fd = openSync(countersPath(prefix), 'r');
  } catch {
    return undefined;
  }
  try {
    const processes: ProcessCounters[] = [];
    const head = Buffer.alloc(ROW_BYTES);
    for (let slot = 0; slot < SLOTS; slot++) {
      if (readSync(fd, head, 0, ROW_BYTES, slot * SLOT_BYTES) !== ROW_BYTES) break;
      const p = new Float64Array(head.buffer, head.byteOffset, ROW_FIELDS);
      if (p[P.magic] !== LAYOUT_MAGIC || p[P.state] !== ProcState.alive) continue;
      const high = Math.min(ROWS, Math.max(1, Math.floor(count(p[P.rowsHigh]))));
      const body = Buffer.alloc((high - 1) * ROW_BYTES);
      const got = high > 1 ? readSync(fd, body, 0, body.length, slot * SLOT_BYTES + ROW_BYTES) : 0;
      processes.push(processOf(slot, Buffer.from(head), body.subarray(0, got - (got % ROW_BYTES))));
    }
    return { prefix, readAt: Date.now(), processes };
  } finally {
    closeSync(fd);
  }
}

function processOf(slot: number, head: Buffer, body: Buffer): ProcessCounters {
  const p = new Float64Array(head.buffer, head.byteOffset, ROW_FIELDS);
  const pid = count(p[P.pid]);
  const startedAt = count(p[P.startedAt]);
  const rows: RowCounters[] = [];
  for (let at = 0; at + ROW_BYTES <= body.length; at += ROW_BYTES) {
    const row = rowOf(body.subarray(at, at + ROW_BYTES));
    if (row) rows.push(row);
  }
  return {
    pid,
    role: p[P.role] === 0 ? 'primary' : 'secondary',
    lcore: slot,
    state: sameProcess(pid, count(p[P.procStart])) ? 'alive' : 'dead',
    command: nameOf(head),
    startedAt,
    uptimeMs: startedAt > 0 ? Math.max(0, Date.now() - startedAt) : 0,
    sampledAt: count(p[P.sampledAt]),
    cpuUserUs: count(p[P.cpuUserUs]),
    cpuSystemUs: count(p[P.cpuSystemUs]),
    rssBytes: count(p[P.rssBytes]),
    heapUsedBytes: count(p[P.heapUsedBytes]),
    deadLetters: count(p[P.deadLetters]),
    rowsDropped: count(p[P.rowsDropped]),
    rows,
  };
}

function rowOf(bytes: Buffer): RowCounters | undefined {
  const copy = new Float64Array(ROW_FIELDS);
  new Uint8Array(copy.buffer).set(bytes);
  const kind = kindNames.get(copy[R.kind]!);
  if (copy[R.generation] === 0 || kind === undefined) return undefined;
  const name = nameOf(bytes);
  if (name === '') return undefined;
  const histogram: number[] = [];
  for (let i = 0; i < BUCKETS; i++) histogram.push(count(copy[R.histogram + i]));
  return {
    name,
    kind,
    received: count(copy[R.received]),
    processed: count(copy[R.processed]),
    failed: count(copy[R.failed]),
    deadLettered: count(copy[R.deadLettered]),
    restarts: count(copy[R.restarts]),
    depth: count(copy[R.depth]),
    capacity: count(copy[R.capacity]),
    asks: count(copy[R.asks]),
    askLatencySumMs: count(copy[R.askLatencySumMs]),
    askFailed: count(copy[R.askFailed]),
    askTimeouts: count(copy[R.askTimeouts]),
    histogram,
  };
}

/** The name of a row (length byte, UTF-8): '' when the length is out of range. */
function nameOf(row: Uint8Array): string {
  const length = row[NAME_OFFSET]!;
  if (length === 0 || length > NAME_MAX_BYTES) return '';
  return decoder.decode(row.subarray(NAME_OFFSET + 1, NAME_OFFSET + 1 + length));
}

/** A counter as written by another process: a finite non-negative number, else 0. */
function count(value: number | undefined): number {
  return value !== undefined && Number.isFinite(value) && value >= 0 ? value : 0;
}

/** True when `pid` lives and is the process that wrote the slot (not a reused pid). */
function sameProcess(pid: number, procStart: number): boolean {
  if (pid <= 0 || !pidAlive(pid)) return false;
  if (procStart === 0) return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]) === procStart;
  } catch {
    return false;
  }
}

/** What the live processes of `group` (and `departed` askers) counted of their asks, by name asked. */
function askTotalsByName(group: GroupCounters, departed?: ReadonlyMap<string, AskTotals>): Map<string, AskTotals> {
  const asked = new Map<string, AskTotals>();
  const totalsOf = (name: string): AskTotals => {
    let a = asked.get(name);
    if (a === undefined) asked.set(name, (a = emptyAskTotals()));
    return a;
  };
  for (const p of group.processes) if (p.state === 'alive') for (const row of p.rows) if (row.kind === 'asks') addAskTotals(totalsOf(row.name), row);
  if (departed) for (const [name, totals] of departed) addAskTotals(totalsOf(name), totals);
  return asked;
}

/** The ask figures of a view: counts, the latency sum and histogram, and its quantiles. */
function askFigures(a: AskTotals | undefined): Pick<ActorView, 'asks' | 'askFailed' | 'askTimeouts' | 'askLatencySumMs' | 'p50Ms' | 'p99Ms' | 'histogram'> {
  const histogram = a?.histogram ?? new Array<number>(BUCKETS).fill(0);
  return {
    asks: a?.asks ?? 0,
    askFailed: a?.askFailed ?? 0,
    askTimeouts: a?.askTimeouts ?? 0,
    askLatencySumMs: a?.askLatencySumMs ?? 0,
    p50Ms: quantileMs(histogram, 0.5),
    p99Ms: quantileMs(histogram, 0.99),
    histogram,
  };
}

/** Asks of a group to a name no actor of the group holds: an actor on another host of its cluster. */
export type RemoteAskView = Pick<ActorView, 'name' | 'asks' | 'askFailed' | 'askTimeouts' | 'askLatencySumMs' | 'p50Ms' | 'p99Ms' | 'histogram'>;

/**
 * The group's actors and what it asked elsewhere, from one pass over its asks: each live actor
 * row with the asks every live process made to its name merged in (their histograms summed, so
 * p50/p99 are the group's), and the names no mailbox of the group holds that its processes ask
 * (with a cluster: actors on other hosts, whose own counters are on their hosts). `departed`: what
 * askers that are gone had counted, by name (see `DepartedAsks`). A name that went away is no
 * longer asked (its rows are freed) and leaves `remote`.
 */
export function groupAskViews(group: GroupCounters, departed?: ReadonlyMap<string, AskTotals>): { actors: ActorView[]; remote: RemoteAskView[] } {
  const asked = askTotalsByName(group, departed);
  const askedNow = new Set<string>();
  const actors: ActorView[] = [];
  // Names with a mailbox in the group: its actors', and its routers' (a router asked from another
  // process relays the asks; its process counts them under the workers that answer them).
  const local = new Set<string>();
  for (const p of group.processes) {
    if (p.state !== 'alive') continue;
    for (const row of p.rows) {
      if (row.kind === 'asks') askedNow.add(row.name);
      else local.add(row.name);
      if (row.kind !== 'actor') continue;
      actors.push({
        name: row.name,
        pid: p.pid,
        received: row.received,
        processed: row.processed,
        failed: row.failed,
        deadLettered: row.deadLettered,
        restarts: row.restarts,
        depth: row.depth,
        ...askFigures(asked.get(row.name)),
      });
    }
  }
  const remote: RemoteAskView[] = [];
  for (const [name, totals] of asked) if (!local.has(name) && askedNow.has(name)) remote.push({ name, ...askFigures(totals) });
  const byName = (x: { name: string }, y: { name: string }): number => x.name.localeCompare(y.name);
  return { actors: actors.sort(byName), remote: remote.sort(byName) };
}

/** The group's actors (see {@link groupAskViews}). */
export function actorViews(group: GroupCounters, departed?: ReadonlyMap<string, AskTotals>): ActorView[] {
  return groupAskViews(group, departed).actors;
}

/** What the group's processes asked of names none of its actors holds (see {@link groupAskViews}). */
export function remoteAskViews(group: GroupCounters, departed?: ReadonlyMap<string, AskTotals>): RemoteAskView[] {
  return groupAskViews(group, departed).remote;
}
