/**
 * The pending asks of an actor system: {@link PendingAsk} (an ask waiting for its answer, made
 * by this system or relayed by one of its routers) and {@link AskForwarder} (what a router
 * offers the system to forward asks to its workers). See docs/actors.md, "The ask path".
 */
import { toWireError } from './errors.js';
import { EnvelopeKind, type Envelope } from './transport.js';

/** Sends an answer to an ask's envelope (the system's `reply`). */
export interface Replier {
  reply(envelope: Envelope, kind: typeof EnvelopeKind.reply | typeof EnvelopeKind.failure, payload: unknown): void;
}

/** Why an ask is given to another worker (see {@link AskForwarder.regive}). */
export type RegiveReason = 'gone' | 'holder-gone' | 'stalled';

/**
 * What a router needs from the system to forward asks (see `ActorSystem.forwardAsk`): the
 * system tells it when a worker finished one, and hands back asks whose worker went away.
 */
export interface AskForwarder {
  readonly name: string;
  /** Timeout of an ask at a worker, when shorter than its caller's. */
  readonly workerTimeoutMs: number | undefined;
  /** `worker` answered (or gave up on) one ask forwarded to it. */
  settled(worker: string): void;
  /** One ask forwarded to `worker` was taken back from it (it stalled): no answer from it counts as progress. */
  forgetOne(worker: string): void;
  /** One ask forwarded to `worker` ran out of time with no answer: it no longer holds it, and that is no progress. */
  timedOut(worker: string): void;
  /**
   * `worker` did not take `origin` (try number `attempt`): true when the router gave it to
   * another worker. Why: 'gone', the worker refused it or was not there (it stopped);
   * 'holder-gone', the transport reported the name's holder gone (its process died, or it left);
   * 'stalled', it holds asks and answers none.
   */
  regive(origin: Envelope, attempt: number, worker: string, why?: RegiveReason): boolean;
}

/**
 * An ask waiting for its answer: made here (a promise to settle), or forwarded by a router of
 * this system for a caller elsewhere (a relay: the answer goes on to the caller's envelope).
 *
 * With many asks in flight every byte an ask keeps alive is copied by each young-generation
 * collection it lives through (docs/benchmarks.md, "Many asks in flight"): so an ask made here
 * keeps only its promise's resolve function (a rejection resolves it with a rejected promise),
 * and one a router of this system gave to a worker keeps its payload, not its envelope, when
 * that envelope carried nothing else (no sender, no trace): {@link ActorSystem} makes the
 * envelope anew for another worker.
 */
export class PendingAsk {
  /** Set while a router of this system has given the ask to a worker. */
  router: AskForwarder | undefined = undefined;
  worker: string | undefined = undefined;
  attempt = 0;
  /**
   * The envelope to answer (relays) or to give to another worker when this one goes: a relay's
   * always, a routed ask's made here when it carried a sender or a trace.
   */
  origin: Envelope | undefined = undefined;
  /** A routed ask made here without `origin`: its payload (the rest of its envelope is the ask's own fields). */
  payload: unknown = undefined;

  constructor(
    readonly id: number,
    readonly to: string,
    readonly action: string,
    readonly timeoutMs: number,
    /** When it expires, on the `performance.now()` clock (`due - timeoutMs`: when it was made, also the start of its latency). */
    readonly due: number,
    /** Asks made here: the resolve function of their promise. */
    private onValue: ((value: unknown) => void) | undefined,
    /** For relays: what answers the caller (the system). */
    private readonly relay: Replier | undefined,
  ) {}

  get isRelay(): boolean {
    return this.relay !== undefined;
  }

  resolve(value: unknown): void {
    if (this.relay) this.relay.reply(this.origin!, EnvelopeKind.reply, value);
    else this.onValue!(value);
    this.release();
  }

  reject(err: unknown): void {
    if (this.relay) this.relay.reply(this.origin!, EnvelopeKind.failure, toWireError(err));
    // Resolving with a thenable that rejects rejects it with `err` (a microtask turn later than a
    // reject function would): the reject function is not kept for the rare failure. (Adopting
    // `Promise.reject(err)` instead made a rejected promise nothing handled yet, which Node
    // tracks as a possible unhandled rejection and then untracks: 2.5x the cost, which a close
    // failing a million asks at once spent in one turn of the event loop.)
    else this.onValue!(new Rejection(err));
    this.release();
  }

  /**
   * Settled for good: lets go of what the ask held (its envelope or payload, the promise's
   * function), for whoever still holds the ask (a caller's reaction, a re-give in progress).
   */
  release(): void {
    this.origin = undefined;
    this.payload = undefined;
    this.onValue = undefined;
  }
}

/** A thenable that rejects with `reason`: what {@link PendingAsk.reject} resolves an ask's promise with. */
class Rejection {
  constructor(private readonly reason: unknown) {}

  then(_resolve: unknown, reject: (reason: unknown) => void): void {
    reject(this.reason);
  }
}

/** First capacity of a {@link PendingTable} (a power of two). */
const TABLE_MIN = 256;

/**
 * The pending asks of a system by id, where a `Map` was: ids are handed out in sequence and an
 * ask lives about as long as the asks around it, so `id & mask` is a free slot nearly always,
 * and a slot still held by an older ask sends the newer one to a small overflow `Map`. A `Map`
 * with asks added and removed at this rate rehashed every ~capacity/2 asks (a new table each
 * time: ~55 bytes per ask promoted out of the young generation in the flagship's caller) and
 * cost a hash lookup per get, set and delete.
 */
export class PendingTable {
  private slots: Array<PendingAsk | undefined> = new Array<PendingAsk | undefined>(TABLE_MIN).fill(undefined);
  private mask = TABLE_MIN - 1;
  private readonly overflow = new Map<number, PendingAsk>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  has(id: number): boolean {
    return this.get(id) !== undefined;
  }

  get(id: number): PendingAsk | undefined {
    const p = this.slots[id & this.mask];
    if (p !== undefined && p.id === id) return p;
    return this.overflow.size > 0 ? this.overflow.get(id) : undefined;
  }

  /** Adds `p` (its id is not in the table). */
  set(p: PendingAsk): void {
    // Half full at most: a newer ask then finds its slot taken only by an ask that outlived
    // as many newer ones as the table has slots.
    if (++this.count > this.slots.length >> 1) this.grow();
    this.place(p);
  }

  /** Removes the ask with `id`; false when it was not there. */
  delete(id: number): boolean {
    const i = id & this.mask;
    const p = this.slots[i];
    if (p !== undefined && p.id === id) this.slots[i] = undefined;
    else if (this.overflow.size === 0 || !this.overflow.delete(id)) return false;
    this.count--;
    return true;
  }

  /** The pending asks (a copy: the table may change while the caller goes through them). */
  values(): PendingAsk[] {
    return this.select(() => true);
  }

  /**
   * The pending asks that `test` accepts (a copy, as {@link values}), without copying the others
   * first: with a million asks pending, a copy of them all took ~100 ms.
   */
  select(test: (p: PendingAsk) => boolean): PendingAsk[] {
    const found: PendingAsk[] = [];
    this.visit((p) => {
      if (test(p)) found.push(p);
      return false;
    });
    return found;
  }

  /** True when `test` accepts one of the pending asks (looked for in place). */
  some(test: (p: PendingAsk) => boolean): boolean {
    return this.visit(test);
  }

  /** Calls `stop` on each pending ask, in the slots, then in the overflow, until it answers true; true if it did. */
  private visit(stop: (p: PendingAsk) => boolean): boolean {
    const slots = this.slots;
    for (let i = 0; i < slots.length; i++) {
      const p = slots[i];
      if (p !== undefined && stop(p)) return true;
    }
    for (const p of this.overflow.values()) if (stop(p)) return true;
    return false;
  }

  private place(p: PendingAsk): void {
    const i = p.id & this.mask;
    if (this.slots[i] === undefined) this.slots[i] = p;
    else this.overflow.set(p.id, p);
  }

  private grow(): void {
    const all = this.values();
    this.slots = new Array<PendingAsk | undefined>(this.slots.length * 2).fill(undefined);
    this.mask = this.slots.length - 1;
    this.overflow.clear();
    for (const p of all) this.place(p);
  }
}
