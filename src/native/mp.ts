/**
 * Typing of native/mp_*.cc: DPDK's rte_mp IPC and the shared-memory buffers of large payloads.
 * No policy here: names, sizes and fds are validated in src/bus/ before these are called.
 */
import { addon } from './addon.js';

/** A message DPDK delivered to a registered action, copied off DPDK's IPC thread. */
export interface NativeIncoming {
  kind: 'incoming';
  name: string;
  param: Buffer;
  fds: number[];
  /** The sender's rte_mp socket path: where a reply goes. */
  peer: string;
}

/** One reply of a request, as DPDK collected it (the sender is not known to DPDK). */
export interface NativeReply {
  param: Buffer;
  fds: number[];
}

/** What `rte_mp_request_async` reported, delivered when all replied or the timeout passed. */
export interface NativeRequestDone {
  kind: 'requestDone';
  name: string;
  /** The param of the request this completes (mpbus reads its correlation id from it). */
  requestParam: Buffer;
  sent: number;
  received: number;
  replies: NativeReply[];
}

/**
 * A queued send (`mpSendQueued`) returned: reported when it failed, when it asked to be told,
 * and for the first success after a failure.
 * `code`/`errno`/`message` are present only on failure (rte_errno: EAGAIN when a peer's queue
 * stayed full past the socket's send timeout, ECANCELED when dropped at close).
 */
export interface NativeSendDone {
  kind: 'sendDone';
  name: string;
  ticket: number;
  code?: string;
  errno?: number;
  message?: string;
}

export type NativeMpEvent = NativeIncoming | NativeRequestDone | NativeSendDone;

export interface MpBinding {
  /** Starts delivering DPDK events, in bursts, to `drain` on the JS thread. */
  mpOpen(drain: (events: NativeMpEvent[]) => void): void;
  /**
   * Stops delivery (later events are dropped and their fds closed), after the sender thread
   * finished its queue: returns the outcomes it reported that were not delivered yet.
   */
  mpClose(): NativeSendDone[];
  /** Spin up to `maxUs` before the event loop sleeps, within `windowUs` of traffic; (0, 0): off. */
  mpSetSpin(windowUs: number, maxUs: number): void;
  mpRegister(name: string): void;
  mpUnregister(name: string): void;
  mpSend(name: string, param: Uint8Array | undefined, fds: number[] | undefined): void;
  /**
   * Queues an `rte_mp_sendmsg` for the sender thread (FIFO) and returns its ticket (1, 2, ...).
   * fds are duplicated at once (the caller keeps its own). `notify`: report the outcome as a
   * `sendDone` event; failures are reported either way.
   */
  mpSendQueued(name: string, param: Uint8Array | undefined, fds: number[] | undefined, notify: boolean): number;
  /** Counters of queued sends: `queued - done` is the backlog. */
  mpSendStats(): { queued: number; done: number; failed: number };
  /**
   * Sets SO_SNDTIMEO on DPDK's own rte_mp socket (found by its address), so a send to a peer
   * whose queue is full fails with EAGAIN after `ms` instead of blocking. Returns its fd, or -1.
   * May be called again to change the timeout.
   */
  mpBoundSendTimeout(ms: number): number;
  mpRequestAsync(name: string, param: Uint8Array | undefined, fds: number[] | undefined, timeoutMs: number): void;
  mpRequestSync(
    name: string,
    param: Uint8Array | undefined,
    fds: number[] | undefined,
    timeoutMs: number,
  ): Promise<{ sent: number; received: number; timedOut: boolean; replies: NativeReply[] }>;
  mpReply(name: string, param: Uint8Array | undefined, fds: number[] | undefined, peer: string): void;
  /** Copies `bytes` into an rte_malloc'd buffer in the group's shared memory. */
  mpLargeAlloc(bytes: Uint8Array): { address: number; token: number };
  /** Copies a buffer another process sent out of shared memory; null if the reference is not live. */
  mpLargeTake(address: number, length: number, token: number, exclusive: boolean): Buffer | null;
  /** The sender's release of a buffer it sent: frees it unless a receiver already did. */
  mpLargeRelease(address: number, length: number, token: number): boolean;
  readonly mpLimits: { maxNameBytes: number; maxParamBytes: number; maxFds: number; largeHeaderBytes: number };
}

/** The rte_mp functions of the addon (loaded on first use). */
export function mpNative(): MpBinding {
  return addon() as unknown as MpBinding;
}
