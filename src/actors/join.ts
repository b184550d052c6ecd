/**
 * {@link startActorSystem}: an actor system that spans the processes of a DPDK group. It starts
 * this process's {@link Runtime} when none runs yet (as primary or secondary, `procType: 'auto'`
 * by default), and carries messages over shared-memory mailboxes.
 *
 * ```ts
 * const system = await startActorSystem({ filePrefix: 'shop' });
 * await system.spawn(OrderDesk);
 * // in another process of the group:
 * const desk = (await startActorSystem({ filePrefix: 'shop' })).ref<Orders>('order-desk');
 * ```
 */
import { Runtime } from '../runtime/runtime.js';
import type { RuntimeOptions } from '../runtime/options.js';
import { MailboxTransport, type MailboxTransportOptions } from './mailbox-transport.js';
import { ActorSystem, type ActorSystemOptions } from './system.js';

/** Options of {@link startActorSystem}. */
export interface StartActorSystemOptions extends RuntimeOptions, Omit<ActorSystemOptions, 'transport'> {
  /** Mailbox sizes and receive tuning. */
  mailboxes?: MailboxTransportOptions;
}

/**
 * Joins (or founds) the group and returns an actor system over it. When this call started the
 * runtime, `system.close()` also closes the runtime (leaving the group cleanly); closing the
 * runtime first closes the system too.
 */
export async function startActorSystem(options: StartActorSystemOptions = {}): Promise<ActorSystem> {
  const { mailboxes, container, askTimeoutMs, goneGraceMs, cluster, ...runtimeOptions } = options;
  let rt = Runtime.current();
  const ownRuntime = !rt || rt.closed;
  if (ownRuntime) rt = await Runtime.start(runtimeOptions);
  const runtime = rt!;
  const transport = new MailboxTransport(mailboxes);
  const system = new ActorSystem({
    transport,
    ...(container ? { container } : {}),
    ...(askTimeoutMs !== undefined ? { askTimeoutMs } : {}),
    ...(goneGraceMs !== undefined ? { goneGraceMs } : {}),
    ...(cluster ? { cluster } : {}),
    ...(ownRuntime ? { afterClose: () => runtime.close() } : {}),
  });
  // Closing the runtime first closes the actors (unless the system is closing it itself).
  runtime.onClose(() => (system.isClosed ? undefined : system.close({ timeoutMs: 1000 })));
  if (cluster) {
    try {
      await system.ready();
    } catch (err) {
      await system.close({ timeoutMs: 0 });
      throw err;
    }
  }
  return system;
}
