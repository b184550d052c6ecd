/**
 * Bursts: the messages of one mailbox taken from one drain of the process's inbox, handed over
 * at once as views of the shared buffers (MessageBurst), and the builder that gathers them
 * during a drain (BurstBuilder).
 */
import type { Packr, Unpackr } from 'msgpackr';
import { MpBusError, ErrorCodes } from '../errors.js';

/** Most descriptors one drain returns (the native burst). */
const BURST_MAX = 256;

/**
 * Messages of one mailbox taken from one drain of the process's inbox, handed over at once
 * (see {@link Mailbox.bursts$}): no Buffer, copy or emission per message. Message `i` is
 * `bytes[starts[i] .. starts[i] + lengths[i])`.
 *
 * The bytes are the group's shared buffers themselves, not a copy: they are valid only during
 * the synchronous emission (the buffers go back to the pool at the next drain). Copy what you
 * keep (`Buffer.from(burst.payload(i))`).
 */
export class MessageBurst {
  /** @internal */
  constructor(
    /** Where the payloads are: a view of the shared buffer pool (or of one large message). */
    readonly bytes: Buffer,
    /** Offset of each message in {@link bytes}. */
    readonly starts: Uint32Array,
    /** Length of each message. */
    readonly lengths: Uint32Array,
    /** 1 where the message was sent encoded (msgpackr: use {@link value}), 0 where raw. */
    readonly encoded: Uint8Array,
    /** Messages in the burst (the arrays may be longer). */
    readonly count: number,
    private readonly unpackr: Unpackr,
  ) {}

  /** The bytes of message `i`, a view valid during the emission only. */
  payload(i: number): Buffer {
    this.check(i);
    const start = this.starts[i]!;
    return this.bytes.subarray(start, start + this.lengths[i]!);
  }

  /**
   * Message `i` as {@link Mailbox.messages$} would give it: decoded when it was sent encoded, a
   * copy of its bytes when raw.
   * @throws {MpBusError} DECODE_FAILED when its bytes do not decode.
   */
  value(i: number): unknown {
    this.check(i);
    const start = this.starts[i]!;
    const end = start + this.lengths[i]!;
    if (this.encoded[i] === 0) return Buffer.from(this.bytes.subarray(start, end));
    try {
      return this.unpackr.unpack(this.bytes, { start, end });
    } catch (err) {
      throw new MpBusError(ErrorCodes.decodeFailed, `message ${i} of a burst could not be decoded (${(err as Error).message})`, { cause: err });
    }
  }

  private check(i: number): void {
    if (!(Number.isInteger(i) && i >= 0 && i < this.count))
      throw new MpBusError(ErrorCodes.invalidOption, `message index ${i} is outside this burst of ${this.count}`);
  }
}

/** Messages of one mailbox gathered during one drain, for {@link Mailbox.bursts$}. */
export class BurstBuilder {
  readonly starts = new Uint32Array(BURST_MAX);
  readonly lengths = new Uint32Array(BURST_MAX);
  readonly encoded = new Uint8Array(BURST_MAX);
  count = 0;

  add(start: number, length: number, encoded: boolean): void {
    this.starts[this.count] = start;
    this.lengths[this.count] = length;
    this.encoded[this.count] = encoded ? 1 : 0;
    this.count++;
  }

  /** Hands the gathered messages over as one burst over `bytes` (copies of the arrays: a burst may be kept). */
  take(bytes: Buffer, unpackr: Unpackr): MessageBurst {
    const n = this.count;
    this.count = 0;
    return new MessageBurst(bytes, this.starts.slice(0, n), this.lengths.slice(0, n), this.encoded.slice(0, n), n, unpackr);
  }
}

/** A burst of one for a message that waited for the first burst subscriber (a Buffer was sent raw). */
export function burstOf(value: unknown, packr: Packr, unpackr: Unpackr): MessageBurst {
  const raw = Buffer.isBuffer(value);
  const bytes = raw ? value : Buffer.from(packr.pack(value));
  return new MessageBurst(bytes, Uint32Array.of(0), Uint32Array.of(bytes.length), Uint8Array.of(raw ? 0 : 1), 1, unpackr);
}

/** The messages of a burst as messages$ would give them (copies: the burst's views expire); undecodable ones go to `report`. */
export function burstValues(burst: MessageBurst, report: (err: MpBusError) => void): unknown[] {
  const values: unknown[] = [];
  for (let i = 0; i < burst.count; i++) {
    try {
      values.push(burst.value(i));
    } catch (err) {
      report(err as MpBusError);
    }
  }
  return values;
}
