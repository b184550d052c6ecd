/**
 * Reads the most common answer straight from its bytes in the pool: a reply (not a failure)
 * whose value is a number, a boolean, null or undefined, with a short action and an id below
 * 2^32. What it cannot read this way (any other shape or value) it leaves to msgpackr, as before.
 *
 * Why: msgpackr's decode of such an answer (`[2, action, value, id]`) makes a wire array and a
 * new action string for every answer, ~90 ns and ~100 bytes a time in a caller whose asks are
 * answered at hundreds of thousands a second; reading the few bytes here takes ~25 ns and
 * makes nothing (the action string is the last one's while its bytes are the same).
 * docs/benchmarks.md, "Thirty-fourth pass".
 */
import { ActionBytes } from './action-bytes.js';

/** What reads an answer's bytes (one per reply mailbox: it keeps the last action). */
export class AnswerBytes {
  private readonly actions = new ActionBytes();
  /** The value read by {@link read} (valid until the next call). */
  value: unknown = undefined;
  /** The id read by {@link read}. */
  id = 0;
  /** The action read by {@link read}. */
  action = '';

  /**
   * Reads the message `bytes[start .. start + length)`: true when it is a reply this reader
   * takes (its fields are then in {@link value}, {@link id} and {@link action}), false when
   * msgpackr must decode it. Only reads inside those bounds.
   */
  read(bytes: Buffer, start: number, length: number): boolean {
    const end = start + length;
    // fixarray of 4, kind 2 (a reply), a fixstr action
    if (length < 5 || bytes[start] !== 0x94 || bytes[start + 1] !== 0x02) return false;
    const head = bytes[start + 2]!;
    if ((head & 0xe0) !== 0xa0) return false;
    const actionLength = head & 0x1f;
    let at = start + 3;
    if (at + actionLength + 2 > end) return false;
    if (!this.actions.read(bytes, at, actionLength)) return false;
    at += actionLength;
    const type = bytes[at++]!;
    let value: unknown;
    if (type < 0x80) value = type;
    else if (type >= 0xe0) value = type - 0x100;
    else if (type === 0xc0) value = null;
    else if (type === 0xc2) value = false;
    else if (type === 0xc3) value = true;
    else if (type === 0xd4) {
      // fixext 1 of type 0, data 0: msgpackr's undefined
      if (at + 2 > end || bytes[at] !== 0 || bytes[at + 1] !== 0) return false;
      value = undefined;
      at += 2;
    } else {
      const size = SCALAR_SIZE[type - 0xc0];
      if (size === undefined || at + size > end) return false;
      value = scalarAt(bytes, at, type);
      at += size;
    }
    if (at >= end) return false;
    const idType = bytes[at++]!;
    let id: number;
    if (idType < 0x80) id = idType;
    else if (idType === 0xcc || idType === 0xcd || idType === 0xce) {
      const size = SCALAR_SIZE[idType - 0xc0]!;
      if (at + size > end) return false;
      id = scalarAt(bytes, at, idType);
      at += size;
    } else return false;
    if (at !== end) return false;
    this.value = value;
    this.id = id;
    this.action = this.actions.action;
    return true;
  }
}

/** Bytes after the type byte of the numbers read here, by type - 0xc0 (undefined: not read here). */
const SCALAR_SIZE: Array<number | undefined> = [];
SCALAR_SIZE[0xcb - 0xc0] = 8; // float 64
SCALAR_SIZE[0xcc - 0xc0] = 1; // uint 8
SCALAR_SIZE[0xcd - 0xc0] = 2; // uint 16
SCALAR_SIZE[0xce - 0xc0] = 4; // uint 32
SCALAR_SIZE[0xd0 - 0xc0] = 1; // int 8
SCALAR_SIZE[0xd1 - 0xc0] = 2; // int 16
SCALAR_SIZE[0xd2 - 0xc0] = 4; // int 32

const float64 = new DataView(new ArrayBuffer(8));

/** The big-endian number of msgpack `type` at `bytes[at]` (its size checked by the caller). */
function scalarAt(bytes: Uint8Array, at: number, type: number): number {
  switch (type) {
    case 0xcc:
      return bytes[at]!;
    case 0xcd:
      return (bytes[at]! << 8) | bytes[at + 1]!;
    case 0xce:
      return bytes[at]! * 0x1000000 + ((bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!);
    case 0xd0:
      return (bytes[at]! << 24) >> 24;
    case 0xd1:
      return (((bytes[at]! << 8) | bytes[at + 1]!) << 16) >> 16;
    case 0xd2:
      return (bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!;
    default:
      for (let i = 0; i < 8; i++) float64.setUint8(i, bytes[at + i]!);
      return float64.getFloat64(0);
  }
}
