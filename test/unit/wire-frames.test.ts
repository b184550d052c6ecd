/**
 * Envelopes framed for a batched send (src/actors/wire-frames.ts): head, payload packed by
 * msgpackr, then tail decode as the whole wire array does, for every kind, length and id
 * encoding; what cannot be framed (a trace, an id past 32 bits, a long string) is left whole.
 */
import { describe, expect, it } from 'vitest';
import { Packr, Unpackr } from 'msgpackr';
import { WireFrames, wireLength } from '../../src/actors/wire-frames.js';
import { EnvelopeKind, makeEnvelope, type Envelope } from '../../src/actors/transport.js';

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false });

/** The wire array of `e` as the transport's toWire makes it. */
function wireOf(e: Envelope): unknown[] {
  const length =
    e.trace !== undefined ? 8 : e.deadline !== undefined ? 7 : e.sender !== undefined ? 6 : e.replyTo !== undefined ? 5 : e.id !== undefined ? 4 : 3;
  return [e.kind, e.action, e.payload, e.id ?? null, e.replyTo ?? null, e.sender ?? null, e.deadline ?? null, e.trace ?? null].slice(0, length);
}

/** The message a batched send makes of a framed envelope. */
function framedBytes(frames: WireFrames, e: Envelope): Uint8Array {
  const { bytes, tail, tailLength } = frames.frame;
  const payload = packr.pack(e.payload);
  const out = new Uint8Array(bytes!.length + payload.length + tailLength);
  out.set(bytes!);
  out.set(payload, bytes!.length);
  out.set(tail.subarray(0, tailLength), bytes!.length + payload.length);
  return out;
}

const IDS = [undefined, 0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 31, 2 ** 32 - 1];
const STRINGS = [undefined, '', 'r', 'reply.12345.1', 'é→😀', 'x'.repeat(31), 'x'.repeat(32), 'x'.repeat(100)];
const DEADLINES = [undefined, 0, 1, 1.5, 1_765_000_000_000, 1_765_000_000_000.25, -3, 2 ** 53];

describe('WireFrames', () => {
  it('frames every kind and length so that it decodes as the whole wire array', () => {
    const frames = new WireFrames();
    let framed = 0;
    for (const kind of [EnvelopeKind.tell, EnvelopeKind.ask, EnvelopeKind.reply, EnvelopeKind.failure])
      for (const action of ['', 'square', 'ä'.repeat(20), 'a'.repeat(40)])
        for (const id of IDS)
          for (const replyTo of STRINGS)
            for (const sender of [undefined, 'sq-1'])
              for (const deadline of DEADLINES) {
                const e = makeEnvelope(kind, action, { n: 3, pad: 'xy' }, id, replyTo, sender, deadline);
                expect(frames.set(e)).toBe(true);
                expect(unpackr.unpack(framedBytes(frames, e))).toEqual(wireOf(e));
                expect(wireLength(e)).toBe(wireOf(e).length);
                framed++;
              }
    expect(framed).toBeGreaterThan(10_000);
  });

  it('writes the bytes msgpackr writes for the whole array, but for a whole-number deadline', () => {
    const frames = new WireFrames();
    for (const id of IDS)
      for (const replyTo of STRINGS) {
        const e = makeEnvelope(EnvelopeKind.ask, 'square', [1, 'two'], id, replyTo, undefined, 1_765_000_000_000.5);
        frames.set(e);
        expect(Buffer.from(framedBytes(frames, e))).toEqual(Buffer.from(packr.pack(wireOf(e))));
      }
  });

  it('leaves whole what it cannot frame, with an empty frame', () => {
    const frames = new WireFrames();
    const unframed = [
      makeEnvelope(EnvelopeKind.ask, 'square', 1, 1, 'r', undefined, 5, '00-abc-def-01'),
      makeEnvelope(EnvelopeKind.ask, 'square', 1, 2 ** 32, 'r'),
      makeEnvelope(EnvelopeKind.ask, 'square', 1, -1, 'r'),
      makeEnvelope(EnvelopeKind.ask, 'square', 1, 1.5, 'r'),
      makeEnvelope(EnvelopeKind.ask, 'square', 1, 1, 'x'.repeat(200)),
      makeEnvelope(EnvelopeKind.tell, 'x'.repeat(300), 1),
    ];
    for (const e of unframed) {
      frames.set(makeEnvelope(EnvelopeKind.reply, 'square', 1, 7));
      expect(frames.frame.bytes).toBeDefined();
      expect(frames.set(e)).toBe(false);
      expect(frames.frame.bytes).toBeUndefined();
      expect(frames.frame.tailLength).toBe(0);
    }
  });

  it('keeps its caches bounded and right after they start again', () => {
    const frames = new WireFrames();
    for (let i = 0; i < 1000; i++) {
      const e = makeEnvelope(EnvelopeKind.ask, `action-${i}`, i, i, `reply-${i}`, `sender-${i % 7}`, i + 0.5);
      expect(frames.set(e)).toBe(true);
      expect(unpackr.unpack(framedBytes(frames, e))).toEqual(wireOf(e));
    }
  });
});
