/**
 * What decoding one small actor message costs where the mailbox receive loop decodes it
 * (src/bus/mailbox-pump.ts), in one process with no DPDK: an ask and a reply of the flagship's
 * job, as the mailbox transport packs them, decoded with the mailbox layer's msgpackr options
 * either in place from a large buffer at a far offset (`pool`: what the receive loop did for
 * every message) or from a private copy at offset 0 (`copy`: what it does now for messages of
 * up to 139 bytes). Instructions per decode, repeatable under load (docs/benchmarks.md, "Third
 * pass: the caller"):
 *
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null node dist/bench/profile-small-decode.js reply pool 100000
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null node dist/bench/profile-small-decode.js reply pool 300000
 *   # instructions per decode = (I refs of the second - I refs of the first) / 200000; the same with `copy`, and `ask`
 *
 * Run (after tsc): node dist/bench/profile-small-decode.js <ask|reply> <pool|copy> [decodes=1000000]
 */
import { Packr, Unpackr } from 'msgpackr';

const messages = {
  reply: [2, 'job', { id: 12345, worker: 'worker-1', pid: 4321, checksum: 3735928559 }, 777, null, null, null, null],
  ask: [1, 'job', { id: 12345, key: 'k123', payload: new Uint8Array(64) }, 777, '$reply.0.1234.1', null, 1.8e12 + 0.5, null],
};
const [which = 'reply', mode = 'copy', count = '1000000'] = process.argv.slice(2);
const message = messages[which as keyof typeof messages];
if (message === undefined || (mode !== 'pool' && mode !== 'copy')) throw new Error('usage: profile-small-decode.js <ask|reply> <pool|copy> [decodes]');
const decodes = Number(count);
// The mailbox layer's codecs (src/bus/mailbox-port.ts).
const bytes = new Packr({ useRecords: false }).pack(message);
const unpackr = new Unpackr({ useRecords: false, copyBuffers: true });
const pool = Buffer.alloc(1 << 20);
const at = 50_000;
bytes.copy(pool, at);
const inPool = { start: at, end: at + bytes.length };
const small = Buffer.alloc(139);
const inSmall = { start: 0, end: bytes.length };
let sink = 0;
const t0 = performance.now();
if (mode === 'pool') for (let i = 0; i < decodes; i++) sink ^= (unpackr.unpack(pool, inPool) as number[])[3]!;
else
  for (let i = 0; i < decodes; i++) {
    pool.copy(small, 0, at, at + bytes.length);
    sink ^= (unpackr.unpack(small, inSmall) as number[])[3]!;
  }
console.log(`${which} (${bytes.length} B) ${mode}: ${(((performance.now() - t0) * 1e6) / decodes).toFixed(0)} ns per decode (${sink})`);
