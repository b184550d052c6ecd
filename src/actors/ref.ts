/** {@link ActorRef}: the address of an actor anywhere in the group, typed by its contract. */
import type { ActionOf, AnyContract, AskOptions, MsgOf, ReplyOf } from './contract.js';

/** Arguments of `tell`: the message, which may be left out when the action takes none (`void`). */
export type TellArgs<C, K extends keyof C> = [MsgOf<C, K>] extends [void] ? [msg?: MsgOf<C, K>] : [msg: MsgOf<C, K>];
/** Arguments of `ask`: the message (optional when `void`) and options. */
export type AskArgs<C, K extends keyof C> = [MsgOf<C, K>] extends [void] ? [msg?: MsgOf<C, K>, options?: AskOptions] : [msg: MsgOf<C, K>, options?: AskOptions];

/** The contract a ref's methods follow: an `unknown` (or `any`) one is the untyped {@link AnyContract}. */
export type RefContract<C> = unknown extends C ? AnyContract : C;

/** @internal what a ref needs from its system. */
export interface RefHost {
  tellTo(to: string, action: string, payload: unknown, sender: string | undefined): void;
  askTo(to: string, action: string, payload: unknown, options: AskOptions | undefined, sender: string | undefined): Promise<unknown>;
}

/**
 * A handle on an actor by name. Cheap to create and to copy; it stays valid across the actor's
 * restarts, and a message to a name no one holds goes to dead letters (an ask rejects at once).
 */
export class ActorRef<C = AnyContract> {
  /**
   * Types only (nothing at run time): refs of contracts that do not fit are different types, so
   * an `ActorRef<Greeter>` is not taken where an `ActorRef<Counter>` is asked for. A ref fits
   * where its actor takes every action asked for, each with every message the other contract
   * may send (a ref to an actor that takes any string fits where one that takes 'eur' is asked
   * for, not the other way) and a reply the other contract accepts. An untyped ref fits anywhere,
   * and any ref fits where an untyped one is asked for. Protected, not private: a declaration
   * file keeps a protected member's type. A mapped type, not `C` itself, so that a contract
   * declared as an interface (no index signature) still fits the untyped `AnyContract`.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the untyped ref fits both ways, as `any` does
  declare protected readonly contract: string extends keyof RefContract<C> ? any : { [K in keyof C]-?: (msg: MsgOf<C, K>) => ReplyOf<C, K> };
  /** @internal */
  constructor(
    /** The actor's name, unique in the group. */
    readonly name: string,
    private readonly host: RefHost,
    private readonly sender?: string,
  ) {}

  /** Sends a message and does not wait. Never throws for an absent actor: see `system.deadLetters$`. */
  tell<K extends ActionOf<RefContract<C>>>(action: K, ...msg: TellArgs<RefContract<C>, K>): void;
  // Plain parameters, not a rest array: no array allocated per message.
  tell(action: string, msg?: unknown): void {
    this.host.tellTo(this.name, action, msg, this.sender);
  }

  /**
   * Sends a request and resolves with the actor's reply. Rejects with `AskTimeoutError` after
   * `timeoutMs`, `ActorNotFoundError` at once when no actor holds the name, `ActorStoppedError`
   * when it stops (or its process dies) first, or the handler's error.
   */
  ask<K extends ActionOf<RefContract<C>>>(action: K, ...args: AskArgs<RefContract<C>, K>): Promise<ReplyOf<RefContract<C>, K>>;
  ask(action: string, msg?: unknown, options?: AskOptions): Promise<unknown> {
    return this.host.askTo(this.name, action, msg, options, this.sender);
  }

  toString(): string {
    return `ActorRef(${this.name})`;
  }

  toJSON(): string {
    return this.name;
  }
}
