/**
 * The layout of a group's counters file (`<runtime dir>/mpbus_counters`) and the arithmetic on
 * it that writers and readers share: slot and row offsets, field indexes, the ask-latency
 * histogram's buckets and quantiles. Pure: no I/O, no DPDK. native/counters.h mirrors it for
 * the telemetry thread.
 *
 * The file is a sparse array of {@link SLOTS} slots, one per lcore ID (the key of the group's
 * process table). A slot is {@link ROWS} rows of {@link ROW_BYTES}: row 0 describes the process,
 * the other rows one actor, mailbox or ask target each. Every number is a little-endian float64
 * (exact integers up to 2^53), so JavaScript writes them with plain `Float64Array` increments.
 */

/** Slots in the file: one per lcore ID (DPDK's RTE_MAX_LCORE in Debian's build). */
export const SLOTS = 128;
/** Rows per slot, row 0 included. */
export const ROWS = 512;
/** Bytes per row: {@link ROW_FIELDS} float64 values. */
export const ROW_BYTES = 1024;
export const ROW_FIELDS = ROW_BYTES / 8;
/** Bytes per slot (a multiple of the page size, so each process maps its own slot). */
export const SLOT_BYTES = ROWS * ROW_BYTES;
/** Size of the whole (sparse) file. */
export const FILE_BYTES = SLOTS * SLOT_BYTES;
/** The file's name in the group's runtime dir. */
export const COUNTERS_FILE = 'mpbus_counters';
/** Row 0, field {@link P.magic}: layout version 1 ("MPC" 1). */
export const LAYOUT_MAGIC = 0x4d504301;

/** Where a row's name is: a length byte then up to 63 UTF-8 bytes. */
export const NAME_OFFSET = 128;
export const NAME_MAX_BYTES = 63;

/** Fields of row 0 (the process). */
export const P = {
  magic: 0,
  pid: 1,
  /** {@link ProcState} */
  state: 2,
  /** 0 primary, 1 secondary */
  role: 3,
  lcore: 4,
  /** When the process joined (ms since the epoch). */
  startedAt: 5,
  /** When the gauges below were last written (ms since the epoch). */
  sampledAt: 6,
  cpuUserUs: 7,
  cpuSystemUs: 8,
  rssBytes: 9,
  heapUsedBytes: 10,
  /** Rows 1..rowsHigh-1 may be in use. */
  rowsHigh: 11,
  /** Dead letters of the process's actor systems (all reasons, all actors). */
  deadLetters: 12,
  /** Names not counted because the slot's rows were all taken. */
  rowsDropped: 13,
  /** /proc/<pid>/stat field 22: tells a reused pid from this process. */
  procStart: 14,
} as const;

export const ProcState = { free: 0, alive: 1, left: 2 } as const;

/** Fields of rows 1.. (an actor, a mailbox or an ask target). Field 0 is the row's generation: 0 while free. */
export const R = {
  generation: 0,
  /** {@link RowKind} */
  kind: 1,
  received: 2,
  processed: 3,
  failed: 4,
  deadLettered: 5,
  restarts: 6,
  /** Messages waiting (a gauge, refreshed with the process's). */
  depth: 7,
  /** Mailbox capacity (mailbox rows). */
  capacity: 8,
  /** Asks answered or failed (the histogram holds the timed ones: counters.ts `ASK_TIMED_FIRST`). */
  asks: 9,
  /** Sum of the timed asks' latencies, ms. */
  askLatencySumMs: 10,
  /** Asks that failed or timed out. */
  askFailed: 11,
  askTimeouts: 12,
  /** First histogram bucket. */
  histogram: 24,
} as const;

/** What a row counts. */
export const RowKind = { actor: 1, mailbox: 2, asks: 3 } as const;
export type RowKindName = keyof typeof RowKind;

/**
 * The ask-latency histogram: four buckets per power of two of microseconds (a bucket spans at
 * most 25% of its value), bucket 0 below 1 µs, the last one everything from about a minute on.
 */
export const BUCKETS = ROW_FIELDS - R.histogram;
const SUB = 4;

/** The histogram bucket of a latency in ms. */
export function bucketOf(ms: number): number {
  const us = ms * 1000;
  if (!(us >= 1)) return 0;
  if (us >= 2 ** 28) return BUCKETS - 1;
  // in quarter microseconds: the two bits under the leading one are the sub-bucket
  const v = (us * 4) | 0;
  const top = 31 - Math.clz32(v);
  return Math.min(BUCKETS - 1, 1 + (top - 2) * SUB + ((v >>> (top - 2)) & 3));
}

/** The upper bound (ms) of a bucket's latencies. */
export function bucketUpperMs(bucket: number): number {
  if (bucket <= 0) return 0.001;
  if (bucket >= BUCKETS - 1) return Infinity;
  const e = Math.floor((bucket - 1) / SUB);
  const sub = (bucket - 1) % SUB;
  return (2 ** e * (1 + (sub + 1) / SUB)) / 1000;
}

/**
 * The `q` quantile (0..1) of a histogram, as its bucket's upper bound in ms (at most 25% above
 * the true value); undefined without samples.
 */
export function quantileMs(buckets: ArrayLike<number>, q: number): number | undefined {
  let total = 0;
  for (let i = 0; i < buckets.length; i++) total += buckets[i]!;
  if (total === 0) return undefined;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i]!;
    if (seen >= rank) return bucketUpperMs(i);
  }
  return bucketUpperMs(buckets.length - 1);
}

/** Byte offset of a row in the file. */
export function rowOffset(slot: number, row: number): number {
  return slot * SLOT_BYTES + row * ROW_BYTES;
}
