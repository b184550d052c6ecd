/**
 * {@link whenServed}: waiting for names that no process holds yet, for a service that starts
 * before the one whose actors it asks (an ask to a name no one holds fails at once).
 */
import { Subscription, type Observable } from 'rxjs';

/** The first look again after a miss; the delay doubles up to {@link MAX_LOOK_MS}. */
const FIRST_LOOK_MS = 10;
/**
 * The longest wait between two looks: a name spawned in another process is seen within it. A
 * look is a lookup in the group's registry in shared memory (no message to anyone); a wait that
 * lasts costs ten of them a second.
 */
const MAX_LOOK_MS = 100;

/** What {@link whenServed} needs of its system. */
export interface ServedHost {
  /** True when some process of the group holds `name` now. */
  has(name: string): boolean;
  /** Emits when this process spawns an actor (no wait for the next look); completes as the system closes. */
  readonly spawned$: Observable<unknown>;
  /** The error a wait gets when its system closes. */
  closedError(what: string): Error;
  /** True once the system (or its runtime) began to close. */
  shuttingDown(): boolean;
}

/**
 * Resolves once `has` holds for every name of `names`; throws the signal's `reason` when it
 * aborts, at once if it has (as `signal.throwIfAborted()` throws it), and rejects with the
 * host's closed error when the system closes first.
 */
export function whenServed(host: ServedHost, names: readonly string[], signal: AbortSignal | undefined): Promise<void> {
  signal?.throwIfAborted();
  const missing = (): string[] => names.filter((name) => !host.has(name));
  if (missing().length === 0) return Promise.resolve();
  if (host.shuttingDown()) return Promise.reject(host.closedError(`cannot wait for ${quoted(missing())}`));
  return new Promise<void>((resolve, reject) => {
    let delay = FIRST_LOOK_MS;
    let timer: NodeJS.Timeout | undefined;
    // (made first: the subscription below may end the wait as it is made, when the events completed)
    const subscription = new Subscription();
    let ended = false;
    const end = (): void => {
      ended = true;
      clearTimeout(timer);
      subscription.unsubscribe();
      signal?.removeEventListener('abort', onAbort);
    };
    const look = (): void => {
      if (ended) return;
      const left = missing();
      if (left.length === 0) {
        end();
        resolve();
      } else if (host.shuttingDown()) {
        end();
        reject(host.closedError(`cannot wait for ${quoted(left)}`));
      } else {
        clearTimeout(timer);
        timer = setTimeout(look, delay);
        delay = Math.min(delay * 2, MAX_LOOK_MS);
      }
    };
    // (the reason as it was given, as signal.throwIfAborted() throws it: not always an Error)
    const onAbort = (): void => {
      end();
      reject(signal!.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    // (added to an ended subscription, it is unsubscribed at once)
    subscription.add(host.spawned$.subscribe({ next: look, complete: look }));
    look();
  });
}

function quoted(names: readonly string[]): string {
  return names.map((name) => `'${name}'`).join(', ');
}
