/**
 * A MessageBurst (src/bus/message-burst.ts) over a buffer laid out as the mailbox pool is: views
 * of raw messages, decoded values of encoded ones, refused indexes and undecodable bytes; the
 * builder that gathers a burst during a drain, and the bursts of one and values of a burst that
 * a mailbox makes when its burst subscribers come and go.
 */
import { Packr, Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { BurstBuilder, MessageBurst, burstOf, burstValues } from '../../src/bus/message-burst.js';

// The encodings the mailbox system uses.
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, copyBuffers: true });

/** Lays messages out in one buffer with gaps between them, as buffers of a pool are. */
function laidOut(messages: Array<{ raw: Buffer } | { value: unknown }>): { burst: MessageBurst; bytes: Buffer } {
  const bytes = Buffer.alloc(4096, 0xee);
  const starts = new Uint32Array(messages.length + 2); // the arrays may be longer than the burst
  const lengths = new Uint32Array(messages.length + 2);
  const encoded = new Uint8Array(messages.length + 2);
  let at = 16;
  messages.forEach((m, i) => {
    const payload = 'raw' in m ? m.raw : packr.pack(m.value);
    payload.copy(bytes, at);
    starts[i] = at;
    lengths[i] = payload.length;
    encoded[i] = 'raw' in m ? 0 : 1;
    at += payload.length + 64;
  });
  return { burst: new MessageBurst(bytes, starts, lengths, encoded, messages.length, unpackr), bytes };
}

describe('MessageBurst', () => {
  it('gives raw messages as views of the shared bytes, and copies on value()', () => {
    const { burst, bytes } = laidOut([{ raw: Buffer.from('first') }, { raw: Buffer.from('second!') }]);
    expect(burst.count).toBe(2);
    const view = burst.payload(1);
    expect(view.toString()).toBe('second!');
    expect(view.buffer).toBe(bytes.buffer); // a view: no copy
    const copy = burst.value(0) as Buffer;
    expect(copy.toString()).toBe('first');
    bytes.fill(0, burst.starts[0], burst.starts[0]! + 5);
    expect(copy.toString()).toBe('first'); // value() of a raw message is a copy
  });

  it('decodes encoded messages, mixed with raw ones', () => {
    const { burst } = laidOut([{ value: { n: 1, tags: ['a'] } }, { raw: Buffer.from([1, 2, 3]) }, { value: 'text' }]);
    expect(burst.value(0)).toEqual({ n: 1, tags: ['a'] });
    expect(burst.value(1)).toEqual(Buffer.from([1, 2, 3]));
    expect(burst.value(2)).toBe('text');
    expect(burst.payload(2)).toEqual(packr.pack('text'));
  });

  it('refuses an index outside the burst, even where the arrays are longer', () => {
    const { burst } = laidOut([{ raw: Buffer.from('only') }]);
    for (const i of [1, 2, -1, 0.5, Number.NaN]) {
      expect(() => burst.payload(i)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
      expect(() => burst.value(i)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    }
  });

  it('says DECODE_FAILED for bytes that do not decode (they end within a value)', () => {
    const { burst } = laidOut([{ raw: Buffer.from([0x92, 0x01]) }]); // an array of 2 that ends after 1
    burst.encoded[0] = 1;
    expect(() => burst.value(0)).toThrow(expect.objectContaining({ code: 'DECODE_FAILED', message: expect.stringContaining('message 0 of a burst') }));
  });
});

describe('BurstBuilder (gathers the messages of one mailbox during a drain)', () => {
  it('hands what it gathered over as one burst, with arrays of its own, and starts again empty', () => {
    const { bytes } = laidOut([{ raw: Buffer.from('abc') }, { value: 7 }]);
    const builder = new BurstBuilder();
    builder.add(16, 3, false);
    builder.add(16 + 3 + 64, packr.pack(7).length, true);
    const burst = builder.take(bytes, unpackr);
    expect(builder.count).toBe(0);
    expect(burst.count).toBe(2);
    expect(burst.starts.length).toBe(2); // copies cut to the burst: a kept burst is not overwritten
    expect(burst.value(0)).toEqual(Buffer.from('abc'));
    expect(burst.value(1)).toBe(7);
    builder.add(0, 1, false);
    expect(burst.starts[0]).toBe(16);
    expect(builder.take(bytes, unpackr).count).toBe(1);
  });

  it('holds a whole native burst (256 descriptors)', () => {
    const builder = new BurstBuilder();
    for (let i = 0; i < 256; i++) builder.add(i, 1, false);
    const burst = builder.take(Buffer.alloc(256), unpackr);
    expect(burst.count).toBe(256);
    expect(burst.starts[255]).toBe(255);
  });
});

describe('burstOf and burstValues', () => {
  it('makes a burst of one of a value that waited (encoded) or of a Buffer (raw)', () => {
    expect(burstOf({ a: 1 }, packr, unpackr).value(0)).toEqual({ a: 1 });
    const raw = burstOf(Buffer.from('x'), packr, unpackr);
    expect(raw.encoded[0]).toBe(0);
    expect(raw.value(0)).toEqual(Buffer.from('x'));
  });

  it('gives the decodable messages as values and reports the others', () => {
    const { burst } = laidOut([{ value: 1 }, { raw: Buffer.from([0x92, 0x01]) }, { value: 'three' }]);
    burst.encoded[1] = 1;
    const errors: unknown[] = [];
    expect(burstValues(burst, (err) => errors.push(err))).toEqual([1, 'three']);
    expect(errors).toEqual([expect.objectContaining({ code: 'DECODE_FAILED' })]);
  });
});
