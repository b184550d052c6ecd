/**
 * What a process pool and its launched children agree on: the environment the parent sets for
 * each child, who a child is, and the IPC messages between them. Both sides import it; neither
 * side's code is here (the parent: process-pool.ts; the child: launched-child.ts).
 */

/** Environment variables the parent sets for each child. */
export const ChildEnv = {
  filePrefix: 'MPBUS_FILE_PREFIX',
  procType: 'MPBUS_PROC_TYPE',
  index: 'MPBUS_CHILD_INDEX',
  serial: 'MPBUS_CHILD_SERIAL',
  pool: 'MPBUS_POOL',
  parentPid: 'MPBUS_PARENT_PID',
  /** The child's CPUs from its pool's placement (a cpu-set list), its `cpus` option unless it gives one. */
  cpus: 'MPBUS_CPUS',
} as const;

/** Who a launched child is. */
export interface LaunchedChild {
  /** The child's slot in the pool, 0-based: stable across restarts and replacements of that slot. */
  readonly index: number;
  /** From 1: a restarted child keeps its predecessor's (its names come back with it); a replacing or added child gets a new one. */
  readonly serial: number;
  /** The pool's name. */
  readonly pool: string;
  /**
   * `<pool>-<serial>`: unique among the pool's live processes, so actors named after it never
   * clash with a process they run beside (a replacement's predecessor), and come back under the
   * same names when the child is restarted (see docs/actors.md, "Worker processes").
   */
  readonly name: string;
}

/** @internal IPC messages between a pool and its children (`$mpbus` keeps them apart from the application's). */
export type ChildMessage = { $mpbus: 'joined'; pid: number; lcore: number } | { $mpbus: 'ready' } | { $mpbus: 'spawned'; name: string };
/** @internal */
export type ParentMessage =
  /** `quiet: false`: the primary is closing (its routers with it), so no quiet period for routers to catch up. */
  { $mpbus: 'stop'; timeoutMs: number; quiet?: boolean } | { $mpbus: 'ready-seen' };
