/**
 * What one actor envelope costs to encode and decode, in one process with no DPDK: the wire
 * form of `src/actors/envelope-codec.ts` (payload + binary trailer) against the earlier one (the
 * eight fields as one msgpack array, checked and made into an envelope on decode). Batches of
 * 256 envelopes, half asks (`square`, a 64-byte job, id, replyTo, deadline), half replies, packed
 * one behind the other into a staging buffer as the mailbox transport does, then decoded.
 *
 *   node dist/bench/profile-envelope-codec.js [trailer|array] [envelopes]
 *   # instructions per envelope (encode + decode), repeatable under load: run under
 *   # valgrind --tool=callgrind --callgrind-out-file=/dev/null with 51200 and 153600 envelopes,
 *   # (I refs of the second - I refs of the first) / 102,400
 */
import { Packr, Unpackr, REUSE_BUFFER_MODE } from 'msgpackr';
import { encodeValue } from '../src/bus/value-codec.js';
import { EnvelopeReader, packEnvelope } from '../src/actors/envelope-codec.js';
import { makeEnvelope, payloadRoot, type Envelope, type EnvelopeKind } from '../src/actors/transport.js';

const form = process.argv[2] ?? 'trailer';
const total = Number(process.argv[3] ?? 200_000);
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, copyBuffers: true });
const bytes = Buffer.allocUnsafe(1 << 16);
const bounds = new Uint32Array(512);
const pad = 'x'.repeat(44);
const envelopes: Envelope[] = [];
for (let i = 0; i < 256; i++) {
  envelopes.push(i % 2 === 1 ? makeEnvelope(1, 'square', { n: i, pad }, 1_000_000 + i, '$reply.0.123456.1', undefined, Date.now() + 5000) : makeEnvelope(2, '', i * i, 1_000_000 + i));
}

// the earlier form
const wire: unknown[] = [0, '', null, null, null, null, null, null];
function packArray(e: Envelope): Buffer & { start: number; end: number } {
  wire[0] = e.kind;
  wire[1] = e.action;
  wire[2] = encodeValue(e.payload, payloadRoot[e.kind]);
  wire[3] = e.id ?? null;
  wire[4] = e.replyTo ?? null;
  wire[5] = e.sender ?? null;
  wire[6] = e.deadline ?? null;
  wire[7] = e.trace ?? null;
  return packr.pack(wire, REUSE_BUFFER_MODE) as Buffer & { start: number; end: number };
}
function readArray(start: number, end: number): Envelope {
  const w = unpackr.unpack(bytes, { start, end } as never) as unknown[];
  const kind = Array.isArray(w) ? w[0] : undefined;
  if ((kind !== 0 && kind !== 1 && kind !== 2 && kind !== 3) || typeof w[1] !== 'string') throw new Error('not an envelope');
  return makeEnvelope(
    kind as EnvelopeKind,
    w[1],
    w[2],
    typeof w[3] === 'number' ? w[3] : undefined,
    typeof w[4] === 'string' ? w[4] : undefined,
    typeof w[5] === 'string' ? w[5] : undefined,
    typeof w[6] === 'number' ? w[6] : undefined,
    typeof w[7] === 'string' ? w[7] : undefined,
  );
}

const reader = new EnvelopeReader(unpackr);
let sink = 0;
const t0 = process.hrtime.bigint();
for (let done = 0; done < total; done += 256) {
  packr.useBuffer(bytes);
  for (let k = 0; k < 256; k++) {
    const p = form === 'array' ? packArray(envelopes[k]!) : packEnvelope(envelopes[k]!, packr, bytes);
    bounds[2 * k] = p.start;
    bounds[2 * k + 1] = p.end;
  }
  for (let k = 0; k < 256; k++) {
    const e = form === 'array' ? readArray(bounds[2 * k]!, bounds[2 * k + 1]!) : reader.read(bytes, bounds[2 * k]!, bounds[2 * k + 1]!);
    sink += e.kind;
  }
}
const ns = Number(process.hrtime.bigint() - t0) / total;
console.log(JSON.stringify({ form, envelopes: total, nsPerEnvelope: Math.round(ns), bytesPerAsk: bounds[3]! - bounds[2]!, bytesPerReply: bounds[1]! - bounds[0]!, sink }));
