/**
 * Typed contracts: a map from action names to the message each action takes and the reply it
 * gives. Refs and handlers typed by a contract make `tell`/`ask` checked end to end:
 *
 * ```ts
 * interface Counter {
 *   add: { msg: { n: number }; reply: number };
 *   reset: { msg: void; reply: void };
 * }
 * const counter = system.ref<Counter>('counter');
 * const total: number = await counter.ask('add', { n: 2 });
 * counter.tell('add', { n: 'two' }); // compile error
 * ```
 *
 * Types only, and it imports nothing: the handler types, which name the {@link ActorContext} a
 * handler gets, are in context.ts with it (the context names them too).
 */
/** One action of a contract. */
export interface ActionSpec<Msg = unknown, Reply = unknown> {
  msg: Msg;
  reply: Reply;
}

/** The contract of an actor whose messages are not typed: any action, any payload. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyContract = Record<string, ActionSpec<any, any>>;

/** Action names of a contract. */
export type ActionOf<C> = keyof C & string;
/**
 * What {@link MsgOf} and {@link ReplyOf} give for an action that is not `{ msg; reply }` (a
 * method signature, `square(n: number): number`, is the likely one): a type no value fits, so
 * that a send or a handler fails to compile with an error that names the fix (the message
 * is the type's only key, so that the error shows it).
 */
type NotAnAction = 'mpbus: a contract maps each action to { msg: <message>; reply: <reply> }, as in square: { msg: number; reply: number }';
/** The message type of action `K`. */
export type MsgOf<C, K extends keyof C> = C[K] extends { msg: infer M } ? M : { [fix in NotAnAction]: never };
/** The reply type of action `K`: `void` for an action with a message and no `reply` (one only told). */
export type ReplyOf<C, K extends keyof C> = C[K] extends { reply: infer R } ? R : C[K] extends { msg: unknown } ? void : { [fix in NotAnAction]: never };

/** Options of one ask. */
export interface AskOptions {
  /** Reject with `AskTimeoutError` after this long (default: the system's `askTimeoutMs`). */
  timeoutMs?: number | undefined;
  /**
   * Stop waiting when this signal aborts: the ask rejects with `AskAbortedError` (`name`
   * 'AbortError', `cause` the signal's reason) and an answer that comes later goes to dead
   * letters, as after a timeout. The actor is not told: a message already sent is handled.
   */
  signal?: AbortSignal | undefined;
}

/**
 * The contract implied by a handler map: each handler's parameter and (awaited) result. A
 * handler whose message parameter has no type of its own (`(n) => n + 1`, where the map's
 * `never` is all it gets) takes a message no value fits: a send to it fails to compile with an
 * error that names the fix (the type is written out, not named, so that the error shows it).
 */
export type ContractOf<H> = {
  [K in keyof H & string]: H[K] extends (...args: infer A) => infer R
    ? {
        msg: A extends [] ? void : [A[0]] extends [never] ? { 'mpbus: give this handler its message type, as in (n: number) => ...': never } : A[0];
        reply: Awaited<R>;
      }
    : never;
};
