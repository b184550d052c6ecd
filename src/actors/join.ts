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
import { ErrorCodes, MpBusError } from '../errors.js';
import { Runtime } from '../runtime/runtime.js';
import { givenLogger } from '../log.js';
import { resolveOptions, RUNTIME_OPTION_KEYS, type ResolvedOptions, type RuntimeOptions } from '../runtime/options.js';
import { checkedOptions, definedOnly, optionKeys } from '../validation.js';
import { attachToParent, exitIfPrimaryDied, launchedChild, launchedRuntimeDefaults } from './launched-child.js';
import { MailboxSystem } from '../bus/mailbox.js';
import { MailboxTransport, transportSettings, type MailboxTransportOptions } from './mailbox-transport.js';
import { ActorSystem, checkActorSystemOptions, type ActorSystemOptions } from './system.js';

/**
 * Options of {@link startActorSystem}: the runtime's and the actor system's (but the hooks and
 * links that `startActorSystem` sets itself: `transport`, `runtime`, `afterClose`, `beforeClose`).
 */
export interface StartActorSystemOptions
  extends RuntimeOptions, Omit<ActorSystemOptions, 'transport' | 'runtime' | 'afterClose' | 'beforeClose' | 'primaryGone'> {
  /** Mailbox sizes and receive tuning. */
  mailboxes?: MailboxTransportOptions | undefined;
}

/** Every option of {@link StartActorSystemOptions}. */
const START_OPTION_KEYS = [
  ...RUNTIME_OPTION_KEYS,
  ...optionKeys<Omit<StartActorSystemOptions, keyof RuntimeOptions>>({
    mailboxes: true,
    container: true,
    askTimeoutMs: true,
    goneGraceMs: true,
    checkValues: true,
    cluster: true,
  }),
];

/** An actor system over a DPDK group, as {@link startActorSystem} returns it: its runtime is always there. */
export type GroupActorSystem = ActorSystem & { readonly runtime: Runtime };

/**
 * Joins (or founds) the group and returns an actor system over it. When this call started the
 * runtime, `system.close()` also closes the runtime (leaving the group cleanly); closing the
 * runtime first closes the system too, and either may be called first, or both at once.
 *
 * @throws {MpBusError} `OTHER_GROUP` when this process already runs a runtime of another group
 *   (or role) than `filePrefix` (`procType`) ask for: DPDK allows one group per process.
 */
export async function startActorSystem(options: StartActorSystemOptions = {}): Promise<GroupActorSystem> {
  // `cluster` is the cluster layer's option (src/cluster/join-cluster.ts): passed on to the system, never to the runtime.
  checkedOptions(options, START_OPTION_KEYS, 'startActorSystem options');
  // Every option is checked before DPDK starts: a bad one would otherwise fail the call with the
  // runtime started and left running (a process starts DPDK once).
  const mailboxSystem = transportSettings(options.mailboxes ?? {}, 'startActorSystem mailboxes').system;
  const { mailboxes, container, askTimeoutMs, goneGraceMs, cluster, checkValues, ...given } = options;
  checkActorSystemOptions({ container, askTimeoutMs, goneGraceMs, checkValues, cluster });
  // A child of system.launch() joins its parent's group as a secondary unless told otherwise.
  // An option given as undefined is not given (`filePrefix: process.argv[2]` with no argument):
  // it would otherwise take the default group, not its parent's.
  const runtimeOptions: RuntimeOptions = { ...launchedRuntimeDefaults(), ...definedOnly(given) };
  let rt = Runtime.current();
  if (rt && !rt.closed) {
    checkSameGroup(rt, runtimeOptions);
    checkSameRuntimeOptions(rt, given);
  }
  const ownRuntime = !rt || rt.closed;
  if (ownRuntime) rt = await Runtime.start(runtimeOptions).catch(exitIfPrimaryDied);
  const runtime = rt!;
  // Attached here, where waiting for a process still creating the group's objects costs no sleep.
  await MailboxSystem.openAsync(mailboxSystem);
  const transport = new MailboxTransport(mailboxes);
  const system = new ActorSystem({
    transport,
    ...(container ? { container } : {}),
    ...(askTimeoutMs !== undefined ? { askTimeoutMs } : {}),
    ...(goneGraceMs !== undefined ? { goneGraceMs } : {}),
    ...(checkValues !== undefined ? { checkValues } : {}),
    ...(cluster ? { cluster } : {}),
    // A runtime already closing is not waited for: it may be waiting for this very system.
    // A primary that is only closing is not acted on by its launched children: their pool stops
    // them, letting them finish their work in hand, while other pools' actors may be gone already.
    primaryGone: () => runtime.primaryGoneNow(launchedChild() === undefined),
    // Closing this system closes the runtime: a primary says it leaves before its actors stop.
    ...(ownRuntime ? { beforeClose: () => runtime.announceLeaving(), afterClose: () => (runtime.closed ? undefined : runtime.close()) } : {}),
    runtime,
  });
  // Closing the runtime (close(), a signal, a lost primary) closes the actors first, within its deadline.
  runtime.onClose((context) => system.closeForRuntime(context));
  const lost = runtime.primaryLost$.subscribe((info) => system.primaryLost(info));
  system.events$.subscribe({ complete: () => lost.unsubscribe() });
  attachToParent(system);
  if (cluster) {
    try {
      await system.ready();
    } catch (err) {
      await system.close({ timeoutMs: 0 });
      throw err;
    }
  }
  return system as GroupActorSystem;
}

/**
 * The runtime options given agree with those of the running runtime: DPDK starts once per
 * process, so a later call that asks for other settings (`memoryMb`, `onPrimaryLost`, ...)
 * would be ignored unseen.
 */
function checkSameRuntimeOptions(rt: Runtime, given: RuntimeOptions): void {
  const asked = resolveOptions(given);
  if (given.logger !== undefined && given.logger !== givenLogger()) {
    throw new MpBusError(
      ErrorCodes.invalidOption,
      `this process's runtime already runs with ${givenLogger() ? 'another logger' : "mpbus's own logger"}: the logger is the process's, given by the start that starts the runtime; give the same logger, or none, once it runs`,
    );
  }
  for (const key of Object.keys(given) as (keyof RuntimeOptions & keyof ResolvedOptions)[]) {
    if (key === 'filePrefix' || key === 'procType' || given[key] === undefined) continue;
    const now = JSON.stringify(rt.options[key]);
    if (JSON.stringify(asked[key]) === now) continue;
    throw new MpBusError(
      ErrorCodes.invalidOption,
      `this process's runtime already runs with ${key} ${now ?? 'unset'}: it cannot change to ${JSON.stringify(asked[key])} (DPDK starts once per process); give the same runtime options, or none, once it runs`,
    );
  }
}

/** The running runtime is the one asked for: a process cannot join a second group, nor change role. */
function checkSameGroup(rt: Runtime, asked: { filePrefix?: string; procType?: string }): void {
  if (asked.filePrefix !== undefined && asked.filePrefix !== rt.filePrefix) {
    throw new MpBusError(
      ErrorCodes.otherGroup,
      `this process already runs in group '${rt.filePrefix}' and DPDK allows one group per process: use filePrefix '${rt.filePrefix}' (or leave it out), or start another process for group '${asked.filePrefix}'`,
    );
  }
  if (asked.procType !== undefined && asked.procType !== 'auto' && asked.procType !== rt.processType) {
    throw new MpBusError(
      ErrorCodes.otherGroup,
      `this process already runs as the ${rt.processType} of group '${rt.filePrefix}', not as a ${asked.procType}: leave procType out (or 'auto'), or start another process`,
    );
  }
}
