/** Routers: a pool of workers behind one name. See {@link Router}. */
import type { Subscription } from 'rxjs';
import { describeThrown, ErrorCodes, MpBusError } from '../errors.js';
import { logger } from '../log.js';
import { callback, checkedOptions, durationMs, integerIn, oneOf, optionKeys } from '../validation.js';
import { STOP_ACTION } from './cell.js';
import type { ActionOf, AnyContract, MsgOf } from './contract.js';
import { ActorErrorCodes } from './errors.js';
import { ActorRef } from './ref.js';
import type { AskForwarder, RegiveReason } from './pending.js';
import type { DeadLetterReason } from './cell.js';
import { traceRoute, tracingOn } from './tracing.js';
import { EnvelopeKind, type ActorTransport, type Envelope, type Registration, type SystemEndpoint } from './transport.js';

/** How a router picks a worker. */
export type RoutingStrategy = 'round-robin' | 'least-loaded' | 'consistent-hash';

/** The arguments of a router's `key` function: a message and its action, each action with its own message type. */
export type KeyArgs<C> = { [K in ActionOf<C>]: [msg: MsgOf<C, K>, action: K] }[ActionOf<C>];

/** Options of {@link ActorSystem.router}; `C` is the contract of the router's name (its workers'). */
export interface RouterOptions<C = AnyContract> {
  /** Default 'round-robin'. */
  strategy?: RoutingStrategy | undefined;
  /**
   * Initial workers, by actor name. One whose actor stopped or whose process died gets no
   * messages until its name is served again (see {@link Router.addWorker}).
   */
  workers?: readonly (string | ActorRef<C>)[] | undefined;
  /** Follow this group's membership: its members are the workers. */
  group?: string | undefined;
  /**
   * consistent-hash: the key of a message (default: its `key` field). Equal keys go to the same
   * worker. With a contract, `msg` is narrowed by `action` (`action === 'place' ? msg.sku : ...`).
   */
  key?: ((...args: KeyArgs<C>) => string) | undefined;
  /** Times an ask is given to another worker after its worker died (default 5). */
  maxRedeliveries?: number | undefined;
  /** Timeout of the router's own asks to workers (default: the system's ask timeout). */
  workerTimeoutMs?: number | undefined;
  /** Virtual nodes per worker on the consistent-hash ring (default 64). */
  virtualNodes?: number | undefined;
  /**
   * A worker with asks in hand that answered none of them for this long is stalled (stopped,
   * starved, stuck in a handler): it gets no new messages until it answers again (default
   * 1 000 ms; found by a check every `stallMs / 4`, at most 250 ms, so up to two check intervals
   * later). Other strategies' choices stand; consistent-hash sends the stalled worker's keys
   * to the next worker on the ring meanwhile. When every worker is stalled, they are used anyway.
   */
  stallMs?: number | undefined;
  /**
   * What happens to the asks a stalled worker holds: 'wait' (default) leaves them with it, to be
   * answered when it resumes or to time out (each ask is handled at most once); 'regive' gives
   * them to other workers once the worker is found stalled (each is answered; one that had
   * reached the stalled worker's mailbox may be handled twice, its late answer a dead letter;
   * one still waiting in the asking process for room in that mailbox is not sent to it).
   */
  onStall?: 'wait' | 'regive' | undefined;
}

const ROUTER_OPTION_KEYS = optionKeys<RouterOptions>({
  strategy: true,
  workers: true,
  group: true,
  key: true,
  maxRedeliveries: true,
  workerTimeoutMs: true,
  virtualNodes: true,
  stallMs: true,
  onStall: true,
});

/** What a router has done. */
export interface RouterStats {
  /** Messages routed to each worker (including ones re-given). */
  perWorker: Record<string, number>;
  /** Asks given to another worker: theirs died, stopped, stalled (`onStall: 'regive'`) or refused them while closing (each time counts). */
  redelivered: number;
  /** Asks in flight at workers now. */
  inFlight: number;
}

/**
 * What a router needs of the actor system that made it (`ActorSystem` implements it): a router
 * is a layer under the system, which creates it, so it names the system by this interface.
 */
export interface RouterHost {
  readonly transport: ActorTransport;
  /** True once the system, or the runtime under it, began to close. */
  readonly shuttingDown: boolean;
  /**
   * Runs `fail`, an ask's failure for want of a worker, on a later turn, and not before the
   * system's `goneGraceMs` has passed since `goneAt` (when the router's last worker left). When
   * every process of a program is signalled at once (systemd's stop, nodemon's and pm2's kill of
   * the process tree), the workers may leave before this process has handled its own signal (a
   * busy or descheduled process took up to 25 ms on a loaded machine): the ask then fails as the
   * close's (`SYSTEM_CLOSED`, which the ending process drops) instead of as `NO_WORKERS`, which
   * ended an unguarded loop of asks, and its process, with code 1 and a stack trace.
   */
  afterGoneGrace(goneAt: number | undefined, fail: () => void): void;
  /**
   * True once new asks are refused: from the start of the close, except while it takes in what
   * other hosts had sent before it left them (those asks are routed, and answered).
   */
  readonly refusingAsks: boolean;
  ref<C = AnyContract>(name: string): ActorRef<C>;
  registerEndpoint(name: string, endpoint: SystemEndpoint): Registration;
  forwardTell(worker: string, envelope: Envelope): void;
  forwardAsk(router: AskForwarder, worker: string, origin: Envelope, attempt: number): void;
  regiveFrom(router: AskForwarder, worker: string): void;
  reply(envelope: Envelope, kind: typeof EnvelopeKind.reply | typeof EnvelopeKind.failure, payload: unknown): void;
  deadLetter(to: string, envelope: Envelope, reason: DeadLetterReason): void;
}

/** What a router keeps per worker: one map entry, looked up once per ask and once per answer. */
interface WorkerCounts {
  /** Asks given to it and not answered yet. */
  held: number;
  /** Messages routed to it (including ones re-given). */
  routed: number;
  /**
   * Answers from it, plus the times it got work while it had none: counted per ask, and turned
   * into {@link progressAt} by the stall check, so that answering costs no clock read.
   */
  progress: number;
  /** {@link progress} when the stall check last looked. */
  progressSeen: number;
  /** When the stall check first saw {@link progress} at its present count (its stall clock). */
  progressAt: number;
  /**
   * An ask it held ran out of time, and it has answered none since: new work then does not
   * restart its stall clock (a worker stuck in a handler, whose asks time out before `stallMs`,
   * was never found stalled, and got new asks for good).
   */
  owes: boolean;
}

/**
 * How often a router checks whether a listed worker's name is served again: often for a while
 * (a pool's child restarts within a second or two), then seldom (it may never come back).
 */
const AWAIT_CHECK_MS = 100;
const AWAIT_SLOW_AFTER_MS = 5000;
const AWAIT_SLOW_CHECK_MS = 1000;

/** Workers that left whose counts a router keeps (see `Router.counts`). */
const KEPT_DEPARTED = 64;

/** How many more unanswered asks than the least busy worker a round-robin worker may hold before its turns are skipped. */
const ROUND_ROBIN_SLACK = 8;

/** 32-bit FNV-1a: stable across processes and runs. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * The ring's position of a key or virtual node: FNV-1a, then murmur3's 32-bit finalizer. FNV-1a
 * alone leaves similar strings (`w0#0`..`w0#63`, `order-1`..`order-2000`) close together on the
 * ring, so 4 workers got 12-40% of the keys; the finalizer spreads every input bit over the word.
 */
export function ringHash(text: string): number {
  let hash = fnv1a(text);
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/**
 * A pool of workers behind one name. Messages to the router's name go to one
 * worker, chosen round-robin, by least load, or by a consistent hash of a key. Workers are actor
 * names anywhere in the group: listed, added and removed at runtime, or taken from a group
 * (actors spawned with `groups: ['workers']`), in which case workers that join, leave or die
 * are followed automatically.
 *
 * The router forwards each ask's envelope to a worker through its system (the worker answers
 * the caller directly; see `ActorSystem.forwardAsk`) and keeps track of what each worker has in
 * hand: when a worker stops or its process dies, the asks it had not answered are given to
 * another worker (a tell is fire-and-forget and is not re-given).
 */
export class Router<C = AnyContract> implements SystemEndpoint, AskForwarder {
  /** The ref callers use: messages to it are routed. */
  readonly ref: ActorRef<C>;
  /** How it picks a worker (`options.strategy`, default 'round-robin'). */
  readonly strategy: RoutingStrategy;

  private readonly pool: string[] = [];
  /**
   * Per worker routed to, kept after it leaves the pool (its late answers still count, and
   * `stats()` shows what it did) for the {@link KEPT_DEPARTED} that left last: a long-lived
   * router whose workers come and go (pools restart children under new names) stays bounded.
   */
  private readonly counts = new Map<string, WorkerCounts>();
  /**
   * The worker {@link pick} just chose by turn and the counts it read for it (undefined: none
   * yet), which {@link count} then takes instead of looking them up again: one string-keyed
   * lookup less per routed ask. Cleared by both, so they never outlive the routing of one message.
   */
  private pickedWorker: string | undefined;
  private pickedCounts: WorkerCounts | undefined;
  /** Workers that left the pool, oldest first (see {@link counts}). */
  private departed: string[] = [];
  /** When the pool last became empty (`performance.now()`): see {@link RouterHost.afterGoneGrace}. */
  private lostWorkersAt: number | undefined;
  private ring: { hash: number; worker: string }[] = [];
  private nextIndex = 0;
  private redelivered = 0;
  private readonly registration: Registration;
  private readonly subscriptions: Subscription[] = [];
  private stopped = false;
  private readonly stallMs: number;
  private readonly onStall: 'wait' | 'regive';
  private readonly stalled = new Set<string>();
  /** When each stalled worker was found stalled. */
  private readonly stalledAt = new Map<string, number>();
  /** Workers that were stalled and hold nothing now: each may hold one ask (a probe) until it answers. */
  private readonly probing = new Set<string>();
  /** Runs while some worker holds asks or is stalled: an idle router sets no timer. */
  private stallTimer: NodeJS.Timeout | undefined;
  private readonly stallCheckMs: number;
  /** The group's members as read in this turn of the event loop ({@link servedAgain}). */
  private membersThisTurn: Set<string> | undefined;
  /** Workers the user named (`workers`, {@link addWorker}): they come back when their name is served again. */
  private readonly listed = new Set<string>();
  /**
   * Listed workers out of the pool since their actor stopped, refused an ask or its process
   * died, until their name is served again; true while the holder that refused still holds it
   * (a stopping actor: only another holder brings the name back).
   */
  private readonly awaited = new Map<string, boolean>();
  /** Checks {@link awaited} names while there are any (every 100 ms; every 1 s after 5 s). */
  private awaitTimer: NodeJS.Timeout | undefined;
  /** When the latest name began to be awaited. */
  private awaitSince = 0;

  /** @internal use `system.router(name, options)` */
  constructor(
    /** The name it serves: messages to this name, from any process, go to one of its workers. */
    readonly name: string,
    private readonly system: RouterHost,
    private readonly options: RouterOptions,
  ) {
    checkedOptions(options, ROUTER_OPTION_KEYS, `router '${name}' options`);
    this.strategy = oneOf(options.strategy ?? 'round-robin', 'router strategy', ['round-robin', 'least-loaded', 'consistent-hash'] as const);
    if (options.maxRedeliveries != null) integerIn(options.maxRedeliveries, 'router maxRedeliveries', 0, 1000);
    if (options.workerTimeoutMs != null) durationMs(options.workerTimeoutMs, 'router workerTimeoutMs', 1);
    if (options.virtualNodes != null) integerIn(options.virtualNodes, 'router virtualNodes', 1, 4096);
    this.stallMs = durationMs(options.stallMs ?? 1000, 'router stallMs', 1);
    this.onStall = oneOf(options.onStall ?? 'wait', 'router onStall', ['wait', 'regive'] as const);
    if (options.key != null) callback(options.key, 'router key');
    const workers =
      options.workers == null ? [] : Array.isArray(options.workers) ? options.workers.map((w) => (w instanceof ActorRef ? w.name : w)) : undefined;
    if (workers === undefined || workers.some((w) => typeof w !== 'string' || w.length === 0)) {
      throw new MpBusError(ErrorCodes.invalidOption, `router workers must be an array of actor names or refs, got ${String(options.workers)}`);
    }
    if (options.group != null && (typeof options.group !== 'string' || options.group.length === 0)) {
      throw new MpBusError(ErrorCodes.invalidOption, `router group must be a group name, got ${String(options.group)}`);
    }
    for (const w of workers) this.addWorker(w);
    const transport = system.transport;
    if (options.group != null) {
      const group = options.group;
      this.subscriptions.push(
        transport.membership$.subscribe((m) => {
          if (m.group !== group) return;
          if (m.change === 'joined') this.enlist(m.name);
          else this.drop(m.name);
        }),
      );
      for (const w of transport.members(group)) this.enlist(w);
    }
    this.subscriptions.push(transport.gone$.subscribe((g) => this.workerGone(g.name)));
    this.registration = system.registerEndpoint(name, this);
    this.ref = system.ref<C>(name);
    this.stallCheckMs = Math.max(20, Math.min(this.stallMs / 4, 250));
  }

  /** Workers stalled now (see {@link RouterOptions.stallMs}). */
  stalledWorkers(): string[] {
    return [...this.stalled];
  }

  /** Marks workers that hold asks and answered none for `stallMs`; un-marks happen in {@link settled}. */
  private findStalled(): void {
    const now = performance.now();
    // A stalled worker that holds nothing any more (its asks were given to others, or timed out)
    // has nothing to be judged by: after stallMs it gets one ask as a probe, and only its answer
    // makes it a worker like the others again (a worker still stopped is found stalled again).
    for (const worker of this.stalled) {
      if (this.held(worker) > 0 || now - (this.stalledAt.get(worker) ?? now) < this.stallMs) continue;
      this.stalled.delete(worker);
      this.probing.add(worker);
    }
    let holding = false;
    for (const [worker, c] of this.counts) {
      holding ||= c.held > 0;
      // Progress since the last check restarts the stall clock from now: a stall is found at
      // most one check interval (stallMs / 4 at most) later than from the answer's own time.
      if (c.progress !== c.progressSeen) {
        c.progressSeen = c.progress;
        c.progressAt = now;
        continue;
      }
      if (c.held <= 0 || this.stalled.has(worker) || now - c.progressAt < this.stallMs) continue;
      this.stalled.add(worker);
      this.stalledAt.set(worker, now);
      this.probing.delete(worker);
      if (this.onStall === 'regive') this.system.regiveFrom(this, worker);
    }
    // nothing to judge until the next ask is routed (which starts the checks again)
    if (!holding && this.stalled.size === 0) {
      clearInterval(this.stallTimer);
      this.stallTimer = undefined;
    }
  }

  /** The workers now, in the order they were added. */
  workers(): string[] {
    return [...this.pool];
  }

  /**
   * Adds a worker (an actor name anywhere in the group). Adding twice is a no-op. While its
   * actor is stopped or its process dead, it gets no messages; it gets them again once its
   * name is served again (a pool's child restarted under its name; checked every 0.1 to 1 s).
   */
  addWorker(worker: string): void {
    if (typeof worker !== 'string' || worker.length === 0)
      throw new MpBusError(ErrorCodes.invalidOption, `router worker must be an actor name, got ${String(worker)}`);
    this.listed.add(worker);
    this.awaited.delete(worker);
    this.enlist(worker);
  }

  /** Removes a worker for good; asks it has in hand are still answered (or re-given if it dies). */
  removeWorker(worker: string): void {
    this.listed.delete(worker);
    this.awaited.delete(worker);
    this.drop(worker);
  }

  private enlist(worker: string): void {
    if (this.pool.includes(worker)) return;
    this.pool.push(worker);
    this.rebuildRing();
  }

  private drop(worker: string): void {
    const i = this.pool.indexOf(worker);
    if (i < 0) return;
    this.pool.splice(i, 1);
    if (this.pool.length === 0) this.lostWorkersAt = performance.now();
    this.rebuildRing();
    this.departed.push(worker);
    if (this.departed.length > 2 * KEPT_DEPARTED) this.forgetDeparted();
  }

  /** Forgets the counts of all but the last {@link KEPT_DEPARTED} workers that left, unless back or still holding asks. */
  private forgetDeparted(): void {
    const keep = new Set(this.departed.slice(-KEPT_DEPARTED));
    const later: string[] = [];
    for (const worker of this.departed.slice(0, -KEPT_DEPARTED)) {
      if (keep.has(worker) || this.pool.includes(worker)) continue;
      if (this.held(worker) > 0) later.push(worker);
      else {
        this.counts.delete(worker);
        this.stalled.delete(worker);
        this.stalledAt.delete(worker);
        this.probing.delete(worker);
      }
    }
    this.departed = [...later, ...this.departed.slice(-KEPT_DEPARTED)];
  }

  /**
   * The transport reported the holder of `worker`'s name gone. A pool restarts a child under
   * its name, and the notice of the old holder's end may come after the new one joined the
   * group: by name the group did not change, so no 'joined' follows, and removing the name would
   * leave the new worker without work for good. So a group's router keeps the name when it is
   * registered and in the group now: a holder's names are gone from the registry by the time
   * its end is reported, so what holds the name now is another one.
   */
  private workerGone(worker: string): void {
    if (this.awaited.has(worker)) {
      // the holder that refused asks (a stopping actor) is gone: the next holder is a new one
      this.awaited.set(worker, false);
      this.checkAwaited();
      return;
    }
    if (!this.pool.includes(worker)) return;
    this.drop(worker);
    if (this.servedAgain(worker)) this.enlist(worker);
    else if (this.listed.has(worker)) this.awaitWorker(worker, false);
  }

  /** A listed worker refused an ask, or was not there: out of turn until its name is served again. */
  private workerRefused(worker: string): void {
    this.drop(worker);
    if (this.listed.has(worker)) this.awaitWorker(worker, this.system.transport.lookup(worker) !== undefined);
  }

  /** `worker` (listed) waits out of the pool; `holderRefused`: the name's holder now refused asks. */
  private awaitWorker(worker: string, holderRefused: boolean): void {
    if (this.stopped) return;
    this.awaited.set(worker, holderRefused);
    this.awaitSince = performance.now();
    if (this.awaitTimer === undefined) this.scheduleAwaitCheck();
  }

  private scheduleAwaitCheck(): void {
    const delayMs = performance.now() - this.awaitSince < AWAIT_SLOW_AFTER_MS ? AWAIT_CHECK_MS : AWAIT_SLOW_CHECK_MS;
    this.awaitTimer = setTimeout(() => {
      this.awaitTimer = undefined;
      this.checkAwaited();
      if (this.awaited.size > 0 && !this.stopped) this.scheduleAwaitCheck();
    }, delayMs);
    this.awaitTimer.unref();
  }

  /** Puts back the awaited workers whose name is served by a holder other than one that refused. */
  private checkAwaited(): void {
    for (const [worker, holderRefused] of this.awaited) {
      const served = this.system.transport.lookup(worker) !== undefined;
      if (!served) this.awaited.set(worker, false);
      else if (!holderRefused) {
        this.awaited.delete(worker);
        this.enlist(worker);
      }
    }
  }

  private servedAgain(worker: string): boolean {
    if (this.stopped || this.system.transport.lookup(worker) === undefined) return false;
    if (this.listed.has(worker)) return true;
    const group = this.options.group;
    if (group == null) return false;
    // The group read once per turn: a dead worker's asks are re-given one by one.
    return this.groupNow(group).has(worker);
  }

  /**
   * The members of `group` read from the registry now, once per turn at most (not at the
   * transport's next poll): those that joined since are enlisted by the read itself.
   */
  private groupNow(group: string): Set<string> {
    if (this.membersThisTurn === undefined) {
      this.membersThisTurn = new Set(this.system.transport.members(group));
      setImmediate(() => (this.membersThisTurn = undefined));
    }
    return this.membersThisTurn;
  }

  /** What it routed: messages per worker (those that left included), asks given to another worker, asks in flight now. */
  stats(): RouterStats {
    let inFlight = 0;
    const perWorker: Record<string, number> = {};
    for (const [worker, c] of this.counts) {
      inFlight += c.held;
      perWorker[worker] = c.routed;
    }
    return { perWorker, redelivered: this.redelivered, inFlight };
  }

  /** Unregisters the router's name. Asks in flight at workers are still answered. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.stallTimer);
    clearTimeout(this.awaitTimer);
    this.awaited.clear();
    for (const s of this.subscriptions) s.unsubscribe();
    this.registration.close();
  }

  // ---------------------------------------------------------------- receiving

  /** @internal */
  depth(): number {
    let held = 0;
    for (const c of this.counts.values()) held += c.held;
    return held;
  }

  /** @internal */
  receive(envelope: Envelope): void {
    if (envelope.action === STOP_ACTION)
      void this.stop(); // system.stop(name) from another process
    else if (envelope.kind === EnvelopeKind.ask) this.routeAsk(envelope, 0);
    else if (envelope.kind === EnvelopeKind.tell) this.routeTell(envelope);
    else this.system.deadLetter(this.name, envelope, 'late-reply');
  }

  private routeTell(envelope: Envelope): void {
    let worker: string | undefined;
    try {
      worker = this.pick(envelope);
    } catch (err) {
      // (a tell never throws at its sender)
      logger('router', { router: this.name }).warn({ err, action: envelope.action }, 'a tell could not be routed: it is a dead letter');
      this.system.deadLetter(this.name, envelope, 'key-failed');
      return;
    }
    if (worker === undefined) {
      if (tracingOn) traceRoute(this.name, undefined, envelope, 0);
      this.system.deadLetter(this.name, envelope, 'no-workers');
      return;
    }
    this.count(worker);
    this.system.forwardTell(worker, tracingOn ? traceRoute(this.name, worker, envelope, 0) : envelope);
  }

  /** @internal */
  get workerTimeoutMs(): number | undefined {
    return this.options.workerTimeoutMs;
  }

  /** @internal the system hands back an ask whose worker went away (or, with `onStall: 'regive'`, stalled). */
  regive(origin: Envelope, attempt: number, worker: string, why: RegiveReason = 'gone'): boolean {
    if (attempt >= (this.options.maxRedeliveries ?? 5)) return false;
    // A worker that refused the ask or was not there is dropped; one whose holder the transport
    // reported gone may have a new holder already (workerGone).
    if (why === 'gone') this.workerRefused(worker);
    else if (why === 'holder-gone') this.workerGone(worker);
    this.redelivered++;
    this.routeAsk(origin, attempt + 1);
    return true;
  }

  /**
   * Gives an ask to a worker: the system forwards the envelope itself (no second ask), and
   * tells this router when the worker answered ({@link settled}) or went away ({@link regive}).
   */
  private routeAsk(envelope: Envelope, attempt: number): void {
    // Its system is closing: a new ask is refused, as an actor refuses one (the router keeps its
    // name until the asks it gave out are answered: those answers come back through it).
    if (attempt === 0 && this.system.refusingAsks) {
      if (tracingOn) traceRoute(this.name, undefined, envelope, attempt);
      this.system.deadLetter(this.name, envelope, 'closed');
      this.system.reply(envelope, EnvelopeKind.failure, {
        name: 'SystemClosedError',
        code: ActorErrorCodes.systemClosed,
        message: `router '${this.name}' is closing with its actor system`,
      });
      return;
    }
    let worker: string | undefined;
    try {
      worker = this.pick(envelope);
      // None known: the group is read now rather than at the transport's next poll (up to its
      // idlePollMs away), so a worker that joined in another process just before it (or its
      // process) asked this router gets the ask.
      if (worker === undefined && this.options.group != null && !this.stopped) {
        this.groupNow(this.options.group);
        worker = this.pick(envelope);
      }
    } catch (err) {
      this.system.deadLetter(this.name, envelope, 'key-failed');
      const failure = { name: 'MpBusError', code: ActorErrorCodes.routeKeyFailed, message: (err as Error).message };
      // (on a later turn, as NO_WORKERS below)
      setImmediate(() => this.system.reply(envelope, EnvelopeKind.failure, failure));
      return;
    }
    if (worker === undefined) {
      if (tracingOn) traceRoute(this.name, undefined, envelope, attempt);
      this.system.deadLetter(this.name, envelope, 'no-workers');
      // On a later turn of the event loop: a caller that asks again at once on each failure (a
      // retry loop) would otherwise run from microtask to microtask, and the timers that bring
      // workers back (a pool's restart, a child's readiness) would never run.
      this.system.afterGoneGrace(this.lostWorkersAt, () => this.system.reply(envelope, EnvelopeKind.failure, this.noWorkersFailure()));
      return;
    }
    const c = this.count(worker);
    if (this.stallTimer === undefined && !this.stopped) {
      this.stallTimer = setInterval(() => this.findStalled(), this.stallCheckMs);
      this.stallTimer.unref();
    }
    // a worker's stall clock starts when it gets work while it has none (and owes no answer)
    if (c.held === 0 && !c.owes) c.progress++;
    c.held++;
    this.system.forwardAsk(this, worker, tracingOn ? traceRoute(this.name, worker, envelope, attempt) : envelope, attempt);
  }

  /**
   * Why an ask found no worker, said when it fails (a turn after; within the system's
   * `goneGraceMs` of the last worker's leaving, then: {@link RouterHost.afterGoneGrace}): while
   * the system closes (Ctrl-C, close()) its pool's workers leave first, and the ask fails
   * because of the close, which the caller can tell from a misconfigured router. Read then, not
   * when the ask came.
   */
  private noWorkersFailure(): { name: string; code: string; message: string } {
    if (this.system.shuttingDown)
      return { name: 'SystemClosedError', code: ActorErrorCodes.systemClosed, message: `router '${this.name}' lost its workers: the actor system is closing` };
    const group = this.options.group;
    return {
      name: 'MpBusError',
      code: ActorErrorCodes.noWorkers,
      message:
        group === undefined
          ? `router '${this.name}' has no workers: spawn some and add them (a worker that stopped, or whose process died, is left out until its name is served again)`
          : `router '${this.name}' has no workers: no actor is in group '${group}' now: spawn some there. A pool launched with ready: { group: '${group}' } has none while all its children restart (ask again after its 'restarted' event), nor once it gave up (its 'gave-up' event); an actor that stopped leaves its groups (one its supervision stopped after too many restarts, say; see the system's events$)`,
    };
  }

  private count(worker: string): WorkerCounts {
    let c = worker === this.pickedWorker ? this.pickedCounts : this.counts.get(worker);
    this.pickedWorker = undefined;
    this.pickedCounts = undefined;
    if (c === undefined) this.counts.set(worker, (c = { held: 0, routed: 0, progress: 0, progressSeen: 0, progressAt: 0, owes: false }));
    c.routed++;
    return c;
  }

  /** Asks `worker` holds now. */
  private held(worker: string): number {
    return this.counts.get(worker)?.held ?? 0;
  }

  /** @internal one ask given to `worker` was taken back (it stalled): it no longer holds it. */
  forgetOne(worker: string): void {
    const c = this.counts.get(worker);
    if (c !== undefined && c.held > 0) c.held--;
  }

  /** @internal an ask given to `worker` timed out: it holds one fewer, and did not progress. */
  timedOut(worker: string): void {
    const c = this.counts.get(worker);
    if (c === undefined) return;
    c.owes = true;
    if (c.held > 0) c.held--;
  }

  /** @internal a worker answered (or gave up on) one ask this router gave it. */
  settled(worker: string): void {
    const c = this.counts.get(worker);
    if (c === undefined) return;
    c.owes = false;
    c.progress++;
    if (this.stalled.size > 0 || this.probing.size > 0) {
      this.stalled.delete(worker);
      this.probing.delete(worker);
    }
    if (c.held > 0) c.held--;
  }

  // ---------------------------------------------------------------- strategies

  private pick(envelope: Envelope): string | undefined {
    this.pickedWorker = undefined;
    this.pickedCounts = undefined;
    const n = this.pool.length;
    if (n === 0) return undefined;
    // every worker stalled: use them anyway (the messages wait in their mailboxes)
    const avoid = (this.stalled.size > 0 || this.probing.size > 0) && this.stalled.size < n;
    switch (this.strategy) {
      case 'round-robin':
        for (let i = 0; i < n; i++) {
          const worker = this.pool[this.nextIndex++ % n]!;
          if (avoid && this.unfit(worker)) continue;
          // Turns are skipped for a worker far behind the others (it holds ROUND_ROBIN_SLACK
          // more unanswered asks than the least busy one): a stopped or stuck worker then keeps
          // only about half the asks in flight, found before any time threshold could say so.
          const counts = this.counts.get(worker);
          const held = counts?.held ?? 0;
          if (held > ROUND_ROBIN_SLACK && held - this.leastHeld(avoid) > ROUND_ROBIN_SLACK) continue;
          this.pickedWorker = worker;
          this.pickedCounts = counts;
          return worker;
        }
        // (none within the slack: the least busy of those it may use, never a stalled one while
        // another can take it; a stalled one whose asks were given away holds none, and picked
        // here it got every other ask, each a timeout)
        return this.fewest(avoid, this.heldBy) ?? this.fewest(false, this.heldBy);
      case 'least-loaded':
        return this.leastLoaded(avoid);
      case 'consistent-hash':
        return this.byHash(envelope, avoid);
    }
  }

  /** Stalled, or a probe that already holds its one ask. */
  private unfit(worker: string): boolean {
    return this.stalled.has(worker) || (this.probing.has(worker) && this.held(worker) > 0);
  }

  /** The fewest asks any worker of the pool holds (with `avoid`, any worker fit for new ones). */
  private leastHeld(avoid: boolean): number {
    let least = Infinity;
    for (const worker of this.pool) if (!avoid || !this.unfit(worker)) least = Math.min(least, this.held(worker));
    return least;
  }

  /**
   * The worker with the least `load` (with `avoid`, among those fit for new ones), looking from
   * the next in turn (ties go round); undefined when none is fit.
   */
  private fewest(avoid: boolean, load: (worker: string) => number): string | undefined {
    const n = this.pool.length;
    const start = this.nextIndex++ % n;
    let best: string | undefined;
    let bestLoad = Infinity;
    for (let i = 0; i < n; i++) {
      const worker = this.pool[(start + i) % n]!;
      if (avoid && this.unfit(worker)) continue;
      const l = load(worker);
      if (l < bestLoad) {
        best = worker;
        bestLoad = l;
        if (l === 0) break;
      }
    }
    return best;
  }

  /** What a worker holds of this router's asks. */
  private readonly heldBy = (worker: string): number => this.held(worker);

  /** Messages waiting at a worker: its mailbox depth when the transport knows it, or what this router has in flight there. */
  private readonly loadOf = (worker: string): number => Math.max(this.held(worker), this.system.transport.depth(worker) ?? 0);

  /** Fewest messages waiting (see {@link loadOf}). */
  private leastLoaded(avoid: boolean): string | undefined {
    return this.fewest(avoid, this.loadOf);
  }

  private byHash(envelope: Envelope, avoid: boolean): string | undefined {
    const hash = ringHash(this.keyText(envelope));
    const ring = this.ring;
    let lo = 0;
    let hi = ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ring[mid]!.hash < hash) lo = mid + 1;
      else hi = mid;
    }
    if (!avoid) return (ring[lo] ?? ring[0])?.worker;
    // the key's worker is stalled: the next one on the ring takes it meanwhile
    for (let i = 0; i < ring.length; i++) {
      const worker = ring[(lo + i) % ring.length]!.worker;
      if (!this.unfit(worker)) return worker;
    }
    return undefined;
  }

  /**
   * The key of `envelope` on the ring: what `key` gives (a number, bigint or boolean as its
   * text), or without `key` the message's own `key` field.
   * @throws {MpBusError} `ROUTE_KEY_FAILED` when `key` throws or gives anything else: a number
   *   sent every message to one worker, and `undefined` failed in the hash with a TypeError.
   */
  private keyText(envelope: Envelope): string {
    const keyOf = this.options.key;
    if (keyOf === undefined) return String((envelope.payload as { key?: unknown } | null)?.key ?? '');
    let key: unknown;
    try {
      key = keyOf(envelope.payload, envelope.action);
    } catch (err) {
      throw new MpBusError(ActorErrorCodes.routeKeyFailed, `router '${this.name}': its key function threw for '${envelope.action}': ${describeThrown(err)}`, {
        cause: err,
      });
    }
    if (typeof key === 'string') return key;
    if (typeof key === 'number' || typeof key === 'bigint' || typeof key === 'boolean') return String(key);
    throw new MpBusError(
      ActorErrorCodes.routeKeyFailed,
      `router '${this.name}': its key function gave ${key === null ? 'null' : typeof key} for '${envelope.action}': it must give each message's key as a string (a number is taken as its digits)`,
    );
  }

  private rebuildRing(): void {
    if (this.strategy !== 'consistent-hash') return;
    const vnodes = this.options.virtualNodes ?? 64;
    const ring: { hash: number; worker: string }[] = [];
    for (const worker of this.pool) for (let i = 0; i < vnodes; i++) ring.push({ hash: ringHash(`${worker}#${i}`), worker });
    ring.sort((a, b) => a.hash - b.hash);
    this.ring = ring;
  }
}
