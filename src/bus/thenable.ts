/**
 * Whether a handler gave a promise (anything with a `then` method), so that a synchronous
 * answer can go without a microtask hop: the rte_mp bus's handlers and the actor layer's both
 * ask it, once per message.
 */

/** True when `v` has a `then` method (a promise, or any thenable). */
export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}
