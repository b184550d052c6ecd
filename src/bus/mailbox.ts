/**
 * Mailboxes: named, bounded message queues that any process of the group can send to, through
 * shared hugepage memory (see docs/mailboxes.md).
 *
 * ```ts
 * const mailboxes = await MailboxSystem.openAsync();
 * const inbox = mailboxes.open<Order>('orders');
 * inbox.messages$.subscribe((order) => handle(order));
 * // in any process of the group:
 * await MailboxSystem.open().send('orders', { id: 1, item: 'tea' });
 * ```
 *
 * Each process has ONE inbox ring; a message is a small descriptor (a pointer to a buffer of
 * the group's pool) on the receiver's inbox, demultiplexed to the mailbox by the id in the
 * buffer header. The receiving JS thread drains its inbox itself in bursts while messages flow
 * and parks on a futex doorbell after ~1 ms without any (0% CPU when idle).
 */
import { Observable, Subject, type Subscriber, type Subscription } from 'rxjs';
import { Packr, Unpackr, REUSE_BUFFER_MODE } from 'msgpackr';
import { MpBusError, ErrorCodes } from '../errors.js';
import { logger } from '../log.js';
import { BadDescriptor, SendStatus, mailboxNative, type MailboxBinding } from '../native/mailbox.js';
import { attach, attachAsync, type Attachment, type MailboxMemoryOptions } from './attachment.js';
import { Membership, SCAN_INTERVAL_MS } from './membership.js';
import { checkName, registry, type MailboxAddress } from './registry.js';
import { countMailboxes } from './mailbox-counters.js';

/**
 * @internal What {@link MailboxRef.offer} answers: the native send's status, or `noSuchMailbox`
 * when no mailbox of the group has the name.
 */
export const OfferStatus = { ...SendStatus, noSuchMailbox: 6 } as const;

/** What {@link MailboxRef.trySend} answers: sent, or which bound was hit (nothing was sent then). */
export type TrySendResult = 'sent' | 'mailbox-full' | 'inbox-full' | 'no-buffers';

/** A watched mailbox name went away: see {@link MailboxSystem.watch}. */
export interface NameGone {
  readonly name: string;
  /** 'closed': unregistered by its owner (or never there); 'process-died': its process died or left. */
  readonly reason: 'closed' | 'process-died';
  /** Pid of the process that held it, when known. */
  readonly pid?: number;
}

/** Options of {@link MailboxSystem.open}. */
export interface MailboxSystemOptions extends MailboxMemoryOptions {
  /** How long one drain may spin on an empty inbox, in µs (default 10). */
  spinUs?: number;
  /** Idle time after the last message before the receiver parks on its doorbell, in ms (default 1). */
  idleParkMs?: number;
  /** Whether open mailboxes keep the Node process alive, like a listening socket (default true). */
  keepAlive?: boolean;
}

/** Options of {@link MailboxSystem.open | opening} a mailbox. */
export interface MailboxOptions {
  /** Messages sent and not yet received that the mailbox accepts before senders see 'mailbox-full' (default 1024). */
  capacity?: number;
}

/** Options of {@link MailboxRef.send}. */
export interface SendOptions {
  /** How long to wait for room before rejecting with SEND_TIMEOUT (default 5000 ms). */
  timeoutMs?: number;
}

const CODEC_RAW = 0;
const CODEC_MSGPACK = 1;
const WORDS = 4;
/** Most descriptors one drain returns (the native burst). */
const BURST_MAX = 256;
const DEFAULT_CAPACITY = 1024;
const DEFAULT_TIMEOUT_MS = 5000;
/**
 * A sender waiting for room is woken by the receiver's drain (its doorbell); it also looks again
 * this often, for room that no drain announces (pool buffers freed by other processes, a
 * receiver that died, a send timeout to report).
 */
const ROOM_RECHECK_MS = 10;
/** How long an idle receiver lingers before parking while more tasks are runnable than CPUs (ms). */
const CROWDED_LINGER_MS = 0.1;
/**
 * On a crowded machine a receiver whose messages come at a steady pace lingers this many times
 * the usual gap between them (when that is under `idleParkMs`), so that a pace a little slower
 * than {@link CROWDED_LINGER_MS} does not make every message pay a doorbell wake-up.
 */
const GAP_LINGER_FACTOR = 2;
/** Retries on the next turn of the event loop before a sender sleeps until the receiver drains. */
const IMMEDIATE_RETRIES = 16;

interface PendingSend {
  codec: number;
  bytes: Uint8Array;
  deadline: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

let system: MailboxSystem | undefined;

/** This process's mailboxes and the way to send to any mailbox of the group. */
export class MailboxSystem {
  /** Who is alive in the group (peer death events, reaping). */
  readonly membership: Membership;
  /** Messages that could not be delivered here: bad descriptors, undecodable payloads, dead letters. */
  readonly errors$: Observable<MpBusError>;

  private readonly native: MailboxBinding;
  private readonly att: Attachment;
  private readonly pool: Buffer;
  private readonly errors = new Subject<MpBusError>();
  private readonly boxes = new Map<number, Mailbox<unknown>>();
  private readonly refs = new Map<string, MailboxRef<unknown>>();
  /** @internal */
  readonly packr = new Packr({ useRecords: false });
  private readonly unpackr = new Unpackr({ useRecords: false, copyBuffers: true });
  private readonly unpackRange = { start: 0, end: 0 };
  /** Burst-mode mailboxes that got messages in the drain being delivered. */
  private readonly gathered: Array<Mailbox<unknown>> = [];
  private readonly spinUs: number;
  private readonly idleParkMs: number;
  private readonly keepAlive: boolean;
  private readonly log = logger('mailbox');
  private pumpScheduled = false;
  private parked = false;
  /** @internal what the receive loop did so far (turns, drains, drains that found messages, parks, doorbell wakes): bench/profile-ask-wake.ts */
  readonly loopStats = { turns: 0, drains: 0, busy: 0, parks: 0, wakes: 0 };
  private lastMessageAt = 0;
  /** When a drain last found messages, and the moving average of the gaps between such drains (ms). */
  private lastBusyAt = 0;
  private gapMs = Infinity;
  private roomWaiters: Array<() => void> = [];
  private roomTimer: NodeJS.Timeout | undefined;
  private closedFlag = false;
  private readonly watched = new Map<string, { address: MailboxAddress; pid: number | undefined; subscribers: Set<Subscriber<NameGone>> }>();
  private watchTimer: NodeJS.Timeout | undefined;
  private watchEpoch = -1;
  private peerDownSub: Subscription | undefined;

  private constructor(att: Attachment, options: MailboxSystemOptions) {
    this.att = att;
    this.native = mailboxNative();
    this.pool = Buffer.from(att.pool);
    this.membership = Membership.join();
    this.errors$ = this.errors.asObservable();
    this.spinUs = options.spinUs ?? 10;
    this.idleParkMs = options.idleParkMs ?? 1;
    this.keepAlive = options.keepAlive ?? true;
    if (!Number.isInteger(this.spinUs) || this.spinUs < 0 || this.spinUs > 1000)
      throw new MpBusError(ErrorCodes.invalidOption, `spinUs must be an integer in 0..1000, got ${String(options.spinUs)}`);
    if (!(this.idleParkMs >= 0 && this.idleParkMs <= 1000))
      throw new MpBusError(ErrorCodes.invalidOption, `idleParkMs must be in 0..1000, got ${String(options.idleParkMs)}`);
    att.onWake = () => {
      this.loopStats.wakes++;
      this.parked = false;
      this.lastMessageAt = performance.now();
      this.schedulePump();
    };
    att.beforeDetach.push(() => this.shutdown());
    att.beforeDetach.push(countMailboxes(() => this.boxes.values()));
    this.lastMessageAt = performance.now();
    this.schedulePump();
  }

  /**
   * This process's mailbox system (made on first call; later calls return it). Requires a
   * started {@link Runtime}; it is closed with the runtime.
   *
   * @throws {MpBusError} `EBUSY` while another process of the group is still creating the
   *   group's mailbox objects (processes starting together): use {@link MailboxSystem.openAsync},
   *   which waits for that without blocking.
   */
  static open(options: MailboxSystemOptions = {}): MailboxSystem {
    if (system && !system.closedFlag) return system;
    system = new MailboxSystem(attach(options), options);
    return system;
  }

  /**
   * Like {@link MailboxSystem.open}, but when another process of the group is still creating
   * the group's mailbox objects (a primary and secondaries starting together), or reaping the
   * dead previous holder of this process's slot, it waits for that on timers (up to 5 s,
   * `ETIMEDOUT` then) where `open` throws `EBUSY`. The JS thread never sleeps in either.
   */
  static async openAsync(options: MailboxSystemOptions = {}): Promise<MailboxSystem> {
    if (system && !system.closedFlag) return system;
    await attachAsync(options);
    return MailboxSystem.open(options);
  }

  /** This process's slot in the process table (its lcore id). */
  get slot(): number {
    return this.att.slot;
  }

  /** Largest payload (bytes) that fits in one pool buffer; larger ones go through rte_malloc. */
  get maxInlineBytes(): number {
    return this.att.maxInline;
  }

  /** True once closed (with the runtime). */
  get closed(): boolean {
    return this.closedFlag;
  }

  /**
   * Opens a mailbox named `name` in this process and registers the name in the group.
   * @throws {MpBusError} NAME_TAKEN when a mailbox of that name exists anywhere in the group.
   */
  open<T = unknown>(name: string, options: MailboxOptions = {}): Mailbox<T> {
    this.assertOpen();
    checkName(name);
    const capacity = options.capacity ?? DEFAULT_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 0x7fffffff) {
      throw new MpBusError(ErrorCodes.invalidOption, `capacity must be a positive integer, got ${String(options.capacity)}`);
    }
    const id = this.native.mbxOpen(capacity);
    const address: MailboxAddress = { slot: this.att.slot, generation: this.att.generation, id };
    // A name still held by a process that died and was not reaped yet (a restarted worker taking
    // its predecessor's names back): a scan reaps it, which unregisters its names.
    if (!registry.add(name, address) && !(this.membership.scan(), registry.add(name, address))) {
      this.native.mbxClose(id);
      const where = registry.lookup(name);
      const owner = where && this.membership.peers().find((p) => p.slot === where.slot);
      throw new MpBusError(
        ErrorCodes.nameTaken,
        `a mailbox named '${name}' is already open${owner ? ` in pid ${owner.pid}` : ''}: close it first or pick another name`,
      );
    }
    const box = new Mailbox<T>(this, name, address, capacity);
    this.boxes.set(id, box as Mailbox<unknown>);
    if (this.boxes.size === 1 && this.keepAlive) this.native.mbxKeepAlive(true);
    return box;
  }

  /** A sending handle for the mailbox `name`, anywhere in the group (cached; cheap to call). */
  ref<T = unknown>(name: string): MailboxRef<T> {
    let ref = this.refs.get(name);
    if (!ref) {
      checkName(name);
      ref = new MailboxRef<unknown>(this, name);
      this.refs.set(name, ref);
    }
    return ref as MailboxRef<T>;
  }

  /** Sends without waiting: see {@link MailboxRef.trySend}. */
  trySend(name: string, value: unknown): TrySendResult {
    return this.ref(name).trySend(value);
  }

  /** Sends, waiting for room: see {@link MailboxRef.send}. */
  send(name: string, value: unknown, options?: SendOptions): Promise<void> {
    return this.ref(name).send(value, options);
  }

  /** Sends a batch without waiting: see {@link MailboxRef.trySendMany}. */
  trySendMany(name: string, values: readonly unknown[]): number {
    return this.ref(name).trySendMany(values);
  }

  /** Sends bytes as they are (no codec): see {@link MailboxRef.trySendRaw}. */
  trySendRaw(name: string, bytes: Uint8Array): TrySendResult {
    return this.ref(name).trySendRaw(bytes);
  }

  /** Sends bytes as they are, waiting for room: see {@link MailboxRef.sendRaw}. */
  sendRaw(name: string, bytes: Uint8Array, options?: SendOptions): Promise<void> {
    return this.ref(name).sendRaw(bytes, options);
  }

  /** Messages waiting in mailbox `name` (sent, not yet received), or undefined when there is no such mailbox. */
  depth(name: string): number | undefined {
    return this.ref(name).depth();
  }

  /**
   * Death watch of a name: emits once when mailbox `name` goes away (its owner closed it, or
   * its process died, SIGKILL included, or left), then completes. Emits at once when no such
   * mailbox exists now. Detection takes at most a few hundred ms.
   */
  watch(name: string): Observable<NameGone> {
    checkName(name);
    return new Observable<NameGone>((subscriber) => {
      this.assertOpen();
      let entry = this.watched.get(name);
      if (!entry) {
        const address = registry.lookup(name);
        if (!address) {
          subscriber.next({ name, reason: 'closed' });
          subscriber.complete();
          return undefined;
        }
        const pid = this.membership.peers().find((p) => p.slot === address.slot && p.generation === address.generation)?.pid;
        entry = { address, pid, subscribers: new Set() };
        this.watched.set(name, entry);
        this.startWatching();
      }
      const e = entry;
      e.subscribers.add(subscriber);
      return () => {
        e.subscribers.delete(subscriber);
        if (e.subscribers.size === 0 && this.watched.get(name) === e) this.watched.delete(name);
      };
    });
  }

  private startWatching(): void {
    if (this.watchTimer) return;
    this.watchEpoch = registry.epoch();
    this.watchTimer = setInterval(() => this.checkWatched(false), SCAN_INTERVAL_MS);
    this.watchTimer.unref();
    this.peerDownSub ??= this.membership.peerDown$.subscribe(() => this.checkWatched(true));
  }

  /** Registry removals bump an epoch: names are looked up again only when it moved. */
  private checkWatched(force: boolean): void {
    if (this.closedFlag) return;
    if (this.watched.size === 0) {
      clearInterval(this.watchTimer);
      this.watchTimer = undefined;
      return;
    }
    const epoch = registry.epoch();
    if (!force && epoch === this.watchEpoch) return;
    this.watchEpoch = epoch;
    this.membership.scan(); // so a process reaped just now is known dead here too
    for (const [name, entry] of [...this.watched]) {
      const now = registry.lookup(name);
      const a = entry.address;
      if (now && now.slot === a.slot && now.generation === a.generation && now.id === a.id) continue;
      this.watched.delete(name);
      const alive = this.membership.isAlive(a.slot, a.generation);
      const gone: NameGone = alive ? { name, reason: 'closed' } : { name, reason: 'process-died', ...(entry.pid !== undefined ? { pid: entry.pid } : {}) };
      for (const sub of [...entry.subscribers]) {
        sub.next(gone);
        sub.complete();
      }
    }
  }

  /** Where `name` lives now, or undefined. */
  lookup(name: string): MailboxAddress | undefined {
    this.assertOpen();
    return registry.lookup(name);
  }

  /** @internal */
  assertOpen(): void {
    if (this.closedFlag) throw new MpBusError(ErrorCodes.closed, 'the mailbox system is closed (its runtime closed)');
  }

  /** @internal */
  nativeSend(at: MailboxAddress, codec: number, bytes: Uint8Array, start: number, end: number): number {
    this.assertOpen();
    return this.native.mbxSend(at.slot, at.generation, at.id, codec, bytes, start, end);
  }

  /** @internal */
  setHold(id: number, hold: boolean): void {
    if (!this.closedFlag) this.native.mbxSetHold(id, hold);
  }

  /** @internal */
  adjustDepth(id: number, delta: number): void {
    if (!this.closedFlag) this.native.mbxAdjust(id, delta);
  }

  /** @internal */
  nativeSendMany(at: MailboxAddress, codec: number, bytes: Uint8Array, bounds: Uint32Array, count: number): number {
    this.assertOpen();
    return this.native.mbxSendMany(at.slot, at.generation, at.id, codec, bytes, bounds, count);
  }

  /**
   * @internal staging area of batched sends: up to 256 messages in 64 KiB; message i is
   * bytes[bounds[2i] .. bounds[2i+1]).
   */
  readonly staging = { bytes: Buffer.allocUnsafe(1 << 16), bounds: new Uint32Array(512) };
  /**
   * @internal packs batched values straight into the staging bytes (no copy out of msgpackr's
   * own buffer: measured ~30 ns per message at the sender). Its own instance, because other
   * packs may keep views of the buffer they were packed into.
   */
  readonly stagingPackr = new Packr({ useRecords: false });

  /** @internal the shared buffer pool as JS sees it (bursts are views of it) */
  get poolBytes(): Buffer {
    return this.pool;
  }

  /** @internal the decoder bursts use */
  get burstUnpackr(): Unpackr {
    return this.unpackr;
  }

  /** @internal the messages of a burst as messages$ would give them (copies: the burst's views expire); undecodable ones go to errors$ */
  burstValues(burst: MessageBurst): unknown[] {
    const values: unknown[] = [];
    for (let i = 0; i < burst.count; i++) {
      try {
        values.push(burst.value(i));
      } catch (err) {
        this.reportError(err as MpBusError);
      }
    }
    return values;
  }

  /** @internal a burst of one for a message that waited for the first burst subscriber */
  burstOf(value: unknown): MessageBurst {
    const raw = Buffer.isBuffer(value);
    const bytes = raw ? value : Buffer.from(this.packr.pack(value));
    return new MessageBurst(bytes, Uint32Array.of(0), Uint32Array.of(bytes.length), Uint8Array.of(raw ? 0 : 1), 1, this.unpackr);
  }

  /** @internal */
  nativeDepth(at: MailboxAddress): number {
    return this.native.mbxDepth(at.slot, at.generation, at.id);
  }

  /** @internal called by Mailbox.close */
  closeBox(box: Mailbox<unknown>): void {
    registry.remove(box.name, box.address);
    this.native.mbxClose(box.address.id);
    this.boxes.delete(box.address.id);
    if (this.boxes.size === 0 && this.keepAlive) this.native.mbxKeepAlive(false);
  }

  /** @internal */
  reportError(err: MpBusError): void {
    this.log.debug({ code: err.code }, err.message);
    this.errors.next(err);
  }

  // ---- receiving --------------------------------------------------------------------------
  private schedulePump(): void {
    if (this.pumpScheduled || this.closedFlag) return;
    this.pumpScheduled = true;
    setImmediate(this.pump);
  }

  private readonly pump = (): void => {
    this.pumpScheduled = false;
    if (this.closedFlag) return;
    const stats = this.loopStats;
    stats.turns++;
    let got = 0;
    for (let round = 0; round < 8 && !this.closedFlag; round++) {
      stats.drains++;
      const n = this.native.mbxDrain(round === 0 ? this.spinUs : 0);
      if (n > 0) this.deliver(n);
      got += n;
      if (n < this.att.burst) break;
    }
    if (this.closedFlag) return;
    // Every turn may have made room somewhere (senders to this process are not the only ones
    // that drain); the waiting senders try again, and wait again if they must.
    if (this.roomWaiters.length > 0) this.releaseRoomWaiters();
    const now = performance.now();
    if (got > 0) {
      this.lastMessageAt = now;
      stats.busy++;
      const gap = now - this.lastBusyAt;
      this.lastBusyAt = now;
      // Gaps longer than idleParkMs count as idleParkMs: sparse traffic soon stops lingering.
      this.gapMs = this.gapMs === Infinity ? Math.min(gap, this.idleParkMs) : this.gapMs + (Math.min(gap, this.idleParkMs) - this.gapMs) / 8;
    }
    // Lingering a little before parking keeps replies fast while a CPU is free for it. When
    // the machine is crowded (more runnable tasks than CPUs) it lingers only about one round
    // trip (CROWDED_LINGER_MS): each lingering turn is a busy event-loop turn with a yield,
    // which took the CPU from the processes this one waits for (flagship workers: ~50% of their
    // samples in this loop); parking at once instead made every sequential ask pay a wake-up.
    const linger = now - this.lastMessageAt;
    if (got > 0 || (linger < this.idleParkMs && (linger < this.crowdedLingerMs() || !this.native.mbxCrowded())) || !this.native.mbxPark()) {
      this.schedulePump();
      return;
    }
    stats.parks++;
    this.parked = true;
  };

  /**
   * How long an idle receiver lingers on a crowded machine: about one round trip, or, when
   * messages come at a steady pace slower than that, twice their usual gap (a sequential caller
   * alternating between two workers: each worker idles one round trip of the other between its
   * messages, and parking there made up to ~30% of such asks pay a doorbell wake-up).
   */
  private crowdedLingerMs(): number {
    const paced = GAP_LINGER_FACTOR * this.gapMs;
    return paced < this.idleParkMs ? Math.max(CROWDED_LINGER_MS, paced) : CROWDED_LINGER_MS;
  }

  /** True when more of the group's processes are awake than there are CPUs (waiting should sleep, not spin). */
  get crowded(): boolean {
    return !this.closedFlag && this.native.mbxCrowded();
  }

  /**
   * @internal Resolves when the mailbox at `at` may have room: its process drained (it rings
   * this process's doorbell), this process's pump turned, or {@link ROOM_RECHECK_MS} passed.
   */
  awaitRoom(at: MailboxAddress): Promise<void> {
    this.assertOpen();
    return new Promise((resolve) => {
      // Room already: on the next turn of the event loop, never as a microtask, so that a caller
      // retrying in a loop still lets this process drain and release what it holds.
      if (this.native.mbxWantRoom(at.slot, at.generation, at.id)) {
        setImmediate(resolve);
        return;
      }
      this.roomWaiters.push(resolve);
      this.roomTimer ??= setTimeout(this.releaseRoomWaiters, ROOM_RECHECK_MS);
      // A parked pump wakes on the doorbell; one that is about to run releases the waiters.
      if (!this.parked) this.schedulePump();
    });
  }

  private readonly releaseRoomWaiters = (): void => {
    clearTimeout(this.roomTimer);
    this.roomTimer = undefined;
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const wake of waiters) wake();
  };

  private deliver(n: number): void {
    const out = this.att.out;
    let large: Buffer[] | undefined;
    const gathered = this.gathered;
    let lastId = 0;
    let lastBox: Mailbox<unknown> | undefined;
    for (let i = 0; i < n; i++) {
      const o = i * WORDS;
      const id = out[o]!;
      const at = out[o + 1]!;
      const length = out[o + 2]!;
      const flags = out[o + 3]!;
      const bad = (flags >>> 8) & 0xff;
      if (bad !== 0) {
        const address = (BigInt(length) << 32n) | BigInt(at);
        this.reportError(
          new MpBusError(
            ErrorCodes.badDescriptor,
            `refused a descriptor (0x${address.toString(16)}) on this process's inbox: it ${BadDescriptor[bad] ?? 'is invalid'}; a peer wrote garbage or a stale pointer`,
          ),
        );
        continue;
      }
      if (flags & 0x10) large ??= this.native.mbxTakeLarge();
      // A burst is mostly one mailbox: look it up once per run, not once per message.
      if (id !== lastId) {
        lastId = id;
        lastBox = this.boxes.get(id);
      }
      const box = lastBox;
      if (!box || box.closed) {
        this.reportError(
          new MpBusError(ErrorCodes.deadLetter, `a message for mailbox id ${id} arrived after it was closed (sender slot ${(flags >>> 16) & 0xff})`),
        );
        continue;
      }
      const codec = flags & 0x0f;
      if (box.burst !== undefined && !(flags & 0x10)) {
        if (box.burst.count === 0) gathered.push(box);
        box.burst.add(at, length, codec === CODEC_MSGPACK);
        continue;
      }
      if (box.burst !== undefined) {
        // A large message has its own bytes: what came before goes first, then it alone
        // (unless that emission ended the last burst subscription: then it goes on below).
        box.emitBurst(this.pool, this.unpackr);
        if (box.burst !== undefined) {
          const bytes = large![at]!;
          box.burst.add(0, bytes.length, codec === CODEC_MSGPACK);
          box.emitBurst(bytes, this.unpackr);
          continue;
        }
      }
      let value: unknown;
      try {
        if (flags & 0x10) {
          const bytes = large![at]!;
          value = codec === CODEC_MSGPACK ? this.unpackr.unpack(bytes) : bytes;
        } else if (codec === CODEC_MSGPACK) {
          this.unpackRange.start = at;
          this.unpackRange.end = at + length;
          value = this.unpackr.unpack(this.pool, this.unpackRange);
        } else {
          const copy = Buffer.allocUnsafe(length);
          this.pool.copy(copy, 0, at, at + length);
          value = copy;
        }
      } catch (err) {
        this.reportError(
          new MpBusError(
            ErrorCodes.decodeFailed,
            `a message for mailbox '${box.name}' could not be decoded (${(err as Error).message}); it was dropped and its buffer returned`,
            { cause: err },
          ),
        );
        continue;
      }
      box.deliver(value);
    }
    // One emission per mailbox per drain; the pool's buffers stay held until the next drain.
    for (const box of gathered) box.emitBurst(this.pool, this.unpackr);
    gathered.length = 0;
  }

  private shutdown(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    clearInterval(this.watchTimer);
    this.releaseRoomWaiters();
    this.peerDownSub?.unsubscribe();
    for (const entry of this.watched.values()) for (const sub of entry.subscribers) sub.complete();
    this.watched.clear();
    for (const box of [...this.boxes.values()]) box.closeLocal();
    this.boxes.clear();
    for (const ref of this.refs.values()) ref.failAll(new MpBusError(ErrorCodes.closed, 'the mailbox system closed before this message could be sent'));
    this.refs.clear();
    this.errors.complete();
    if (system === this) system = undefined;
  }

  /** True while the receiver sleeps on its doorbell (for tests and stats). */
  get isParked(): boolean {
    return this.parked;
  }
}

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
    return this.bytes.subarray(this.starts[i]!, this.starts[i]! + this.lengths[i]!);
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
      return this.unpackr.unpack(this.bytes, { start, end } as never);
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
class BurstBuilder {
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

/** A mailbox open in this process. */
export class Mailbox<T = unknown> {
  /**
   * The subscribers, called directly rather than through a Subject: with one subscriber (the
   * usual case) a message costs one `Subscriber.next`, without a Subject's per-value error
   * context and observer snapshot (measured ~30 ns per message at the receiver).
   */
  private readonly subscribers = new Set<Subscriber<T>>();
  private single: Subscriber<T> | undefined;
  private readonly burstSubscribers = new Set<Subscriber<MessageBurst>>();
  /** @internal set while {@link bursts$} has subscribers: drained messages gather here. */
  burst: BurstBuilder | undefined;
  private backlog: T[] = [];
  private closedFlag = false;
  /**
   * The messages, in the order each sender sent them. Messages that arrive while nobody is
   * subscribed wait for the first subscriber, and count against the capacity meanwhile (so
   * senders see 'mailbox-full' rather than messages being dropped).
   */
  readonly messages$: Observable<T>;
  /**
   * The messages in bursts: each drain of the process's inbox hands this mailbox's messages
   * over at once, as views of the shared buffers (valid during the emission only), without a
   * Buffer, a copy, a decode or an emission per message: the fastest way to consume raw bytes.
   * A mailbox is consumed either per message or per burst: subscribing to both is refused.
   * Messages that arrived before the first subscriber come as bursts of one.
   */
  readonly bursts$: Observable<MessageBurst>;

  /** @internal */
  constructor(
    private readonly system: MailboxSystem,
    readonly name: string,
    readonly address: MailboxAddress,
    readonly capacity: number,
  ) {
    this.bursts$ = new Observable<MessageBurst>((subscriber) => {
      if (this.closedFlag) {
        subscriber.complete();
        return undefined;
      }
      if (this.subscribers.size > 0) {
        subscriber.error(new MpBusError(ErrorCodes.invalidOption, `mailbox '${this.name}' is consumed per message (messages$): it cannot also give bursts`));
        return undefined;
      }
      this.burstSubscribers.add(subscriber);
      if (this.burstSubscribers.size === 1) {
        this.burst = new BurstBuilder();
        this.replayBacklog((value) => subscriber.next(this.system.burstOf(value)));
      }
      return () => {
        if (!this.burstSubscribers.delete(subscriber) || this.burstSubscribers.size > 0) return;
        const gathered = this.burst;
        this.burst = undefined;
        if (this.closedFlag) return;
        this.system.setHold(this.address.id, true);
        // Unsubscribed in the middle of a drain (from another mailbox's emission): what this
        // mailbox had gathered waits for the next subscriber like any message that finds none.
        if (gathered !== undefined && gathered.count > 0) {
          const kept = this.system.burstValues(gathered.take(this.system.poolBytes, this.system.burstUnpackr));
          this.system.adjustDepth(this.address.id, kept.length);
          for (const value of kept) this.deliver(value as T);
        }
      };
    });
    this.messages$ = new Observable<T>((subscriber: Subscriber<T>) => {
      if (this.closedFlag) {
        subscriber.complete();
        return undefined;
      }
      if (this.burstSubscribers.size > 0) {
        subscriber.error(
          new MpBusError(ErrorCodes.invalidOption, `mailbox '${this.name}' is consumed in bursts (bursts$): it cannot also give single messages`),
        );
        return undefined;
      }
      this.subscribers.add(subscriber);
      this.single = this.subscribers.size === 1 ? subscriber : undefined;
      if (this.subscribers.size === 1) this.replayBacklog((value) => subscriber.next(value));
      return () => {
        if (!this.subscribers.delete(subscriber)) return;
        const [only] = this.subscribers;
        this.single = this.subscribers.size === 1 ? only : undefined;
        if (this.subscribers.size === 0 && !this.closedFlag) this.system.setHold(this.address.id, true);
      };
    });
  }

  /** The first subscriber of either kind: drained messages are delivered at once from now on. */
  private replayBacklog(emit: (value: T) => void): void {
    // They stop counting as pending.
    this.system.setHold(this.address.id, false);
    const waiting = this.backlog;
    this.backlog = [];
    if (waiting.length > 0) this.system.adjustDepth(this.address.id, -waiting.length);
    for (const v of waiting) emit(v);
  }

  /** @internal hands what the drain gathered over to the burst subscribers */
  emitBurst(bytes: Buffer, unpackr: Unpackr): void {
    if (this.burst === undefined || this.burst.count === 0) return;
    const burst = this.burst.take(bytes, unpackr);
    for (const subscriber of [...this.burstSubscribers]) subscriber.next(burst);
  }

  /** Messages sent to this mailbox and not yet received (what a least-loaded router reads). */
  get depth(): number {
    return Math.max(0, this.system.nativeDepth(this.address));
  }

  /**
   * Counts messages that the receiver queues itself (e.g. an actor's queue while its handler
   * runs) in {@link depth} and against the capacity: +n when queued, -n when done. Senders then
   * see 'mailbox-full' when the consumer, not only the ring, falls behind.
   */
  addDepth(delta: number): void {
    if (!Number.isInteger(delta)) throw new MpBusError(ErrorCodes.invalidOption, `addDepth takes an integer, got ${String(delta)}`);
    if (!this.closedFlag && delta !== 0) this.system.adjustDepth(this.address.id, delta);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** @internal */
  deliver(value: T): void {
    const single = this.single;
    if (single !== undefined) {
      single.next(value);
    } else if (this.subscribers.size > 0) {
      for (const subscriber of [...this.subscribers]) subscriber.next(value);
    } else if (this.backlog.length < this.capacity * 2) {
      this.backlog.push(value); // still counted as pending (held): senders see 'mailbox-full'
    } else {
      this.system.reportError(
        new MpBusError(ErrorCodes.deadLetter, `mailbox '${this.name}' has no subscriber and ${this.backlog.length} messages waiting: a message was dropped`),
      );
    }
  }

  /** Unregisters the name; senders get MAILBOX_CLOSED (or reach a mailbox reopened under that name). */
  close(): void {
    if (this.closedFlag) return;
    this.system.closeBox(this as Mailbox<unknown>);
    this.closeLocal();
  }

  /** @internal */
  closeLocal(): void {
    this.closedFlag = true;
    const subscribers = [...this.subscribers];
    const burstSubscribers = [...this.burstSubscribers];
    this.subscribers.clear();
    this.burstSubscribers.clear();
    this.single = undefined;
    this.burst = undefined;
    for (const subscriber of subscribers) subscriber.complete();
    for (const subscriber of burstSubscribers) subscriber.complete();
  }
}

/** A handle to send to one named mailbox, wherever in the group it lives. */
export class MailboxRef<T = unknown> {
  private address: MailboxAddress | undefined;
  private readonly queue: PendingSend[] = [];
  private retryTimer: NodeJS.Immediate | undefined;
  private waitingForRoom = false;
  private idleRetries = 0;

  /** @internal */
  constructor(
    private readonly system: MailboxSystem,
    readonly name: string,
  ) {}

  /**
   * Sends `value` (msgpackr-encoded) if there is room now. Never waits and never drops: the
   * answer says whether it was sent or which bound was hit. While earlier {@link send}s to
   * this mailbox wait, it answers 'mailbox-full' (messages keep their order).
   * @throws {MpBusError} NO_SUCH_MAILBOX, MAILBOX_CLOSED, PEER_GONE (the owner process died or left).
   */
  trySend(value: T): TrySendResult {
    if (this.queue.length > 0) return 'mailbox-full';
    const packed = this.system.packr.pack(value, REUSE_BUFFER_MODE) as Buffer & { start: number; end: number };
    return this.attempt(CODEC_MSGPACK, packed, packed.start, packed.end);
  }

  /**
   * @internal {@link trySend} for a caller that handles every outcome itself (the actor
   * transport): an {@link OfferStatus} number, translated once by the caller, and no exception
   * for a name that is not there (or no longer).
   */
  offer(value: T): number {
    if (this.queue.length > 0) return SendStatus.mailboxFull;
    const packed = this.system.packr.pack(value, REUSE_BUFFER_MODE) as Buffer & { start: number; end: number };
    return this.sendStatus(CODEC_MSGPACK, packed, packed.start, packed.end);
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
      const packed = this.system.packr.pack(value, REUSE_BUFFER_MODE) as Buffer & { start: number; end: number };
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
    const d = this.system.nativeDepth(at);
    return d < 0 ? undefined : d;
  }

  /** Sends queued for want of room. */
  get waiting(): number {
    return this.queue.length;
  }

  private sendBytes(codec: number, bytes: Uint8Array, start: number, end: number, options?: SendOptions): Promise<void> {
    const timeoutMs = options?.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(timeoutMs >= 0)) throw new MpBusError(ErrorCodes.invalidOption, `timeoutMs must be >= 0, got ${String(timeoutMs)}`);
    if (this.queue.length === 0 && this.attempt(codec, bytes, start, end) === 'sent') return Promise.resolve();
    const copy = Uint8Array.prototype.slice.call(bytes, start, end);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ codec, bytes: copy, deadline: performance.now() + timeoutMs, resolve, reject });
      this.scheduleRetry();
    });
  }

  private attempt(codec: number, bytes: Uint8Array, start: number, end: number): TrySendResult {
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
      default:
        throw this.failure(status);
    }
  }

  /** One send, following the name once if it moved: an {@link OfferStatus}. */
  private sendStatus(codec: number, bytes: Uint8Array, start: number, end: number): number {
    for (let tries = 0; ; tries++) {
      const at = this.address ?? registry.lookup(this.name);
      if (!at) return OfferStatus.noSuchMailbox;
      this.address = at;
      const status = this.system.nativeSend(at, codec, bytes, start, end);
      if (status < SendStatus.peerGone || !this.moved(at, tries)) return status;
    }
  }

  /** The mailbox at `at` closed or its process is gone: true when the name now lives elsewhere (send there, once). */
  private moved(at: MailboxAddress, tries: number): boolean {
    this.address = undefined;
    if (tries > 0) return false;
    const now = registry.lookup(this.name);
    if (!now || (now.slot === at.slot && now.generation === at.generation && now.id === at.id)) return false;
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
   */
  trySendMany(values: readonly T[]): number {
    const sent = this.offerMany(values.length, (i) => values[i]!);
    if (sent < 0) throw this.failure(-sent);
    return sent;
  }

  /**
   * @internal {@link trySendMany} for a caller that handles every outcome itself (the actor
   * transport): sends `valueOf(0)`, `valueOf(1)`, ... (up to `count`) in order while there is
   * room, each value packed before the next is asked for, and answers how many went, or
   * -{@link OfferStatus} when none went because the name is not there (no exception). With
   * `onEncodeError`, a value that does not encode ends the call instead of throwing: the values
   * before it are sent, and it is reported with its index (the count returned then).
   */
  offerMany(count: number, valueOf: (i: number) => T, onEncodeError?: (i: number, err: unknown) => void): number {
    if (this.queue.length > 0) return 0;
    const { bytes, bounds } = this.system.staging;
    const packr = this.system.stagingPackr;
    const max = this.system.maxInlineBytes;
    let sent = 0;
    while (sent < count) {
      packr.useBuffer(bytes);
      let k = 0;
      let single: Uint8Array | undefined;
      let encodeError: unknown;
      let failed = false;
      while (2 * k < bounds.length && sent + k < count) {
        let packed: Buffer & { start: number; end: number };
        try {
          packed = packr.pack(valueOf(sent + k), REUSE_BUFFER_MODE) as Buffer & { start: number; end: number };
        } catch (err) {
          if (!onEncodeError) throw err;
          encodeError = err;
          failed = true;
          break;
        }
        if (packed !== bytes || packed.end - packed.start > max) {
          // Too big for one buffer, or msgpackr moved to a buffer of its own (the staging area
          // was nearly full): send it alone, after the batch so far.
          single = Uint8Array.prototype.slice.call(packed, packed.start, packed.end);
          break;
        }
        bounds[2 * k] = packed.start;
        bounds[2 * k + 1] = packed.end;
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
        if (status !== SendStatus.ok) return status < SendStatus.peerGone || sent > 0 ? sent : -status;
        sent++;
      }
    }
    return sent;
  }

  trySendManyRaw(payloads: readonly Uint8Array[]): number {
    if (this.queue.length > 0) return 0;
    let sent = 0;
    while (sent < payloads.length) {
      const { bytes, bounds } = this.system.staging;
      const max = this.system.maxInlineBytes;
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
    for (let tries = 0; ; tries++) {
      const at = this.address ?? registry.lookup(this.name);
      if (!at) return -OfferStatus.noSuchMailbox;
      this.address = at;
      const { bytes, bounds } = this.system.staging;
      const result = this.system.nativeSendMany(at, codec, bytes, bounds, count);
      if (result >= 0) return result;
      if (-result < SendStatus.peerGone) return 0;
      if (!this.moved(at, tries)) return result;
    }
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
    if (this.idleRetries < IMMEDIATE_RETRIES && !this.system.crowded) {
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
      return this.system.awaitRoom(this.address ?? this.resolve());
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
        if (this.system.closed) throw new MpBusError(ErrorCodes.closed, 'the mailbox system closed before this message could be sent');
        result = this.attempt(head.codec, head.bytes, 0, head.bytes.length);
      } catch (err) {
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
            `no room in mailbox '${this.name}' (${result}) before the send timeout: the receiver is slower than its senders; raise its capacity or the timeout, or slow down`,
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
