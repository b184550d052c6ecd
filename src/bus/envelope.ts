/**
 * The mpbus envelope: a small header at the start of the 256-byte rte_mp param, so TypeScript
 * peers know who sent a message (pid, role), which request a reply answers (correlation id),
 * until when an answer is still wanted (deadline), and where a large value lives.
 *
 * ```
 * offset size
 *  0     4   magic "mpB" + version 1 (0x6d 0x70 0x42 0x01)
 *  4     1   kind (MpEnvelopeKind)
 *  5     1   flags: bit 0 = the value is in a shared-memory buffer (a 16-byte reference follows)
 *  6     1   sender role: 1 primary, 2 secondary
 *  7     1   length of the handler name (lane requests only), else 0
 *  8     4   sender pid (u32 LE)
 * 12     4   correlation id (u32 LE)
 * 16     8   deadline, CLOCK_MONOTONIC milliseconds (f64 LE), requests only, else 0
 * 24     n   handler name (UTF-8), then the msgpack value, or the reference:
 *            address (f64 LE), length (u32 LE), token (u32 LE)
 * ```
 * Messages without the magic are "raw": bytes from a C program, delivered as they are.
 */
import { Packr } from 'msgpackr';
import { MpBusError } from '../errors.js';
import { MpErrorCodes } from './types.js';
import { encodeValue as wireForm } from './value-codec.js';

export const ENVELOPE_HEADER_BYTES = 24;
export const LARGE_REF_BYTES = 16;
const MAGIC = 0x0142706d; // bytes 6d 70 42 01 read as u32 LE

export const enum MpEnvelopeKind {
  message = 1,
  request = 2,
  reply = 3,
  errorReply = 4,
  noHandler = 5,
}

const FLAG_LARGE = 1;

export type Role = 'primary' | 'secondary';

/** Where a value too big for the param lives in shared memory. */
export interface LargeRef {
  address: number;
  length: number;
  token: number;
}

export interface MpEnvelope {
  kind: MpEnvelopeKind;
  role: Role;
  pid: number;
  correlationId: number;
  deadlineMs: number;
  /** The handler name of a lane request ('' otherwise). */
  target: string;
  /** The msgpack bytes of the value (a view into the param), unless `large` is set. */
  inline?: Uint8Array;
  large?: LargeRef;
}

const packr = new Packr({ useRecords: false, moreTypes: true });

/** CLOCK_MONOTONIC in milliseconds: the same clock in every process of the machine. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/**
 * msgpack-encodes a value by the rule actor messages follow (docs/actors.md, "What a message can
 * hold": `Map`, `Set`, errors, registered classes and shared references kept), or throws
 * ENCODE_FAILED, naming where the part that cannot cross is, before anything is sent.
 */
export function encodeValue(value: unknown): Buffer {
  if (typeof value === 'function' || typeof value === 'symbol') {
    throw new MpBusError(MpErrorCodes.encodeFailed, `a ${typeof value} cannot be sent: send plain data (objects, arrays, strings, numbers, bytes...)`);
  }
  // (a function or symbol inside an object would otherwise vanish, a Map arrive as an object)
  const form = wireForm(value, 'value');
  try {
    return packr.pack(form);
  } catch (err) {
    throw new MpBusError(MpErrorCodes.encodeFailed, `the value cannot be msgpack-encoded: ${(err as Error).message}`, { cause: err });
  }
}

export function decodeValue(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}

/** What an envelope carries besides the value. */
export interface MpEnvelopeHead {
  kind: MpEnvelopeKind;
  role: Role;
  pid: number;
  correlationId: number;
  deadlineMs: number;
  target?: Buffer;
}

/** Bytes of the param left for an inline value after the header (and target name). */
export function inlineCapacity(maxParamBytes: number, target?: Buffer): number {
  return maxParamBytes - ENVELOPE_HEADER_BYTES - (target?.length ?? 0);
}

/** Builds the param: header, target name, then the inline value or the large reference. */
export function writeEnvelope(head: MpEnvelopeHead, body: Uint8Array | LargeRef): Buffer {
  const targetLen = head.target?.length ?? 0;
  const isLarge = !(body instanceof Uint8Array);
  const bodyLen = isLarge ? LARGE_REF_BYTES : body.length;
  const buf = Buffer.allocUnsafe(ENVELOPE_HEADER_BYTES + targetLen + bodyLen);
  buf.writeUInt32LE(MAGIC, 0);
  buf[4] = head.kind;
  buf[5] = isLarge ? FLAG_LARGE : 0;
  buf[6] = head.role === 'primary' ? 1 : 2;
  buf[7] = targetLen;
  buf.writeUInt32LE(head.pid >>> 0, 8);
  buf.writeUInt32LE(head.correlationId >>> 0, 12);
  buf.writeDoubleLE(head.deadlineMs, 16);
  let at = ENVELOPE_HEADER_BYTES;
  if (head.target) at += head.target.copy(buf, at);
  if (isLarge) {
    buf.writeDoubleLE(body.address, at);
    buf.writeUInt32LE(body.length >>> 0, at + 8);
    buf.writeUInt32LE(body.token >>> 0, at + 12);
  } else {
    buf.set(body, at);
  }
  return buf;
}

/** True if the param starts with the mpbus magic (otherwise it is a raw message). */
export function hasEnvelope(param: Uint8Array): boolean {
  return param.length >= 4 && param[0] === 0x6d && param[1] === 0x70 && param[2] === 0x42 && param[3] === 0x01;
}

/** The correlation id of an envelope (the bytes at offset 12), undefined for a raw message. */
export function correlationIdOf(param: Buffer): number | undefined {
  return hasEnvelope(param) ? param.readUInt32LE(12) : undefined;
}

/**
 * Reads an envelope, checking every field another process wrote. Throws MALFORMED_MESSAGE when
 * the magic is there but the rest does not hold together.
 */
export function readEnvelope(param: Buffer): MpEnvelope {
  const bad = (why: string): MpBusError => new MpBusError(MpErrorCodes.malformed, `malformed mpbus message: ${why}`);
  if (param.length < ENVELOPE_HEADER_BYTES) throw bad(`${param.length} bytes, shorter than the ${ENVELOPE_HEADER_BYTES}-byte header`);
  const kind = param[4]!;
  if (kind < MpEnvelopeKind.message || kind > MpEnvelopeKind.noHandler) throw bad(`unknown kind ${kind}`);
  const flags = param[5]!;
  if ((flags & ~FLAG_LARGE) !== 0) throw bad(`unknown flags 0x${flags.toString(16)}`);
  const roleByte = param[6]!;
  if (roleByte !== 1 && roleByte !== 2) throw bad(`unknown role ${roleByte}`);
  const targetLen = param[7]!;
  const bodyAt = ENVELOPE_HEADER_BYTES + targetLen;
  if (bodyAt > param.length) throw bad(`name length ${targetLen} overruns the message`);
  const deadlineMs = param.readDoubleLE(16);
  if (!Number.isFinite(deadlineMs) || deadlineMs < 0) throw bad('invalid deadline');
  const env: MpEnvelope = {
    kind,
    role: roleByte === 1 ? 'primary' : 'secondary',
    pid: param.readUInt32LE(8),
    correlationId: param.readUInt32LE(12),
    deadlineMs,
    target: targetLen > 0 ? param.toString('utf8', ENVELOPE_HEADER_BYTES, bodyAt) : '',
  };
  if ((flags & FLAG_LARGE) !== 0) {
    if (param.length !== bodyAt + LARGE_REF_BYTES) throw bad('a large-value reference must be 16 bytes');
    const address = param.readDoubleLE(bodyAt);
    if (!Number.isSafeInteger(address) || address <= 0) throw bad('invalid shared-memory address');
    env.large = { address, length: param.readUInt32LE(bodyAt + 8), token: param.readUInt32LE(bodyAt + 12) };
  } else {
    env.inline = param.subarray(bodyAt);
  }
  return env;
}
