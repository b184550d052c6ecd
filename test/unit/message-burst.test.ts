/**
 * A MessageBurst (src/bus/mailbox.ts) over a buffer laid out as the mailbox pool is: views of
 * raw messages, decoded values of encoded ones, refused indexes and undecodable bytes. The
 * builder that gathers a burst during a drain (BurstBuilder) is private to mailbox.ts and is
 * covered by test/mailbox.test.ts; it gets unit tests when mailbox.ts is split.
 */
import { Packr, Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { MessageBurst } from '../../src/bus/mailbox.js';

// The encodings the mailbox system uses.
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, copyBuffers: true });

/** Lays messages out in one buffer with gaps between them, as buffers of a pool are. */
function burstOf(messages: Array<{ raw: Buffer } | { value: unknown }>): { burst: MessageBurst; bytes: Buffer } {
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
    const { burst, bytes } = burstOf([{ raw: Buffer.from('first') }, { raw: Buffer.from('second!') }]);
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
    const { burst } = burstOf([{ value: { n: 1, tags: ['a'] } }, { raw: Buffer.from([1, 2, 3]) }, { value: 'text' }]);
    expect(burst.value(0)).toEqual({ n: 1, tags: ['a'] });
    expect(burst.value(1)).toEqual(Buffer.from([1, 2, 3]));
    expect(burst.value(2)).toBe('text');
    expect(burst.payload(2)).toEqual(packr.pack('text'));
  });

  it('refuses an index outside the burst, even where the arrays are longer', () => {
    const { burst } = burstOf([{ raw: Buffer.from('only') }]);
    for (const i of [1, 2, -1, 0.5, Number.NaN]) {
      expect(() => burst.payload(i)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
      expect(() => burst.value(i)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    }
  });

  it('says DECODE_FAILED for bytes that do not decode (they end within a value)', () => {
    const { burst } = burstOf([{ raw: Buffer.from([0x92, 0x01]) }]); // an array of 2 that ends after 1
    burst.encoded[0] = 1;
    expect(() => burst.value(0)).toThrow(expect.objectContaining({ code: 'DECODE_FAILED', message: expect.stringContaining('message 0 of a burst') }));
  });
});
