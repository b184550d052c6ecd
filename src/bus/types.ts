/** Public types of the rte_mp bus. */
import type { MpBusError } from '../errors.js';

/** Error codes the rte_mp bus raises (besides DPDK errno names such as `EEXIST`). */
export const MpErrorCodes = {
  /** A name that DPDK would refuse (empty, too long, NUL) or that mpbus reserves. */
  invalidName: 'INVALID_NAME',
  /** A raw payload larger than the 256-byte param, or a value larger than `maxPayloadBytes`. */
  payloadTooLarge: 'E2BIG',
  /** More than 8 fds, or fds that are not non-negative integers. */
  invalidFds: 'INVALID_FDS',
  invalidOption: 'INVALID_OPTION',
  /** msgpackr cannot encode the value (function, symbol, cycle, too-large BigInt...). */
  encodeFailed: 'ENCODE_FAILED',
  /** The peer has no handler for that name (TypeScript peers answer this at once). */
  noHandler: 'NO_HANDLER',
  /** The peer's handler threw or rejected. */
  remoteError: 'REMOTE_ERROR',
  /** Not every peer replied within the timeout. */
  timeout: 'ETIMEDOUT',
  /** No peer to send to (a primary with no secondaries, or no primary). */
  noPeer: 'NO_PEER',
  /** A message on a registered name that carries the mpbus magic but does not hold together. */
  malformed: 'MALFORMED_MESSAGE',
  /** A large value's shared-memory reference is not live (expired, freed or forged). */
  payloadGone: 'PAYLOAD_GONE',
  /** A reply that came after the requester's deadline, dropped so it cannot answer another request. */
  lateReply: 'LATE_REPLY',
  /** A handler's return value cannot be sent back (raw peer expecting bytes, encode failure...). */
  replyFailed: 'REPLY_FAILED',
  /** A message the primary queued did not reach every secondary (one left its socket full, or the bus closed). */
  sendFailed: 'SEND_FAILED',
  /** The bus (or its runtime) is closed. */
  closed: 'CLOSED',
} as const;

/** The process role of a sender, as mpbus peers announce it. */
export type MpRole = 'primary' | 'secondary';

/** One message received on a name (messages$), or the request a handler is called with. */
export interface MpMessage<T = unknown> {
  /** The rte_mp action name it arrived on. */
  readonly name: string;
  /** The decoded value; for a raw message (no mpbus header, e.g. from a C program), its bytes. */
  readonly value: T;
  /** True when the message had no mpbus header: `value` is then the param's bytes as sent. */
  readonly raw: boolean;
  /** The sender's pid (mpbus peers only). */
  readonly pid?: number;
  /** The sender's role (mpbus peers only). */
  readonly role?: MpRole;
  /** File descriptors that came with it, now open in this process: the receiver closes them. */
  readonly fds: number[];
}

/** One reply to a request. */
export interface MpReply<T = unknown> {
  /** False when the peer's handler failed or it has no handler: see `error`. */
  readonly ok: boolean;
  readonly value?: T;
  readonly error?: MpBusError;
  readonly raw: boolean;
  readonly pid?: number;
  readonly role?: MpRole;
  /** File descriptors sent with the reply, open in this process: the receiver closes them. */
  readonly fds: number[];
}

/** What a request produced: DPDK's counts and the replies. A timeout is a result (`complete` false). */
export interface MpRequestResult<T = unknown> {
  /** How many peers the request went to (DPDK's nb_sent). */
  readonly sent: number;
  /** How many replied in time (DPDK's nb_received, minus replies that answered another request). */
  readonly received: number;
  /** `received === sent`: nobody timed out, and the request reached every peer. */
  readonly complete: boolean;
  readonly replies: MpReply<T>[];
  /**
   * Primary: the request could not be sent to some secondary (its socket stayed full past the
   * send timeout: stopped or starved); `sent` counts only those it reached.
   */
  readonly unreached?: boolean;
}

export interface MpSendOptions {
  /** Up to 8 open fds to pass along (duplicated into the receiver; the sender keeps its own). */
  fds?: number[] | undefined;
  /** Send `value` (a Uint8Array of at most 256 bytes) as the whole param, with no mpbus header. */
  raw?: boolean | undefined;
}

/** Options of {@link MpBus.send} and {@link MpBus.broadcast}. */
export interface MpMessageOptions extends MpSendOptions {
  /**
   * Called once the message has left: with no argument when DPDK sent it to every peer, with a
   * `SEND_FAILED` error (DPDK's errno in `errno`) when it could not reach one of them (a
   * secondary that has not read its socket for `PEER_SEND_TIMEOUT_MS`, 100 ms: stopped
   * or starved), or `CLOSED` when the bus closed first. A failure given to `onSent` is not also
   * reported on `errors$`. In the primary this runs after the sender thread's `rte_mp_sendmsg`;
   * in a secondary, which sends on the JS thread, at the next microtask.
   */
  onSent?: ((error?: MpBusError) => void) | undefined;
}

export interface MpRequestOptions extends MpSendOptions {
  /** How long to wait for replies (default 5000 ms). */
  timeoutMs?: number | undefined;
  /**
   * `'async'` (default): `rte_mp_request_async`, nothing blocks. `'sync'`: `rte_mp_request_sync`
   * on a libuv pool thread (the event loop still runs; costs a thread hop per request).
   */
  mode?: 'async' | 'sync' | undefined;
}

/** Returned by a handler to reply with fds as well as a value. */
export class MpReplyWith<T = unknown> {
  constructor(
    readonly value: T,
    readonly fds: number[],
  ) {}
}

/** `return replyWith(value, { fds: [fd] })` from a handler sends fds along with the reply. */
export function replyWith<T>(value: T, options: { fds: number[] }): MpReplyWith<T> {
  return new MpReplyWith(value, options.fds);
}

/** A request handler: its return value (or promise) is the reply; a throw becomes an error reply. */
export type MpHandler<T = unknown, R = unknown> = (value: T, message: MpMessage<T>) => R | MpReplyWith<R> | Promise<R | MpReplyWith<R>>;

export interface MpBusOptions {
  /** Requests in flight at once per process over mpbus lanes (default 16). */
  lanes?: number | undefined;
  /** Largest encoded value (default 64 MiB); values over ~230 bytes travel in shared memory. */
  maxPayloadBytes?: number | undefined;
  /** How long a sender keeps a large message's buffer for receivers (default 30 s). */
  largePayloadTtlMs?: number | undefined;
  /** How long a request slot rests after a timeout, so a late reply finds no request (default 1000 ms). */
  quarantineMs?: number | undefined;
  /**
   * Before the event loop sleeps, spin up to `spinMaxUs` (default 50) waiting for DPDK's next
   * event, but only within `spinWindowUs` (default 1000) of sending a request or receiving a
   * message: under traffic this saves a thread wake-up per event; idle, nothing spins.
   * `spinMaxUs: 0` turns it off.
   */
  spinMaxUs?: number | undefined;
  spinWindowUs?: number | undefined;
}
