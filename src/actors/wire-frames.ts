/**
 * An envelope's wire array in three parts for a batched send: the head (array header, kind and
 * action), the payload, and the tail (id, reply address, sender, deadline). The head is packed
 * once per action and the tail written here, a few bytes each; msgpackr packs only the payload,
 * between them. Packing the whole array with msgpackr made it write the array and its strings
 * again for every message: an ask's envelope cost ~275 ns to pack whole, ~230 ns framed
 * (docs/benchmarks.md, "Thirty-fifth pass").
 *
 * The bytes are those msgpackr writes for the whole array but for the deadline, always a float64
 * here (msgpackr writes a whole number as an integer): either decodes to the same number.
 */
import { Packr } from 'msgpackr';
import type { PackFrame } from '../bus/mailbox-ref.js';
import type { Envelope } from './transport.js';

/** Heads and strings cached by action (by string); past this many each cache starts again. */
const CACHED_MAX = 256;
/** A tail holds an id (5 bytes), two strings and a deadline (9 bytes). */
const STRING_MAX = 120;
const TAIL_MAX = 5 + 2 * STRING_MAX + 9;
/** Packs heads and strings (copied at once: msgpackr's buffer is shared by every Packr of the process). */
const packr = new Packr({ useRecords: false });

/**
 * How many elements an envelope's wire array has: `[kind, action, payload, id, replyTo, sender,
 * deadline, trace]` cut after the last field present (absent ones before it are `null`).
 */
export function wireLength(envelope: Envelope): number {
  if (envelope.trace !== undefined) return 8;
  if (envelope.deadline !== undefined) return 7;
  if (envelope.sender !== undefined) return 6;
  if (envelope.replyTo !== undefined) return 5;
  return envelope.id !== undefined ? 4 : 3;
}

/** The msgpack of `value` in bytes of its own, or undefined when longer than `max`. */
function packedCopy(value: unknown, max: number): Uint8Array | undefined {
  const packed = packr.pack(value);
  return packed.length <= max ? Uint8Array.prototype.slice.call(packed) : undefined;
}

export class WireFrames {
  /** What goes around the payload of the envelope last framed (read by `MailboxRef.offerMany`). */
  readonly frame: PackFrame = { bytes: undefined, tail: new Uint8Array(TAIL_MAX), tailLength: 0 };
  private readonly tailView = new DataView(this.frame.tail.buffer);
  /** Heads by `kind * 8 + wire length`, then by action (undefined: too long to go before a value). */
  private readonly heads: Array<Map<string, Uint8Array | undefined>> = Array.from({ length: 32 }, () => new Map());
  /** The last head found: a batch's messages mostly share kind, length and action. */
  private lastKey = -1;
  private lastAction = '';
  private lastHead: Uint8Array | undefined;
  /** Reply addresses and senders, packed (undefined: too long for a tail). */
  private readonly strings = new Map<string, Uint8Array | undefined>();
  private lastString = '';
  private lastPacked: Uint8Array | undefined;

  /**
   * Sets {@link frame} for `envelope` and answers true when it is framed: the message is the head,
   * the payload packed, then the tail. False (and an empty frame) when the envelope goes whole:
   * it has a trace (a string new with every message), an action whose head is over 255 bytes,
   * an id that is not a 32-bit unsigned integer, a deadline that is not a number, or an address
   * too long for the tail.
   */
  set(envelope: Envelope): boolean {
    const frame = this.frame;
    const length = wireLength(envelope);
    const head = length < 8 ? this.head(envelope.kind, length, envelope.action) : undefined;
    let at = 0;
    if (head !== undefined && length > 3) at = this.writeTail(length, envelope.id, envelope.replyTo, envelope.sender, envelope.deadline);
    if (head === undefined || at < 0) {
      frame.bytes = undefined;
      frame.tailLength = 0;
      return false;
    }
    frame.bytes = head;
    frame.tailLength = at;
    return true;
  }

  private head(kind: number, length: number, action: string): Uint8Array | undefined {
    const key = kind * 8 + length;
    if (key === this.lastKey && action === this.lastAction) return this.lastHead;
    const heads = this.heads[key]!;
    let head = heads.get(action);
    if (head === undefined && !heads.has(action)) {
      if (heads.size >= CACHED_MAX) heads.clear();
      // [kind, action] packed is the head of the whole array but for the array's length.
      head = packedCopy([kind, action], 255);
      if (head !== undefined) head[0] = 0x90 | length;
      heads.set(action, head);
    }
    this.lastKey = key;
    this.lastAction = action;
    this.lastHead = head;
    return head;
  }

  /** Writes the tail of a wire array of `length` elements; answers its length, or -1 when it cannot. */
  private writeTail(length: number, id: number | undefined, replyTo: string | undefined, sender: string | undefined, deadline: number | undefined): number {
    const tail = this.frame.tail;
    let at = 0;
    if (id === undefined) tail[at++] = 0xc0;
    else if (id >>> 0 !== id) return -1;
    else if (id < 0x80) tail[at++] = id;
    else if (id < 0x100) {
      tail[at++] = 0xcc;
      tail[at++] = id;
    } else if (id < 0x10000) {
      tail[at++] = 0xcd;
      tail[at++] = id >>> 8;
      tail[at++] = id & 0xff;
    } else {
      tail[at++] = 0xce;
      this.tailView.setUint32(at, id);
      at += 4;
    }
    if (length > 4 && (at = this.writeString(at, replyTo)) < 0) return -1;
    if (length > 5 && (at = this.writeString(at, sender)) < 0) return -1;
    if (length > 6) {
      if (typeof deadline !== 'number') return -1;
      tail[at++] = 0xcb;
      this.tailView.setFloat64(at, deadline);
      at += 8;
    }
    return at;
  }

  private writeString(at: number, value: string | undefined): number {
    const tail = this.frame.tail;
    if (value === undefined) {
      tail[at++] = 0xc0;
      return at;
    }
    let packed: Uint8Array | undefined;
    if (value === this.lastString && this.lastPacked !== undefined) packed = this.lastPacked;
    else {
      packed = this.strings.get(value);
      if (packed === undefined && !this.strings.has(value)) {
        if (this.strings.size >= CACHED_MAX) this.strings.clear();
        packed = packedCopy(value, STRING_MAX);
        this.strings.set(value, packed);
      }
      if (packed === undefined) return -1;
      this.lastString = value;
      this.lastPacked = packed;
    }
    // byte by byte: TypedArray.prototype.set costs more than a short copy (a builtin call and its checks)
    for (let b = 0; b < packed.length; b++) tail[at++] = packed[b]!;
    return at;
  }
}
