/**
 * The child's side of `system.launch()`: who this process is in its pool (from the environment
 * its parent set), the IPC messages it exchanges with the parent, and what a launched child's
 * actor system does when the parent asks it to stop or goes away.
 *
 * `startActorSystem()` with no options in a launched child joins the parent's group as a
 * secondary (see {@link launchedRuntimeDefaults}) and calls {@link attachToParent}, so a child
 * module needs nothing pool-specific unless it wants its identity or signals readiness itself.
 */
import { registry } from '../bus/registry.js';
import { logger } from '../log.js';
import { ErrorCodes } from '../errors.js';
import { ignoreClosingFailures } from '../runtime/process-end.js';
import { pidAlive } from '../runtime/group.js';
import { cleanGroup } from '../runtime/group-survey.js';
import { PRIMARY_LOST_EXIT_CODE } from '../runtime/runtime.js';
import type { ActorSystem } from './system.js';
import { ChildEnv, type ChildMessage, type LaunchedChild, type ParentMessage } from './launch-protocol.js';

export type { LaunchedChild } from './launch-protocol.js';

let cached: LaunchedChild | null | undefined;

/** A launched child ends with this code (EX_SOFTWARE) when a top-level actor's supervision gave up. */
export const GAVE_UP_EXIT_CODE = 70;
/** How long such a child takes to finish what its other actors hold before it exits. */
const GAVE_UP_CLOSE_MS = 2000;

/**
 * This process's identity in the pool that launched it, or undefined when it was not started by
 * `system.launch()` (a process it forks itself inherits the environment but has another parent,
 * so it is not taken for a launched child).
 */
export function launchedChild(): LaunchedChild | undefined {
  if (cached === undefined) {
    const env = process.env;
    const index = Number(env[ChildEnv.index]);
    const serial = Number(env[ChildEnv.serial]);
    const pool = env[ChildEnv.pool];
    const launched = pool && Number.isInteger(index) && Number.isInteger(serial) && typeof process.send === 'function';
    const parentPid = Number(env[ChildEnv.parentPid]);
    if (launched && parentPid !== process.ppid && Number.isInteger(parentPid) && parentPid > 0 && !pidAlive(parentPid)) orphaned(parentPid);
    cached = launched && parentPid === process.ppid ? { index, serial, pool, name: `${pool}-${serial}` } : null;
  }
  return cached ?? undefined;
}

/**
 * A launched child whose primary died while it started (it was re-parented): it must not go on
 * as what it would be without a parent (the application's primary branch, a new group nobody
 * can stop with Ctrl-C), so it exits as a secondary does when its primary dies.
 */
function orphaned(parentPid: number): never {
  const log = logger('launched-child');
  log.warn({ parentPid }, `the primary that launched this process (pid ${parentPid}) died while it started: exiting (${PRIMARY_LOST_EXIT_CODE})`);
  // No process of its group may be left to remove what the primary left (its children that had
  // not joined yet exit here): the first one to get here does, unless some process still uses it.
  const filePrefix = process.env[ChildEnv.filePrefix];
  if (filePrefix) {
    try {
      cleanGroup(filePrefix);
    } catch (err) {
      log.debug({ err, filePrefix }, 'group files left to its other processes');
    }
  }
  process.exit(PRIMARY_LOST_EXIT_CODE);
}

/**
 * @internal A runtime start that failed: in a launched child whose primary died meanwhile
 * (`PRIMARY_DEAD`, or `NO_PRIMARY` once its files are gone too), the child exits as a secondary
 * does when its primary dies, not with the application's unhandled rejection. Else throws `err`.
 */
export function exitIfPrimaryDied(err: unknown): never {
  const code = (err as { code?: unknown } | null)?.code;
  const parentPid = Number(process.env[ChildEnv.parentPid]);
  if (launchedChild() !== undefined && (code === ErrorCodes.primaryDead || code === ErrorCodes.noPrimary) && !pidAlive(parentPid)) orphaned(parentPid);
  throw err;
}

/** @internal The group and role a launched child joins when `startActorSystem` is given none. */
export function launchedRuntimeDefaults(): { filePrefix?: string; procType?: 'secondary'; cpus?: string } {
  if (!launchedChild()) return {};
  const filePrefix = process.env[ChildEnv.filePrefix];
  const cpus = process.env[ChildEnv.cpus];
  return { ...(filePrefix ? { filePrefix } : {}), procType: 'secondary', ...(cpus ? { cpus } : {}) };
}

/**
 * Tells the parent this child is ready, for pools launched with `ready: 'signal'` (other
 * readiness kinds ignore it). Returns false, doing nothing, in a process that was not launched.
 */
export function signalReady(): boolean {
  if (!launchedChild() || !process.connected) return false;
  send({ $mpbus: 'ready' });
  return true;
}

function send(message: ChildMessage): void {
  if (process.connected) process.send!(message, undefined, undefined, () => undefined);
}

/** Part of the stop deadline spent letting routers learn that this child left its groups. */
const QUIET_MAX_MS = 300;
/** The child keeps serving until nothing arrived for this long (routers have caught up). */
const QUIET_IDLE_MS = 100;
/** After the parent went away, what the child's actors get to finish. */
const ORPHAN_CLOSE_MS = 200;

let attached = false;

/**
 * @internal Ties a launched child's actor system to its parent: reports that it joined and what
 * it spawns (for the parent's readiness check), stops when asked (leaves its groups, lets routers
 * notice unless its primary is closing, lets its actors finish within the deadline, exits 0),
 * and ends when the parent goes away. When the application closes the system itself, the child
 * lets go of the IPC channel so the process can end.
 */
export function attachToParent(system: ActorSystem): void {
  const me = launchedChild();
  if (!me || attached) return;
  attached = true;
  const log = logger('launched-child', { pool: me.pool, serial: me.serial });
  let reportSpawns = true;
  let stopping = false;
  const events = system.events$.subscribe({
    next: (e) => {
      if (reportSpawns && e.type === 'spawned') send({ $mpbus: 'spawned', name: e.name });
      // The actor's supervision gave up: as in Erlang, the failure goes to the supervisor above,
      // here the pool, which starts the process anew (within its restart budget). Kept alive, the
      // process served nothing: its pool counted it ready, and a router of its group failed every
      // ask with NO_WORKERS.
      else if (e.type === 'gaveUp' && e.topLevel && !stopping) {
        log.error(
          { actor: e.name, error: e.error },
          `actor '${e.name}' stopped (its supervision gave up): ending this child, for its pool to start it anew (exit ${GAVE_UP_EXIT_CODE})`,
        );
        void stop(GAVE_UP_CLOSE_MS, 'actor gave up');
      }
    },
    complete: () => detach(),
  });
  const stop = async (timeoutMs: number, why: 'asked' | 'asked, primary closing' | 'parent gone' | 'actor gave up'): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ timeoutMs, why }, 'stopping');
    // The process ends once closed: work the application awaits unguarded fails SYSTEM_CLOSED
    // meanwhile, which is no crash (and no stack trace on the primary's terminal).
    ignoreClosingFailures(log);
    const deadline = Date.now() + timeoutMs;
    try {
      if (why === 'asked' || why === 'actor gave up') await leaveGroupsQuietly(system, deadline);
      // Its primary is closing, and the routers with it: new work stops as they notice, and
      // waiting for them to catch up would only take time from what the child holds and from
      // its exit (within the pool's kill deadline).
      else if (why === 'asked, primary closing') leaveGroups(system);
      await system.close({ timeoutMs: Math.max(0, deadline - Date.now()) });
    } catch (err) {
      log.warn({ err }, 'closing after a stop request failed');
    }
    // (a parent gone without asking it to stop died: exit as a secondary whose primary died does)
    const code = why === 'parent gone' ? PRIMARY_LOST_EXIT_CODE : why === 'actor gave up' ? GAVE_UP_EXIT_CODE : 0;
    process.exit(typeof process.exitCode === 'number' && process.exitCode !== 0 ? process.exitCode : code);
  };
  const onMessage = (message: unknown): void => {
    const m = message as Partial<ParentMessage> | null;
    if (m?.$mpbus === 'stop') void stop(typeof m.timeoutMs === 'number' ? m.timeoutMs : 5000, m.quiet === false ? 'asked, primary closing' : 'asked');
    else if (m?.$mpbus === 'ready-seen') reportSpawns = false;
  };
  // The parent died or closed its end: an orphan worker serves no one (a dead primary is also
  // noticed by the runtime, which exits with code 69 if it gets there first).
  const onDisconnect = (): void => {
    // (the runtime acts on it now if the primary's lock is gone already: primaryLost$ and its policy)
    system.runtime?.primaryGoneNow(false);
    void stop(ORPHAN_CLOSE_MS, 'parent gone');
  };
  const detach = (): void => {
    process.off('message', onMessage);
    process.off('disconnect', onDisconnect);
    events.unsubscribe();
    if (!stopping && process.connected) process.disconnect();
  };
  process.on('message', onMessage);
  process.on('disconnect', onDisconnect);
  send({ $mpbus: 'joined', pid: process.pid, lcore: system.runtime?.lcoreId ?? -1 });
  for (const name of system.actors()) send({ $mpbus: 'spawned', name });
}

/**
 * Takes this process's actors out of every group: routers following a group stop sending them
 * new work (once they notice). Returns how many memberships it ended.
 */
function leaveGroups(system: ActorSystem): number {
  const actors = system.actors();
  let left = 0;
  for (const alias of registry.names()) {
    if (!alias.startsWith('$g.')) continue;
    for (const name of actors) {
      if (!alias.endsWith(`.${name}`) || alias.length <= name.length + 4) continue;
      system.transport.leave(alias.slice(3, alias.length - name.length - 1), name);
      left++;
    }
  }
  return left;
}

/**
 * {@link leaveGroups}, then keeps serving until the routers have caught up: at least a poll
 * period of theirs, and until nothing arrived for {@link QUIET_IDLE_MS}, within a share of the
 * deadline.
 */
async function leaveGroupsQuietly(system: ActorSystem, deadline: number): Promise<void> {
  const actors = system.actors();
  if (leaveGroups(system) === 0) return;
  const span = Math.max(0, deadline - Date.now());
  // At least a router's poll period (when the deadline allows), at most half the deadline: the rest is for closing.
  const quietFrom = Date.now() + Math.min(QUIET_MAX_MS, span / 2);
  const giveUpAt = Date.now() + span / 2;
  const received = (): number => actors.reduce((n, a) => n + (system.counters(a)?.received ?? 0), 0);
  let last = received();
  let lastChange = Date.now();
  for (;;) {
    const now = Date.now();
    if (now >= giveUpAt || (now >= quietFrom && now - lastChange >= QUIET_IDLE_MS)) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
    const r = received();
    if (r !== last) {
      last = r;
      lastChange = Date.now();
    }
  }
}
