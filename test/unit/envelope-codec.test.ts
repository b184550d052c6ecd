// The actor envelope's wire form (src/actors/envelope-codec.ts): round trips with every field
// absent or present, batches packed one behind the other, and refusal of truncated or garbage bytes.
import { describe, expect, it } from 'vitest';
import { Packr, Unpackr } from 'msgpackr';
import { ENVELOPE_MAGIC, EnvelopeReader, packEnvelope } from '../../src/actors/envelope-codec.js';
import { makeEnvelope, type Envelope, type EnvelopeKind } from '../../src/actors/transport.js';
import { MpBusError } from '../../src/errors.js';

function staging(): { packr: Packr; bytes: Buffer } {
  const packr = new Packr({ useRecords: false });
  const bytes = Buffer.alloc(1 << 16);
  packr.useBuffer(bytes);
  return { packr, bytes };
}

function pack(e: Envelope): Buffer {
  const { packr, bytes } = staging();
  const p = packEnvelope(e, packr, bytes);
  return Buffer.from(p.subarray(p.start, p.end));
}

function decode(bytes: Buffer, reader = new EnvelopeReader(new Unpackr({ useRecords: false, copyBuffers: true }))): Envelope {
  return reader.read(bytes, 0, bytes.length);
}

const TRACE = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

describe('actor envelope codec', () => {
  it('round-trips every combination of present and absent fields', () => {
    for (let mask = 0; mask < 16; mask++) {
      for (const kind of [0, 1, 2, 3] as EnvelopeKind[]) {
        const e = makeEnvelope(
          kind,
          kind >= 2 ? '' : 'square',
          { n: mask, pad: 'x'.repeat(40), nested: [1, 'two', null] },
          mask & 1 ? 2 ** 40 + mask : undefined,
          mask & 2 ? '$reply.0.1234.1' : undefined,
          mask & 4 ? 'sender-é' : undefined,
          mask & 8 ? Date.now() + 5000.5 : undefined,
          mask & 1 ? TRACE : undefined,
        );
        expect(decode(pack(e))).toEqual(e);
      }
    }
  });

  it('keeps the payload values of the value rule (undefined, bytes, Map, big integers)', () => {
    // (bytes come back as a Buffer, as from any mailbox)
    for (const payload of [undefined, null, 0, -1.5, 'text', Buffer.from([1, 2, 3]), new Map([['a', 1]]), 2n ** 70n, [undefined, new Date(5)]]) {
      const e = makeEnvelope(1, 'a', payload, 7, 'r');
      expect(decode(pack(e)).payload).toEqual(payload);
    }
  });

  it('round-trips non-ASCII and long strings, and reuses a repeated name', () => {
    const reader = new EnvelopeReader(new Unpackr({ useRecords: false }));
    const long = 'a'.repeat(3000) + '€';
    const a = decode(pack(makeEnvelope(0, 'ação', 1, undefined, undefined, long)), reader);
    expect(a.action).toBe('ação');
    expect(a.sender).toBe(long);
    const b1 = decode(pack(makeEnvelope(1, 'square', 1, 1, '$reply.x')), reader);
    const b2 = decode(pack(makeEnvelope(1, 'square', 2, 2, '$reply.x')), reader);
    expect(b2.replyTo).toBe(b1.replyTo);
    const c = decode(pack(makeEnvelope(1, 'squarf', 2, 2, '$reply.y')), reader);
    expect([c.action, c.replyTo]).toEqual(['squarf', '$reply.y']);
  });

  it('packs a batch one behind the other in the staging bytes, and apart when they do not fit', () => {
    const { packr, bytes } = staging();
    const ranges: Array<[number, number]> = [];
    const envs: Envelope[] = [];
    for (let i = 0; i < 100; i++) {
      const e = makeEnvelope(1, 'job', { i, body: 'y'.repeat(i * 10) }, i, '$reply.z', undefined, i * 3);
      envs.push(e);
      const p = packEnvelope(e, packr, bytes);
      if (p === bytes) ranges.push([p.start, p.end]);
      else break;
    }
    expect(ranges.length).toBeGreaterThan(10);
    const reader = new EnvelopeReader(new Unpackr({ useRecords: false }));
    ranges.forEach(([s, e], i) => expect(reader.read(bytes, s, e)).toEqual(envs[i]));
    // a payload larger than the staging area goes in a buffer of its own
    const big = makeEnvelope(2, '', 'q'.repeat(100_000), 9);
    const p = packEnvelope(big, packr, bytes);
    expect(p).not.toBe(bytes);
    expect(reader.read(p, p.start, p.end)).toEqual(big);
  });

  it('refuses strings past 64 KiB with ENCODE_FAILED', () => {
    const { packr, bytes } = staging();
    expect(() => packEnvelope(makeEnvelope(0, 'a'.repeat(70_000), 1), packr, bytes)).toThrow(expect.objectContaining({ code: 'ENCODE_FAILED' }));
  });

  it('refuses payloads outside the value rule with ENCODE_FAILED', () => {
    const { packr, bytes } = staging();
    expect(() => packEnvelope(makeEnvelope(0, 'a', { f: () => 1 }), packr, bytes)).toThrow(expect.objectContaining({ code: 'ENCODE_FAILED' }));
  });

  it('refuses every truncation of an envelope with DECODE_FAILED', () => {
    const full = pack(makeEnvelope(1, 'square', { n: 3 }, 12, '$reply.1', 'me', 99, TRACE));
    for (let cut = 0; cut < full.length; cut++) {
      expect(() => decode(Buffer.from(full.subarray(0, cut)))).toThrow(expect.objectContaining({ code: 'DECODE_FAILED' }));
    }
  });

  it('refuses garbage with DECODE_FAILED and never throws anything else', () => {
    let seed = 12345;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const reader = new EnvelopeReader(new Unpackr({ useRecords: false }));
    const good = pack(makeEnvelope(1, 'square', { n: 3 }, 12, '$reply.1', undefined, 99));
    for (let round = 0; round < 3000; round++) {
      let bytes: Buffer;
      if (round % 2 === 0) {
        bytes = Buffer.alloc(Math.floor(rnd() * 40));
        for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rnd() * 256);
        if (bytes.length > 0 && round % 4 === 0) bytes[bytes.length - 1] = ENVELOPE_MAGIC;
      } else {
        // one byte of a good envelope changed
        bytes = Buffer.from(good);
        bytes[Math.floor(rnd() * bytes.length)] = Math.floor(rnd() * 256);
      }
      try {
        const e = reader.read(bytes, 0, bytes.length);
        // what decodes is a well-formed envelope
        expect([0, 1, 2, 3]).toContain(e.kind);
        expect(typeof e.action).toBe('string');
      } catch (err) {
        expect(err).toBeInstanceOf(MpBusError);
        expect((err as MpBusError).code).toBe('DECODE_FAILED');
      }
    }
  });
});
