/**
 * The receive loop of one process: drains its inbox in bursts on the event loop while messages
 * flow, hands each message to its mailbox (or a mailbox's burst), lingers a little when they
 * stop, then parks on the futex doorbell until a sender rings it (0% CPU when idle). Senders
 * waiting for room in another process's mailbox wait here too: a turn of this loop, or a drain
 * of that process, may have made room.
 */
import type { Unpackr } from 'msgpackr';
import { MpBusError, ErrorCodes } from '../errors.js';
import { BadDescriptor, DrainRow, type MailboxBinding } from '../native/mailbox.js';
import type { Attachment } from './attachment.js';
import type { MailboxAddress } from './registry.js';
import type { Mailbox } from './local-mailbox.js';
import type { MailboxPort } from './mailbox-port.js';
import type { RoomWatch } from './mailbox-ref.js';
import { CODEC_MSGPACK } from './mailbox-types.js';
import { decodeTolerantly } from './value-codec.js';

/** A drained row's layout (src/native/mailbox.ts, checked against the addon's constants), as plain numbers. */
const WORDS = DrainRow.words;
const ROW_LARGE = DrainRow.large;
const ROW_CODEC_MASK = DrainRow.codecMask;
const ROW_BAD_SHIFT = DrainRow.badShift;
const ROW_SENDER_SHIFT = DrainRow.senderShift;
const ROW_BYTE_MASK = DrainRow.byteMask;
/**
 * A sender waiting for room is woken by the receiver's drain (its doorbell); it also looks again
 * this often, for room that no drain announces (pool buffers freed by other processes, a
 * receiver that died, a send timeout to report).
 */
const ROOM_RECHECK_MS = 10;
/**
 * How long the first drain of a turn may wait for messages while senders of this process wait
 * for room (µs): about one yield of the CPU, so that a receiver sharing it can make that room.
 */
const ROOM_TURN_SPIN_US = 1;
/**
 * How long after a scheduled turn of the receive loop sends may still be followed by a drain at
 * once (see {@link MailboxPump.drainAfterSend}), so that the event loop turns (timers, I/O, other
 * immediates) at least this often while answers keep coming back at once (ms).
 */
const AFTER_SEND_MS = 0.5;
/** How long an idle receiver lingers before parking while more tasks are runnable than CPUs (ms). */
const CROWDED_LINGER_MS = 0.1;
/**
 * On a crowded machine a receiver whose messages come at a steady pace lingers this many times
 * the usual gap between them (when that is under `idleParkMs`), so that a pace a little slower
 * than {@link CROWDED_LINGER_MS} does not make every message pay a doorbell wake-up.
 */
const GAP_LINGER_FACTOR = 2;
/**
 * Encoded messages shorter than this are decoded from a view of the pool that starts where
 * they start (see {@link MailboxPump.decodeSmall}): msgpackr reads the strings of a source that ends
 * below 140 bytes in JS and its map keys from its key cache below 180, but it tests the range's
 * end offset, not its length, so a message decoded in place far into the pool took its slower
 * path (a native string extraction per message, keys made anew and internalised per property).
 */
const SMALL_DECODE = 140;

export class MailboxPump implements RoomWatch {
  /** What the receive loop did so far (turns, drains, drains that found messages, parks, doorbell wakes): bench/profile-ask-wake.ts */
  readonly loopStats = { turns: 0, drains: 0, busy: 0, parks: 0, wakes: 0 };

  private readonly port: MailboxPort;
  private readonly native: MailboxBinding;
  private readonly att: Attachment;
  private readonly pool: Buffer;
  private readonly boxes: Map<number, Mailbox<unknown>>;
  private readonly unpackr: Unpackr;
  private readonly largeUnpackr: Unpackr;
  private readonly unpackRange = { start: 0, end: 0 };
  /** The message offered to a mailbox's `fromBytes` now, and the decoder of a part of it given with it (one function for every offer). */
  private offeredAt = 0;
  private offeredLength = 0;
  private readonly decodeOffered = (skip: number, end = this.offeredLength): unknown => {
    const length = this.offeredLength;
    if (!(skip >= 0 && skip < end && end <= length)) throw new RangeError(`no bytes to decode from ${skip} to ${end} of a ${length}-byte message`);
    return length < SMALL_DECODE ? this.decodeSmall(this.offeredAt, end, skip) : this.decodeInPlace(this.offeredAt + skip, end - skip);
  };
  /**
   * Views of the pool that start where small messages start (see decodeSmall), by pool buffer:
   * made on a buffer's first small message and kept (msgpackr then keeps a DataView on each).
   */
  private readonly smallViews: Array<Buffer | undefined>;
  /** The pool offset each of {@link smallViews} starts at (-1: none yet). */
  private readonly smallViewAt: Float64Array;
  /** Offset of the pool's first buffer in {@link pool}, and the regular stride of its buffers. */
  private readonly firstBufferAt: number;
  private readonly bufferStride: number;
  /** Burst-mode mailboxes that got messages in the drain being delivered. */
  private readonly gathered: Array<Mailbox<unknown>> = [];
  private pumpScheduled = false;
  private parked = false;
  /** A turn ran for {@link drainAfterSend} since the last scheduled one, which ended at `scheduledTurnAt`. */
  private drainedAfterSend = false;
  private scheduledTurnAt = 0;
  /** The port's send count when the last turn ended. */
  private sendsAtTurnEnd = 0;
  private stopped = false;
  /** A turn is running (see {@link drainNow}). */
  private turning = false;
  private lastMessageAt = 0;
  /** When a drain last found messages, and the moving average of the gaps between such drains (ms). */
  private lastBusyAt = 0;
  private gapMs = Infinity;
  private roomWaiters: Array<() => void> = [];
  private roomTimer: NodeJS.Timeout | undefined;

  constructor(
    port: MailboxPort,
    private readonly spinUs: number,
    private readonly idleParkMs: number,
  ) {
    this.port = port;
    this.native = port.native;
    this.att = port.att;
    this.pool = port.pool;
    this.boxes = port.boxes;
    this.unpackr = port.unpackr;
    this.largeUnpackr = port.largeUnpackr;
    const layout = this.native.mbxPoolInfo();
    this.firstBufferAt = Number(layout.firstObject - layout.poolBase);
    this.bufferStride = layout.stride;
    this.smallViews = new Array<Buffer | undefined>(layout.count);
    this.smallViewAt = new Float64Array(layout.count).fill(-1);
    this.att.onWake = () => {
      this.loopStats.wakes++;
      this.parked = false;
      this.lastMessageAt = performance.now();
      this.schedulePump();
    };
  }

  /** Starts draining (from the next turn of the event loop). */
  start(): void {
    this.lastMessageAt = performance.now();
    this.schedulePump();
  }

  /** Decodes the message at `at` of the pool in place. */
  private decodeInPlace(at: number, length: number): unknown {
    this.unpackRange.start = at;
    this.unpackRange.end = at + length;
    return this.unpackr.unpack(this.pool, this.unpackRange);
  }

  /**
   * Decodes a small message from a view of the pool that starts where it starts, so that
   * msgpackr takes its fast path (see {@link SMALL_DECODE}). Each pool buffer gets its view the
   * first time a small message arrives in it (buffers sit at a regular stride, and a message
   * sits at the same place in any buffer, so one view per buffer serves every later message):
   * at most one per buffer of the pool, created once, where a copy to a scratch buffer cost
   * every message a copy and the copy's view. Instructions per decode of the flagship's job ask:
   * 9.2 k in place, 7.9 k copied, 6.8 k from a view; of its reply 8.1 k, 6.2 k, 5.2 k
   * (docs/benchmarks.md, "Third pass"). Values are copied out as before (`copyBuffers`):
   * nothing decoded refers to the pool. What is decoded is the message's bytes from `skip` to
   * `length` (a part of it, for a reader that takes the rest from its bytes).
   */
  private decodeSmall(at: number, length: number, skip = 0): unknown {
    const index = Math.floor((at - this.firstBufferAt) / this.bufferStride);
    let view = this.smallViews[index];
    if (this.smallViewAt[index] !== at || view === undefined) {
      if (!(index >= 0 && index < this.smallViewAt.length)) return this.decodeInPlace(at + skip, length - skip);
      view = this.pool.subarray(at, Math.min(at + SMALL_DECODE, this.firstBufferAt + (index + 1) * this.bufferStride));
      this.smallViews[index] = view;
      this.smallViewAt[index] = at;
    }
    if (length > view.length) return this.decodeInPlace(at + skip, length - skip);
    this.unpackRange.start = skip;
    this.unpackRange.end = length;
    return this.unpackr.unpack(view, this.unpackRange);
  }

  /** Stops for good (the mailbox system closed); waiting senders are let go to see it. */
  stop(): void {
    this.stopped = true;
    this.releaseRoomWaiters();
  }

  /** True while the receiver sleeps on its doorbell. */
  get isParked(): boolean {
    return this.parked;
  }

  private schedulePump(): void {
    if (this.pumpScheduled || this.stopped) return;
    this.pumpScheduled = true;
    setImmediate(this.pump);
  }

  private readonly pump = (): void => {
    this.pumpScheduled = false;
    this.drainedAfterSend = false;
    this.turn(true);
  };

  /**
   * This process just sent messages outside a turn of this pump: what the actor layer sends
   * (answers, asks) goes at the end of the event-loop turn that made it, in a microtask after
   * this pump's turn. The next drain, which waits `spinUs` for what comes back, then came only
   * after another turn of the event loop, ~3.5 µs here: a time in which a process that shares
   * its CPU with the one that answers next (two workers of a sequential caller on one CPU) held
   * the CPU for nothing. What such a drain delivers may send and drain again: these end when
   * one finds nothing, or {@link AFTER_SEND_MS} after the last scheduled turn; then the event
   * loop turns (docs/benchmarks.md, "Eighth pass: draining right after sending").
   */
  drainAfterSend(): void {
    if (this.parked || this.stopped || this.port.sends === this.sendsAtTurnEnd) return;
    if (this.drainedAfterSend && performance.now() - this.scheduledTurnAt > AFTER_SEND_MS) return;
    this.drainedAfterSend = true;
    this.turn(false);
  }

  /**
   * One turn: drains (the first drain may wait), delivers, then lingers or parks (`mayPark`: a
   * scheduled turn). The actor layer's sends, and so its calls of {@link drainAfterSend}, come in
   * microtasks: never while a turn runs.
   */
  private turn(mayPark: boolean): void {
    this.turning = true;
    try {
      this.turnOnce(mayPark);
    } finally {
      this.turning = false;
    }
  }

  /**
   * Delivers what the inbox holds now, within this call: a closing actor system takes in what
   * reached its process before it refuses new messages. Not while a turn runs (its rows are in
   * use; what it drained is being delivered), nor when parked: the loop parked on an empty
   * inbox, and a message since then has rung its doorbell.
   */
  drainNow(): void {
    if (this.turning || this.parked || this.stopped) return;
    this.turn(false);
  }

  private turnOnce(mayPark: boolean): void {
    if (this.stopped) return;
    const stats = this.loopStats;
    stats.turns++;
    let got = 0;
    // The first drain may wait for messages (spinUs; by yielding when the group's processes
    // crowd this process's CPUs, native/mbx_drain.cc). A turn with senders waiting for room is
    // for them to try again, so it waits at most ROOM_TURN_SPIN_US: waiting the whole spinUs
    // there made the mailbox suite's sender, which waits for room whenever the receiver's
    // mailbox is full, 5-20% slower.
    const spinUs = this.roomWaiters.length > 0 ? Math.min(ROOM_TURN_SPIN_US, this.spinUs) : this.spinUs;
    for (let round = 0; round < 8 && !this.stopped; round++) {
      stats.drains++;
      const n = this.native.mbxDrain(round === 0 ? spinUs : 0);
      if (n > 0) this.deliver(n);
      got += n;
      if (n < this.att.burst) break;
    }
    if (this.stopped) return;
    // Every turn may have made room somewhere (senders to this process are not the only ones
    // that drain); the waiting senders try again, and wait again if they must.
    if (this.roomWaiters.length > 0) this.releaseRoomWaiters();
    this.sendsAtTurnEnd = this.port.sends;
    const now = performance.now();
    if (mayPark) this.scheduledTurnAt = now;
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
    // (a turn after a send leaves parking to the scheduled turn, which is still to come)
    if (!mayPark || got > 0 || (linger < this.idleParkMs && (linger < this.crowdedLingerMs() || !this.native.mbxCrowded())) || !this.native.mbxPark()) {
      this.schedulePump();
      return;
    }
    stats.parks++;
    this.parked = true;
  }

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

  /**
   * Resolves when the mailbox at `at` may have room: its process drained (it rings
   * this process's doorbell), this process's pump turned, or {@link ROOM_RECHECK_MS} passed.
   */
  awaitRoom(at: MailboxAddress): Promise<void> {
    this.port.assertOpen();
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
      const bad = (flags >>> ROW_BAD_SHIFT) & ROW_BYTE_MASK;
      if (bad !== 0) {
        const address = (BigInt(length) << 32n) | BigInt(at);
        this.port.reportError(
          new MpBusError(
            ErrorCodes.badDescriptor,
            `refused a descriptor (0x${address.toString(16)}) on this process's inbox: it ${BadDescriptor[bad] ?? 'is invalid'}; a peer wrote garbage or a stale pointer`,
          ),
        );
        continue;
      }
      if (flags & ROW_LARGE) large ??= this.native.mbxTakeLarge();
      // A burst is mostly one mailbox: look it up once per run, not once per message.
      if (id !== lastId) {
        lastId = id;
        lastBox = this.boxes.get(id);
      }
      const box = lastBox;
      if (!box || box.closed) {
        this.port.reportError(
          new MpBusError(
            ErrorCodes.deadLetter,
            `a message for mailbox id ${id} arrived after it was closed (sender slot ${(flags >>> ROW_SENDER_SHIFT) & ROW_BYTE_MASK})`,
          ),
        );
        continue;
      }
      const codec = flags & ROW_CODEC_MASK;
      if (box.burst !== undefined && !(flags & ROW_LARGE)) {
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
          box.emitBurst(bytes, this.largeUnpackr);
          continue;
        }
      }
      // A consumer that reads some messages from their bytes (the actor layer's answers and tells) may take it.
      if (box.fromBytes !== undefined && codec === CODEC_MSGPACK && !(flags & ROW_LARGE)) {
        this.offeredAt = at;
        this.offeredLength = length;
        if (box.fromBytes(this.pool, at, length, this.decodeOffered)) continue;
      }
      let value: unknown;
      try {
        if (flags & ROW_LARGE) {
          const bytes = large![at]!;
          value = codec === CODEC_MSGPACK ? this.largeUnpackr.unpack(bytes) : bytes;
        } else if (codec === CODEC_MSGPACK) {
          value = length < SMALL_DECODE ? this.decodeSmall(at, length) : this.decodeInPlace(at, length);
        } else {
          const copy = Buffer.allocUnsafe(length);
          this.pool.copy(copy, 0, at, at + length);
          value = copy;
        }
      } catch (err) {
        // A consumer that answers for what it gets (the actor transport) gets the message with
        // an UndecodableValue where the value was, when the rest of it decodes.
        if (box.tolerant && codec === CODEC_MSGPACK) {
          try {
            box.deliver(decodeTolerantly(() => (flags & ROW_LARGE ? this.largeUnpackr.unpack(large![at]!) : this.decodeInPlace(at, length))));
            continue;
          } catch {
            // not even the rest decodes: reported below
          }
        }
        this.port.reportError(
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
}
