/**
 * Sending to one named mailbox, wherever in the group it lives (MailboxRef): the name's address
 * followed when it moves, single and batched sends, and the queue of sends that wait for room,
 * retried in order until they go or time out.
 */
import { RESERVE_START_SPACE, REUSE_BUFFER_MODE } from 'msgpackr';
import { MpBusError, ErrorCodes, isTooLarge } from '../errors.js';
import { SendStatus } from '../native/mailbox.js';
import { hugepageBounds, hugepageBytes, hugepageInfo, mib, OPEN_FILES_FIX } from '../runtime/environment.js';
import { Runtime } from '../runtime/runtime.js';
import { registry, type MailboxAddress } from './registry.js';
import type { MailboxPort } from './mailbox-port.js';
import { CODEC_MSGPACK, CODEC_RAW, OfferStatus, type SendOptions, type TrySendResult } from './mailbox-types.js';
import { packingAside } from './shared-pack-buffer.js';

const DEFAULT_TIMEOUT_MS = 5000;
/** Retries on the next turn of the event loop before a sender sleeps until the receiver drains. */
const IMMEDIATE_RETRIES = 16;

/** Where a send that found no room waits for it (the receive loop, src/bus/mailbox-pump.ts). */
export interface RoomWatch {
  /** Resolves when the mailbox at `at` may have room (see {@link MailboxRef.waitForRoom}). */
  awaitRoom(at: MailboxAddress): Promise<void>;
}

/**
 * @internal What goes around the next value {@link MailboxRef.offerMany} packs, set by `valueOf`
 * for each value it returns: `bytes`, msgpack of what precedes the value in the message (at most
 * 255 bytes) or undefined, and the first `tailLength` bytes of `tail`, msgpack of what follows it.
 */
export interface PackFrame {
  bytes: Uint8Array | undefined;
  tail: Uint8Array;
  tailLength: number;
}

interface PendingSend {
  codec: number;
  bytes: Uint8Array;
  deadline: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** A handle to send to one named mailbox, wherever in the group it lives. */
export class MailboxRef<T = unknown> {
  private address: MailboxAddress | undefined;
  /** When (`performance.now()`) a send last found the name's known address gone, and none other. */
  private lostAtMs: number | undefined;
  private readonly queue: PendingSend[] = [];
  private retryTimer: NodeJS.Immediate | undefined;
  private waitingForRoom = false;
  private idleRetries = 0;

  /** @internal */
  constructor(
    private readonly port: MailboxPort,
    private readonly room: RoomWatch,
    readonly name: string,
  ) {}

  /**
   * Sends `value` (msgpackr-encoded) if there is room now. Never waits and never drops: the
   * answer says whether it was sent or which bound was hit. While earlier {@link send}s to
   * this mailbox wait, it answers 'mailbox-full' (messages keep their order).
   * @throws {MpBusError} NO_SUCH_MAILBOX, MAILBOX_CLOSED, PEER_GONE (the owner process died or left);
   *   ENCODE_FAILED when msgpack cannot encode `value` (a symbol, a circular structure);
   *   MESSAGE_TOO_LARGE when it is larger than the group's hugepage memory can hold (all the
   *   machine's hugepages; or the heap refused its block and no large message in flight would
   *   give memory back: the free hugepages, a hugetlb cgroup's limit, a hugetlbfs mount's
   *   `size=`, the open-files limit, `--socket-limit`).
   */
  trySend(value: T): TrySendResult {
    if (this.queue.length > 0) return 'mailbox-full';
    const packed = this.pack(value);
    return this.attempt(CODEC_MSGPACK, packed, packed.start, packed.end);
  }

  /** `value` packed by the port's packr, or ENCODE_FAILED naming the mailbox and why. */
  private pack(value: T): Buffer & { start: number; end: number } {
    try {
      return this.port.packr.pack(value, REUSE_BUFFER_MODE) as Buffer & { start: number; end: number };
    } catch (err) {
      throw this.encodeFailed(err);
    }
  }

  private encodeFailed(err: unknown, index?: number): MpBusError {
    const why = err instanceof RangeError ? `${err.message}: nested too deeply, or circular` : err instanceof Error ? err.message : String(err);
    const which = index === undefined ? 'a value' : `values[${index}]`;
    const sent = index === undefined ? '' : ` (the ${index} before it were sent)`;
    return new MpBusError(
      ErrorCodes.encodeFailed,
      `${which} for mailbox '${this.name}' cannot be encoded as msgpack: ${why}${sent}; send plain data (no symbols, functions or cycles)`,
      {
        cause: err,
      },
    );
  }

  /**
   * @internal {@link trySend} for a caller that handles every outcome itself (the actor
   * transport): an {@link OfferStatus} number, translated once by the caller, and no exception
   * for a name that is not there (or no longer).
   */
  offer(value: T): number {
    if (this.queue.length > 0) return SendStatus.mailboxFull;
    const packed = this.port.packr.pack(value, REUSE_BUFFER_MODE) as Buffer & { start: number; end: number };
    const status = this.sendStatus(CODEC_MSGPACK, packed, packed.start, packed.end);
    if (status === SendStatus.heapShort) throw this.heapShort(packed.end - packed.start);
    return status;
  }

  /** Like {@link trySend} for bytes sent as they are (no codec); the receiver gets a Buffer. */
  trySendRaw(bytes: Uint8Array): TrySendResult {
    if (this.queue.length > 0) return 'mailbox-full';
    return this.attempt(CODEC_RAW, bytes, 0, bytes.length);
  }

  /**
   * Sends `value`, waiting (without blocking the event loop) while the mailbox is full.
   * Resolves once the message is in the receiver's inbox.
   * @throws {MpBusError} (rejects) SEND_TIMEOUT after `timeoutMs`, or as {@link trySend} throws.
   */
  send(value: T, options?: SendOptions): Promise<void> {
    try {
      const packed = this.pack(value);
      return this.sendBytes(CODEC_MSGPACK, packed, packed.start, packed.end, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Like {@link send} for bytes sent as they are (no codec). */
  sendRaw(bytes: Uint8Array, options?: SendOptions): Promise<void> {
    try {
      return this.sendBytes(CODEC_RAW, bytes, 0, bytes.length, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Messages waiting in the mailbox, or undefined when it does not exist (now). */
  depth(): number | undefined {
    const at = this.address ?? registry.lookup(this.name);
    if (!at) return undefined;
    const d = this.port.nativeDepth(at);
    return d < 0 ? undefined : d;
  }

  /** Sends queued for want of room. */
  get waiting(): number {
    return this.queue.length;
  }

  private sendBytes(codec: number, bytes: Uint8Array, start: number, end: number, options?: SendOptions): Promise<void> {
    const timeoutMs = options?.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(timeoutMs >= 0)) throw new MpBusError(ErrorCodes.invalidOption, `timeoutMs must be >= 0, got ${String(timeoutMs)}`);
    if (end - start > this.port.maxInlineBytes) this.checkFits(end - start);
    if (this.queue.length === 0 && this.attempt(codec, bytes, start, end) === 'sent') return Promise.resolve();
    const copy = Uint8Array.prototype.slice.call(bytes, start, end);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ codec, bytes: copy, deadline: performance.now() + timeoutMs, resolve, reject });
      this.scheduleRetry();
    });
  }

  private attempt(codec: number, bytes: Uint8Array, start: number, end: number): TrySendResult {
    if (end - start > this.port.maxInlineBytes) this.checkFits(end - start);
    const status = this.sendStatus(codec, bytes, start, end);
    switch (status) {
      case SendStatus.ok:
        return 'sent';
      case SendStatus.mailboxFull:
        return 'mailbox-full';
      case SendStatus.inboxFull:
        return 'inbox-full';
      case SendStatus.noBuffers:
        return 'no-buffers';
      case SendStatus.heapShort:
        throw this.heapShort(end - start);
      default:
        throw this.failure(status);
    }
  }

  /**
   * A message of `bytes` (one larger than a pool buffer, sent in a block of the hugepage heap)
   * that could never be sent, larger than every hugepage of the machine: MESSAGE_TOO_LARGE now,
   * rather than 'no-buffers' until the send's timeout.
   */
  private checkFits(bytes: number): void {
    const total = (machineHugepageBytes ??= hugepageBytes() ?? Infinity);
    if (bytes < total) return;
    throw new MpBusError(
      ErrorCodes.messageTooLarge,
      `a message of ${mib(bytes)} for mailbox '${this.name}' is larger than all the machine's hugepages (${mib(total)}): it can never be sent; send it in parts, or reserve more hugepages`,
    );
  }

  /**
   * A large message DPDK's heap could not give a block, while no large message of the group in
   * flight would give memory back: MESSAGE_TOO_LARGE now, naming the memory that is short (it
   * waited for its whole timeout, asking the heap again and again, before).
   */
  private heapShort(bytes: number): MpBusError {
    const { free, sizeKb } = hugepageInfo();
    const bounds = hugepageBounds(bytes, Runtime.current()?.group.activeHugeDir());
    return new MpBusError(
      ErrorCodes.messageTooLarge,
      `a message of ${mib(bytes)} for mailbox '${this.name}' cannot get a block of the group's hugepage memory now: DPDK's heap refused it, and no large message in flight would give memory back (the machine has ${mib(free * sizeKb * 1024)} of hugepages free${bounds.note === '' ? '' : `; ${bounds.note}`}); send it in parts, ${bounds.filesShort ? `${OPEN_FILES_FIX}, ` : ''}or give the group more hugepage memory (reserve more hugepages, raise the hugetlb limit: a pod's hugepages-2Mi, mount the hugetlbfs volume larger, or --socket-limit)`,
    );
  }

  /** One send, following the name once if it moved: an {@link OfferStatus}. */
  private sendStatus(codec: number, bytes: Uint8Array, start: number, end: number): number {
    this.port.assertOpen(); // (before the name's lookup, which needs the runtime)
    for (let tries = 0; ; tries++) {
      const at = this.address ?? registry.lookup(this.name);
      if (!at) return OfferStatus.noSuchMailbox;
      this.address = at;
      const status = this.port.nativeSend(at, codec, bytes, start, end);
      if (status < SendStatus.peerGone || status === SendStatus.heapShort || !this.moved(at, tries)) return status;
    }
  }

  /** The mailbox at `at` closed or its process is gone: true when the name now lives elsewhere (send there, once). */
  private moved(at: MailboxAddress, tries: number): boolean {
    this.address = undefined;
    const now = tries > 0 ? undefined : registry.lookup(this.name);
    if (!now || (now.slot === at.slot && now.generation === at.generation && now.id === at.id)) {
      this.lostAtMs = performance.now();
      return false;
    }
    this.address = now;
    return true;
  }

  /** The error of a send that found no mailbox (an {@link OfferStatus} past the bounds). */
  private failure(status: number): MpBusError {
    if (status === OfferStatus.noSuchMailbox) return new MpBusError(ErrorCodes.noSuchMailbox, `no mailbox named '${this.name}' is open in the group`);
    if (status === SendStatus.peerGone)
      return new MpBusError(ErrorCodes.peerGone, `the process that owned mailbox '${this.name}' is gone (it died or left the group)`);
    return new MpBusError(ErrorCodes.mailboxClosed, `mailbox '${this.name}' was closed`);
  }

  /**
   * Sends as many of `values` as there is room for now, in order, with one native call per
   * batch of up to 256 small messages (larger ones go one by one). Returns how many were sent:
   * the first `n`; the rest were not (the mailbox, inbox or pool is full), like {@link trySend}.
   * @throws {MpBusError} as {@link trySend}; ENCODE_FAILED naming the first value that does not
   *   encode, MESSAGE_TOO_LARGE for the first that cannot have the memory (those before it were
   *   sent).
   */
  trySendMany(values: readonly T[]): number {
    if (!Array.isArray(values)) throw notAnArray('trySendMany', 'values', values);
    let unencodable: MpBusError | undefined;
    const sent = this.offerMany(
      values.length,
      (i) => values[i]!,
      (i, err) => (unencodable = isTooLarge(err) ? err : this.encodeFailed(err, i)),
    );
    if (unencodable !== undefined) throw unencodable;
    if (sent < 0) throw this.failure(-sent);
    return sent;
  }

  /**
   * @internal {@link trySendMany} for a caller that handles every outcome itself (the actor
   * transport): sends `valueOf(0)`, `valueOf(1)`, ... (up to `count`) in order while there is
   * room, each value packed before the next is asked for, and answers how many went, or
   * -{@link OfferStatus} when none went because the name is not there (no exception). With
   * `onEncodeError`, a value that does not encode ends the call instead of throwing: the values
   * before it are sent, and it is reported with its index (the count returned then). With
   * `frame`, each message is `frame.bytes`, the value packed, then `frame`'s tail (as `valueOf`
   * left them): the caller writes the parts of a message that it sends often or that are simple
   * (an actor envelope's head, its id and addresses) itself, and msgpackr packs only the value,
   * in the space it reserves before it. With `until` (a
   * `performance.now()` time), no new batch or large message is started after it: the caller
   * sends the rest on a later turn, so that a run of large messages does not hold the event loop.
   */
  offerMany(count: number, valueOf: (i: number) => T, onEncodeError?: (i: number, err: unknown) => void, frame?: PackFrame, until?: number): number {
    if (this.queue.length > 0) return 0;
    // The staging area is msgpackr's buffer only for the batch: other packs of the process go on
    // where they were (a reply packed for NATS after an earlier batch landed in the staging area,
    // and the next batch wrote over it before the NATS client sent it).
    return packingAside(this.port.stagingPackr, () => this.offerBatches(count, valueOf, onEncodeError, frame, until));
  }

  private offerBatches(
    count: number,
    valueOf: (i: number) => T,
    onEncodeError: ((i: number, err: unknown) => void) | undefined,
    frame: PackFrame | undefined,
    until: number | undefined,
  ): number {
    const { bytes, bounds } = this.port.staging;
    const packr = this.port.stagingPackr;
    const max = this.port.maxInlineBytes;
    let sent = 0;
    while (sent < count) {
      if (until !== undefined && sent > 0 && performance.now() >= until) return sent;
      packr.useBuffer(bytes);
      let k = 0;
      let single: Uint8Array | undefined;
      let encodeError: unknown;
      let failed = false;
      while (2 * k < bounds.length && sent + k < count) {
        let packed: Buffer & { start: number; end: number };
        let tailLength = 0;
        try {
          const value = valueOf(sent + k);
          const head = frame?.bytes;
          if (head === undefined) packed = packr.pack(value, REUSE_BUFFER_MODE) as Buffer & { start: number; end: number };
          else {
            packed = packr.pack(value, REUSE_BUFFER_MODE | RESERVE_START_SPACE | head.length) as Buffer & { start: number; end: number };
            // byte by byte: TypedArray.prototype.set costs more than a short copy (a builtin call and its checks)
            for (let b = 0, o = packed.start; b < head.length; b++, o++) packed[o] = head[b]!;
          }
          tailLength = frame?.tailLength ?? 0;
        } catch (err) {
          if (!onEncodeError) throw err;
          encodeError = err;
          failed = true;
          break;
        }
        const end = packed.end + tailLength;
        if (packed !== bytes || end - packed.start > max || end > bytes.length) {
          // Too big for one buffer, or msgpackr moved to a buffer of its own (the staging area
          // was nearly full), or the tail would not fit after it: send it alone, after the batch so far.
          single = new Uint8Array(end - packed.start);
          single.set(packed.subarray(packed.start, packed.end));
          if (tailLength > 0) single.set(frame!.tail.subarray(0, tailLength), packed.end - packed.start);
          break;
        }
        if (tailLength > 0) {
          const tail = frame!.tail;
          for (let b = 0, o = packed.end; b < tailLength; b++, o++) bytes[o] = tail[b]!;
          // msgpackr's next value goes after the tail, not over it
          packr.position = end;
        }
        bounds[2 * k] = packed.start;
        bounds[2 * k + 1] = end;
        k++;
      }
      const n = this.sendManyStatus(CODEC_MSGPACK, k);
      // A name found missing after some went: they count; the next send reports it.
      if (n < 0) return sent > 0 ? sent : n;
      sent += n;
      if (n < k) return sent;
      if (failed) {
        onEncodeError!(sent, encodeError);
        return sent;
      }
      if (single) {
        const status = this.sendStatus(CODEC_MSGPACK, single, 0, single.length);
        if (status === SendStatus.heapShort) {
          // like a value that does not encode: this one cannot go, those before it went
          const err = this.heapShort(single.length);
          if (!onEncodeError) throw err;
          onEncodeError(sent, err);
          return sent;
        }
        if (status !== SendStatus.ok) return status < SendStatus.peerGone || sent > 0 ? sent : -status;
        sent++;
      }
    }
    return sent;
  }

  trySendManyRaw(payloads: readonly Uint8Array[]): number {
    if (!Array.isArray(payloads)) throw notAnArray('trySendManyRaw', 'payloads', payloads);
    if (this.queue.length > 0) return 0;
    let sent = 0;
    while (sent < payloads.length) {
      const { bytes, bounds } = this.port.staging;
      const max = this.port.maxInlineBytes;
      let k = 0;
      let offset = 0;
      let single: Uint8Array | undefined;
      while (2 * k < bounds.length && sent + k < payloads.length) {
        const p = payloads[sent + k]!;
        if (p.length > max || offset + p.length > bytes.length) {
          single = p;
          break;
        }
        bytes.set(p, offset);
        bounds[2 * k] = offset;
        offset += p.length;
        bounds[2 * k + 1] = offset;
        k++;
      }
      const n = this.attemptMany(CODEC_RAW, k);
      sent += n;
      if (n < k) return sent;
      if (single) {
        if (this.attempt(CODEC_RAW, single, 0, single.length) !== 'sent') return sent;
        sent++;
      }
    }
    return sent;
  }

  private attemptMany(codec: number, count: number): number {
    const n = this.sendManyStatus(codec, count);
    if (n < 0) throw this.failure(-n);
    return n;
  }

  /** One batched send of the staging area's first `count` messages, following the name once if it moved: how many went, or -{@link OfferStatus}. */
  private sendManyStatus(codec: number, count: number): number {
    if (count === 0) return 0;
    this.port.assertOpen();
    for (let tries = 0; ; tries++) {
      const at = this.address ?? registry.lookup(this.name);
      if (!at) return -OfferStatus.noSuchMailbox;
      this.address = at;
      const { bytes, bounds } = this.port.staging;
      const result = this.port.nativeSendMany(at, codec, bytes, bounds, count);
      if (result >= 0) return result;
      if (-result < SendStatus.peerGone) return 0;
      if (!this.moved(at, tries)) return result;
    }
  }

  /** @internal true when nothing waits to be sent (no send queued for room, no retry pending). */
  get idle(): boolean {
    return this.queue.length === 0 && this.retryTimer === undefined && !this.waitingForRoom;
  }

  /**
   * @internal When (`performance.now()`) a send last found the mailbox it knew for the name
   * closed or its process gone, and no other under the name: the name went away then.
   */
  get lostAt(): number | undefined {
    return this.lostAtMs;
  }

  /** @internal true when the name's address is known from an earlier send (the name existed then). */
  get known(): boolean {
    return this.address !== undefined;
  }

  private resolve(): MailboxAddress {
    const at = registry.lookup(this.name);
    if (!at) throw new MpBusError(ErrorCodes.noSuchMailbox, `no mailbox named '${this.name}' is open in the group`);
    this.address = at;
    return at;
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== undefined || this.waitingForRoom) return;
    // First retries right after I/O (a busy receiver frees room in microseconds), unless the
    // CPUs are oversubscribed; then sleep until the receiver drains (it rings our doorbell).
    if (this.idleRetries < IMMEDIATE_RETRIES && !this.port.crowded) {
      this.retryTimer = setImmediate(this.flush);
      return;
    }
    this.waitingForRoom = true;
    this.waitForRoom().then(this.flush, this.flush);
  }

  /**
   * Resolves when this mailbox may have room again: when its receiver next drains, or within
   * 10 ms at the latest. The companion of {@link trySend} and {@link trySendMany} for senders
   * that handle 'mailbox-full' / 'inbox-full' themselves: instead of retrying in a loop (which
   * takes the CPU from the receiver it waits for), `await ref.waitForRoom()` and send again.
   * It does not reserve room: another sender may take it first.
   * @throws {MpBusError} (rejects) NO_SUCH_MAILBOX, CLOSED.
   */
  waitForRoom(): Promise<void> {
    try {
      return this.room.awaitRoom(this.address ?? this.resolve());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private readonly flush = (): void => {
    this.retryTimer = undefined;
    this.waitingForRoom = false;
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      let result: TrySendResult;
      try {
        if (this.port.closed) throw new MpBusError(ErrorCodes.closed, 'the mailbox system closed before this message could be sent');
        result = this.attempt(head.codec, head.bytes, 0, head.bytes.length);
      } catch (err) {
        if (isTooLarge(err)) {
          // this message's own failure: the ones after it go on
          this.queue.shift();
          head.reject(err);
          continue;
        }
        this.failAll(err);
        return;
      }
      if (result === 'sent') {
        this.queue.shift();
        this.idleRetries = 0;
        head.resolve();
        continue;
      }
      if (performance.now() >= head.deadline) {
        this.queue.shift();
        head.reject(
          new MpBusError(
            ErrorCodes.sendTimeout,
            `no room in mailbox '${this.name}' (${result}) before the send timeout: ${noRoomWhy(result, head.bytes.length, this.port.maxInlineBytes)}`,
          ),
        );
        continue;
      }
      this.idleRetries++;
      this.scheduleRetry();
      return;
    }
  };

  /** @internal rejects every waiting send */
  failAll(err: unknown): void {
    if (this.retryTimer !== undefined) {
      clearImmediate(this.retryTimer);
      this.retryTimer = undefined;
    }
    for (const p of this.queue.splice(0)) p.reject(err);
  }
}

/** The machine's hugepage bytes, read once (see {@link MailboxRef.checkFits}). */
let machineHugepageBytes: number | undefined;

/** Why a send found no room for so long, and what to do, by the bound it hit last. */
function noRoomWhy(result: TrySendResult, bytes: number, maxInline: number): string {
  if (result === 'no-buffers' && bytes > maxInline)
    return `no block of ${mib(bytes)} could be had: the group's large messages not yet read hold its 64 MiB for them (or 256 of them are in flight, or the hugepage heap is short); let receivers catch up, or send less at once`;
  if (result === 'no-buffers')
    return "the group's buffer pool was empty (receivers are slower than senders, or hold messages); raise poolBuffers, or slow down";
  if (result === 'inbox-full') return "the receiving process's inbox was full: it is slower than its senders; raise inboxSize, or slow down";
  return 'the receiver is slower than its senders; raise its capacity or the timeout, or slow down';
}

/** A batch send given something else than an array (a string would go as its characters, a number as nothing). */
function notAnArray(method: string, what: string, got: unknown): MpBusError {
  return new MpBusError(ErrorCodes.invalidOption, `${method} takes an array of ${what}, got ${typeof got === 'string' ? 'a string' : String(got)}`);
}
