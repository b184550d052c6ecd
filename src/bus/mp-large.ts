/**
 * The lifetimes of the rte_mp bus's large payloads: values too large for rte_mp's 256-byte param
 * travel in an rte_malloc'd buffer of the group's shared memory (native/mp_payload.cc). This
 * decides when a value goes there, keeps a sent buffer until its TTL (a broadcast is read by every
 * receiver; a unicast receiver frees it earlier), takes a received one out (freeing it when this
 * process is its only reader), and frees everything still held when the bus closes.
 */
import { MpBusError } from '../errors.js';
import type { MpBinding } from '../native/mp.js';
import { decodeValue, encodeValue, inlineCapacity, type MpEnvelope, type LargeRef } from './envelope.js';
import { MpErrorCodes, type MpBusOptions } from './types.js';

/** A value as it travels: inline bytes, or a reference to a shared-memory buffer. */
export type Body = Uint8Array | LargeRef;

export class LargePayloads {
  private readonly outstanding = new Map<LargeRef, NodeJS.Timeout>();

  constructor(
    private readonly native: MpBinding,
    /** The bus's options in force (they may change when the app reopens an implicit bus). */
    private readonly options: () => Required<MpBusOptions>,
  ) {}

  /**
   * `value` encoded, as {@link encode} places it. A Buffer, typed array or string that cannot fit
   * whatever its encoding is refused before it is encoded (64 MiB took ~0.4 s to encode only to
   * be refused).
   */
  encodeValue(value: unknown, target?: Buffer): Body {
    const least = typeof value === 'string' ? value.length : ArrayBuffer.isView(value) ? value.byteLength : 0;
    this.checkSize(least, 'at least ');
    return this.encode(encodeValue(value), target);
  }

  /** Inline if it fits in the param (beside `target`, a request's handler name), else a shared-memory buffer. */
  encode(encoded: Buffer, target?: Buffer): Body {
    if (encoded.length <= inlineCapacity(this.native.mpLimits.maxParamBytes, target)) return encoded;
    this.checkSize(encoded.length, '');
    const { address, token } = this.native.mpLargeAlloc(encoded);
    return { address, token, length: encoded.length };
  }

  private checkSize(bytes: number, bound: string): void {
    const { maxPayloadBytes } = this.options();
    if (bytes > maxPayloadBytes) {
      throw new MpBusError(
        MpErrorCodes.payloadTooLarge,
        `the encoded value is ${bound}${bytes} bytes, over maxPayloadBytes (${maxPayloadBytes}): raise maxPayloadBytes in MpBus.open, or send it in parts`,
      );
    }
  }

  /** Frees a buffer this process allocated (at once: nobody will read it, or every reader did). */
  release(ref: LargeRef): void {
    const timer = this.outstanding.get(ref);
    if (timer) clearTimeout(timer);
    this.outstanding.delete(ref);
    this.native.mpLargeRelease(ref.address, ref.length, ref.token);
  }

  /** Keeps a sent buffer for receivers until the TTL (a unicast receiver frees it earlier). */
  releaseLater(ref: LargeRef): void {
    const timer = setTimeout(() => this.release(ref), this.options().largePayloadTtlMs);
    timer.unref();
    this.outstanding.set(ref, timer);
  }

  /** Frees `body` if it is a buffer (a value that will not be sent after all). */
  drop(body: Body): void {
    if (!(body instanceof Uint8Array)) this.release(body);
  }

  /** Frees a received buffer unread: this process was its only reader and nobody wants it. */
  discard(env: MpEnvelope): void {
    if (env.large) this.native.mpLargeTake(env.large.address, env.large.length, env.large.token, true);
  }

  /** The value an envelope carries; large values are copied out of shared memory (and freed when `exclusive`). */
  open(env: MpEnvelope, exclusive: boolean): unknown {
    let bytes: Uint8Array | undefined = env.inline;
    if (env.large) {
      const taken = this.native.mpLargeTake(env.large.address, env.large.length, env.large.token, exclusive);
      if (!taken) {
        throw new MpBusError(
          MpErrorCodes.payloadGone,
          `the ${env.large.length}-byte value sent by pid ${env.pid} is no longer in shared memory (expired or not an mpbus buffer)`,
        );
      }
      bytes = taken;
    }
    try {
      return decodeValue(bytes!);
    } catch (err) {
      throw new MpBusError(MpErrorCodes.malformed, `malformed mpbus message from pid ${env.pid}: undecodable value (${(err as Error).message})`, {
        cause: err,
      });
    }
  }

  /** Frees every buffer still kept for receivers (the bus closes). */
  releaseAll(): void {
    for (const ref of [...this.outstanding.keys()]) this.release(ref);
  }
}
