/**
 * Where one msgpack value ends, found from its bytes without decoding it: for a reader that
 * takes a value out of the middle of a message (ask-bytes.ts) and hands msgpackr that value's
 * bytes alone.
 */

/** Bytes after the type byte of the fixed-size types, by type - 0xc0 (undefined: sized otherwise, or not msgpack). */
const FIXED_SIZE: Array<number | undefined> = [];
FIXED_SIZE[0xc0 - 0xc0] = 0; // nil
FIXED_SIZE[0xc2 - 0xc0] = 0; // false
FIXED_SIZE[0xc3 - 0xc0] = 0; // true
FIXED_SIZE[0xca - 0xc0] = 4; // float 32
FIXED_SIZE[0xcb - 0xc0] = 8; // float 64
FIXED_SIZE[0xcc - 0xc0] = 1; // uint 8
FIXED_SIZE[0xcd - 0xc0] = 2; // uint 16
FIXED_SIZE[0xce - 0xc0] = 4; // uint 32
FIXED_SIZE[0xcf - 0xc0] = 8; // uint 64
FIXED_SIZE[0xd0 - 0xc0] = 1; // int 8
FIXED_SIZE[0xd1 - 0xc0] = 2; // int 16
FIXED_SIZE[0xd2 - 0xc0] = 4; // int 32
FIXED_SIZE[0xd3 - 0xc0] = 8; // int 64
FIXED_SIZE[0xd5 - 0xc0] = 3; // fixext 2
FIXED_SIZE[0xd6 - 0xc0] = 5; // fixext 4
FIXED_SIZE[0xd7 - 0xc0] = 9; // fixext 8
FIXED_SIZE[0xd8 - 0xc0] = 17; // fixext 16

/** Bytes of the length (bin, str, ext) or count (array, map) after the type byte, by type - 0xc0. */
const LENGTH_SIZE: Array<number | undefined> = [];
// bin 8/16/32, ext 8/16/32, str 8/16/32, array 16/32, map 16/32
for (const [type, size] of [
  [0xc4, 1],
  [0xc5, 2],
  [0xc6, 4],
  [0xc7, 1],
  [0xc8, 2],
  [0xc9, 4],
  [0xd9, 1],
  [0xda, 2],
  [0xdb, 4],
  [0xdc, 2],
  [0xdd, 4],
  [0xde, 2],
  [0xdf, 4],
] as const)
  LENGTH_SIZE[type - 0xc0] = size;

/**
 * The offset just past the msgpack value that starts at `bytes[at]`, reading nothing at or past
 * `end`; -1 when the bytes up to `end` do not hold a whole value (cut short, or the unused type
 * 0xc1), or when where it ends depends on the receiver: msgpackr writes a value of an extension
 * with a `write` form (the extended values of value-codec.ts, and its own Set, Error and RegExp)
 * as a one-byte extension tag followed by another value, which bytes alone cannot tell from a
 * plain one-byte extension. So of the one-byte extensions only msgpackr's `undefined` (type 0,
 * data 0) is read here. Containers are walked by counting the values still to come, not by
 * recursion, so any nesting costs no stack; each step consumes at least one byte, so a forged
 * count ends at `end`.
 */
export function msgpackEnd(bytes: Uint8Array, at: number, end: number): number {
  let pending = 1;
  while (pending > 0) {
    if (at >= end) return -1;
    const type = bytes[at++]!;
    pending--;
    if (type < 0x80 || type >= 0xe0) continue; // positive or negative fixint
    // fixmap, fixarray, fixstr, then the types from 0xc0 on (0xc1 is never used)
    if (type < 0x90) pending += 2 * (type & 0x0f);
    else if (type < 0xa0) pending += type & 0x0f;
    else if (type < 0xc0) at += type & 0x1f;
    else if (type === 0xd4) {
      // fixext 1: undefined only (see above)
      if (at + 2 > end || bytes[at] !== 0 || bytes[at + 1] !== 0) return -1;
      at += 2;
    } else {
      const fixed = FIXED_SIZE[type - 0xc0];
      const size = LENGTH_SIZE[type - 0xc0];
      if (fixed !== undefined) at += fixed;
      else if (size === undefined) return -1;
      else {
        if (at + size > end) return -1;
        let n = 0;
        for (let i = 0; i < size; i++) n = n * 256 + bytes[at + i]!;
        at += size;
        // an array's or map's values are still to come; a bin's, str's or ext's bytes (and the ext's type byte) are skipped
        if (type === 0xdc || type === 0xdd) pending += n;
        else if (type === 0xde || type === 0xdf) pending += 2 * n;
        else at += type >= 0xc7 && type <= 0xc9 ? n + 1 : n;
      }
    }
  }
  return at <= end ? at : -1;
}
