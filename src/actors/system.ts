/** The actor system: spawning, addressing, asks and replies, death watch, dead letters, events, close. See {@link ActorSystem}. */
import 'reflect-metadata';
import { inspect } from 'node:util';
import type { Logger } from 'pino';
import { filter, firstValueFrom, Observable, Subject, type Subscription } from 'rxjs';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { describeThrown, ErrorCodes, isTooLarge, MpBusError, withoutStack } from '../errors.js';
import { abortSignal, checkedOptions, durationMs, flag, optionKeys } from '../validation.js';
import { checkValue } from '../bus/value-codec.js';
import { logger } from '../log.js';
import {
  ActorCell,
  PreStartFailure,
  STOP_ACTION,
  cellInHandler,
  classIncarnation,
  type CellHost,
  type DeadLetterReason,
  type Incarnation,
  type IncarnationFactory,
} from './cell.js';
import {
  ActorContext,
  type ActorCounters,
  type ClassActor,
  type ContextHost,
  type FunctionBehavior,
  type HandlerMap,
  type Handlers,
  type SpawnOptions,
  type Terminated,
} from './context.js';
import { SystemCounters } from './counters.js';
import type { AnyContract, AskOptions, ContractOf } from './contract.js';
import { actorDeclaration, type ActorClass } from './decorators.js';
import { wallClockAt } from './clock.js';
import { DeadlineQueue } from './deadlines.js';
import {
  ActorErrorCodes,
  ActorNotFoundError,
  ActorStoppedError,
  AskAbortedError,
  AskTimeoutError,
  actorGone,
  fromWireError,
  PrimaryLostError,
  encodeFailure,
  SystemClosedError,
  toWireError,
  plainWireError,
  unsendableAnswer,
} from './errors.js';
import { PendingAsk, PendingTable, type AskForwarder, type RegiveReason } from './pending.js';
import { inTurns } from './in-turns.js';
import { whenServed, type ServedHost } from './when-served.js';
import { InProcessHub, InProcessTransport } from './in-process.js';
import { Runtime, type CloseContext, type PrimaryLost } from '../runtime/runtime.js';
import { ActorRef, type RefHost } from './ref.js';
import { Router, type RouterOptions } from './router.js';
import { launchPool, type LaunchOptions, type ProcessPool } from './process-pool.js';
import { checkSupervision, defaultSupervision } from './supervision.js';
import { refreshTracing, traceAsked, traceSend, traceSent, tracingOn } from './tracing.js';
import {
  EnvelopeKind,
  makeEnvelope,
  payloadRoot,
  type ActorTransport,
  type DeliveryStatus,
  type Envelope,
  type Registration,
  type SystemEndpoint,
  type WireError,
} from './transport.js';

/** A message no actor handled. */
export interface DeadLetter {
  /** The name it was sent to. */
  to: string;
  action: string;
  payload: unknown;
  reason: DeadLetterReason;
  /** The sending actor, when an actor sent it. */
  sender?: string;
  /** 'tell', 'ask', 'reply' or 'failure'. */
  kind: 'tell' | 'ask' | 'reply' | 'failure';
}

/** What happens in the system, for monitoring. */
export type ActorEvent =
  | { type: 'spawned'; name: string; pid: number }
  | { type: 'stopped'; name: string; pid: number }
  | { type: 'restarted'; name: string; pid: number; error: string }
  | { type: 'failed'; name: string; pid: number; action: string; error: string }
  /**
   * Its supervision gave up on the actor (more than `maxRestarts` restarts within `withinMs`, a
   * restart whose preStart failed, or an escalation with no parent): it stops. `topLevel`: it
   * has no parent actor. In a launched child, a top-level actor that gives up ends the process,
   * so that its pool starts it anew (see docs/actors.md, "Worker processes").
   */
  | { type: 'gaveUp'; name: string; pid: number; error: string; topLevel: boolean }
  | { type: 'deadLetter'; letter: DeadLetter }
  /** This secondary's primary died or closed (`primaryPid` when it was an mpbus primary); the system then closes unless the runtime's `onPrimaryLost` is 'ignore'. */
  | { type: 'primaryLost'; pid: number; primaryPid: number | undefined; reason: 'died' | 'left' };

/** Options of {@link ActorSystem}. */
export interface ActorSystemOptions {
  /** How messages travel (default: a node of the process-wide in-process hub). */
  transport?: ActorTransport | undefined;
  /** The DI container actors resolve from (default: a child of tsyringe's root container). */
  container?: DependencyContainer | undefined;
  /** Timeout of asks that give none (default 10 000 ms). */
  askTimeoutMs?: number | undefined;
  /**
   * After a name goes away, asks pending on it fail after this grace (replies already on their
   * way still win), and so do asks made to it meanwhile, and a router's asks after its last
   * worker left; each as `SYSTEM_CLOSED` if the system began to close meanwhile (every process
   * of a program signalled at once: docs/actors.md). Default 100 ms.
   */
  goneGraceMs?: number | undefined;
  /** Runs at the end of {@link ActorSystem.close} (e.g. closing a runtime the system owns). */
  afterClose?: (() => void | Promise<void>) | undefined;
  /** Runs as {@link ActorSystem.close} begins, before any actor stops (e.g. a primary saying it leaves the group). */
  beforeClose?: (() => void) | undefined;
  /**
   * @internal Asked when an actor this system asked went away or answered that its system
   * closed: true when that is this secondary's primary going, whose loss is then acted on
   * (default: the runtime's `primaryGoneNow(true)`).
   */
  primaryGone?: (() => boolean) | undefined;
  /** The runtime this system's transport runs on (default: the process's runtime, unless the transport is in-process). */
  runtime?: Runtime | undefined;
  /**
   * Check every message, reply and error this system sends against what can cross processes
   * (docs/actors.md, "What a message can hold"), also those that stay in this process (passed
   * by reference, never encoded): one that could not cross fails here as it would across
   * processes (`ENCODE_FAILED`, a dead letter, the ask rejected), so a test in one process
   * fails where production would. Costs one walk of each value. Default: on when
   * `NODE_ENV` is `test` (vitest, jest and mocha set it), off otherwise.
   */
  checkValues?: boolean | undefined;
}

/** Options of {@link ActorSystem.close}. */
export interface CloseOptions {
  /** How long in-flight and queued messages may still be handled (default 5 000 ms). */
  timeoutMs?: number | undefined;
}

/** Options of {@link ActorSystem.drained}. */
export interface DrainedOptions {
  /** Stops the wait: `drained()` rejects with its `reason` once it aborts. */
  signal?: AbortSignal | undefined;
}

/** Options of {@link ActorSystem.whenServed}. */
export interface WhenServedOptions {
  /** Stops the wait: `whenServed()` rejects with its `reason` once it aborts (`AbortSignal.timeout(ms)` for a deadline). */
  signal?: AbortSignal | undefined;
}

/** Every option of {@link ActorSystemOptions} (`cluster`: the cluster layer's, src/cluster/join-cluster.ts). */
const ACTOR_SYSTEM_OPTION_KEYS = optionKeys<ActorSystemOptions>({
  transport: true,
  container: true,
  askTimeoutMs: true,
  goneGraceMs: true,
  afterClose: true,
  beforeClose: true,
  primaryGone: true,
  runtime: true,
  checkValues: true,
  cluster: true,
});
const ASK_OPTION_KEYS = optionKeys<AskOptions>({ timeoutMs: true, signal: true });
const CLOSE_OPTION_KEYS = optionKeys<CloseOptions>({ timeoutMs: true });
const DRAINED_OPTION_KEYS = optionKeys<DrainedOptions>({ signal: true });
const WHEN_SERVED_OPTION_KEYS = optionKeys<WhenServedOptions>({ signal: true });
const SPAWN_OPTION_KEYS = optionKeys<SpawnOptions>({ name: true, supervision: true, groups: true, preStart: true, postStop: true });

function spawnOptions(given: unknown, what: string): SpawnOptions {
  return checkedOptions(given as SpawnOptions | undefined, SPAWN_OPTION_KEYS, what) ?? {};
}

/**
 * @internal A layer above this one that wraps the transport of each system made from then on,
 * as the system's options ask: the cluster layer adds its bridge to NATS this way (with the
 * `cluster` option it adds, src/cluster/join-cluster.ts), so that the actor layer imports
 * nothing of the layers above it.
 */
export type TransportLayer = (transport: ActorTransport, options: ActorSystemOptions) => ActorTransport;

const transportLayers: TransportLayer[] = [];
/** The layers' checks of the options they add (see {@link checkActorSystemOptions}). */
const layerOptionChecks: ((options: ActorSystemOptions) => void)[] = [];

/**
 * @internal Registers a {@link TransportLayer} (a layer does it once, when it is loaded), and
 * `check`, which checks the options it adds without acting on them.
 */
export function addTransportLayer(layer: TransportLayer, check?: (options: ActorSystemOptions) => void): void {
  if (transportLayers.includes(layer)) return;
  transportLayers.push(layer);
  if (check) layerOptionChecks.push(check);
}

/**
 * What an {@link ActorSystem} is made with, checked before anything is made (`startActorSystem`
 * calls it before DPDK starts, so a bad option costs no runtime): the system's own options with
 * their defaults, and the layers' above it (`cluster`). @throws {MpBusError} `INVALID_OPTION`.
 */
export function checkActorSystemOptions(options: ActorSystemOptions): { askTimeoutMs: number; goneGraceMs: number; checkValues: boolean } {
  checkedOptions(options, ACTOR_SYSTEM_OPTION_KEYS, 'ActorSystem options');
  const container = options.container as Partial<DependencyContainer> | undefined;
  if (
    container !== undefined &&
    (typeof container !== 'object' || container === null || typeof container.register !== 'function' || typeof container.resolve !== 'function')
  ) {
    throw new MpBusError(
      ErrorCodes.invalidOption,
      `container must be a tsyringe DependencyContainer (container.createChildContainer(), say), got ${typeof container}`,
    );
  }
  const settings = {
    askTimeoutMs: Math.ceil(durationMs(options.askTimeoutMs ?? 10_000, 'askTimeoutMs', 1)),
    goneGraceMs: durationMs(options.goneGraceMs ?? 100, 'goneGraceMs', 0),
    checkValues: flag(options.checkValues ?? process.env.NODE_ENV === 'test', 'checkValues'),
  };
  for (const check of layerOptionChecks) check(options);
  return settings;
}

const kindNames = ['tell', 'ask', 'reply', 'failure'] as const;

/**
 * The resolve function of the promise made last by {@link captureResolve}: an ask's promise is
 * made with this one executor, not a closure per ask over the ask's variables (a context
 * object and a function per ask, gone from the caller's allocations). The reject function is
 * not kept (see `PendingAsk.reject`).
 */
const noSettler = (): void => undefined;
let capturedResolve: (value: unknown) => void = noSettler;
function captureResolve(resolve: (value: unknown) => void): void {
  capturedResolve = resolve;
}

/**
 * Spawns actors in this process, addresses actors anywhere in the group by
 * name, and carries asks, replies, death watch, dead letters and events.
 *
 * ```ts
 * const system = new ActorSystem();
 * const counter = await system.spawn<Counter>('counter', { add: (m) => (total += m.n) });
 * await counter.ask('add', { n: 1 }, { timeoutMs: 1000 });
 * await system.close();
 * ```
 */
export class ActorSystem implements RefHost, CellHost {
  /** The DI container of this system (register your services here). */
  readonly container: DependencyContainer;
  readonly transport: ActorTransport;
  /** Spawned, stopped, restarted, failed, dead letters. */
  readonly events$: Observable<ActorEvent>;
  /** Messages no actor handled. */
  readonly deadLetters$: Observable<DeadLetter>;
  /** The address replies to this system's asks come back to. */
  readonly replyAddress: string;

  private readonly log: Logger;
  private readonly events = new Subject<ActorEvent>();
  private readonly deadLetters = new Subject<DeadLetter>();
  private readonly cells = new Map<string, ActorCell>();
  /** Cells whose 'spawned' event went out: only those get a 'stopped' one (a spawn that failed gets neither). */
  private readonly announced = new WeakSet<ActorCell>();
  /** Rows of the process's shared counters: this system's actors, asks, dead letters. */
  private readonly stats: SystemCounters;
  private readonly endpoints = new Map<string, { endpoint: SystemEndpoint; registration: Registration }>();
  private readonly pending = new PendingTable();
  /** One timer for every pending ask's timeout. */
  private readonly deadlines = new DeadlineQueue(
    (id) => this.expired(id),
    (id) => this.pending.has(id),
  );
  /** Messages waiting for room in a full mailbox, per destination, in order. */
  private readonly outboxes = new Map<string, Envelope[]>();
  /** Callers of {@link drained} waiting for {@link outboxes} to empty. */
  private outboxWaiters: Array<() => void> = [];
  /** The wait of {@link drained} under way, shared by its callers. */
  private pendingDrain: Promise<void> | undefined;
  private readonly replyRegistration: Registration;
  private readonly goneSubscription: Subscription;
  private readonly askTimeoutMs: number;
  /** Walk every value sent against the cross-process rule (option `checkValues`). */
  private readonly checkValues: boolean;
  private readonly goneGraceMs: number;
  /**
   * Names that went away within the last {@link goneGraceMs}, with when (`performance.now()`),
   * oldest first: an ask made to one meanwhile fails once the grace is over (see {@link afterGoneGrace}).
   */
  private readonly recentlyGone = new Map<string, number>();
  private nextAskId = 1;
  /** Incoming messages are no longer accepted (close started). */
  private draining = false;
  /** While the close waits for the last messages other hosts had sent (see ActorTransport.leaving). */
  private takingLast = false;
  /** Outgoing messages are refused too (close finished its grace period). */
  private closed = false;
  /** The close of the actors and transport; `closedAll` adds `afterClose`. */
  private closing: Promise<void> | undefined;
  private closedAll: Promise<void> | undefined;
  /** Actors whose handler called close(): they wait for the close, so the close does not wait for them. */
  private readonly closers = new Set<ActorCell>();
  /** What pending asks are rejected with when the system closes. */
  private closeError: (what: string) => Error = (what) => new SystemClosedError(what);
  private readonly afterClose: (() => void | Promise<void>) | undefined;
  private readonly beforeClose: (() => void) | undefined;
  /** The signal of each pending ask made with one, by ask id. */
  private readonly abortSignals = new Map<number, AbortSignal>();
  /** Per signal of pending asks: their ids, and its one listener. */
  private readonly abortWatches = new Map<AbortSignal, { ids: Set<number>; onAbort: () => void }>();
  private readonly primaryGone: () => boolean;
  /** The options object of the last ask whose keys were checked (see `askNow`). */
  private askOptionsChecked: AskOptions | undefined;
  private readonly closeFirst = new Set<(deadline: number) => Promise<void>>();
  /** The DPDK runtime under this system, when its transport crosses processes (undefined in-process). */
  readonly runtime: Runtime | undefined;

  constructor(options: ActorSystemOptions = {}) {
    const settings = checkActorSystemOptions(options);
    refreshTracing();
    const transport = options.transport ?? InProcessHub.shared.connect();
    this.runtime = options.runtime ?? (transport instanceof InProcessTransport ? undefined : Runtime.current());
    this.transport = transportLayers.reduce((below, layer) => layer(below, options), transport);
    this.stats = new SystemCounters(() => this.cells.values(), this.transport);
    this.container = options.container ?? rootContainer.createChildContainer();
    this.container.register(ActorSystem, { useValue: this });
    this.askTimeoutMs = settings.askTimeoutMs;
    this.goneGraceMs = settings.goneGraceMs;
    this.checkValues = settings.checkValues;
    this.afterClose = options.afterClose;
    this.beforeClose = options.beforeClose;
    this.primaryGone = options.primaryGone ?? (() => this.runtime?.primaryGoneNow(true) ?? false);
    this.events$ = this.events.asObservable();
    this.deadLetters$ = this.deadLetters.asObservable();
    this.log = logger('actors', { node: this.transport.nodeId });
    this.replyAddress = `$reply.${this.transport.nodeId}`;
    this.replyRegistration = this.transport.register(this.replyAddress, {
      receive: (e) => this.onReply(e.kind, e.id, e.payload, e.action),
      answer: (kind, id, payload, action) => this.onReply(kind, id, payload, action),
      depth: () => 0,
    });
    this.goneSubscription = this.transport.gone$.subscribe((gone) => this.onGone(gone.name));
    this.transport.onUndeliverable?.((to, envelope, cause, reason) => this.undeliverable(to, envelope, cause, reason));
  }

  /** Resolves once the transport is ready (with `cluster`: connected to NATS; rejects with CLUSTER_UNAVAILABLE when it cannot be). */
  async ready(): Promise<void> {
    await this.transport.ready?.();
  }

  // ---------------------------------------------------------------- spawning

  /**
   * Spawns a class actor (decorated with `@Actor`, or given a name in `options`). With a
   * contract (`spawn<Counter>(CounterActor)`) its methods named after actions are checked
   * against it (see {@link ClassActor}).
   */
  spawn<C = AnyContract>(actorClass: ClassActor<C>, options?: SpawnOptions): Promise<ActorRef<C>>;
  /**
   * Spawns a function actor: one handler per action (or a factory of them, called on each
   * (re)start). The ref is typed by the handlers' own signatures, or by the contract `C` given
   * explicitly (`spawn<Counter>('counter', {...})`), which then checks the handlers.
   */
  spawn<H extends HandlerMap>(name: string, behavior: H | ((ctx: ActorContext) => H), options?: SpawnOptions): Promise<ActorRef<ContractOf<H>>>;
  /**
   * Spawns a function actor whose handlers are checked against the contract `C`
   * (`spawn<Counter>('counter', {...})`): each action's handler takes its message and returns
   * its reply; its `ctx` is typed by `C`.
   */
  spawn<C>(name: string, behavior: FunctionBehavior<C>, options?: SpawnOptions): Promise<ActorRef<C>>;
  spawn(target: ActorClass | string, a?: unknown, b?: unknown): Promise<ActorRef<AnyContract>> {
    return this.spawnUnder(undefined, [target, a, b]);
  }

  private async spawnUnder(parent: ActorCell | undefined, args: unknown[]): Promise<ActorRef<AnyContract>> {
    this.assertAccepting('spawn an actor');
    const [target, a, b] = args;
    let name: string | undefined;
    let options: SpawnOptions;
    let factory: IncarnationFactory;
    let declared: ReturnType<typeof actorDeclaration> = {};
    if (typeof target === 'string') {
      if (target.length === 0) throw new MpBusError(ActorErrorCodes.invalidActor, "spawn('', behavior): an actor's name must not be empty");
      if (a === null || (typeof a !== 'object' && typeof a !== 'function')) {
        throw new MpBusError(ActorErrorCodes.invalidActor, `spawn('${target}', behavior): behavior must be an object of handlers or a function returning one`);
      }
      if (typeof a === 'object') checkHandlers(target, a);
      name = target;
      options = spawnOptions(b, `spawn('${target}') options`);
      // (it would be ignored: the first argument names the actor)
      if (options.name !== undefined) {
        throw new MpBusError(
          ErrorCodes.invalidOption,
          `spawn('${target}'): options.name is for actor classes; this actor's name is '${target}', its first argument`,
        );
      }
      factory = functionIncarnation(a as FunctionBehavior<AnyContract>, options, name);
    } else if (typeof target === 'function') {
      declared = actorDeclaration(target as ActorClass);
      options = spawnOptions(a, `spawn(${(target as { name?: string }).name ?? 'class'}) options`);
      // (they would be ignored: a class's hooks are its own methods)
      for (const hook of ['preStart', 'postStop'] as const) {
        if (options[hook] !== undefined) {
          throw new MpBusError(
            ErrorCodes.invalidOption,
            `spawn(${(target as { name?: string }).name ?? 'class'}): options.${hook} is for function actors; give the class a ${hook}() method instead`,
          );
        }
      }
      name = options.name ?? declared.name;
      factory = classIncarnation(target as ActorClass);
    } else {
      throw new MpBusError(ActorErrorCodes.invalidActor, 'spawn() takes an actor class, or a name and handlers');
    }
    if (!name)
      throw new MpBusError(
        ActorErrorCodes.invalidActor,
        `actor class ${(target as { name?: string }).name ?? '?'} has no name: give one with @Actor('name') or spawn(cls, { name })`,
      );
    if (name.startsWith('$')) throw new MpBusError(ActorErrorCodes.invalidActor, `actor names starting with '$' are reserved (got '${name}')`);
    const supervision = options.supervision ?? declared.supervision;
    if (supervision !== undefined) checkSupervision(supervision, `actor '${name}' supervision`);
    const groups = options.groups ?? declared.groups ?? [];
    if (!Array.isArray(groups) || groups.some((g) => typeof g !== 'string' || g.length === 0)) {
      throw new MpBusError(ActorErrorCodes.invalidActor, `actor '${name}': groups must be an array of group names, got ${String(groups)}`);
    }
    if (parent?.ending) throw new ActorStoppedError(parent.name, `spawn('${name}')`, `stopped (a stopped actor's context spawns no children)`);
    const cell = new ActorCell(name, this, factory, supervision ?? defaultSupervision, parent, parent?.childContainer ?? this.container);
    try {
      cell.registration = this.transport.register(name, cell);
    } catch (err) {
      // Not spawned (its name is taken): nor is its counters row kept, which showed a phantom
      // actor in `mpbus ps` and the metrics; unless an actor of this process has the name (the
      // row, one per name in a process, is that actor's).
      if (!this.cells.has(name)) this.stats.actorStopped(name, cell.counters);
      throw err;
    }
    this.cells.set(name, cell);
    parent?.children.add(cell);
    try {
      await cell.start();
    } catch (err) {
      await cell.stop();
      if (err instanceof PreStartFailure) {
        const cause = err.cause;
        throw new MpBusError(ActorErrorCodes.startFailed, `actor '${name}' failed to start: its preStart threw: ${describeThrown(cause)}`, { cause });
      }
      const message = describeThrown(err);
      // tsyringe found no constructor parameter types: the class was compiled without them
      const hint = /TypeInfo not known/.test(message)
        ? ": its constructor's parameters are resolved from the types TypeScript records with emitDecoratorMetadata (tsc with that option; tsx and esbuild record none: there, give each parameter @inject(Type))"
        : '';
      throw new MpBusError(ActorErrorCodes.invalidActor, `actor '${name}' failed to start: ${message}${hint}`, { cause: err });
    }
    // Began to close while it started (an async preStart): it would only be stopped unseen.
    if (this.shuttingDown) {
      await cell.stop();
      throw new SystemClosedError(`actor '${name}' was spawned while the system closed`);
    }
    const joined: string[] = [];
    try {
      for (const group of groups) {
        this.transport.join(group, name);
        joined.push(group);
      }
    } catch (err) {
      // not spawned after all: no group keeps it, and its name is free again
      for (const group of joined) this.transport.leave(group, name);
      await cell.stop();
      throw err;
    }
    cell.log.debug('spawned');
    this.announced.add(cell);
    this.events.next({ type: 'spawned', name, pid: process.pid });
    return this.ref(name);
  }

  /**
   * Puts a pool of workers behind `name`: messages to `system.ref(name)` (from any process) go
   * to one worker per `options.strategy`. See {@link Router}.
   */
  router<C = AnyContract>(name: string, options: RouterOptions<C> = {}): Router<C> {
    this.assertAccepting('create a router');
    if (typeof name === 'string' && name.startsWith('$')) {
      throw new MpBusError(ErrorCodes.invalidName, `router '${name}': names starting with '$' are reserved (for mpbus's own addresses), as for actors`);
    }
    // (its key function takes the contract's messages and actions: the router calls it with what arrives)
    return new Router<C>(name, this, options as RouterOptions);
  }

  /**
   * Primary only: starts `count` child processes of `module` (a compiled .js path or file: URL)
   * that join this group as secondaries, supervises them (restarts with backoff when they exit
   * unasked) and resolves with their {@link ProcessPool} once every child is ready. The children's
   * own `startActorSystem()` needs no options. This system's close stops the pool first.
   * See docs/actors.md, "Worker processes".
   *
   * @throws {MpBusError} `PRIMARY_ONLY` outside a primary; `CHILD_FAILED` when a child dies (or
   *   is not ready in time) while starting, with its exit code and last stderr lines;
   *   `INVALID_OPTION` for a bad option.
   */
  launch(module: string | URL, options: LaunchOptions = {}): Promise<ProcessPool> {
    return launchPool(this, module, options);
  }

  /** @internal Runs first when this system closes, with the close's deadline (the pools it launched). */
  onCloseFirst(fn: (deadline: number) => Promise<void>): () => void {
    this.closeFirst.add(fn);
    return () => this.closeFirst.delete(fn);
  }

  // ---------------------------------------------------------------- addressing

  /** A ref to the actor named `name`, wherever it runs (it need not exist yet). */
  ref<C = AnyContract>(name: string): ActorRef<C> {
    return new ActorRef<C>(name, this);
  }

  /** True when some process of the group holds `name` now. */
  has(name: string): boolean {
    return this.transport.lookup(name) !== undefined;
  }

  /**
   * Resolves once some process of the group holds every name of `names`, as {@link has} sees
   * them (actors and routers; with the cluster bridge, names on other hosts too): for a service
   * that starts before the one whose actors it asks, whose asks would fail `ACTOR_NOT_FOUND` at
   * once. It looks at once, then at most 100 ms apart (a lookup in the group's registry in shared
   * memory), and at once when this process spawns an actor.
   * @param options.signal stops the wait: rejects with the signal's `reason` once it aborts (at
   *   once if it has), as `signal.throwIfAborted()` throws it: `AbortSignal.timeout(30_000)`
   *   gives up after 30 s with a `TimeoutError` DOMException.
   * @throws {MpBusError} `SYSTEM_CLOSED` when the system closes first; `INVALID_OPTION` for
   *   names that are not non-empty strings, or options that are not `{ signal?: AbortSignal }`.
   */
  whenServed(names: string | readonly string[], options?: WhenServedOptions): Promise<void> {
    try {
      const list = typeof names === 'string' ? [names] : names;
      if (!Array.isArray(list) || list.length === 0 || list.some((name) => typeof name !== 'string' || name === '')) {
        throw new MpBusError(ErrorCodes.invalidOption, `whenServed() takes a name or a non-empty array of names (non-empty strings), got ${inspect(names)}`);
      }
      const signal = checkedOptions(options, WHEN_SERVED_OPTION_KEYS, 'whenServed() options')?.signal;
      if (signal !== undefined) abortSignal(signal, 'whenServed() option signal');
      return whenServed(this.servedHost, list as readonly string[], signal);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** What {@link whenServed} looks at. */
  private readonly servedHost: ServedHost = {
    has: (name) => this.has(name),
    spawned$: this.events.pipe(filter((event) => event.type === 'spawned')),
    closedError: (what) => this.closeError(what),
    shuttingDown: () => this.shuttingDown,
  };

  /** Names of the actors running in this system. */
  actors(): string[] {
    return [...this.cells.keys()];
  }

  /**
   * Messages this process accepted for actors of other processes (asks, tells, replies) that
   * still wait in it to be sent: for room in their receivers' full mailboxes, or for the end of
   * this turn of the event loop, when each turn's sends go. A tell never waits for room itself,
   * so a producer that tells faster than its receivers handle grows this without bound (and
   * the heap with it); one that waits for {@link drained} when this passes a limit of its choice
   * bounds its memory (docs/actors.md, "Tells faster than their receiver"). Messages to actors
   * of this process go to their queues at once, and those to other hosts of a cluster to the
   * NATS client: neither is counted.
   */
  unsent(): number {
    let waiting = this.transport.unsent?.() ?? 0;
    for (const outbox of this.outboxes.values()) waiting += outbox.length;
    return waiting;
  }

  /**
   * Resolves the next time nothing waits in this process to be sent ({@link unsent} is 0): at
   * once when nothing does; when the system closes, once what waited became dead letters. As a
   * stream's `'drain'`: a producer pauses on it, not a promise that its messages were handled
   * (an ask, or `watch`, tells that).
   * @param options.signal stops the wait: rejects with the signal's `reason` once it aborts (at
   *   once if it has), as `signal.throwIfAborted()` throws it (`AbortSignal.timeout(ms)`: a
   *   `TimeoutError` DOMException), so a producer whose receiver is stuck can give up.
   * @throws {MpBusError} INVALID_OPTION for options that are not `{ signal?: AbortSignal }`.
   */
  drained(options?: DrainedOptions): Promise<void> {
    try {
      const signal = checkedOptions(options, DRAINED_OPTION_KEYS, 'drained() options')?.signal;
      if (signal === undefined) return this.nextDrain();
      abortSignal(signal, 'drained() option signal').throwIfAborted();
      return new Promise<void>((resolve, reject) => {
        // (the reason as it was given, as signal.throwIfAborted() throws it: not always an Error)
        const onAbort = (): void => reject(signal.reason as Error);
        signal.addEventListener('abort', onAbort, { once: true });
        void this.nextDrain()
          .then(resolve, reject)
          .finally(() => signal.removeEventListener('abort', onAbort));
      });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * One wait for the next drain, shared by every caller meanwhile (a waiter that gave up keeps
   * nothing of its own); none when nothing waits (a wait that resolved would be shared past it).
   */
  private nextDrain(): Promise<void> {
    if (this.unsent() === 0) return Promise.resolve();
    this.pendingDrain ??= this.waitForDrain().finally(() => (this.pendingDrain = undefined));
    return this.pendingDrain;
  }

  private async waitForDrain(): Promise<void> {
    if (this.outboxes.size > 0) await new Promise<void>((resolve) => this.outboxWaiters.push(resolve));
    if (this.transport.whenSent) return this.transport.whenSent();
    while ((this.transport.unsent?.() ?? 0) > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  /** Counters of a local actor, or undefined when it does not run here. */
  counters(name: string): ActorCounters | undefined {
    return this.cells.get(name)?.snapshot();
  }

  /**
   * Stops an actor: it refuses new messages at once, finishes the message in hand, answers the
   * asks queued with `ActorStoppedError`, and its name goes. Resolves once it has stopped (for
   * one in another process: once its name is gone here), or at once when no one holds it.
   */
  async stop(target: ActorRef<unknown> | string): Promise<void> {
    const name = typeof target === 'string' ? target : target.name;
    const cell = this.cells.get(name);
    if (cell) return cell.stop();
    const endpoint = this.endpoints.get(name);
    if (endpoint) return endpoint.endpoint.stop();
    // Another process's: it stops on receipt, as a local one; resolves once its name is gone.
    const gone = firstValueFrom(this.watch(name), { defaultValue: undefined });
    this.tellTo(name, STOP_ACTION, null, undefined);
    await Promise.race([gone, this.untilNameGone(name, gone)]);
  }

  /**
   * Resolves once no process holds `name`, read from the registry on a short backoff (1 ms,
   * doubling to 32) for up to a second, or once `watched` settles. The transport's poll, which
   * `watch` waits for, sees a name go up to `pollMs` (100 ms) later: stopping actors of another
   * process one after the other took 170-200 ms each, against well under a millisecond for one
   * of this process. An actor that takes longer to stop is left to `watched`.
   */
  private async untilNameGone(name: string, watched: Promise<unknown>): Promise<void> {
    let settled = false;
    void watched.then(
      () => (settled = true),
      () => (settled = true),
    );
    const pollUntil = Date.now() + 1000;
    for (let delayMs = 1; !settled && this.transport.lookup(name) !== undefined; delayMs = Math.min(delayMs * 2, 32)) {
      if (Date.now() > pollUntil) {
        await watched;
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }

  /**
   * Emits once when the named actor stops (or its process dies), then completes. Emits
   * 'not-found' at once when no process holds the name.
   */
  watch(target: ActorRef<unknown> | string): Observable<Terminated> {
    const name = typeof target === 'string' ? target : target.name;
    return new Observable<Terminated>((subscriber) => {
      const cell = this.cells.get(name);
      if (cell) {
        let active = true;
        void cell.stopped.then(() => {
          if (!active) return;
          subscriber.next({ name, reason: 'stopped' });
          subscriber.complete();
        });
        return () => {
          active = false;
        };
      }
      const subscription = this.transport.gone$.pipe(filter((g) => g.name === name)).subscribe((g) => {
        subscriber.next({ name, reason: g.reason });
        subscriber.complete();
      });
      if (!this.transport.lookup(name)) {
        subscriber.next({ name, reason: 'not-found' });
        subscriber.complete();
      }
      return () => subscription.unsubscribe();
    });
  }

  // ---------------------------------------------------------------- sending

  /** @internal */
  tellTo(to: string, action: string, payload: unknown, sender: string | undefined): void {
    if (typeof action !== 'string') throw notAnAction(to, action);
    const trace = sender === undefined ? undefined : this.cells.get(sender)?.currentEnvelope?.trace;
    const envelope = makeEnvelope(EnvelopeKind.tell, action, payload, undefined, undefined, sender, undefined, trace);
    if (this.closed) {
      this.deadLetter(to, envelope, 'closed');
      return;
    }
    if (tracingOn) return this.tracedTell(to, envelope, sender);
    if (this.send(to, envelope) === 'unknown') this.deadLetter(to, envelope, 'unknown-actor');
  }

  /** A tell with an OpenTelemetry SDK registered: inside its span (out of `tellTo`, which stays as small without one). */
  private tracedTell(to: string, envelope: Envelope, sender: string | undefined): void {
    const span = traceSend(to, envelope, sender === undefined ? undefined : this.cells.get(sender)?.currentEnvelope);
    const status = this.send(to, envelope);
    traceSent(span, status);
    if (status === 'unknown') this.deadLetter(to, envelope, 'unknown-actor');
  }

  /** @internal a router gives a tell to `worker` as it came (sender and trace kept). */
  forwardTell(worker: string, envelope: Envelope): void {
    if (this.closed) this.deadLetter(worker, envelope, 'closed');
    else if (this.send(worker, envelope) === 'unknown') this.deadLetter(worker, envelope, 'unknown-actor');
  }

  /** @internal */
  askTo(to: string, action: string, payload: unknown, options: AskOptions | undefined, sender: string | undefined): Promise<unknown> {
    if (this.closed) return rejectOnNextTurn(new SystemClosedError(`cannot ask '${to}' for '${action}'`));
    // While it closes, an ask may fail within the turn (its actor or the router's workers left
    // first): it fails on a later turn instead, so that code asking again on every failure lets
    // in the timers that finish the close, and the signal that should end it.
    if (this.closing !== undefined || this.runtime?.closed === true) return this.askNow(to, action, payload, options, sender).then(undefined, rejectOnNextTurn);
    return this.askNow(to, action, payload, options, sender);
  }

  private askNow(to: string, action: string, payload: unknown, options: AskOptions | undefined, sender: string | undefined): Promise<unknown> {
    // whole ms: the deadline queue keeps one lane per distinct timeout
    let timeoutMs = this.askTimeoutMs;
    if (typeof action !== 'string') return Promise.reject(notAnAction(to, action));
    if (options !== undefined && options !== this.askOptionsChecked) {
      try {
        checkedOptions(options, ASK_OPTION_KEYS, 'ask options');
      } catch (err) {
        return Promise.reject(err);
      }
      // A window of asks usually shares one options object: its keys are checked once.
      this.askOptionsChecked = options;
    }
    const signal = options?.signal;
    if (options?.timeoutMs !== undefined || signal !== undefined) {
      try {
        if (options?.timeoutMs !== undefined) timeoutMs = Math.ceil(durationMs(options.timeoutMs, 'ask timeoutMs', 1));
        if (signal !== undefined) abortSignal(signal, 'ask signal');
      } catch (err) {
        return Promise.reject(err);
      }
      if (signal?.aborted) return Promise.reject(new AskAbortedError(to, action, signal.reason));
    }
    // One clock read: the wall clock the deadline is written in is derived from it.
    const now = performance.now();
    const wallNow = wallClockAt(now);
    // Asked while handling a message: no later than that message's own asker waits.
    const handling = sender === undefined ? undefined : this.cells.get(sender)?.currentEnvelope;
    if (handling?.deadline !== undefined) timeoutMs = Math.max(0, Math.min(timeoutMs, handling.deadline - wallNow));
    const id = this.nextAskId++;
    const envelope = makeEnvelope(EnvelopeKind.ask, action, payload, id, this.replyAddress, sender, wallNow + timeoutMs, handling?.trace);
    const span = tracingOn ? traceSend(to, envelope, handling) : undefined;
    const promise = new Promise<unknown>(captureResolve);
    const p = new PendingAsk(id, to, action, timeoutMs, now + timeoutMs, capturedResolve, undefined);
    capturedResolve = noSettler; // the module does not keep the last ask's promise alive
    // Registered before sending: a router of this system takes the entry over on delivery.
    this.pending.set(p);
    this.deadlines.add(id, p.due, timeoutMs);
    if (signal !== undefined) this.abortOn(signal, p);
    let status: DeliveryStatus;
    try {
      status = this.send(to, envelope);
    } catch (err) {
      // (as when the send ran inside the promise's executor: the ask rejects, it does not throw)
      if (this.forget(id)) p.reject(err);
      return span === undefined ? promise : traceAsked(span, promise);
    }
    if (status === 'unknown') {
      const unsettled = this.forget(id);
      this.deadLetter(to, envelope, 'unknown-actor');
      // On a later turn, as a router's NO_WORKERS: a loop asking again at once lets timers run.
      if (unsettled !== undefined)
        this.afterGoneGrace(this.goneAt(to, this.transport.wentAt?.(to)), () =>
          unsettled.reject(this.lostError(unsettled, () => new ActorNotFoundError(to, action))),
        );
    }
    return span === undefined ? promise : traceAsked(span, promise);
  }

  /**
   * @internal A router of this system gives the ask `origin` to `worker` (try number `attempt`).
   * When the caller is this system (the router's usual place: next to the code that asks), the
   * envelope goes to the worker as it is and the worker answers the caller directly: no second
   * ask, promise, timer or envelope; the caller's pending entry only notes the worker, for the
   * router's bookkeeping and for giving the ask to another worker if this one goes away. A
   * caller elsewhere gets a relay entry: one envelope to the worker, the answer passed on as it
   * came (not translated into an error and back).
   */
  forwardAsk(router: AskForwarder, worker: string, origin: Envelope, attempt: number): void {
    const limit = router.workerTimeoutMs;
    const caller = origin.replyTo === this.replyAddress && origin.id !== undefined ? this.pending.get(origin.id) : undefined;
    // (an ask whose whole timeout is within the limit has no more time left than the limit: no clock read)
    if (
      caller !== undefined &&
      caller.router === undefined &&
      !caller.isRelay &&
      (limit === undefined || caller.timeoutMs <= limit || caller.due - performance.now() <= limit)
    ) {
      caller.router = router;
      caller.worker = worker;
      caller.attempt = attempt;
      // What gives the ask to another worker: its payload alone when the envelope is the one
      // askTo made from it (the envelope then dies once sent; see PendingAsk).
      if (origin.sender === undefined && origin.trace === undefined) caller.payload = origin.payload;
      else caller.origin = origin;
      if (this.send(worker, origin) === 'unknown') {
        this.deadLetter(worker, origin, 'unknown-actor');
        this.workerLost(caller, (w) => new ActorNotFoundError(w, origin.action));
      }
      return;
    }
    const now = performance.now();
    const wallNow = wallClockAt(now);
    let timeoutMs = limit ?? this.askTimeoutMs;
    // Whole milliseconds: asks relayed with about the same time left share a deadline lane.
    if (origin.deadline !== undefined) timeoutMs = Math.max(0, Math.min(timeoutMs, Math.ceil(origin.deadline - wallNow)));
    const id = this.nextAskId++;
    const p = new PendingAsk(id, worker, origin.action, timeoutMs, now + timeoutMs, undefined, this);
    p.router = router;
    p.worker = worker;
    p.attempt = attempt;
    p.origin = origin;
    this.pending.set(p);
    this.deadlines.add(id, p.due, timeoutMs);
    const envelope = makeEnvelope(EnvelopeKind.ask, origin.action, origin.payload, id, this.replyAddress, origin.sender, wallNow + timeoutMs, origin.trace);
    if (this.send(worker, envelope) === 'unknown') {
      this.deadLetter(worker, envelope, 'unknown-actor');
      this.workerLost(p, (w) => new ActorNotFoundError(w, origin.action));
    }
  }

  /**
   * The worker of a routed ask went away (or was not there): its router gives it to another
   * one, or the ask fails with the error `failure` makes for that worker (made only then: a dead
   * worker's asks are given to others by the thousand).
   */
  private workerLost(p: PendingAsk, failure: (worker: string) => Error, why: RegiveReason = 'gone'): void {
    const router = p.router!;
    const worker = p.worker!;
    if (why !== 'stalled') router.settled(worker);
    else router.forgetOne(worker);
    if (p.isRelay)
      this.forget(p.id); // a relay ends here; giving the ask again makes a new one
    else {
      // The caller's own entry: plain again until the router forwards it anew.
      p.router = undefined;
      p.worker = undefined;
    }
    // Not while this system closes: its pools stop their workers first, so an ask given again
    // went from one going worker to the next (a dead letter at each) and then failed after all.
    // With a million asks waiting for room that blocked the event loop for seconds past the
    // close's deadline (and past Ctrl-C's).
    if (!this.refusingAsks && router.regive(this.originOf(p), p.attempt, worker, why)) return;
    if (p.isRelay) p.reject(withoutStack(() => this.lostError(p, () => failure(worker))));
    else if (this.forget(p.id)) p.reject(withoutStack(() => this.lostError(p, () => failure(worker))));
  }

  /**
   * The error of an ask whose actor went away or is not there: `make()`'s, or the close's own
   * while this system shuts down. Its process pools stop first (their work in hand is answered),
   * so their actors go before its pending asks are rejected: the asker learns that the system
   * is closing (`SYSTEM_CLOSED`, or `PRIMARY_LOST`), not that an actor is missing.
   */
  private lostError(p: { to: string; action: string }, make: () => Error): Error {
    // On a secondary, the actor may be gone because the primary is: the loss is then acted on
    // now (this system closes, unless the application handles it) and is the ask's error.
    if (!this.shuttingDown) this.primaryGone();
    return this.shuttingDown ? this.closeError(`the ask to '${p.to}' for '${p.action}' was pending`) : make();
  }

  /** What the cells still drop of their queues at their stop (see ActorCell.dropping). */
  private queuesDropping(): Promise<void>[] {
    const dropping: Promise<void>[] = [];
    for (const cell of this.cells.values()) if (cell.dropping !== undefined) dropping.push(cell.dropping);
    return dropping;
  }

  /** The envelope of a routed ask: kept (relays, asks with a sender or trace) or made anew from the ask's fields. */
  private originOf(p: PendingAsk): Envelope {
    if (p.origin !== undefined) return p.origin;
    const deadline = Date.now() + Math.max(0, p.due - performance.now());
    return makeEnvelope(EnvelopeKind.ask, p.action, p.payload, p.id, this.replyAddress, undefined, deadline, undefined);
  }

  /**
   * @internal A router found `worker` stalled and gives what it holds to other workers
   * (`onStall: 'regive'`): at least once for those sent to it (its late answers become late
   * replies), exactly once for those the transport still held for it.
   */
  regiveFrom(router: AskForwarder, worker: string): void {
    const held = this.pending.select((p) => p.router === router && p.worker === worker);
    // (those not sent to it yet, waiting for room in its full mailbox, are not sent later too)
    if (held.length > 0 && this.transport.takeBackAsks !== undefined)
      this.transport.takeBackAsks(
        worker,
        this.replyAddress,
        held.map((p) => p.id),
      );
    for (const p of held) this.workerLost(p, (w) => new ActorStoppedError(w, p.action, 'stalled'), 'stalled');
  }

  /** Removes a pending ask; undefined when it was already settled. */
  private forget(id: number): PendingAsk | undefined {
    const p = this.pending.get(id);
    if (!p) return undefined;
    this.settle(p);
    return p;
  }

  /** Removes `p`, found pending just now. */
  private settle(p: PendingAsk): void {
    this.pending.delete(p.id);
    this.deadlines.settled(p.timeoutMs);
    if (this.abortSignals.size !== 0) this.stopListening(p.id);
  }

  /**
   * The ask `p` fails with `AskAbortedError` when `signal` aborts first. A signal gets one
   * listener however many pending asks were given it (kept beside the pending table: asks
   * without a signal pay nothing), removed once none of them is pending: a long-lived signal
   * given to many asks collects no listeners, and thousands in flight raise no
   * MaxListenersExceededWarning.
   */
  private abortOn(signal: AbortSignal, p: PendingAsk): void {
    let watch = this.abortWatches.get(signal);
    if (watch === undefined) {
      const ids = new Set<number>();
      const onAbort = (): void => this.abortAll(signal, ids);
      watch = { ids, onAbort };
      this.abortWatches.set(signal, watch);
      signal.addEventListener('abort', onAbort, { once: true });
    }
    watch.ids.add(p.id);
    this.abortSignals.set(p.id, signal);
  }

  /**
   * `signal` aborted: its pending asks (`ids`) are settled at once, so that no answer or timeout
   * that comes after `abort()` wins over it, and fail a slice per turn of the event loop, their
   * errors made without a stack (it would show the abort's machinery, not the ask). One signal
   * given to 1,000,000 asks kept `abort()` for 9 s, most of it in capturing those stacks.
   */
  private abortAll(signal: AbortSignal, ids: Set<number>): void {
    this.abortWatches.delete(signal);
    // (first: settle has no listener to remove then; all at once when every ask with a signal had this one)
    const every = ids.size === this.abortSignals.size;
    if (every) this.abortSignals.clear();
    const aborted: PendingAsk[] = [];
    for (const id of ids) {
      if (!every) this.abortSignals.delete(id);
      const p = this.pending.get(id);
      if (p === undefined) continue;
      this.settle(p);
      if (p.router !== undefined) p.router.settled(p.worker!);
      aborted.push(p);
    }
    ids.clear();
    // (what a transport holds to send later, or again, does not go: the caller called it off)
    if (this.transport.cancelAsks !== undefined && aborted.length > 0)
      this.transport.cancelAsks(
        this.replyAddress,
        aborted.map((p) => p.id),
      );
    const reason: unknown = signal.reason;
    void inTurns(aborted, (p) => p.reject(withoutStack(() => new AskAbortedError(p.to, p.action, reason))));
  }

  private stopListening(id: number): void {
    const signal = this.abortSignals.get(id);
    if (signal === undefined) return;
    this.abortSignals.delete(id);
    const watch = this.abortWatches.get(signal)!;
    watch.ids.delete(id);
    if (watch.ids.size > 0) return;
    this.abortWatches.delete(signal);
    signal.removeEventListener('abort', watch.onAbort);
  }

  /** The time of the pending ask `id` ran out (the deadline queue already dropped it). */
  private expired(id: number): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    if (this.abortSignals.size !== 0) this.stopListening(id);
    this.stats.timedOut(p);
    if (p.router !== undefined) p.router.timedOut(p.worker!);
    p.reject(withoutStack(() => new AskTimeoutError(p.isRelay ? p.worker! : p.to, p.action, p.timeoutMs)));
  }

  /** An answer came back (fields, not an envelope: the mailbox transport makes none for answers). */
  private onReply(kind: EnvelopeKind, id: number | undefined, payload: unknown, action: string): void {
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p) {
      this.deadLetter(this.replyAddress, makeEnvelope(kind, action, payload, id), 'late-reply');
      return;
    }
    const failure = kind === EnvelopeKind.failure;
    this.stats.answered(p, failure);
    if (p.router !== undefined) {
      // The worker never took it (it stopped first): the router gives it to another one.
      if (failure && actorGone(payload as WireError)) {
        this.workerLost(p, (w) => fromWireError(w, p.action, payload as WireError));
        return;
      }
      p.router.settled(p.worker!);
      if (p.isRelay) {
        // Passed on as it came: a failure stays the worker's wire error.
        this.settle(p);
        this.reply(p.origin!, kind as typeof EnvelopeKind.reply | typeof EnvelopeKind.failure, payload);
        p.release();
        return;
      }
    }
    this.settle(p);
    if (!failure) p.resolve(payload);
    else {
      const error = (): Error => fromWireError(p.worker ?? p.to, p.action, payload as WireError);
      p.reject(withoutStack(() => (actorGone(payload as WireError) ? this.lostError(p, error) : error())));
    }
  }

  /** A name went away: asks pending on it (or routed to it) fail, or are given to another worker, after a short grace (a reply already sent still wins). */
  private onGone(name: string): void {
    this.stats.forget(name);
    this.forgetLongGone(performance.now());
    this.recentlyGone.delete(name);
    if (this.goneGraceMs > 0) this.recentlyGone.set(name, performance.now());
    const ids = this.pending.select((p) => (p.router !== undefined ? p.worker : p.to) === name).map((p) => p.id);
    if (ids.length === 0) return;
    // (a slice per turn: a child that a close stopped may have been given 500,000 asks)
    const fail = (): void =>
      void inTurns(ids, (id) => {
        const p = this.pending.get(id);
        if (!p) return;
        const stopped = (): Error => new ActorStoppedError(name, p.action, 'stopped (or its process died)');
        if (p.router !== undefined) {
          if (p.worker === name) this.workerLost(p, stopped, 'holder-gone');
        } else if (p.to === name && this.forget(id)) p.reject(withoutStack(() => this.lostError(p, stopped)));
      });
    if (this.goneGraceMs > 0) setTimeout(fail, this.goneGraceMs).unref();
    else fail();
  }

  /**
   * Delivers in order: when a mailbox is full, this and later messages to it wait in an outbox
   * until the transport says the mailbox may have room (the mailbox's room doorbell: its
   * receiver drained); a full mailbox never drops a message silently.
   */
  private send(to: string, envelope: Envelope): DeliveryStatus {
    if (this.checkValues) {
      try {
        checkValue(envelope.payload, payloadRoot[envelope.kind]);
      } catch (err) {
        // what the transport does with a value that does not encode
        this.undeliverable(to, envelope, err);
        return 'delivered';
      }
    }
    // (no lookup while nothing waits for room anywhere, the usual case: one string-keyed lookup less per send)
    const outbox = this.outboxes.size === 0 ? undefined : this.outboxes.get(to);
    if (outbox) {
      outbox.push(envelope);
      return 'delivered';
    }
    const status = this.transport.deliver(to, envelope);
    if (status !== 'full') return status;
    this.outboxes.set(to, [envelope]);
    this.waitForRoom(to);
    return 'delivered';
  }

  private waitForRoom(to: string): void {
    const room = this.transport.waitForRoom?.(to) ?? new Promise<void>((resolve) => setImmediate(resolve));
    room.then(
      () => this.flushOutbox(to),
      () => this.flushOutbox(to),
    );
  }

  private flushOutbox(to: string): void {
    const outbox = this.outboxes.get(to);
    if (!outbox) return;
    let sent = 0;
    while (sent < outbox.length) {
      const status = this.transport.deliver(to, outbox[sent]!);
      if (status === 'full') break;
      if (status === 'unknown') {
        for (const e of outbox.slice(sent)) this.undeliverable(to, e);
        sent = outbox.length;
        break;
      }
      sent++;
    }
    outbox.splice(0, sent);
    if (outbox.length > 0) this.waitForRoom(to);
    else {
      this.outboxes.delete(to);
      if (this.outboxes.size === 0) this.wakeOutboxWaiters();
    }
  }

  private wakeOutboxWaiters(): void {
    const waiters = this.outboxWaiters;
    this.outboxWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Close: what still waits for room becomes dead letters (a slice per turn). */
  private async dropOutboxes(): Promise<void> {
    for (const [to, outbox] of this.outboxes) for (const e of outbox) this.deadLetter(to, e, 'closed');
    this.outboxes.clear();
    this.wakeOutboxWaiters();
    await inTurns(this.transport.takeUnsent?.() ?? [], ({ to, envelope }) => this.deadLetter(to, envelope, 'closed'));
  }

  /**
   * A message accepted for sending could not go after all: its name went away, or (with `cause`)
   * it does not encode, or (a tell, with `reason`) the transport gave up on it for that reason.
   */
  private undeliverable(to: string, envelope: Envelope, cause?: unknown, reason?: DeadLetterReason): void {
    if (reason !== undefined) {
      this.deadLetter(to, envelope, reason);
      return;
    }
    // A name that went while this system closes went because of the close (a pool stops its
    // children first): what waited for it is 'closed', as docs/actors.md says of unsent messages.
    this.deadLetter(to, envelope, cause !== undefined ? 'encode-failed' : this.closing !== undefined ? 'closed' : 'unknown-actor');
    const answer = envelope.kind === EnvelopeKind.reply || envelope.kind === EnvelopeKind.failure;
    if (cause !== undefined && answer && envelope.id !== undefined) {
      // An answer that cannot cross: the asker gets the failure now instead of its timeout (a
      // handler's error, as what it says in strings).
      const payload = envelope.kind === EnvelopeKind.reply ? toWireError(unsendableAnswer(cause)) : plainWireError(envelope.payload as WireError, cause);
      const failure = makeEnvelope(EnvelopeKind.failure, envelope.action, payload, envelope.id);
      if (this.send(to, failure) === 'unknown') this.deadLetter(to, failure, 'unknown-actor');
      return;
    }
    if (envelope.kind !== EnvelopeKind.ask || envelope.id === undefined || envelope.replyTo !== this.replyAddress) return;
    const p = this.pending.get(envelope.id);
    if (!p) return;
    if (cause !== undefined) {
      const err = isTooLarge(cause)
        ? new MpBusError(ErrorCodes.messageTooLarge, `the message '${envelope.action}' to '${to}' cannot be sent: ${cause.message}`, { cause })
        : new MpBusError(
            ErrorCodes.encodeFailed,
            `the message '${envelope.action}' to '${to}' cannot be sent: ${encodeFailure(cause)} (docs/actors.md, "What a message can hold")`,
            { cause },
          );
      const path = (cause as { path?: unknown }).path;
      if (typeof path === 'string') (err as MpBusError & { path?: string }).path = path;
      if (p.router !== undefined) p.router.settled(p.worker!);
      if (this.forget(envelope.id)) p.reject(err);
    } else if (p.router !== undefined && p.worker === to) this.workerLost(p, (w) => new ActorNotFoundError(w, envelope.action));
    // (a name this process had sent to: it went away just now)
    else
      this.afterGoneGrace(this.goneAt(to, performance.now()), () => {
        if (this.forget(p.id)) p.reject(withoutStack(() => this.lostError(p, () => new ActorNotFoundError(to, envelope.action))));
      });
  }

  /**
   * When `to` went away, if just now: among {@link recentlyGone}, else `wentAt`, as the sender or
   * the transport saw it.
   */
  private goneAt(to: string, wentAt: number | undefined): number | undefined {
    this.forgetLongGone(performance.now());
    return this.recentlyGone.get(to) ?? wentAt;
  }

  /**
   * @internal Runs `fail` (an ask's failure for want of an actor, or of a router's workers) on a
   * later turn, and not before {@link goneGraceMs} has passed since `goneAt`, when what it wanted
   * went away (`goneAt`) that recently. The failure is made when it runs, so an ask whose system
   * began to close meanwhile fails as the close's: when every process of a program is signalled
   * at once (systemd's stop, nodemon's and pm2's kill of the process tree), the actors of the
   * others may go before a busy process has handled its own signal, and `ACTOR_NOT_FOUND` (or a
   * router's `NO_WORKERS`) ended an unguarded loop of asks, and its process, with code 1 and a
   * stack trace instead of as the signal means.
   */
  afterGoneGrace(goneAt: number | undefined, fail: () => void): void {
    const wait = goneAt === undefined || this.shuttingDown ? 0 : goneAt + this.goneGraceMs - performance.now();
    if (wait > 0) setTimeout(fail, wait);
    else setImmediate(fail);
  }

  /** Drops the names of {@link recentlyGone} whose grace is over (a program whose actors come and go keeps none longer). */
  private forgetLongGone(now: number): void {
    for (const [name, at] of this.recentlyGone) {
      if (at + this.goneGraceMs > now) break;
      this.recentlyGone.delete(name);
    }
  }

  // ---------------------------------------------------------------- endpoints (routers)

  /** @internal registers a non-actor receiver (a router) under `name`. */
  registerEndpoint(name: string, endpoint: SystemEndpoint): Registration {
    this.assertAccepting('register a router');
    const registration = this.transport.register(name, endpoint);
    this.endpoints.set(name, { endpoint, registration });
    this.events.next({ type: 'spawned', name, pid: process.pid });
    return {
      name,
      close: () => {
        if (this.endpoints.get(name)?.endpoint !== endpoint) return;
        this.endpoints.delete(name);
        registration.close();
        this.events.next({ type: 'stopped', name, pid: process.pid });
      },
    };
  }

  /** @internal answers an ask received by a cell or an endpoint. */
  reply(envelope: Envelope, kind: typeof EnvelopeKind.reply | typeof EnvelopeKind.failure, payload: unknown): void {
    if (envelope.replyTo === undefined || envelope.id === undefined) return;
    const answer = makeEnvelope(kind, envelope.action, payload, envelope.id);
    // (its asking system closed, so stopped waiting: as an answer after the ask's timeout)
    if (this.send(envelope.replyTo, answer) === 'unknown') this.deadLetter(envelope.replyTo, answer, 'late-reply');
  }

  /** @internal */
  deadLetter(to: string, envelope: Envelope, reason: DeadLetterReason): void {
    const letter: DeadLetter = { to, action: envelope.action, payload: envelope.payload, reason, kind: kindNames[envelope.kind] };
    if (envelope.sender !== undefined) letter.sender = envelope.sender;
    this.log.debug({ to, action: envelope.action, reason }, 'dead letter');
    this.stats.deadLetter();
    this.deadLetters.next(letter);
    this.events.next({ type: 'deadLetter', letter });
  }

  // ---------------------------------------------------------------- cell host

  /** @internal */
  makeContext(cell: ActorCell): ActorContext {
    const host: ContextHost = {
      name: cell.name,
      log: cell.log,
      ref: <C>(name: string, sender: string) => new ActorRef<C>(name, this, sender),
      spawnChild: (args) => this.spawnUnder(cell, args),
      stopSelf: () => void cell.stop(),
      watch: (target) => this.watch(target),
      counters: () => cell.snapshot(),
    };
    return new ActorContext(host, new ActorRef(cell.name, this, cell.name));
  }

  /** @internal */
  counterRow(name: string): Float64Array {
    return this.stats.actorRow(name);
  }

  /** @internal */
  cellStopped(cell: ActorCell): void {
    if (this.cells.get(cell.name) === cell) this.cells.delete(cell.name);
    this.stats.actorStopped(cell.name, cell.counters);
    cell.log.debug('stopped');
    if (this.announced.has(cell)) this.events.next({ type: 'stopped', name: cell.name, pid: process.pid });
  }

  /** @internal */
  cellRestarted(cell: ActorCell, error: unknown): void {
    this.events.next({ type: 'restarted', name: cell.name, pid: process.pid, error: describeThrown(error) });
  }

  /** @internal */
  cellGaveUp(cell: ActorCell, error: unknown): void {
    this.events.next({
      type: 'gaveUp',
      name: cell.name,
      pid: process.pid,
      error: describeThrown(error),
      topLevel: cell.parent === undefined,
    });
  }

  /** @internal */
  cellFailed(cell: ActorCell, error: unknown, action: string): void {
    this.events.next({ type: 'failed', name: cell.name, pid: process.pid, action, error: describeThrown(error) });
  }

  private assertAccepting(what: string): void {
    if (this.draining || this.closed) throw new SystemClosedError(`cannot ${what}`);
  }

  // ---------------------------------------------------------------- shutdown

  /** True once {@link close} has been called. */
  get isClosed(): boolean {
    return this.closing !== undefined;
  }

  /**
   * @internal True once this system or its runtime began to close (a signal closes the runtime,
   * whose hooks stop the process pools before this system closes).
   */
  get shuttingDown(): boolean {
    return this.closing !== undefined || this.runtime?.closed === true;
  }

  /** @internal See `RouterHost.refusingAsks`: a runtime closing first has stopped the pools' workers already. */
  get refusingAsks(): boolean {
    return this.runtime?.closed === true || (this.closing !== undefined && !this.takingLast);
  }

  /**
   * Shuts down: refuses new messages at once (they become dead letters, asks to its actors fail
   * with `SYSTEM_CLOSED`), lets queued and in-flight messages be handled until `timeoutMs`,
   * then stops every actor (what is left is dead-lettered, asks in it answered with
   * `SYSTEM_CLOSED`) and unregisters its names (peers see the actors go), rejects this system's
   * pending asks with `SystemClosedError`, and closes the transport. Idempotent.
   */
  // async: a bad option rejects, as `ask`'s do (close is awaited, not wrapped in try)
  async close(options: CloseOptions = {}): Promise<void> {
    checkedOptions(options, CLOSE_OPTION_KEYS, 'close options');
    const timeoutMs = durationMs(options.timeoutMs ?? 5000, 'close timeoutMs', 0);
    const closer = cellInHandler();
    if (closer) this.closers.add(closer);
    if (this.closing === undefined) this.beforeClose?.();
    this.closing ??= this.doClose(timeoutMs);
    this.closedAll ??= this.closing.then(() => this.afterClose?.());
    return this.closedAll;
  }

  /**
   * @internal The runtime under this system is closing: closes the actors within the runtime's
   * deadline. Resolves before `afterClose`, so a runtime closing first never waits for itself.
   */
  closeForRuntime(context: CloseContext): Promise<void> {
    // (a system told by primaryLost() already has the error with the primary's reason)
    if (context.reason === 'primary-lost' && !this.isClosed) this.closeError = (what) => new PrimaryLostError(what);
    this.closing ??= this.doClose(Math.max(0, context.deadline - Date.now()));
    return this.closing;
  }

  /** @internal This secondary's primary died: tells the application, and closes unless it handles it. */
  primaryLost(lost: PrimaryLost): void {
    this.events.next({ type: 'primaryLost', pid: process.pid, primaryPid: lost.pid, reason: lost.reason });
    if (lost.policy === 'ignore') return;
    this.closeError = (what) => new PrimaryLostError(what, lost.reason);
    // settled now (a slice per turn: see inTurns): nothing they wait for can come now
    void this.rejectPending();
    this.closing ??= this.doClose(0);
  }

  /** Rejects every pending ask with the close's error, a slice per turn of the event loop. */
  private rejectPending(): Promise<void> {
    return inTurns(this.pending.values(), ({ id }) => {
      const p = this.forget(id);
      if (p === undefined) return; // settled meanwhile
      // (no longer in a worker's hands for its router's stats either)
      if (p.router !== undefined) p.router.settled(p.worker!);
      p.reject(withoutStack(() => this.closeError(`the ask to '${p.to}' for '${p.action}' was pending`)));
    });
  }

  private async doClose(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    // Other hosts first: their new asks go to another host serving the name from now on, rather
    // than here, to be refused while this system closes; those already on their way are taken
    // in before this system refuses new messages.
    const left = this.transport.leaving?.();
    if (left !== undefined) {
      this.takingLast = true;
      await untilOrDeadline(left, deadline);
      this.takingLast = false;
    }
    // What this process sent that still waits for room in a full mailbox goes first, while its
    // receivers still take messages: a child of a pool refuses new messages once the pool stops
    // it, so tells still waiting here for a slow child became dead letters ('unknown-actor' once
    // its name went) within ~200 ms of a 5 s close. At most half the time left is spent so: a
    // child stuck in its work keeps the rest for stopping the pools.
    const sending = (): boolean => this.outboxes.size > 0 || (this.transport.unsent?.() ?? 0) > 0;
    if (this.closeFirst.size > 0 && sending()) {
      const flushedBy = Date.now() + (deadline - Date.now()) / 2;
      while (Date.now() < flushedBy && sending()) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    // Child processes first: their work in hand is answered while this system still takes replies.
    if (this.closeFirst.size > 0)
      await Promise.all([...this.closeFirst].map((fn) => fn(deadline).catch((err: unknown) => this.log.warn({ err }, 'stopping a process pool failed'))));
    // What reached this process before now is taken in, not refused: tells a pool's parent
    // sent before it stopped this child were refused while they waited in its inbox ring (23
    // of 600 in a test where the child's mailbox held 64).
    this.transport.takeArrived?.();
    this.draining = true;
    for (const cell of this.cells.values()) cell.refuseNew();
    // Busy: a message in hand or queued, or still on its way through the transport (in the ring).
    const busy = (c: ActorCell): boolean => !this.closers.has(c) && (!c.idle || (this.transport.depth(c.name) ?? 0) > 0);
    // ... and what this process sent that still waits for room in a full mailbox goes too; and
    // the asks its routers gave to workers for callers elsewhere are answered (through them:
    // routers refuse new asks meanwhile, and keep their names until then).
    const relaying = (): boolean => this.endpoints.size > 0 && this.pending.some((p) => p.isRelay);
    while (Date.now() < deadline && (sending() || [...this.cells.values()].some(busy) || relaying())) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    for (const { registration } of this.endpoints.values()) registration.close();
    for (const { endpoint } of [...this.endpoints.values()]) await endpoint.stop();
    for (const closer of this.closers) await closer.stop({ force: true, reason: 'closed' });
    const force = Date.now() >= deadline;
    const topLevel = [...this.cells.values()].filter((c) => !c.parent);
    // An actor's postStop (or a preStart still running) that does not end by the deadline (or
    // soon after it, when the deadline has passed) is not waited for: the close was bounded by
    // the application's timeout, and one hook that hangs kept it from ever ending.
    const stopping = Promise.all(topLevel.map((c) => c.stop({ force, reason: 'closed' }))).then(() => undefined);
    let stopped = false;
    void stopping.then(() => (stopped = true));
    await untilOrDeadline(stopping, Math.max(deadline, Date.now() + HOOK_GRACE_MS));
    // Queues still being dropped (see ActorCell.dropping) are waited for; then the hooks after
    // them get their grace again.
    for (let dropping = this.queuesDropping(); !stopped && dropping.length > 0; dropping = this.queuesDropping()) {
      await Promise.all(dropping).catch(() => undefined);
      await untilOrDeadline(stopping, Date.now() + HOOK_GRACE_MS);
    }
    if (!stopped) {
      const hung = [...this.cells.values()].filter((c) => c.ending && this.cells.get(c.name) === c).map((c) => c.name);
      this.log.warn({ actors: hung }, "actors' postStop (or preStart) did not end by the close's deadline: the system closes without waiting for them");
    }
    this.closed = true;
    // No ask times out any more: those still pending fail with the close's error.
    this.deadlines.clear();
    await this.rejectPending();
    await this.dropOutboxes();
    this.goneSubscription.unsubscribe();
    this.replyRegistration.close();
    await this.transport.close();
    this.events.complete();
    this.deadLetters.complete();
    this.stats.close();
  }
}

/** A function actor's incarnation. */
function functionIncarnation(behavior: FunctionBehavior<AnyContract>, options: SpawnOptions, name: string): IncarnationFactory {
  return (ctx): Incarnation => {
    const handlers: Handlers<AnyContract> = typeof behavior === 'function' ? behavior(ctx) : behavior;
    if (typeof behavior === 'function') checkHandlers(name, handlers);
    // Handlers found, by action: one map lookup per message instead of three keyed property
    // lookups, each of which first looks the message's freshly decoded action string up in V8's
    // string table. Only handlers found are kept, so actions sent to no handler do not grow it.
    const found = new Map<string, (m: unknown, c: ActorContext) => unknown>();
    return {
      handler: (action) => {
        const known = found.get(action);
        if (known !== undefined) return known;
        const handler = Object.prototype.hasOwnProperty.call(handlers, action) && typeof handlers[action] === 'function' ? handlers[action] : undefined;
        if (handler !== undefined) found.set(action, handler as (m: unknown, c: ActorContext) => unknown);
        return handler as ((m: unknown, c: ActorContext) => unknown) | undefined;
      },
      ...(options.preStart ? { preStart: options.preStart } : {}),
      ...(options.postStop ? { postStop: options.postStop } : {}),
    };
  };
}

/**
 * Why a value did not encode, in words: msgpack's encoder recurses once per level, so a value
 * nested some 1,500 levels deep (which the value walk lets through up to some 5,000) overflows
 * the stack there.
 */
/** Handlers of a function actor: an object (not an array) whose own values are functions. */
function checkHandlers(name: string, handlers: unknown): void {
  if (handlers === null || typeof handlers !== 'object' || Array.isArray(handlers)) {
    throw new MpBusError(
      ActorErrorCodes.invalidActor,
      `actor '${name}': its handlers must be an object of functions by action, got ${Array.isArray(handlers) ? 'an array' : String(handlers)}`,
    );
  }
  for (const [action, handler] of Object.entries(handlers)) {
    if (typeof handler !== 'function')
      throw new MpBusError(ActorErrorCodes.invalidActor, `actor '${name}': the handler of '${action}' must be a function, got ${typeof handler}`);
  }
}

/** The error of a tell or ask whose action is not a string (from JavaScript: the types say it is). */
function notAnAction(to: string, action: unknown): MpBusError {
  return new MpBusError(ErrorCodes.invalidArgument, `a message to '${to}' needs its action as a string (the handler's name), got ${typeof action}`);
}

/**
 * A promise rejected with `err` on a later turn of the event loop, not as a microtask: an
 * application that asks again whenever an ask fails would otherwise spin in microtasks once its
 * system is closed, and never let in a timer or the SIGTERM that should end it.
 */
function rejectOnNextTurn(err: unknown): Promise<never> {
  return new Promise((_, reject) => setImmediate(reject, err));
}

/** What an actor's stop hooks get past the close's deadline when it has passed already. */
const HOOK_GRACE_MS = 100;

/** Waits for `work` (its failure ignored: the caller logs its own), or until `deadline` (a `Date.now()` time) passes. */
async function untilOrDeadline(work: Promise<void>, deadline: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))));
  try {
    await Promise.race([work.catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}
