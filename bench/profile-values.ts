/**
 * What the value rule (src/bus/value-codec.ts) costs on the encode path of a message, in one
 * process with no DPDK: the actor wire array packed as the mailbox transport packs it, without
 * and with `encodeValue` on its payload, for the benchmark payloads (64 B and 1 KiB plain
 * objects), a larger plain object, and values that take the extended form. Rounds alternate
 * the variants so machine noise falls on both; the ratio is what to read.
 *
 *   npm run build && node dist/bench/profile-values.js
 */
import { Packr, REUSE_BUFFER_MODE } from 'msgpackr';
import { encodeValue } from '../src/bus/value-codec.js';
import { benchValue } from './values.js';

const packr = new Packr({ useRecords: false });
const wire: unknown[] = [1, 'work', null, 7, '$reply.0.1.1', null, 1e12, null];

function packPlain(payload: unknown): number {
  wire[2] = payload;
  return (packr.pack(wire, REUSE_BUFFER_MODE) as Buffer & { end: number }).end;
}
function packCodec(payload: unknown): number {
  wire[2] = encodeValue(payload);
  return (packr.pack(wire, REUSE_BUFFER_MODE) as Buffer & { end: number }).end;
}

function timeNs(fn: (p: unknown) => number, payload: unknown, n: number): number {
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) sink += fn(payload);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  if (sink < 0) console.log(sink);
  return ns;
}

const shared = { id: 1 };
const payloads: Record<string, unknown> = {
  'plain 64 B { seq, body }': benchValue(64),
  'plain 1 KiB { seq, body }': benchValue(1024),
  'plain job { id, items[20], meta }': {
    id: 42,
    items: [...Array(20).keys()].map((i) => ({ sku: `s${i}`, qty: i })),
    meta: { from: 'web', at: 1_700_000_000_000 },
  },
  'string 64 B': 'x'.repeat(64),
  'extended: Map of 20': new Map([...Array(20).keys()].map((i) => [i, { qty: i }])),
  'extended: shared ref': { a: shared, b: shared },
};

const rounds = 7;
const n = 200_000;
console.log('payload | pack alone ns | encodeValue + pack ns | ratio (median of rounds)');
for (const [name, payload] of Object.entries(payloads)) {
  const canPlain = (!(payload instanceof Map) && name.startsWith('plain')) || name.startsWith('string');
  const ratios: number[] = [];
  let plainNs = 0;
  let codecNs = 0;
  timeNs(packCodec, payload, n / 10); // warm up
  if (canPlain) timeNs(packPlain, payload, n / 10);
  for (let r = 0; r < rounds; r++) {
    const c = timeNs(packCodec, payload, n);
    const p = canPlain ? timeNs(packPlain, payload, n) : NaN;
    codecNs += c;
    plainNs += p;
    ratios.push(c / p);
  }
  ratios.sort((a, b) => a - b);
  console.log(
    `${name} | ${canPlain ? (plainNs / rounds).toFixed(0) : '-'} | ${(codecNs / rounds).toFixed(0)} | ${canPlain ? ratios[rounds >> 1]!.toFixed(3) : '-'}`,
  );
}
