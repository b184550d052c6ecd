/**
 * The pending asks of an actor system: {@link PendingAsk} (an ask waiting for its answer, made
 * by this system or relayed by one of its routers) and {@link AskForwarder} (what a router
 * offers the system to forward asks to its workers). See docs/actors.md, "The ask path".
 */
import type { Deadline } from './deadlines.js';
import { ActorErrorCodes, toWireError } from './errors.js';
import { EnvelopeKind, type Envelope } from './transport.js';

/** Sends an answer to an ask's envelope (the system's `reply`). */
export interface Replier {
  reply(envelope: Envelope, kind: typeof EnvelopeKind.reply | typeof EnvelopeKind.failure, payload: unknown): void;
}

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
  /** `worker` went away (or stalled) with `origin` in hand (try number `attempt`): true when the router gave it to another worker. */
  regive(origin: Envelope, attempt: number, worker: string, why?: 'gone' | 'stalled'): boolean;
}

/**
 * An ask waiting for its answer: made here (a promise to settle), or forwarded by a router of
 * this system for a caller elsewhere (a relay: the answer goes on to the caller's envelope).
 */
export class PendingAsk implements Deadline {
  done = false;
  /** Set while a router of this system has given the ask to a worker. */
  router: AskForwarder | undefined = undefined;
  worker: string | undefined = undefined;
  attempt = 0;
  /** The envelope the router received (what it gives to another worker when this one goes). */
  origin: Envelope | undefined = undefined;

  constructor(
    readonly id: number,
    readonly to: string,
    readonly action: string,
    readonly timeoutMs: number,
    public due: number,
    private onValue: ((value: unknown) => void) | undefined,
    private onError: ((err: unknown) => void) | undefined,
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
    else this.onError!(err);
    this.release();
  }

  /**
   * Settled for good: lets go of what the ask held (its envelope and payload, the promise's
   * functions). A settled entry waits in its deadline lane until its turn or the lane's
   * compaction (up to ~1,000 of them): holding their payloads there made them survive young
   * collections and be promoted, so each scavenge copied ~0.5 MB and old space filled up.
   */
  release(): void {
    this.origin = undefined;
    this.onValue = undefined;
    this.onError = undefined;
  }
}

/** Failure codes that mean the worker did not take the ask (a router gives it to another one). */
export function workerGoneCode(code: string): boolean {
  return code === ActorErrorCodes.actorStopped || code === ActorErrorCodes.actorNotFound;
}
