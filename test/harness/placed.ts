/**
 * A message placed in a larger buffer, as a reader of messages' bytes (the actor layer's
 * answer-bytes.ts and tell-bytes.ts) meets it in the pool: packed by msgpackr at `offset`, with
 * `fill` bytes before and after it, so that a read past either end shows.
 */
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false });

/** The bytes of `wire`, at `offset` in a larger buffer filled with `fill` around them. */
export function placed(wire: unknown, offset = 7, fill = 0x94): { bytes: Buffer; start: number; length: number } {
  const packed = packr.pack(wire);
  const bytes = Buffer.alloc(offset + packed.length + 9, fill);
  bytes.set(packed, offset);
  return { bytes, start: offset, length: packed.length };
}
