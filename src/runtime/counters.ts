/**
 * This process's counters, where every member of its group and any tool can read them without
 * asking it: its slot of the group's counters file (layout: counters-layout.ts), one row per
 * actor, mailbox or ask target, row 0 for the process itself (pid, role, lcore, uptime, CPU,
 * RSS). Writers get a row as a `Float64Array` and count with plain increments; gauges (depths,
 * CPU, RSS) are refreshed by one timer every {@link SAMPLE_INTERVAL_MS}. Without a runtime (or
 * after it closed) the same rows live in private memory, so counting code never branches.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { logger } from '../log.js';
import { countersNative } from '../native/counters.js';
import {
  COUNTERS_FILE,
  FILE_BYTES,
  LAYOUT_MAGIC,
  NAME_MAX_BYTES,
  NAME_OFFSET,
  P,
  ProcState,
  R,
  ROW_BYTES,
  ROW_FIELDS,
  ROWS,
  RowKind,
  SLOT_BYTES,
  bucketOf,
  type RowKindName,
} from './counters-layout.js';

/** How often gauges (depths, CPU, RSS) are written. */
export const SAMPLE_INTERVAL_MS = 500;

/** Something that refreshes gauges in its rows (an actor system writing its actors' depths). */
export type GaugeSource = () => void;

const encoder = new TextEncoder();

/** The rows of one process's slot, shared (in the group's file) or private. */
export class CounterTable {
  /** Row 0: the process. */
  readonly process: Float64Array;
  private readonly bytes: Uint8Array;
  private readonly byName = new Map<string, Float64Array>();
  private readonly free: number[] = [];
  private next = 1;
  private generation = 0;
  private readonly sources = new Set<GaugeSource>();
  private timer: NodeJS.Timeout | undefined;
  /** A row for names that found the slot full: counted, not shown. */
  private overflow: Float64Array | undefined;

  constructor(
    private readonly buffer: ArrayBuffer,
    /** True when the rows are in the group's file. */
    readonly shared: boolean,
  ) {
    this.bytes = new Uint8Array(buffer);
    this.process = new Float64Array(buffer, 0, ROW_FIELDS);
  }

  /**
   * The row counting `name` of `kind` (made on first use). When every row is taken, a private
   * row is returned (and the process's `rowsDropped` counts it), so callers never check.
   */
  row(kind: RowKindName, name: string): Float64Array {
    const key = `${RowKind[kind]}:${name}`;
    const existing = this.byName.get(key);
    if (existing) return existing;
    const index = this.free.pop() ?? (this.next < ROWS ? this.next++ : -1);
    if (index < 0) {
      this.process[P.rowsDropped]!++;
      return (this.overflow ??= new Float64Array(ROW_FIELDS));
    }
    const row = new Float64Array(this.buffer, index * ROW_BYTES, ROW_FIELDS);
    row.fill(0);
    row[R.kind] = RowKind[kind];
    const name8 = encoder.encode(name).subarray(0, NAME_MAX_BYTES);
    const at = index * ROW_BYTES + NAME_OFFSET;
    this.bytes[at] = name8.length;
    this.bytes.set(name8, at + 1);
    // Last: readers skip a row whose generation is 0 (free or being written).
    row[R.generation] = ++this.generation;
    this.byName.set(key, row);
    if (index + 1 > this.process[P.rowsHigh]!) this.process[P.rowsHigh] = index + 1;
    return row;
  }

  /** Frees `name`'s row of `kind` (an actor stopped), if it is still `row`. */
  release(kind: RowKindName, name: string, row: Float64Array): void {
    const key = `${RowKind[kind]}:${name}`;
    if (this.byName.get(key) !== row) return;
    this.byName.delete(key);
    row[R.generation] = 0;
    this.free.push(row.byteOffset / ROW_BYTES);
  }

  /** Registers a gauge source, called on every sample; returns its removal. */
  addGauges(source: GaugeSource): () => void {
    this.sources.add(source);
    return () => this.sources.delete(source);
  }

  /** Writes the process's gauges and calls every gauge source now (also done every {@link SAMPLE_INTERVAL_MS}). */
  sample(): void {
    const p = this.process;
    const cpu = process.cpuUsage();
    p[P.cpuUserUs] = cpu.user;
    p[P.cpuSystemUs] = cpu.system;
    // one read of /proc/self/stat for both (memoryUsage.rss() would read it a second time)
    const memory = process.memoryUsage();
    p[P.rssBytes] = memory.rss;
    p[P.heapUsedBytes] = memory.heapUsed;
    for (const source of this.sources) {
      try {
        source();
      } catch {
        // a source whose objects are closing: its gauges keep their last values
      }
    }
    p[P.sampledAt] = Date.now();
  }

  /** Starts the sampling timer (it never keeps the process alive). */
  startSampling(): void {
    this.sample();
    this.timer ??= setInterval(() => this.sample(), SAMPLE_INTERVAL_MS);
    this.timer.unref();
  }

  /** Marks the process gone and stops sampling; the rows stay readable here. */
  retire(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
    this.process[P.state] = ProcState.left;
    if (this.shared) countersNative().countersRetire(this.buffer);
  }
}

/**
 * Every ask to a name is timed up to this many, then one in {@link ASK_SAMPLE_EVERY}, which
 * counts for the asks it stands for (added that many times to its bucket and to the sum): a
 * clock read costs more than the rest of the counting (0.03-0.2 µs, against ~1 µs for a whole
 * ask within a process), and a sample weighted so is the whole. Counted once each, the first
 * asks (often the slow ones of a warm-up) weighed 32 times the later ones in p99.
 */
export const ASK_TIMED_FIRST = 256;
export const ASK_SAMPLE_EVERY = 32;

/**
 * Counts one ask answered (or failed, or timed out) in an `asks` row; `startedAt`
 * (performance.now() when it was made) is read only for the asks that are timed.
 */
export function recordAsk(row: Float64Array, startedAt: number, failed: boolean): void {
  const n = row[R.asks]!++;
  if (failed) row[R.askFailed]!++;
  let weight = 1;
  if (n >= ASK_TIMED_FIRST) {
    if (n % ASK_SAMPLE_EVERY !== 0) return;
    weight = ASK_SAMPLE_EVERY;
  }
  const ms = performance.now() - startedAt;
  row[R.askLatencySumMs]! += ms * weight;
  row[R.histogram + bucketOf(ms)]! += weight;
}

let current: CounterTable | undefined;

/** This process's counter table: the group's shared slot while a runtime runs, else private rows. */
export function processCounters(): CounterTable {
  if (!current) {
    current = new CounterTable(new ArrayBuffer(SLOT_BYTES), false);
    writeIdentity(current, -1, 'primary');
  }
  return current;
}

/**
 * Maps this process's slot (its lcore ID) of the group's counters file and makes it the
 * process's table. Called by the runtime once the process's lcore is its own. Rows of an earlier
 * private table are not carried over (no actor system runs before a runtime it uses).
 */
export function attachCounters(runtimeDir: string, lcore: number, role: 'primary' | 'secondary'): CounterTable {
  const buffer = countersNative().countersMapSlot(join(runtimeDir, COUNTERS_FILE), FILE_BYTES, lcore * SLOT_BYTES, SLOT_BYTES);
  const table = new CounterTable(buffer, true);
  // An earlier holder of this lcore (it died) left its rows: readers see only rows below
  // rowsHigh, and each row is cleared when it is taken, so clearing row 0 forgets them all.
  table.process.fill(0);
  writeIdentity(table, lcore, role);
  current = table;
  table.startSampling();
  return table;
}

/** The process leaves its group: its slot says so and the table's memory becomes private. */
export function retireCounters(): void {
  if (!current?.shared) return;
  try {
    current.retire();
  } catch (err) {
    // Leaving must not fail over counters: the slot is marked left first, readers skip it.
    logger('runtime').warn({ err }, 'cannot retire the counters mapping');
  }
}

function writeIdentity(table: CounterTable, lcore: number, role: 'primary' | 'secondary'): void {
  const p = table.process;
  p[P.pid] = process.pid;
  p[P.role] = role === 'primary' ? 0 : 1;
  p[P.lcore] = lcore;
  p[P.startedAt] = Date.now() - process.uptime() * 1000;
  p[P.procStart] = ownStartTime();
  p[P.rowsHigh] = 1;
  const title = encoder.encode(processTitle()).subarray(0, NAME_MAX_BYTES);
  const bytes = new Uint8Array(p.buffer, p.byteOffset, ROW_BYTES);
  bytes[NAME_OFFSET] = title.length;
  bytes.set(title, NAME_OFFSET + 1);
  p[P.state] = ProcState.alive;
  // Last: a reader takes a slot without the magic for an empty one.
  p[P.magic] = LAYOUT_MAGIC;
}

/** What `ps` shows as the process's command: the script it runs. */
function processTitle(): string {
  const script = process.argv[1];
  return script ? `node ${script.split('/').slice(-2).join('/')}` : process.title;
}

/** /proc/self/stat field 22 (start time in clock ticks since boot), 0 when unknown. */
function ownStartTime(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // The command (field 2) may hold spaces and parentheses: fields are counted after its last ')'.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]) || 0;
  } catch {
    return 0;
  }
}
