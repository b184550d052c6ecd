/**
 * The running actor behind a name: its mailbox queue, the loop that handles one message at a
 * time, its lifecycle and its supervision. Internal: users see {@link ActorRef} and
 * {@link ActorContext}.
 */
import type { Logger } from 'pino';
import type { DependencyContainer } from 'tsyringe';
import { logger } from '../log.js';
import { withoutStack } from '../errors.js';
import { isThenable } from '../bus/thenable.js';
import { ActorContext, type ActorCounters } from './context.js';
import { actorCounters } from './counters.js';
import { R } from '../runtime/counters-layout.js';
import { classHandler, type ActorClass } from './decorators.js';
import { ActorErrorCodes, ActorStoppedError, SystemClosedError, toWireError } from './errors.js';
import { inTurns } from './in-turns.js';
import { restartDelay, type SupervisionStrategy } from './supervision.js';
import { traceHandle, traceHandled, traceHandlerFailed, tracingOn } from './tracing.js';
import { EnvelopeKind, type DeadLetterReason, type Envelope, type Receiver, type Registration } from './transport.js';
import { RunClock, RunPause } from './run-clock.js';
import { longWithoutTurn } from './turn-watch.js';

type Handler = (msg: unknown, ctx: ActorContext) => unknown;

/** One life of an actor between (re)starts. */
export interface Incarnation {
  handler(action: string): Handler | undefined;
  preStart?(ctx: ActorContext): unknown;
  postStop?(ctx: ActorContext): unknown;
}

/** Makes a fresh incarnation (on spawn and on each restart). */
export type IncarnationFactory = (ctx: ActorContext, container: DependencyContainer) => Incarnation;

/** What a cell needs from its system. */
export interface CellHost {
  readonly container: DependencyContainer;
  makeContext(cell: ActorCell): ActorContext;
  /** The actor's row in the process's shared counters. */
  counterRow(name: string): Float64Array;
  reply(envelope: Envelope, kind: typeof EnvelopeKind.reply | typeof EnvelopeKind.failure, payload: unknown): void;
  deadLetter(to: string, envelope: Envelope, reason: DeadLetterReason): void;
  cellStopped(cell: ActorCell, reason: 'stopped'): void;
  cellRestarted(cell: ActorCell, error: unknown): void;
  cellFailed(cell: ActorCell, error: unknown, action: string): void;
  /** Its supervision gave up on it (too many restarts, a failed restart, an escalation with no parent): it stops. */
  cellGaveUp(cell: ActorCell, error: unknown): void;
}

export type { DeadLetterReason } from './transport.js';

type State = 'starting' | 'running' | 'stopping' | 'stopped';

/** The cell whose handler is running synchronously right now (so `system.close()` called from a handler knows not to wait for it). */
let handlingCell: ActorCell | undefined;

/** The cell whose handler called the current function synchronously, if any. */
export function cellInHandler(): ActorCell | undefined {
  return handlingCell;
}

/** @internal A first preStart threw or rejected with `cause` (the spawn fails `ACTOR_START_FAILED`, not `INVALID_ACTOR`). */
export class PreStartFailure extends Error {
  constructor(override readonly cause: unknown) {
    super('preStart failed');
  }
}

/** The action that stops an actor from another process (`system.stop(name)`). */
export const STOP_ACTION = '$stop';

const RESOLVED = Promise.resolve();

/** Handle this many messages in a row before letting timers and I/O run. */
const BATCH = 256;

/**
 * A preStart or postStop still running after this long is logged (warn): the actor waits for
 * it with no bound outside a close (a restart goes on only once postStop ended), and a hook that
 * never ends would otherwise leave an actor that answers nothing, with nothing said.
 */
const SLOW_HOOK_MS = 5000;

/** A class actor's incarnation: a new instance resolved from a per-actor child container. */
export function classIncarnation(cls: ActorClass): IncarnationFactory {
  return (ctx, container) => {
    container.register(ActorContext, { useValue: ctx });
    const instance = container.resolve(cls) as { preStart?: (c: ActorContext) => unknown; postStop?: (c: ActorContext) => unknown };
    // Handlers found, by action (one lookup per message; actions with no handler are not kept).
    const cache = new Map<string, Handler>();
    return {
      handler(action) {
        let handler = cache.get(action);
        if (handler === undefined) {
          handler = classHandler(instance, action);
          if (handler !== undefined) cache.set(action, handler);
        }
        return handler;
      },
      ...(typeof instance.preStart === 'function' ? { preStart: (c: ActorContext) => instance.preStart!(c) } : {}),
      ...(typeof instance.postStop === 'function' ? { postStop: (c: ActorContext) => instance.postStop!(c) } : {}),
    };
  };
}

export class ActorCell implements Receiver {
  /** Each message is reported finished (see `Receiver.settles`), so remote routers see this actor's real backlog. */
  readonly settles = true;
  readonly log: Logger;
  readonly children = new Set<ActorCell>();
  /** Its row in the process's shared counters (fields: counters-layout.ts `R`), readable by the whole group. */
  readonly counters: Float64Array;
  /** Resolves once the actor has fully stopped (postStop done). */
  readonly stopped: Promise<void>;
  registration: Registration | undefined;
  ctx!: ActorContext;

  private state: State = 'starting';
  private queue: Envelope[] = [];
  private head = 0;
  /**
   * Failures its children escalated, handled by its loop before the next message: as its own
   * failures are, never while one of its handlers runs (a restart then would run postStop and
   * make a new instance under a handler of the old one still running). One from a child that
   * is gone by then (a restart of this actor for an earlier one stopped it) is dropped: that
   * failure went with the child, as in Akka.
   */
  private escalated: { err: unknown; from: ActorCell }[] = [];
  private busy = false;
  private current: Envelope | undefined;
  private incarnation: Incarnation | undefined;
  private container: DependencyContainer | undefined;
  private restartTimes: number[] = [];
  private markStopped!: () => void;
  private stopping: Promise<void> | undefined;
  /** Set by a forced stop: the in-flight handler's outcome is ignored. */
  private abandoned = false;
  /** Set when the system closes: new messages are refused. */
  private refusing: 'closed' | undefined;
  /**
   * True while the loop runs synchronously (between its awaits): messages finished meanwhile
   * are counted in {@link settled} and reported together before the loop awaits or ends,
   * rather than with a call into the transport per message. The transport adjusts the
   * mailbox's depth once per turn of the event loop anyway, after both.
   */
  private looping = false;
  /** When the loop pauses for answers to go out or the event loop to turn, and which asks expired. */
  private readonly clock = new RunClock();
  private settled = 0;

  constructor(
    readonly name: string,
    private readonly host: CellHost,
    private readonly factory: IncarnationFactory,
    readonly supervision: SupervisionStrategy,
    readonly parent: ActorCell | undefined,
    private readonly parentContainer: DependencyContainer,
  ) {
    this.log = logger('actor', { actor: name });
    this.counters = host.counterRow(name);
    this.stopped = new Promise((resolve) => (this.markStopped = resolve));
  }

  get isRunning(): boolean {
    return this.state === 'running' || this.state === 'starting';
  }

  /** Transport side: a message arrived. */
  receive(envelope: Envelope): void {
    this.counters[R.received]!++;
    if (envelope.action === STOP_ACTION) {
      // system.stop(name) from another process: at once, as a local stop (new messages refused,
      // the one in hand finished, those queued answered with ActorStoppedError), not after
      // what the sender sent before it.
      this.settle();
      void this.stop();
      return;
    }
    if (this.state === 'stopped' || this.state === 'stopping' || this.refusing) {
      // Stopping (or its system closing): the name is still held until the messages in hand
      // are done, but new messages are refused at once (asks get their error now).
      this.dropQueued(envelope, this.refusing ?? 'stopped');
      return;
    }
    this.queue.push(envelope);
    if (this.state === 'running' && !this.busy) this.schedule();
  }

  /**
   * While the messages queued at its stop are dropped, a slice per turn: bounded work, which
   * its system's close waits for past its deadline (unlike a hook, which may never end).
   */
  get dropping(): Promise<void> | undefined {
    return this.droppingQueue;
  }

  /** Stopping or stopped: it takes no new children (they would outlive it, unseen by the close). */
  get ending(): boolean {
    return this.state === 'stopping' || this.state === 'stopped';
  }

  /** The message being handled now (its deadline and trace bound what the handler sends). */
  get currentEnvelope(): Envelope | undefined {
    return this.current;
  }

  depth(): number {
    return this.queue.length - this.head + (this.busy && this.current ? 1 : 0);
  }

  snapshot(): ActorCounters {
    return actorCounters(this.counters, this.depth());
  }

  /** Creates the first incarnation and runs preStart; messages that arrive meanwhile wait. */
  async start(): Promise<void> {
    this.ctx = this.host.makeContext(this);
    this.incarnate();
    try {
      await this.runPreStart();
    } catch (err) {
      throw new PreStartFailure(err);
    }
    if (this.state !== 'starting') return;
    this.state = 'running';
    if (this.hasWork) this.schedule();
  }

  private incarnate(): void {
    this.container = this.parentContainer.createChildContainer();
    this.incarnation = this.factory(this.ctx, this.container);
    this.lifecycle = 'starting';
  }

  /**
   * Runs the incarnation's preStart (throws what it throws). A stop meanwhile waits for it (see
   * `finalize`): postStop runs after preStart, once, and only for an incarnation that started.
   */
  private async runPreStart(): Promise<void> {
    const started = this.watchedHook('preStart', this.incarnation!.preStart?.(this.ctx));
    this.preStarting = started.then(
      () => undefined,
      () => undefined,
    );
    try {
      await started;
      this.lifecycle = 'started';
    } finally {
      this.preStarting = undefined;
    }
  }

  /** postStop of the incarnation, once, and only if its preStart succeeded. */
  private async runPostStop(): Promise<void> {
    if (this.preStarting !== undefined) await this.preStarting;
    if (this.lifecycle !== 'started') return;
    this.lifecycle = 'stopped';
    await this.runHook('postStop');
  }

  /** The container children of this actor resolve from. */
  get childContainer(): DependencyContainer {
    return this.container ?? this.parentContainer;
  }

  private schedule(): void {
    this.busy = true;
    // A reaction of a settled promise, not queueMicrotask: Node wraps each queueMicrotask
    // callback in an AsyncResource (an object, a bound function, async-hook bookkeeping on
    // run): ~0.2 µs more per call, paid per message by an actor asked one message at a time.
    void RESOLVED.then(this.runLoop);
  }

  private readonly runLoop = (): void => void this.loop();

  /** Messages queued, or children's failures to supervise. */
  private get hasWork(): boolean {
    return this.head < this.queue.length || this.escalated.length > 0;
  }

  /** The child `from` escalated `err`: its loop supervises it before the next message (at once when idle). */
  escalate(err: unknown, from: ActorCell): void {
    if (this.ending) return; // it stops its children anyway
    this.escalated.push({ err, from });
    if (this.state === 'running' && !this.busy) this.schedule();
  }

  private async loop(): Promise<void> {
    let handled = 0;
    this.looping = true;
    this.clock.paused(true);
    try {
      while (this.state === 'running' && this.hasWork) {
        if (this.escalated.length > 0) {
          const { err, from } = this.escalated.shift()!;
          if (!this.children.has(from)) continue;
          const supervised = this.supervise(err);
          if (supervised) {
            this.pause();
            await supervised;
            this.looping = true;
          }
          continue;
        }
        const pause = this.clock.beforeMessage();
        if (pause !== RunPause.none) {
          // long enough: what it answered goes out now (the transport's flush is a microtask queued before)
          this.pause();
          await (pause === RunPause.turn ? new Promise<void>((resolve) => setImmediate(resolve)) : RESOLVED);
          this.looping = true;
          continue;
        }
        if (longWithoutTurn()) {
          // runs of one message each, for long (a loop asking this actor from this process)
          this.pause();
          await new Promise<void>((resolve) => setImmediate(resolve));
          this.looping = true;
          this.clock.paused(true);
          continue;
        }
        const envelope = this.queue[this.head]!;
        this.queue[this.head++] = undefined as unknown as Envelope;
        if (this.head > 1024 && this.head * 2 > this.queue.length) {
          this.queue = this.queue.slice(this.head);
          this.head = 0;
        }
        const pending = this.handle(envelope);
        if (pending) {
          this.pause();
          await pending;
          this.looping = true;
          this.clock.waited();
        }
        if (++handled % BATCH === 0) {
          this.pause();
          await new Promise<void>((resolve) => setImmediate(resolve));
          this.looping = true;
          this.clock.paused(true);
        }
      }
    } finally {
      this.pause();
      this.busy = false;
      this.current = undefined;
      if (this.state === 'running' && this.hasWork) this.schedule();
      else if (this.state === 'stopping' && this.finishStop) this.finishStop();
    }
  }

  /** Handles one message; returns a promise only when something async must be awaited. */
  private handle(envelope: Envelope): Promise<void> | undefined {
    if (envelope.deadline !== undefined && envelope.kind === EnvelopeKind.ask && this.clock.expired(envelope.deadline)) {
      // Its asker has failed it with a timeout already: handling it would only delay the asks
      // behind it past their own deadlines (an actor given more than it can do in time would
      // then answer none in time), and its answer would be a late reply.
      this.settle();
      this.counters[R.deadLettered]!++;
      this.host.deadLetter(this.name, envelope, 'expired');
      return undefined;
    }
    const handler = this.incarnation!.handler(envelope.action);
    if (!handler) {
      this.settle();
      this.counters[R.deadLettered]!++;
      this.host.deadLetter(this.name, envelope, 'no-handler');
      if (envelope.kind === EnvelopeKind.ask) {
        this.host.reply(envelope, EnvelopeKind.failure, {
          name: 'MpBusError',
          code: ActorErrorCodes.noHandler,
          message: `actor '${this.name}' has no handler for '${envelope.action}'`,
        });
      }
      return undefined;
    }
    this.current = envelope;
    this.ctx.action = envelope.action;
    this.ctx.sender = envelope.sender === undefined ? undefined : this.ctx.ref(envelope.sender);
    let result: unknown;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the cell handling now, for context calls made during the handler
    handlingCell = this;
    try {
      result = tracingOn ? traceHandle(this.name, envelope, handler, this.ctx) : handler(envelope.payload, this.ctx);
    } catch (err) {
      return this.failed(envelope, err);
    } finally {
      handlingCell = undefined;
    }
    if (isThenable(result)) {
      return Promise.resolve(result).then(
        (value) => this.succeeded(envelope, value),
        (err: unknown) => this.failed(envelope, err),
      );
    }
    this.succeeded(envelope, result);
    return undefined;
  }

  /** One received message is finished with (handled, failed or dropped). */
  private settle(): void {
    if (this.looping) this.settled++;
    else this.registration?.settle?.(1);
  }

  /** The loop is about to await or end: what it finished is reported now. */
  private pause(): void {
    this.looping = false;
    const settled = this.settled;
    if (settled === 0) return;
    this.settled = 0;
    this.registration?.settle?.(settled);
  }

  private succeeded(envelope: Envelope, value: unknown): void {
    if (this.abandoned) return;
    this.settle();
    this.current = undefined;
    this.counters[R.processed]!++;
    if (tracingOn) traceHandled(envelope);
    if (envelope.kind === EnvelopeKind.ask) this.host.reply(envelope, EnvelopeKind.reply, value);
  }

  private failed(envelope: Envelope, err: unknown): Promise<void> | undefined {
    if (this.abandoned) return undefined;
    this.settle();
    this.current = undefined;
    this.counters[R.failed]!++;
    if (tracingOn) traceHandlerFailed(envelope, err);
    if (envelope.kind === EnvelopeKind.ask) this.host.reply(envelope, EnvelopeKind.failure, toWireError(err, true));
    this.host.cellFailed(this, err, envelope.action);
    return this.supervise(err);
  }

  /** Applies this actor's strategy to a failure (its own, or a child's escalated one). */
  supervise(err: unknown): Promise<void> | undefined {
    const s = this.supervision;
    switch (s.strategy) {
      case 'resume':
        this.log.info({ err }, 'handler failed; resuming');
        return undefined;
      case 'stop':
        this.log.warn({ err }, 'handler failed; stopping');
        void this.stop();
        return undefined;
      case 'escalate':
        if (this.parent) {
          this.log.info({ err, parent: this.parent.name }, 'handler failed; escalating to parent');
          this.parent.escalate(err, this);
          return undefined;
        }
        this.log.error({ err }, 'handler failed; escalated with no parent: stopping');
        this.host.cellGaveUp(this, err);
        void this.stop();
        return undefined;
      case 'restart':
        return this.restart(err, s);
    }
  }

  private async restart(err: unknown, s: Extract<SupervisionStrategy, { strategy: 'restart' }>): Promise<void> {
    const now = Date.now();
    const within = s.withinMs ?? 60_000;
    this.restartTimes = this.restartTimes.filter((t) => now - t < within);
    if (this.restartTimes.length >= (s.maxRestarts ?? 10)) {
      this.log.error({ err, restarts: this.restartTimes.length, withinMs: within }, 'too many restarts; stopping');
      this.host.cellGaveUp(this, err);
      void this.stop();
      return;
    }
    this.restartTimes.push(now);
    const delay = restartDelay(s, this.restartTimes.length);
    this.log.info({ err, delayMs: delay }, 'handler failed; restarting');
    await this.stopChildren();
    await this.runPostStop();
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    if (this.state !== 'running') return;
    try {
      this.incarnate();
      await this.runPreStart();
    } catch (startErr) {
      this.log.error({ err: startErr }, 'preStart failed during restart; stopping');
      this.host.cellGaveUp(this, startErr);
      void this.stop();
      return;
    }
    if (this.state !== 'running') return; // stopped while it started again
    this.counters[R.restarts]!++;
    this.host.cellRestarted(this, err);
  }

  private async runHook(hook: 'preStart' | 'postStop'): Promise<void> {
    try {
      await this.watchedHook(hook, this.incarnation?.[hook]?.(this.ctx));
    } catch (err) {
      this.log.warn({ err }, `${hook} failed`);
    }
  }

  /** What a hook returned, as a promise that logs a warning if it runs past {@link SLOW_HOOK_MS}. */
  private watchedHook(hook: 'preStart' | 'postStop', result: unknown): Promise<unknown> {
    if (!isThenable(result)) return Promise.resolve(result);
    const slow = setTimeout(
      () =>
        this.log.warn(
          { hook, afterMs: SLOW_HOOK_MS },
          `${hook} of actor '${this.name}' has not ended after ${SLOW_HOOK_MS} ms: the actor waits for it (it handles no message, and a restart or stop goes on only once it ends)`,
        ),
      SLOW_HOOK_MS,
    );
    slow.unref();
    return Promise.resolve(result).finally(() => clearTimeout(slow));
  }

  private async stopChildren(force = false): Promise<void> {
    await Promise.all([...this.children].map((c) => c.stop(force ? { force: true } : {})));
  }

  private finishStop: (() => void) | undefined;
  private droppingQueue: Promise<void> | undefined = undefined;
  /** Where the current incarnation is in its hooks: postStop runs once, after a preStart that succeeded. */
  private lifecycle: 'starting' | 'started' | 'stopped' = 'starting';
  /** Settles when the preStart running now ends (undefined when none runs). */
  private preStarting: Promise<void> | undefined;

  /** Refuses new messages from now on (the system is closing); messages already queued are still handled. */
  refuseNew(): void {
    this.refusing = 'closed';
  }

  private closeRegistration(): void {
    this.registration?.close();
    this.registration = undefined;
  }

  /** True when nothing is queued or being handled. */
  get idle(): boolean {
    return !this.busy && this.head >= this.queue.length;
  }

  /**
   * Stops the actor: refuses new messages, waits for the message in hand (unless `force`),
   * stops children, dead-letters what is queued (asks there are answered with an error),
   * unregisters its name, runs postStop. Idempotent.
   */
  stop(options: { force?: boolean; reason?: 'stopped' | 'closed' } = {}): Promise<void> {
    if (this.stopping) {
      if (options.force && this.busy && this.finishStop) {
        this.abandonCurrent(options.reason ?? 'stopped');
        this.finishStop();
      }
      return this.stopping;
    }
    if (this.state === 'stopped') return this.stopped;
    this.state = 'stopping';
    this.stopping = new Promise<void>((resolve) => {
      this.finishStop = () => {
        this.finishStop = undefined;
        void this.finalize(options.reason ?? 'stopped', options.force ?? false).then(resolve);
      };
    });
    if (!this.busy) this.finishStop!();
    else if (options.force) {
      this.abandonCurrent(options.reason ?? 'stopped');
      this.finishStop!();
    }
    return this.stopping;
  }

  private abandonCurrent(reason: 'stopped' | 'closed'): void {
    this.abandoned = true;
    const envelope = this.current;
    this.current = undefined;
    if (envelope === undefined) return;
    if (tracingOn) traceHandlerFailed(envelope, new ActorStoppedError(this.name, envelope.action, reason === 'closed' ? 'was shut down' : 'stopped'));
    this.dropQueued(envelope, reason);
  }

  private dropQueued(envelope: Envelope, reason: 'stopped' | 'closed'): void {
    this.settle();
    this.counters[R.deadLettered]!++;
    this.host.deadLetter(this.name, envelope, reason);
    if (envelope.kind === EnvelopeKind.ask) {
      // (no stack: it would show the stop's machinery, and capturing it was most of the cost of
      // a stop with 100,000 messages queued)
      const err = withoutStack(() =>
        reason === 'closed'
          ? new SystemClosedError(`actor '${this.name}' was shut down before it answered '${envelope.action}'`)
          : new ActorStoppedError(this.name, envelope.action),
      );
      this.host.reply(envelope, EnvelopeKind.failure, toWireError(err));
    }
  }

  private async finalize(reason: 'stopped' | 'closed', force: boolean): Promise<void> {
    await this.stopChildren(force);
    const left = this.queue.slice(this.head);
    this.queue = [];
    this.head = 0;
    // A slice per turn: a stop with 100,000 messages queued kept the event loop 1.5 s.
    // (Messages that come meanwhile are refused at once: see receive.)
    const dropping = inTurns(left, (envelope) => this.dropQueued(envelope, reason));
    this.droppingQueue = dropping;
    await dropping.finally(() => (this.droppingQueue = undefined));
    // Every message received has been answered or dead-lettered: peers may now see the name go.
    this.closeRegistration();
    await this.runPostStop();
    this.state = 'stopped';
    this.parent?.children.delete(this);
    this.host.cellStopped(this, 'stopped');
    this.markStopped();
  }
}
