/**
 * Decoding one small actor envelope where the mailbox pump finds it (docs/benchmarks.md, "Third
 * pass"): the flagship's 64-byte job ask and its reply, msgpack-encoded, decoded `count` times
 * in place, far into a large buffer as the inbox pool is (`inplace`), copied to the start of a
 * scratch buffer first (`copy`, what the pump does for messages under 140 bytes), or from a view
 * that starts at the message (`view`: no copy, but one view per pool buffer). msgpackr
 * picks its small-source path by the range's end offset, so the two differ. `square` is the
 * peers suite's ask (a 64-byte `{ n, pad }` whose 50-byte string msgpackr extracts natively),
 * and `bytes` reads an ask as a worker's mailbox transport now does (docs/benchmarks.md,
 * "Thirty-eighth pass"): all but its payload from its bytes (AskBytes), the payload alone
 * decoded by msgpackr from the view. Under callgrind:
 *
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null node --single-threaded --predictable dist/bench/profile-decode.js ask inplace 20000
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null node --single-threaded --predictable dist/bench/profile-decode.js ask inplace 60000
 *   # instructions per decode = (I refs of the second - I refs of the first) / 40000
 *
 * With `alloc` last, it also prints the bytes allocated per decode (V8's sampling heap profiler).
 *
 * Run (after tsc): node dist/bench/profile-decode.js [ask|square|reply] [inplace|copy|view|bytes] [count=200000] [alloc]
 */
import { Packr, Unpackr } from 'msgpackr';
import { AskBytes } from '../src/actors/ask-bytes.js';
import { squareValue } from './peers/square.js';
import { sampledAllocations } from './allocations.js';

const which = process.argv[2] === 'reply' || process.argv[2] === 'square' ? process.argv[2] : 'ask';
const how = (['view', 'copy', 'bytes'] as const).find((h) => h === process.argv[3]) ?? 'inplace';
const count = Number(process.argv[4] ?? 200_000);
const measureAllocation = process.argv[5] === 'alloc';
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, copyBuffers: true });
const payload = new Uint8Array(64).map((_, i) => i);
const deadline = 1_733_140_000_000.5;
const message =
  which === 'ask'
    ? [1, 'job', { id: 12345, key: 'k', payload }, 123456, '$reply.0.12345.1', null, deadline, null]
    : which === 'square'
      ? [1, 'square', squareValue(), 123456, '$reply.0.12345.1', null, deadline]
      : [2, 'job', { id: 12345, worker: 'worker-1', pid: 23456, checksum: 3456789012 }, 123456, null, null, null, null];
if (how === 'bytes' && which !== 'square')
  throw new Error("'bytes' reads the square ask (the ask here has a trace field, which AskBytes leaves to the whole decode)");
const pool = Buffer.alloc(1 << 20);
const at = 100_000;
const packed = packr.pack(message);
packed.copy(pool, at);
const view = pool.subarray(at, at + 140);
const scratch = Buffer.alloc(140);
const range = { start: 0, end: 0 };
const askBytes = new AskBytes();

/** Decodes the message `n` times; answers the sum of the ids read (a check, and nothing optimised away). */
function decodeAll(n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    let value: unknown[];
    if (how === 'bytes') {
      if (!askBytes.read(pool, at, packed.length)) throw new Error('the ask was not read from its bytes');
      range.start = askBytes.payloadAt;
      range.end = askBytes.payloadEnd;
      sum += (unpackr.unpack(view, range) as { n: number }).n > 0 ? askBytes.id! : 0;
      continue;
    }
    if (how === 'inplace') {
      range.start = at;
      range.end = at + packed.length;
      value = unpackr.unpack(pool, range) as unknown[];
    } else if (how === 'copy') {
      pool.copy(scratch, 0, at, at + packed.length);
      range.start = 0;
      range.end = packed.length;
      value = unpackr.unpack(scratch, range) as unknown[];
    } else {
      range.start = 0;
      range.end = packed.length;
      value = unpackr.unpack(view, range) as unknown[];
    }
    sum += value[3] as number;
  }
  return sum;
}

const t0 = performance.now();
const sum = decodeAll(count);
const ns = ((performance.now() - t0) * 1e6) / count;
// Allocation, when asked: as many decodes again under the sampling heap profiler (not under callgrind: they add instructions).
const allocated = measureAllocation ? (await sampledAllocations(() => decodeAll(count))).total : undefined;
console.log(
  JSON.stringify({
    which,
    how,
    bytes: packed.length,
    count,
    nsPerDecode: Math.round(ns),
    ...(allocated === undefined ? {} : { bytesAllocatedPerDecode: Math.round(allocated / count) }),
    check: sum === count * 123456,
  }),
);
