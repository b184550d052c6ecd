/**
 * The wire form of an actor {@link Envelope} across processes: the payload packed by msgpackr
 * (after the value rule's walk, `encodeValue`), followed by a binary trailer that holds the
 * other seven fields. Written straight into the mailbox's staging bytes behind the payload, read
 * back from the end of the message.
 *
 * ```
 * [payload: msgpack][id: f64 LE]?[deadline: f64 LE]?[action][replyTo]?[sender]?[trace]?[fields: u16 LE][flags: u8][magic: u8]
 * ```
 *
 * - Strings are a u16 LE byte length and their UTF-8 bytes; `action` is always there, the
 *   others and the two numbers only when their flag is set (flags: bits 0-1 the kind, then
 *   id 0x04, deadline 0x08, replyTo 0x10, sender 0x20, trace 0x40).
 * - `fields` is the byte length from the end of the payload to `fields` itself.
 * - Why not one msgpack array (the earlier form): the seven fields then went through msgpackr's
 *   type dispatch on both sides and the decoded strings were new strings each time; here the
 *   numbers are two stores and the strings a byte loop, and a decoded `action`, `replyTo` or
 *   `sender` equal to the last one of that field is the same string again (no allocation: a
 *   caller's replies all carry one `replyTo`, a worker's asks a handful of actions). Measured
 *   in docs/benchmarks.md ("The envelope codec").
 *
 * Decoding trusts nothing (another process wrote the bytes): every length is checked against
 * the message, and a message that is not exactly this form is a `DECODE_FAILED` error for that
 * message alone.
 */
import type { Packr, Unpackr } from 'msgpackr';
import { REUSE_BUFFER_MODE } from 'msgpackr';
import { ErrorCodes, MpBusError } from '../errors.js';
import { encodeValue } from '../bus/value-codec.js';
import { makeEnvelope, payloadRoot, type Envelope, type EnvelopeKind } from './transport.js';

/** The last byte of every envelope (version 1 of this form). */
export const ENVELOPE_MAGIC = 0xe1;

const F_ID = 0x04;
const F_DEADLINE = 0x08;
const F_REPLY_TO = 0x10;
const F_SENDER = 0x20;
const F_TRACE = 0x40;
/** The fixed end: fields length (2), flags (1), magic (1). */
const TAIL = 4;
const MAX_FIELDS = 0xffff;

/** msgpackr's REUSE_BUFFER_MODE result: the buffer packed into, with the packed range. */
export type PackedRange = Buffer & { start: number; end: number };

/** The position setter msgpackr's Packr has (not in its type declarations). */
type PositionedPackr = Packr & { position: number };

/** Upper bound of the trailer's bytes (UTF-16 units take at most 3 UTF-8 bytes each). */
function trailerBound(e: Envelope): number {
  let n = TAIL + 16 + 2 + 3 * e.action.length;
  if (e.replyTo !== undefined) n += 2 + 3 * e.replyTo.length;
  if (e.sender !== undefined) n += 2 + 3 * e.sender.length;
  if (e.trace !== undefined) n += 2 + 3 * e.trace.length;
  return n;
}

/** Writes `s` as u16 length + UTF-8 at `at`; answers the end. */
function writeString(bytes: Buffer, at: number, s: string): number {
  const n = s.length;
  let i = 0;
  // ASCII (names, actions, traceparent): a byte loop, cheaper than a native call for short strings
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) break;
    bytes[at + 2 + i] = c;
  }
  let len = n;
  if (i < n) len = i + bytes.write(s.slice(i), at + 2 + i, 'utf8');
  if (len > MAX_FIELDS) throw tooLong();
  bytes[at] = len & 0xff;
  bytes[at + 1] = len >>> 8;
  return at + 2 + len;
}

function tooLong(): MpBusError {
  return new MpBusError(ErrorCodes.encodeFailed, `an actor envelope's action, names and trace must fit in ${MAX_FIELDS} bytes together: use a shorter action name or trace state`);
}

/** Writes the trailer of `e` at `at` (room checked by the caller); answers the message's end. */
function writeTrailer(e: Envelope, bytes: Buffer, at: number): number {
  const from = at;
  let flags: number = e.kind;
  if (e.id !== undefined) {
    flags |= F_ID;
    at = bytes.writeDoubleLE(e.id, at);
  }
  if (e.deadline !== undefined) {
    flags |= F_DEADLINE;
    at = bytes.writeDoubleLE(e.deadline, at);
  }
  at = writeString(bytes, at, e.action);
  if (e.replyTo !== undefined) {
    flags |= F_REPLY_TO;
    at = writeString(bytes, at, e.replyTo);
  }
  if (e.sender !== undefined) {
    flags |= F_SENDER;
    at = writeString(bytes, at, e.sender);
  }
  if (e.trace !== undefined) {
    flags |= F_TRACE;
    at = writeString(bytes, at, e.trace);
  }
  const fields = at - from;
  if (fields > MAX_FIELDS) throw tooLong();
  bytes[at] = fields & 0xff;
  bytes[at + 1] = fields >>> 8;
  bytes[at + 2] = flags;
  bytes[at + 3] = ENVELOPE_MAGIC;
  return at + TAIL;
}

/**
 * Packs `e` with `packr`, which packs into `bytes` in REUSE_BUFFER_MODE (a mailbox's staging
 * area, see `MailboxRef.offerMany`): the payload where msgpackr puts it, the trailer right
 * behind, and msgpackr's position moved past it so the next message follows. When msgpackr moved
 * to a buffer of its own (the staging area was nearly full) or the trailer does not fit behind
 * the payload, the message is made in a buffer of its own instead (sent alone).
 * @throws {MpBusError} ENCODE_FAILED when the payload breaks the value rule or the strings are too long.
 */
export function packEnvelope(e: Envelope, packr: Packr, bytes: Buffer): PackedRange {
  const packed = packr.pack(encodeValue(e.payload, payloadRoot[e.kind]), REUSE_BUFFER_MODE) as PackedRange;
  const bound = trailerBound(e);
  if (packed === bytes && packed.end + bound <= bytes.length) {
    const start = packed.start;
    const end = writeTrailer(e, bytes, packed.end);
    (packr as PositionedPackr).position = end;
    packed.start = start;
    packed.end = end;
    return packed;
  }
  // Apart: the payload's bytes copied out of wherever msgpackr put them, then the trailer.
  const payloadLength = packed.end - packed.start;
  const own = Buffer.allocUnsafe(payloadLength + bound) as PackedRange;
  packed.copy(own, 0, packed.start, packed.end);
  own.start = 0;
  own.end = writeTrailer(e, own, payloadLength);
  return own;
}

/** Answers `s` when the bytes at `at` are its ASCII characters (the field's last string). */
function sameAscii(bytes: Uint8Array, at: number, n: number, s: string): boolean {
  if (s.length !== n) return false;
  for (let i = 0; i < n; i++) if (bytes[at + i] !== s.charCodeAt(i)) return false;
  return true;
}

function bad(why: string): MpBusError {
  return new MpBusError(ErrorCodes.decodeFailed, `a message that is not an actor envelope was dropped (${why}): only actor systems of this version send to actor mailboxes`);
}

/**
 * Decodes the envelopes of one mailbox, one at a time: keeps the last decoded string of each
 * field, so repeated names and actions are not allocated again.
 */
export class EnvelopeReader {
  private lastAction = '';
  private lastReplyTo = '';
  private lastSender = '';

  constructor(private readonly unpackr: Unpackr) {}

  /**
   * The envelope in `bytes[start, end)`.
   * @throws {MpBusError} DECODE_FAILED when those bytes are not an envelope of this form.
   */
  read(bytes: Buffer, start: number, end: number): Envelope {
    if (!(start >= 0 && end <= bytes.length && end - start >= TAIL + 3)) throw bad('too short');
    if (bytes[end - 1] !== ENVELOPE_MAGIC) throw bad('no envelope mark');
    const flags = bytes[end - 2]!;
    if (flags & 0x80) throw bad('unknown flags');
    const fields = bytes[end - 4]! | (bytes[end - 3]! << 8);
    const fieldsEnd = end - TAIL;
    const payloadEnd = fieldsEnd - fields;
    // a payload is at least one byte
    if (payloadEnd <= start) throw bad('fields longer than the message');
    let at = payloadEnd;
    let id: number | undefined;
    let deadline: number | undefined;
    if (flags & F_ID) {
      if (at + 8 > fieldsEnd) throw bad('truncated id');
      id = bytes.readDoubleLE(at);
      at += 8;
    }
    if (flags & F_DEADLINE) {
      if (at + 8 > fieldsEnd) throw bad('truncated deadline');
      deadline = bytes.readDoubleLE(at);
      at += 8;
    }
    const action = this.string(bytes, at, fieldsEnd, 0);
    at = this.next;
    let replyTo: string | undefined;
    let sender: string | undefined;
    let trace: string | undefined;
    if (flags & F_REPLY_TO) {
      replyTo = this.string(bytes, at, fieldsEnd, 1);
      at = this.next;
    }
    if (flags & F_SENDER) {
      sender = this.string(bytes, at, fieldsEnd, 2);
      at = this.next;
    }
    if (flags & F_TRACE) {
      trace = this.string(bytes, at, fieldsEnd, 3);
      at = this.next;
    }
    if (at !== fieldsEnd) throw bad('fields of the wrong length');
    let payload: unknown;
    try {
      payload = this.unpackr.unpack(bytes, { start, end: payloadEnd } as never);
    } catch (err) {
      throw new MpBusError(ErrorCodes.decodeFailed, `an actor envelope's payload could not be decoded (${(err as Error).message}); the message was dropped`, { cause: err });
    }
    return makeEnvelope((flags & 3) as EnvelopeKind, action, payload, id, replyTo, sender, deadline, trace);
  }

  /** Where the last {@link string} ended. */
  private next = 0;

  /** The string at `at` (u16 length, UTF-8), the field's last one again when it is the same; sets {@link next}. */
  private string(bytes: Buffer, at: number, limit: number, field: 0 | 1 | 2 | 3): string {
    if (at + 2 > limit) throw bad('truncated string');
    const n = bytes[at]! | (bytes[at + 1]! << 8);
    const from = at + 2;
    const to = from + n;
    if (to > limit) throw bad('truncated string');
    this.next = to;
    if (field === 3) return bytes.toString('utf8', from, to); // a trace differs per message
    const last = field === 0 ? this.lastAction : field === 1 ? this.lastReplyTo : this.lastSender;
    if (sameAscii(bytes, from, n, last)) return last;
    let ascii = true;
    for (let i = from; i < to; i++) {
      if (bytes[i]! > 0x7f) {
        ascii = false;
        break;
      }
    }
    const s = bytes.toString(ascii ? 'latin1' : 'utf8', from, to);
    if (ascii) {
      if (field === 0) this.lastAction = s;
      else if (field === 1) this.lastReplyTo = s;
      else this.lastSender = s;
    }
    return s;
  }
}
