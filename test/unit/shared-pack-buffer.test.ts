/**
 * msgpackr's buffer is shared by every Packr of a process: a batch that packs into a buffer of
 * its own must leave other packs' bytes alone (src/bus/shared-pack-buffer.ts). A reply packed for
 * NATS after a mailbox batch landed in the batch's staging area, and the next batch wrote over
 * it before the NATS client sent it: the asker on the other host got bytes that did not decode,
 * or another ask's answer.
 */
import { Packr, REUSE_BUFFER_MODE } from 'msgpackr';
import { beforeEach, describe, expect, it } from 'vitest';
import { packingAside } from '../../src/bus/shared-pack-buffer.js';

const staging = Buffer.alloc(1 << 16);
const batcher = new Packr({ useRecords: false });
const other = new Packr({ useRecords: false });

/** A batch as a mailbox sends it: msgpackr pointed at the staging area, values packed there. */
function batch(values: unknown[]): void {
  batcher.useBuffer(staging);
  for (const v of values) batcher.pack(v, REUSE_BUFFER_MODE);
}

/** What `bytes` decode to, or 'undecodable'. */
function decoded(bytes: Uint8Array): unknown {
  try {
    return other.unpack(bytes);
  } catch {
    return 'undecodable';
  }
}

describe('packing aside', () => {
  // each test starts with msgpackr packing into a buffer of its own, as in a process before any batch
  beforeEach(() => other.useBuffer(Buffer.allocUnsafeSlow(8192)));

  it('is needed: without it, a pack made after a batch is written over by the next batch', () => {
    batch([{ tell: 1 }, { tell: 2 }]);
    const reply = other.pack({ id: 9645, answer: 'kept' }); // kept past this turn (NATS flushes later)
    expect(reply.buffer).toBe(staging.buffer);
    batch([{ regiven: 9679 }, { regiven: 9680 }, { regiven: 9681 }, { regiven: 9682 }]);
    expect(decoded(reply)).not.toEqual({ id: 9645, answer: 'kept' });
  });

  it('packs after a batch go where they would have gone; the bytes of packs before and after stay', () => {
    const before = other.pack({ id: 1, answer: 'before' });
    packingAside(batcher, () => batch([{ tell: 1 }, { tell: 2 }]));
    const after = other.pack({ id: 2, answer: 'after' });
    expect(after.buffer).not.toBe(staging.buffer);
    expect(after.buffer).toBe(before.buffer);
    expect(after.byteOffset).toBeGreaterThanOrEqual(before.byteOffset + before.length);
    for (let i = 0; i < 200; i++) packingAside(batcher, () => batch([{ regiven: i }, 'x'.repeat(i)]));
    expect(decoded(before)).toEqual({ id: 1, answer: 'before' });
    expect(decoded(after)).toEqual({ id: 2, answer: 'after' });
  });

  it('gives the buffer back when the batch throws', () => {
    const before = other.pack([1, 2, 3]);
    expect(() =>
      packingAside(batcher, () => {
        batch([{ tell: 1 }]);
        throw new Error('a value that did not encode');
      }),
    ).toThrow('a value that did not encode');
    const after = other.pack([4, 5, 6]);
    expect(after.buffer).not.toBe(staging.buffer);
    expect(decoded(before)).toEqual([1, 2, 3]);
  });
});
