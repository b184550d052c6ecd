/**
 * {@link Router}: a pool of workers behind one name. Messages to the router's name go to one
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
import type { Subscription } from 'rxjs';
import { ErrorCodes, MpBusError } from '../errors.js';
import { callback, durationMs, integerIn, oneOf } from '../validation.js';
import { STOP_ACTION } from './cell.js';
import type { AnyContract } from './contract.js';
import { ActorErrorCodes } from './errors.js';
import type { ActorRef } from './ref.js';
import type { AskForwarder } from './pending.js';
import type { ActorSystem, SystemEndpoint } from './system.js';
import { EnvelopeKind, type Envelope, type Registration } from './transport.js';

/** How a router picks a worker. */
export type RoutingStrategy = 'round-robin' | 'least-loaded' | 'consistent-hash';

/** Options of {@link ActorSystem.router}. */
export interface RouterOptions {
  /** Default 'round-robin'. */
  strategy?: RoutingStrategy;
  /** Initial workers, by actor name. */
  workers?: string[];
  /** Follow this group's membership: its members are the workers. */
  group?: string;
  /** consistent-hash: the key of a message (default: its `key` field). Equal keys go to the same worker. */
  key?: (msg: unknown, action: string) => string;
  /** Times an ask is given to another worker after its worker died (default 5). */
  maxRedeliveries?: number;
  /** Timeout of the router's own asks to workers (default: the system's ask timeout). */
  workerTimeoutMs?: number;
  /** Virtual nodes per worker on the consistent-hash ring (default 64). */
  virtualNodes?: number;
}

/** What a router has done. */
export interface RouterStats {
  /** Messages routed to each worker (including ones re-given). */
  perWorker: Record<string, number>;
  /** Asks given to another worker after their worker died. */
  redelivered: number;
  /** Asks in flight at workers now. */
  inFlight: number;
}

/** 32-bit FNV-1a: stable across processes and runs. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

export class Router<C = AnyContract> implements SystemEndpoint, AskForwarder {
  /** The ref callers use: messages to it are routed. */
  readonly ref: ActorRef<C>;
  readonly strategy: RoutingStrategy;

  private readonly pool: string[] = [];
  private readonly inFlight = new Map<string, number>();
  private readonly routed = new Map<string, number>();
  private ring: { hash: number; worker: string }[] = [];
  private nextIndex = 0;
  private redelivered = 0;
  private readonly registration: Registration;
  private readonly subscriptions: Subscription[] = [];
  private stopped = false;

  /** @internal use `system.router(name, options)` */
  constructor(
    readonly name: string,
    private readonly system: ActorSystem,
    private readonly options: RouterOptions,
  ) {
    this.strategy = oneOf(options.strategy ?? 'round-robin', 'router strategy', ['round-robin', 'least-loaded', 'consistent-hash'] as const);
    if (options.maxRedeliveries != null) integerIn(options.maxRedeliveries, 'router maxRedeliveries', 0, 1000);
    if (options.workerTimeoutMs != null) durationMs(options.workerTimeoutMs, 'router workerTimeoutMs', 1);
    if (options.virtualNodes != null) integerIn(options.virtualNodes, 'router virtualNodes', 1, 4096);
    if (options.key != null) callback(options.key, 'router key');
    if (options.workers != null && (!Array.isArray(options.workers) || options.workers.some((w) => typeof w !== 'string' || w.length === 0))) {
      throw new MpBusError(ErrorCodes.invalidOption, `router workers must be an array of actor names, got ${String(options.workers)}`);
    }
    if (options.group != null && (typeof options.group !== 'string' || options.group.length === 0)) {
      throw new MpBusError(ErrorCodes.invalidOption, `router group must be a group name, got ${String(options.group)}`);
    }
    for (const w of options.workers ?? []) this.addWorker(w);
    const transport = system.transport;
    if (options.group != null) {
      const group = options.group;
      this.subscriptions.push(
        transport.membership$.subscribe((m) => {
          if (m.group !== group) return;
          if (m.change === 'joined') this.addWorker(m.name);
          else this.removeWorker(m.name);
        }),
      );
      for (const w of transport.members(group)) this.addWorker(w);
    }
    this.subscriptions.push(transport.gone$.subscribe((g) => this.removeWorker(g.name)));
    this.registration = system.registerEndpoint(name, this);
    this.ref = system.ref<C>(name);
  }

  /** The workers now, in the order they were added. */
  workers(): string[] {
    return [...this.pool];
  }

  /** Adds a worker (an actor name anywhere in the group). Adding twice is a no-op. */
  addWorker(worker: string): void {
    if (this.pool.includes(worker)) return;
    this.pool.push(worker);
    this.rebuildRing();
  }

  /** Removes a worker; asks it has in hand are still answered (or re-given if it dies). */
  removeWorker(worker: string): void {
    const i = this.pool.indexOf(worker);
    if (i < 0) return;
    this.pool.splice(i, 1);
    this.rebuildRing();
  }

  stats(): RouterStats {
    let inFlight = 0;
    for (const n of this.inFlight.values()) inFlight += n;
    return { perWorker: Object.fromEntries(this.routed), redelivered: this.redelivered, inFlight };
  }

  /** Unregisters the router's name. Asks in flight at workers are still answered. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const s of this.subscriptions) s.unsubscribe();
    this.registration.close();
  }

  // ---------------------------------------------------------------- receiving

  /** @internal */
  depth(): number {
    return this.stats().inFlight;
  }

  /** @internal */
  receive(envelope: Envelope): void {
    if (envelope.action === STOP_ACTION) void this.stop(); // system.stop(name) from another process
    else if (envelope.kind === EnvelopeKind.ask) this.routeAsk(envelope, 0);
    else if (envelope.kind === EnvelopeKind.tell) this.routeTell(envelope);
    else this.system.deadLetter(this.name, envelope, 'late-reply');
  }

  private routeTell(envelope: Envelope): void {
    const worker = this.pick(envelope);
    if (worker === undefined) {
      this.system.deadLetter(this.name, envelope, 'no-workers');
      return;
    }
    this.count(worker);
    this.system.forwardTell(worker, envelope);
  }

  /** @internal */
  get workerTimeoutMs(): number | undefined {
    return this.options.workerTimeoutMs;
  }

  /** @internal the system hands back an ask whose worker went away. */
  regive(origin: Envelope, attempt: number, worker: string): boolean {
    if (attempt >= (this.options.maxRedeliveries ?? 5)) return false;
    this.removeWorker(worker);
    this.redelivered++;
    this.routeAsk(origin, attempt + 1);
    return true;
  }

  /**
   * Gives an ask to a worker: the system forwards the envelope itself (no second ask), and
   * tells this router when the worker answered ({@link settled}) or went away ({@link regive}).
   */
  private routeAsk(envelope: Envelope, attempt: number): void {
    const worker = this.pick(envelope);
    if (worker === undefined) {
      this.system.deadLetter(this.name, envelope, 'no-workers');
      this.system.reply(envelope, EnvelopeKind.failure, {
        name: 'MpBusError',
        code: ActorErrorCodes.noWorkers,
        message: `router '${this.name}' has no workers: spawn some${this.options.group === undefined ? ' and add them' : ` in group '${this.options.group}'`}`,
      });
      return;
    }
    this.count(worker);
    this.inFlight.set(worker, (this.inFlight.get(worker) ?? 0) + 1);
    this.system.forwardAsk(this, worker, envelope, attempt);
  }

  private count(worker: string): void {
    this.routed.set(worker, (this.routed.get(worker) ?? 0) + 1);
  }

  /** @internal a worker answered (or gave up on) one ask this router gave it. */
  settled(worker: string): void {
    const n = (this.inFlight.get(worker) ?? 1) - 1;
    if (n <= 0) this.inFlight.delete(worker);
    else this.inFlight.set(worker, n);
  }

  // ---------------------------------------------------------------- strategies

  private pick(envelope: Envelope): string | undefined {
    const n = this.pool.length;
    if (n === 0) return undefined;
    switch (this.strategy) {
      case 'round-robin':
        return this.pool[this.nextIndex++ % n];
      case 'least-loaded':
        return this.leastLoaded();
      case 'consistent-hash':
        return this.byHash(envelope);
    }
  }

  /** Fewest messages waiting: the worker's mailbox depth when the transport knows it, or what this router has in flight there. */
  private leastLoaded(): string | undefined {
    const n = this.pool.length;
    const start = this.nextIndex++ % n;
    let best: string | undefined;
    let bestLoad = Infinity;
    for (let i = 0; i < n; i++) {
      const worker = this.pool[(start + i) % n]!;
      const load = Math.max(this.inFlight.get(worker) ?? 0, this.system.transport.depth(worker) ?? 0);
      if (load < bestLoad) {
        best = worker;
        bestLoad = load;
        if (load === 0) break;
      }
    }
    return best;
  }

  private byHash(envelope: Envelope): string | undefined {
    const keyOf = this.options.key ?? ((msg: unknown) => String((msg as { key?: unknown } | null)?.key ?? ''));
    const hash = fnv1a(keyOf(envelope.payload, envelope.action));
    const ring = this.ring;
    let lo = 0;
    let hi = ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ring[mid]!.hash < hash) lo = mid + 1;
      else hi = mid;
    }
    return (ring[lo] ?? ring[0])?.worker;
  }

  private rebuildRing(): void {
    if (this.strategy !== 'consistent-hash') return;
    const vnodes = this.options.virtualNodes ?? 64;
    const ring: { hash: number; worker: string }[] = [];
    for (const worker of this.pool) for (let i = 0; i < vnodes; i++) ring.push({ hash: fnv1a(`${worker}#${i}`), worker });
    ring.sort((a, b) => a.hash - b.hash);
    this.ring = ring;
  }
}
