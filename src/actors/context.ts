/** An actor's context, and the types of the handlers that get it. See {@link ActorContext}. */
import type { Logger } from 'pino';
import type { Observable } from 'rxjs';
import type { ActionOf, AnyContract, ContractOf, MsgOf, ReplyOf } from './contract.js';
import type { ActorClass, ActorDeclaration } from './decorators.js';
import type { ActorRef } from './ref.js';

/** @internal the parts of a running actor the context exposes. */
export interface ContextHost {
  readonly name: string;
  readonly log: Logger;
  ref<C>(name: string, sender: string): ActorRef<C>;
  spawnChild(args: unknown[]): Promise<ActorRef<AnyContract>>;
  stopSelf(): void;
  watch(target: ActorRef<unknown> | string): Observable<Terminated>;
  counters(): ActorCounters;
}

/** An actor stopped. */
export interface Terminated {
  name: string;
  /** 'stopped': stopped normally or by supervision; 'process-exited': its process died; 'not-found': it was not running when watched. */
  reason: 'stopped' | 'process-exited' | 'not-found';
}

/** Per-actor counters. */
export interface ActorCounters {
  /** Messages that reached the actor's mailbox. */
  received: number;
  /** Messages handled without error. */
  processed: number;
  /** Messages whose handler threw. */
  failed: number;
  /** Times supervision restarted the actor. */
  restarts: number;
  /** Messages the actor never handled (no handler, or stopped with them queued). */
  deadLettered: number;
  /** Messages waiting now. */
  mailboxDepth: number;
}

/**
 * What an actor knows about itself. Handlers get it as their second
 * argument; class actors can also have it injected (`constructor(ctx: ActorContext)`). The types
 * of those handlers ({@link HandlerOf}, {@link Handlers}, {@link HandlerMap}) are here with it:
 * they name the context, and the context's `spawn` takes them.
 */
export class ActorContext<C = AnyContract> {
  /** The action of the message being handled. */
  action = '';
  /** The sending actor of the message being handled, when an actor sent it. */
  sender: ActorRef | undefined;

  /** @internal */
  constructor(
    private readonly host: ContextHost,
    /** This actor's own ref. */
    readonly self: ActorRef<C>,
  ) {}

  /** This actor's name. */
  get name(): string {
    return this.host.name;
  }

  /** A pino logger bound to this actor's name and pid. */
  get log(): Logger {
    return this.host.log;
  }

  /** A ref to another actor; messages sent through it carry this actor as their sender. */
  ref<C2 = AnyContract>(name: string): ActorRef<C2> {
    return this.host.ref<C2>(name, this.host.name);
  }

  /** Spawns a child: same arguments as `system.spawn`. Children stop when this actor stops or restarts. */
  spawn<C2 = AnyContract>(actorClass: ClassActor<C2>, options?: SpawnOptions): Promise<ActorRef<C2>>;
  /** Spawns a child function actor typed by its handlers' own signatures (as `system.spawn`). */
  spawn<H extends HandlerMap>(name: string, behavior: H | ((ctx: ActorContext) => H), options?: SpawnOptions): Promise<ActorRef<ContractOf<H>>>;
  /** Spawns a child function actor whose handlers are checked against the contract `C2` (as `system.spawn<C>`). */
  spawn<C2>(name: string, behavior: FunctionBehavior<C2>, options?: SpawnOptions): Promise<ActorRef<C2>>;
  spawn(...args: unknown[]): Promise<ActorRef<AnyContract>> {
    return this.host.spawnChild(args);
  }

  /** Stops this actor once the current message is handled (do not await anything inside a handler for it). */
  stop(): void {
    this.host.stopSelf();
  }

  /** Emits once when `target` stops, including when its process dies. */
  watch(target: ActorRef<unknown> | string): Observable<Terminated> {
    return this.host.watch(target);
  }

  /** This actor's counters. */
  counters(): ActorCounters {
    return this.host.counters();
  }
}

/** A handler for action `K`: gets the message, returns the reply (or a promise of it). */
export type HandlerOf<C, K extends keyof C> = (msg: MsgOf<C, K>, ctx: ActorContext<C>) => ReplyOf<C, K> | Promise<ReplyOf<C, K>>;

/** One handler per action of the contract: what a function actor is made of. */
export type Handlers<C> = { [K in ActionOf<C>]: HandlerOf<C, K> };

/**
 * What an untyped function actor is made of: handlers whose own signatures give the contract.
 * The message parameter is `never` here, so that each handler declares its own type (`(n: number)
 * => ...`): one left without takes nothing (see {@link ContractOf}), where `any` let every send
 * compile.
 */
export type HandlerMap = Record<string, (msg: never, ctx: ActorContext) => unknown>;

/**
 * What `spawn<C>(Class)` takes: a class whose methods named after an action of `C` take that
 * action's message (and the context) and return its reply. A method of another name mapped by
 * `@Handle` is not checked, nor is an action the class has no method for (it may be mapped by
 * `@Handle`). Untyped (`C` not given), any class.
 */
export type ClassActor<C> = ActorClass<string extends ActionOf<NotInferred<C>> ? object : object & Partial<Handlers<NotInferred<C>>>>;

/** `C` as given, never inferred from the argument it types (TypeScript's own `NoInfer` came in 5.4). */
type NotInferred<C> = [C][C extends unknown ? 0 : never];

/** A function actor: one handler per action, or a factory that makes them (called again on each restart, for fresh state). */
export type FunctionBehavior<C> = Handlers<C> | ((ctx: ActorContext<C>) => Handlers<C>);

/** Options of one spawn. */
export interface SpawnOptions extends ActorDeclaration {
  /** The actor's name (default: the name given to `@Actor`). Unique in the whole group. */
  name?: string | undefined;
  /** Function actors: run before the first message (and after each restart). */
  preStart?: ((ctx: ActorContext) => void | Promise<void>) | undefined;
  /** Function actors: run after the last message (and before each restart). */
  postStop?: ((ctx: ActorContext) => void | Promise<void>) | undefined;
}
