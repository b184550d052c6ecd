/** Worker processes launched and supervised by the primary (ProcessPool, system.launch). See {@link ProcessPool}. */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { basename, extname, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Subject, type Observable } from 'rxjs';
import { ErrorCodes, MpBusError } from '../errors.js';
import { logger } from '../log.js';
import { ActorErrorCodes, ChildFailedError } from './errors.js';
import { ChildEnv, type ChildMessage, type LaunchedChild, type ParentMessage } from './launch-protocol.js';
import { RestartBudget, resolveRestartPolicy, type RestartPolicy } from './restart-budget.js';
import { moduleLoadingFlags } from './loader-flags.js';
import type { Runtime } from '../runtime/runtime.js';
import { DEFAULT_PLACEMENT, formatCpuList, planPlacement, type Placement } from '../runtime/cpus.js';
import { taskLimitHits, taskLimitNote } from '../runtime/environment.js';
import { definedOnly, durationMs, knownKeys, oneOf, optionKeys } from '../validation.js';
import type { ActorTransport } from './transport.js';

/**
 * When a child counts as ready: it joined the group (`'joined'`, the default: its
 * `startActorSystem()` returned); it called `signalReady()` (`'signal'`); it registered these
 * actor names (`{ actors }`, a list or a function of the child's identity); or one of its actors
 * joined this router group (`{ group }`).
 */
export type ReadyWhen = 'joined' | 'signal' | { actors: string[] | ((child: LaunchedChild) => string[]) } | { group: string };

/**
 * What a pool needs of the actor system that launches it (`ActorSystem` implements it): the pool
 * is a layer under the system, which creates it, so it names the system by this interface.
 */
export interface PoolHost {
  readonly runtime: Runtime | undefined;
  readonly transport: ActorTransport;
  readonly isClosed: boolean;
  has(name: string): boolean;
  onCloseFirst(fn: (deadline: number) => Promise<void>): () => void;
}

/** Options of `system.launch()`. */
export interface LaunchOptions {
  /** Children to start (default 1; 0 is allowed, then `scale()` later). */
  count?: number | undefined;
  /** The pool's name, in its children's identities and logs (default: the module's file name). 1-32 characters of [A-Za-z0-9_-]. */
  name?: string | undefined;
  /** Command-line arguments of each child, or a function of its identity. */
  args?: string[] | ((child: LaunchedChild) => string[]) | undefined;
  /**
   * More environment for the children (the parent's environment is passed on); a variable given
   * as `undefined` is not given (`env: { DEBUG: process.env.DEBUG }` compiles where options must not be undefined).
   */
  env?: Record<string, string | undefined> | undefined;
  /**
   * Node options of the children, after the parent's module-loading flags (`--import`,
   * `--require`, `--loader`, `--conditions`), which every child gets so that it can load the
   * module its parent loaded (a parent run through tsx, say). None of the parent's other flags
   * (`--inspect`, heap sizes) is passed on.
   */
  execArgv?: string[] | undefined;
  /** When a child counts as ready (default 'joined'). */
  ready?: ReadyWhen | undefined;
  /** How children that exit unasked are restarted, or false for never (default: 5 within 60 s, backoff 100 ms doubling to 5 s). */
  restart?: RestartPolicy | false | undefined;
  /** How long a child may take to get ready (default 30 000 ms). */
  startTimeoutMs?: number | undefined;
  /** What a stopped child gets to finish its work before it is killed (default 5 000 ms). */
  stopTimeoutMs?: number | undefined;
  /**
   * Which CPUs the children and the launcher run on (default 'float'): `'float'` places
   * nothing, every process runs on every CPU the launcher may use; `'spread'` keeps a CPU for the
   * launcher (its `cpus` when it was started with some, else the lowest it may use; it moves onto
   * it at launch) and puts the children on the others, as their `cpus` option, when the launcher
   * may use 2 CPUs or more (on 1 CPU, or when `taskset` leaves it one, nothing is placed). Choose
   * `'spread'` when this process is the busy caller and its children's jobs are light; children
   * that need every CPU, or that ask one another, are faster floating. See docs/process-model.md,
   * "CPU placement", and docs/benchmarks.md, "Placement and the application's shape".
   */
  placement?: Placement | undefined;
}

/**
 * Why a child exited: asked to (`stop`, `scale`, `replace`, `close`); `'crashed'`: unasked, with
 * a signal or a non-zero exit code; `'exited'`: unasked, with exit code 0 (its program ended: it
 * closed its system itself, say); or because the primary is closing. A child that exited unasked
 * (crashed or exited) is restarted, by the pool's `restart` policy.
 */
export type ExitReason = 'requested' | 'crashed' | 'exited' | 'primary-closing';

/** How a child ended. */
export interface ChildExit {
  code: number | null;
  signal: string | null;
  reason: ExitReason;
  /** Epoch ms. */
  at: number;
}

/** A child of the pool. */
export interface PoolChild extends LaunchedChild {
  pid: number;
  /** 'exited' only in an `exited` event's `child`: the process has ended. */
  state: 'starting' | 'ready' | 'stopping' | 'exited';
}

/** A slot of the pool: its process now, and its history. */
export interface PoolSlot {
  index: number;
  /** The process serving the slot now (undefined while a restart waits out its backoff). */
  child: PoolChild | undefined;
  /** Processes started in this slot (the first, restarts and replacements). */
  starts: number;
  /** Restarts after an unasked exit. */
  restarts: number;
  lastExit: ChildExit | undefined;
}

/** What happens in a pool. */
export type PoolEvent =
  | { type: 'started'; child: PoolChild }
  | { type: 'ready'; child: PoolChild }
  | ({ type: 'exited'; child: PoolChild } & ChildExit)
  /** A child that exited unasked was replaced by `child` (ready now), `delayMs` after the exit. */
  | { type: 'restarted'; child: PoolChild; previousSerial: number; delayMs: number }
  /** More than `maxRestarts` within `withinMs`: the pool stopped restarting and is 'failed'. */
  | { type: 'gave-up'; index: number; maxRestarts: number; withinMs: number; exit: ChildExit };

/** 'failed': it gave up restarting (children still running keep running until `close()`). */
export type PoolState = 'running' | 'failed' | 'closing' | 'closed';

interface Resolved {
  module: string;
  count: number;
  name: string;
  args: (child: LaunchedChild) => string[];
  env: Record<string, string>;
  execArgv: string[];
  ready: ReadyWhen;
  restart: Required<RestartPolicy> | false;
  startTimeoutMs: number;
  stopTimeoutMs: number;
  placement: Placement;
}

interface Proc {
  info: LaunchedChild;
  child: ChildProcess;
  pid: number;
  state: Exclude<PoolChild['state'], 'exited'>;
  /** Started by an operation the application awaits (its failure is reported there), or by a restart. */
  origin: 'operation' | 'restart';
  joined: boolean;
  signalled: boolean;
  spawned: Set<string>;
  stderrTail: string;
  /** The pids cgroup's count of tasks refused for its limit when the child was forked (taskLimitHits). */
  taskLimitHits: number | undefined;
  timedOut: boolean;
  stopReason: ExitReason | undefined;
  exit: ChildExit | undefined;
  ready: Promise<void>;
  settleReady: { resolve: () => void; reject: (err: Error) => void };
  exited: Promise<void>;
  startTimer: NodeJS.Timeout | undefined;
}

/** The state behind one {@link PoolSlot}: the process serving it, its successor, its restarts. */
interface SlotState {
  index: number;
  current: Proc | undefined;
  /** A replacement starting while `current` still serves. */
  successor: Proc | undefined;
  starts: number;
  restarts: number;
  lastExit: ChildExit | undefined;
  /** A process of this slot was ready once (a slot that never was is dropped when its start fails). */
  served: boolean;
  removed: boolean;
  restartTimer: NodeJS.Timeout | undefined;
}

/** Bytes of a child's stderr kept for error messages. */
const STDERR_TAIL_BYTES = 4096;
/** Lines of it quoted. */
const STDERR_TAIL_LINES = 20;
/** After a stopped child's own deadline: time to leave the group and exit before it is killed. */
const STOP_GRACE_MS = 1000;
/**
 * The same when the primary closes: less than what the runtime gives a close hook past its
 * deadline, and than what a primary ended by a signal lives past its grace (runtime.ts).
 */
const CHILD_EXIT_RESERVE_MS = 400;
/** Most children a pool may have (each takes an lcore ID of the group's 128). */
const MAX_CHILDREN = 127;
/** Names of this process's open pools: children are named after their pool, so two pools of one name would clash. */
const openPools = new Set<string>();

/**
 * Worker processes of a DPDK group, launched by the primary
 * (`system.launch()`), supervised (restarted with backoff when they die unasked, up to a restart
 * intensity), scaled up and down, and replaced one at a time. Children are forked with the
 * group's name in their environment, so their plain `startActorSystem()` joins this group as a
 * secondary (src/actors/launched-child.ts is their side of it). The primary's close stops its
 * pools first, within its deadline.
 *
 * ```ts
 * const pool = await system.launch(new URL('./worker.js', import.meta.url), { count: 4, ready: { group: 'workers' } });
 * await pool.scale(6);
 * await pool.replace();      // rolling: each child stopped once its successor is ready
 * await pool.close();
 * ```
 */
export class ProcessPool {
  /** The pool's name. */
  readonly name: string;
  /** started, ready, exited, restarted, gave-up (what happened during `launch` is in {@link children}). */
  readonly events$: Observable<PoolEvent>;

  private readonly events = new Subject<PoolEvent>();
  private readonly log;
  private readonly slots = new Map<number, SlotState>();
  private readonly budget: RestartBudget | undefined;
  private readonly waiting = new Set<(err: Error) => void>();
  private module: string;
  /** Every child's CPUs (a cpu-set list) from the placement, or undefined: the launcher's. */
  private childCpus: string | undefined;
  private serial = 0;
  private current: PoolState = 'running';
  private queue: Promise<unknown> = Promise.resolve();
  private closing: Promise<void> | undefined;
  private readonly closedHooks: Array<() => void> = [];

  /** @internal use `system.launch()` */
  constructor(
    private readonly system: PoolHost,
    private readonly runtime: Runtime,
    private readonly options: Resolved,
  ) {
    this.name = options.name;
    this.module = options.module;
    this.events$ = this.events.asObservable();
    this.budget = options.restart ? new RestartBudget(options.restart) : undefined;
    this.log = logger('process-pool', { pool: this.name });
  }

  /** @internal Places the launcher and decides its children's CPUs (before any child starts). */
  place(): void {
    const plan = planPlacement(this.options.placement, this.runtime.allowedCpus, this.runtime.cpus);
    if (plan.launcher) this.runtime.placeOn(plan.launcher);
    this.childCpus = plan.children && formatCpuList(plan.children);
    this.log.debug({ placement: this.options.placement, launcher: formatCpuList(this.runtime.cpus), children: this.childCpus ?? 'any' }, 'placed');
  }

  /** 'running', 'failed' (gave up restarting), 'closing' or 'closed'. */
  get state(): PoolState {
    return this.current;
  }

  /** Slots in use (children running or about to be restarted). */
  get size(): number {
    return [...this.slots.values()].filter((s) => !s.removed).length;
  }

  /** Every slot with its process and counters, by index. */
  children(): PoolSlot[] {
    return [...this.slots.values()]
      .sort((a, b) => a.index - b.index)
      .map((s) => ({ index: s.index, child: s.current ? publicChild(s.current) : undefined, starts: s.starts, restarts: s.restarts, lastExit: s.lastExit }));
  }

  /** Pids of every child process alive now (successors and children being stopped included). */
  pids(): number[] {
    return [...this.slots.values()]
      .flatMap((s) => [s.current, s.successor])
      .filter((p): p is Proc => p !== undefined && p.exit === undefined)
      .map((p) => p.pid);
  }

  /**
   * Grows or shrinks the pool to `count` children. New children take the lowest free indices and
   * the promise resolves once they are ready; removed ones (the highest indices) are stopped
   * gracefully (they leave their router groups, finish what they hold within `stopTimeoutMs`,
   * exit 0; killed after that) and it resolves once they are gone.
   *
   * @throws {MpBusError} `CHILD_FAILED` when a new child dies while starting; `POOL_FAILED`,
   *   `POOL_CLOSED`; `INVALID_OPTION` for a count that is not an integer 0..127.
   */
  async scale(count: number): Promise<void> {
    checkCount(count, 'scale(count)');
    return this.run('scale', () => this.scaleTo(count));
  }

  /**
   * Rolling replacement: for each slot in turn, starts a successor (from `module` when given,
   * which then serves later restarts too), waits until it is ready, then stops the old child
   * gracefully. At every moment at least as many children are ready as before. Successors get
   * new serials (a restart keeps its slot's): name actors after `launchedChild().name` (or let
   * them join a group) so a successor never clashes with the child it replaces.
   *
   * @throws {MpBusError} `CHILD_FAILED` when a successor dies while starting (the child it was
   *   to replace keeps running, later slots are left as they were).
   */
  async replace(module?: string | URL): Promise<void> {
    const next = module === undefined ? undefined : resolveModule(module);
    return this.run('replace', async () => {
      if (next !== undefined) this.module = next;
      for (const slot of this.liveSlots()) {
        if (slot.removed) continue;
        if (slot.restartTimer) clearTimeout(slot.restartTimer);
        slot.restartTimer = undefined;
        const old = slot.current;
        const successor = this.startIn(slot, 'operation', old !== undefined);
        await successor.ready;
        if (old) await this.stopProc(old, 'requested', this.options.stopTimeoutMs, this.options.stopTimeoutMs + STOP_GRACE_MS);
      }
    });
  }

  /**
   * Stops every child and closes the pool: each gets `timeoutMs` (default `stopTimeoutMs`) to
   * finish what it holds, and a second more to leave the group, then is killed; `timeoutMs: 0`
   * kills them at once (SIGKILL). Resolves once every child is gone. Idempotent. Pending
   * `scale`/`replace` calls reject with `POOL_CLOSED`.
   */
  // async: a bad option rejects rather than throws
  async close(options: { timeoutMs?: number | undefined } = {}): Promise<void> {
    const timeoutMs = durationMs(options.timeoutMs ?? this.options.stopTimeoutMs, 'pool close({ timeoutMs })', 0);
    return this.closeFor('requested', timeoutMs, timeoutMs === 0 ? 0 : timeoutMs + STOP_GRACE_MS);
  }

  /**
   * @internal The primary is closing by `deadline` (epoch ms): children get three quarters of
   * what is left for what they hold, and are killed {@link CHILD_EXIT_RESERVE_MS} after the
   * deadline if still there. Killed at the deadline itself, a child that had used its time still
   * had to close its runtime and leave DPDK (20-100 ms beside a busy primary): after Ctrl-C, whose
   * grace is 200 ms, with 10,000 asks in flight, children were killed in 2 of 10 runs of an app
   * and in 6 of 20 of test/actors-launch's SIGTERM case.
   */
  closeForPrimary(deadline: number): Promise<void> {
    const left = Math.max(0, deadline - Date.now());
    return this.closeFor('primary-closing', left * 0.75, left === 0 ? 0 : left + CHILD_EXIT_RESERVE_MS);
  }

  /** @internal */
  onClosed(fn: () => void): void {
    this.closedHooks.push(fn);
  }

  // ---------------------------------------------------------------- operations

  /** Runs operations one after another; a pool that fails or closes meanwhile rejects the waiting ones. */
  private run(what: string, op: () => Promise<void>): Promise<void> {
    this.assertRunning(what);
    const result = this.queue.then(() => {
      this.assertRunning(what);
      return op();
    });
    this.queue = result.catch(() => undefined);
    return new Promise<void>((resolve, reject) => {
      this.waiting.add(reject);
      result.then(resolve, reject).finally(() => this.waiting.delete(reject));
    });
  }

  private assertRunning(what: string): void {
    if (this.current === 'failed')
      throw new MpBusError(
        ActorErrorCodes.poolFailed,
        `cannot ${what} pool '${this.name}': it gave up restarting its children (see its 'gave-up' event); close it and launch a new one`,
      );
    if (this.current !== 'running') throw new MpBusError(ActorErrorCodes.poolClosed, `cannot ${what} pool '${this.name}': it is closed; launch a new one`);
  }

  private liveSlots(): SlotState[] {
    return [...this.slots.values()].filter((s) => !s.removed).sort((a, b) => a.index - b.index);
  }

  private async scaleTo(count: number): Promise<void> {
    const live = this.liveSlots();
    if (count > live.length) {
      const starting: Proc[] = [];
      for (let index = 0; starting.length < count - live.length; index++) {
        if (this.slots.has(index)) continue;
        const slot: SlotState = {
          index,
          current: undefined,
          successor: undefined,
          starts: 0,
          restarts: 0,
          lastExit: undefined,
          served: false,
          removed: false,
          restartTimer: undefined,
        };
        this.slots.set(index, slot);
        starting.push(this.startIn(slot, 'operation', false));
      }
      await Promise.all(starting.map((p) => p.ready));
    } else if (count < live.length) {
      await Promise.all(live.slice(count).map((slot) => this.removeSlot(slot)));
    }
  }

  private async removeSlot(slot: SlotState): Promise<void> {
    slot.removed = true;
    if (slot.restartTimer) clearTimeout(slot.restartTimer);
    const procs = [slot.current, slot.successor].filter((p): p is Proc => p !== undefined);
    await Promise.all(procs.map((p) => this.stopProc(p, 'requested', this.options.stopTimeoutMs, this.options.stopTimeoutMs + STOP_GRACE_MS)));
    if (this.slots.get(slot.index) === slot) this.slots.delete(slot.index);
  }

  private closeFor(reason: ExitReason, childMs: number, killMs: number): Promise<void> {
    this.closing ??= (async () => {
      this.current = 'closing';
      const closed = new MpBusError(ActorErrorCodes.poolClosed, `pool '${this.name}' was closed while this waited`);
      for (const reject of this.waiting) reject(closed);
      for (const slot of this.slots.values()) {
        if (slot.restartTimer) clearTimeout(slot.restartTimer);
        slot.removed = true;
      }
      const procs = [...this.slots.values()].flatMap((s) => [s.current, s.successor]).filter((p): p is Proc => p !== undefined);
      await Promise.all(procs.map((p) => this.stopProc(p, reason, childMs, killMs)));
      this.current = 'closed';
      this.log.info('closed');
      this.events.complete();
      for (const fn of this.closedHooks.splice(0)) fn();
    })();
    return this.closing;
  }

  // ---------------------------------------------------------------- processes

  /** Forks a child for `slot`: as its process (a new slot, a restart) or as the successor of the one serving it. */
  private startIn(slot: SlotState, origin: Proc['origin'], asSuccessor: boolean, serial = ++this.serial): Proc {
    const info: LaunchedChild = { index: slot.index, serial, pool: this.name, name: `${this.name}-${serial}` };
    const limitHitsBefore = taskLimitHits();
    const child = fork(this.module, this.options.args(info), {
      execArgv: this.options.execArgv,
      env: {
        ...process.env,
        ...this.options.env,
        [ChildEnv.filePrefix]: this.runtime.filePrefix,
        [ChildEnv.procType]: 'secondary',
        [ChildEnv.index]: String(slot.index),
        [ChildEnv.serial]: String(serial),
        [ChildEnv.pool]: this.name,
        [ChildEnv.parentPid]: String(process.pid),
        [ChildEnv.cpus]: this.childCpus ?? '',
      },
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      // Its own process group: a Ctrl-C in the terminal reaches the primary only, which stops its
      // children in order (they would otherwise die with it and be taken for crashes).
      detached: true,
    });
    let settleReady!: Proc['settleReady'];
    const ready = new Promise<void>((resolve, reject) => (settleReady = { resolve, reject }));
    ready.catch(() => undefined); // reported by the operation that awaits it, or by the exit
    const proc: Proc = {
      info,
      child,
      pid: child.pid ?? -1,
      state: 'starting',
      origin,
      joined: false,
      signalled: false,
      spawned: new Set(),
      stderrTail: '',
      taskLimitHits: limitHitsBefore,
      timedOut: false,
      stopReason: undefined,
      exit: undefined,
      ready,
      settleReady,
      exited: new Promise<void>((resolve) => child.once('close', (code, signal) => resolve(this.onExit(slot, proc, code, signal)))),
      startTimer: undefined,
    };
    child.on('error', (err) => this.log.warn({ err, serial }, 'child process error'));
    child.stderr!.on('data', (chunk: Buffer) => {
      process.stderr.write(chunk);
      proc.stderrTail = (proc.stderrTail + chunk.toString()).slice(-STDERR_TAIL_BYTES);
    });
    child.on('message', (message: unknown) => this.onMessage(proc, message as ChildMessage));
    proc.startTimer = setTimeout(() => {
      proc.timedOut = true;
      kill(proc);
    }, this.options.startTimeoutMs);
    slot.starts++;
    if (asSuccessor) slot.successor = proc;
    else slot.current = proc;
    this.log.debug({ serial, index: slot.index, childPid: proc.pid }, 'started');
    this.events.next({ type: 'started', child: publicChild(proc) });
    void ready.then(
      () => {
        if (slot.successor === proc) {
          slot.successor = undefined;
          slot.current = proc;
        }
        slot.served = true;
      },
      () => undefined,
    );
    return proc;
  }

  private onMessage(proc: Proc, message: ChildMessage): void {
    switch (message?.$mpbus) {
      case 'joined':
        proc.joined = true;
        break;
      case 'ready':
        proc.signalled = true;
        break;
      case 'spawned':
        proc.spawned.add(message.name);
        break;
      default:
        return;
    }
    if (proc.state === 'starting' && proc.stopReason === undefined && this.isReady(proc)) {
      clearTimeout(proc.startTimer);
      proc.state = 'ready';
      this.tell(proc, { $mpbus: 'ready-seen' });
      this.events.next({ type: 'ready', child: publicChild(proc) });
      proc.settleReady.resolve();
    }
  }

  private isReady(proc: Proc): boolean {
    const when = this.options.ready;
    if (when === 'joined') return proc.joined;
    if (when === 'signal') return proc.signalled;
    if (!proc.joined) return false;
    if ('group' in when) {
      const members = new Set(this.system.transport.members(when.group));
      return [...proc.spawned].some((name) => members.has(name));
    }
    const names = typeof when.actors === 'function' ? when.actors(proc.info) : when.actors;
    return names.every((name) => proc.spawned.has(name) && this.system.has(name));
  }

  /** What a child that timed out while starting had not done, in the words of `ready` (the message said only "not ready"). */
  private notReadyBecause(proc: Proc): string {
    const when = this.options.ready;
    if (!proc.joined)
      return "it never joined the group: its module must start an actor system (startActorSystem(): a launched child joins its parent's group by itself), and got no further, or is stuck before it";
    if (when === 'signal') return "it joined the group but never called launchedChild().ready() (ready: 'signal')";
    const spawned = proc.spawned.size === 0 ? 'it spawned no actor' : `it spawned ${[...proc.spawned].map((n) => `'${n}'`).join(', ')}`;
    if (when !== 'joined' && 'group' in when) return `it joined the group, but none of its actors joined group '${when.group}' (ready: { group }); ${spawned}`;
    if (when !== 'joined') {
      const names = typeof when.actors === 'function' ? when.actors(proc.info) : when.actors;
      const missing = names.filter((name) => !(proc.spawned.has(name) && this.system.has(name)));
      return `it joined the group, but did not spawn ${missing.map((n) => `'${n}'`).join(', ')} (ready: { actors }); ${spawned}`;
    }
    return 'it joined the group';
  }

  private tell(proc: Proc, message: ParentMessage): void {
    if (proc.child.connected) proc.child.send(message, undefined, undefined, () => undefined);
  }

  /** Asks a child to stop (it gets `childMs` for its work) and kills it after `killMs`. */
  private async stopProc(proc: Proc, reason: ExitReason, childMs: number, killMs: number): Promise<void> {
    if (proc.exit) return;
    proc.stopReason ??= reason;
    if (proc.state === 'ready') proc.state = 'stopping';
    // A child still starting has no handler for the request yet: it is killed, as when no time is given.
    // When the primary closes, the routers that would give the child work close with it: the
    // child leaves its groups without a quiet period for routers to catch up (closeForPrimary).
    if (proc.joined && killMs > 0) this.tell(proc, { $mpbus: 'stop', timeoutMs: Math.floor(childMs), quiet: reason !== 'primary-closing' });
    else kill(proc);
    const timer = setTimeout(() => kill(proc), killMs);
    await proc.exited;
    clearTimeout(timer);
  }

  private onExit(slot: SlotState, proc: Proc, code: number | null, signal: NodeJS.Signals | null): void {
    clearTimeout(proc.startTimer);
    const reason = proc.stopReason ?? (code === 0 && signal === null ? 'exited' : 'crashed');
    const unasked = reason === 'crashed' || reason === 'exited';
    const exit: ChildExit = { code, signal, reason, at: Date.now() };
    const wasStarting = proc.state === 'starting';
    // Reaped: a child that ended without DPDK's cleanup (SIGKILLed, say) left its rte_mp socket
    // file; left there, its pid, once reused, would pass for a live secondary of the group.
    if (proc.pid > 0) this.runtime.group.removeSecondaryFilesOf(proc.pid);
    proc.exit = exit;
    slot.lastExit = exit;
    if (slot.current === proc) slot.current = undefined;
    if (slot.successor === proc) slot.successor = undefined;
    // The application hears of it through events$ (and a start that fails, through its promise).
    this.log[unasked && !wasStarting ? 'info' : 'debug'](
      { serial: proc.info.serial, index: slot.index, childPid: proc.pid, code, signal, reason },
      'child exited',
    );
    this.events.next({ type: 'exited', child: { ...publicChild(proc), state: 'exited' }, ...exit });
    if (wasStarting) {
      // A Node that cannot start its own threads aborts (SIGABRT), or waits for good before it
      // runs any of the module (Node 20, when one of its platform's threads is refused): the
      // pids cgroup says whether its limit was hit while the child started.
      const hits = taskLimitHits();
      const taskLimited = hits !== undefined && proc.taskLimitHits !== undefined && hits > proc.taskLimitHits;
      const threadsNote = `it could not start its threads (${taskLimitNote()}; each mpbus process takes about 16 threads)`;
      const why = proc.timedOut
        ? `did not get ready within ${this.options.startTimeoutMs} ms (killed): ${taskLimited ? `${threadsNote}, and Node waits for good when it cannot start its own` : this.notReadyBecause(proc)}`
        : `exited while starting (${signal ? `signal ${signal}` : `exit code ${code}`})${taskLimited ? `: ${threadsNote}` : ''}`;
      const fix = taskLimited ? "raise the limit (docker --pids-limit, a pod's pid limit), or launch fewer children" : undefined;
      // A restart has no caller to reject: the reason is said here (its exit looked like any crash).
      if (proc.origin === 'restart' && proc.stopReason === undefined && proc.timedOut)
        this.log.warn({ serial: proc.info.serial, index: slot.index, childPid: proc.pid }, `child ${slot.index} of pool '${this.name}', restarted, ${why}`);
      proc.settleReady.reject(
        proc.stopReason !== undefined
          ? new MpBusError(ActorErrorCodes.poolClosed, `child ${slot.index} of pool '${this.name}' was stopped while starting`)
          : new ChildFailedError(this.name, slot.index, code, signal, lastLines(proc.stderrTail), why, fix),
      );
    }
    if (!unasked || this.current !== 'running' || slot.removed) return;
    if (slot.current || slot.successor) return; // another process serves the slot (a replacement under way)
    if (wasStarting && proc.origin === 'operation' && !slot.served) {
      this.slots.delete(slot.index); // the operation that started it reports the failure
      return;
    }
    this.scheduleRestart(slot, proc, exit);
  }

  private scheduleRestart(slot: SlotState, previous: Proc, exit: ChildExit): void {
    if (!this.budget || !this.options.restart) {
      this.slots.delete(slot.index);
      return;
    }
    const delayMs = this.budget.next(Date.now());
    if (delayMs === undefined) {
      const { maxRestarts, withinMs } = this.options.restart;
      this.current = 'failed';
      this.log.error({ index: slot.index, maxRestarts, withinMs }, `pool '${this.name}' gave up: more than ${maxRestarts} restarts within ${withinMs} ms`);
      this.events.next({ type: 'gave-up', index: slot.index, maxRestarts, withinMs, exit });
      const failed = new MpBusError(
        ActorErrorCodes.poolFailed,
        `pool '${this.name}' gave up: its children exited unasked more than ${maxRestarts} times within ${withinMs} ms (last: ${exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`}); see its stderr, then close it and launch again`,
      );
      for (const reject of this.waiting) reject(failed);
      return;
    }
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (this.current !== 'running' || slot.removed || slot.current) return;
      slot.restarts++;
      // the same serial, so the same name: its actors' names come back with it (the registry drops
      // the dead child's names when the new one registers them, see MailboxSystem.open)
      const proc = this.startIn(slot, 'restart', false, previous.info.serial);
      void proc.ready.then(
        () => this.events.next({ type: 'restarted', child: publicChild(proc), previousSerial: previous.info.serial, delayMs }),
        () => undefined,
      );
    }, delayMs);
  }
}

/**
 * Launches a pool of child processes in `system`'s group: see {@link ProcessPool} and
 * `ActorSystem.launch`. Resolves once every child is ready.
 */
export async function launchPool(system: PoolHost, module: string | URL, options: LaunchOptions = {}): Promise<ProcessPool> {
  const runtime = system.runtime;
  if (!runtime || runtime.processType !== 'primary') {
    throw new MpBusError(
      ErrorCodes.primaryOnly,
      `launch() runs in the primary of a group (${runtime ? 'this process is a secondary' : 'this actor system has no DPDK runtime'}): call it from the process that started the group with startActorSystem({ procType: 'primary' })`,
    );
  }
  if (system.isClosed || runtime.closed) throw new MpBusError(ErrorCodes.closed, 'launch(): the actor system is closing or closed');
  const resolved = resolveLaunchOptions(module, options);
  // (a group the transport refuses, one too long for its members to register in, say, is refused
  // now rather than thrown from the readiness check of a child's message)
  if (typeof resolved.ready === 'object' && 'group' in resolved.ready) system.transport.members(resolved.ready.group);
  if (openPools.has(resolved.name))
    invalid(`launch(): a pool named '${resolved.name}' is already open in this process, and children are named after their pool: give this one another name`);
  openPools.add(resolved.name);
  const pool = new ProcessPool(system, runtime, resolved);
  try {
    pool.place();
  } catch (err) {
    openPools.delete(resolved.name);
    throw err;
  }
  const offRuntime = runtime.onClose((context) => pool.closeForPrimary(context.deadline));
  const offSystem = system.onCloseFirst((deadline) => pool.closeForPrimary(deadline));
  pool.onClosed(() => {
    offRuntime();
    offSystem();
    openPools.delete(resolved.name);
  });
  try {
    await pool.scale(resolved.count);
  } catch (err) {
    await pool.close({ timeoutMs: 1000 });
    throw err;
  }
  return pool;
}

// ---------------------------------------------------------------- helpers

function publicChild(p: Proc): PoolChild {
  return { ...p.info, pid: p.pid, state: p.state };
}

function kill(proc: Proc): void {
  if (proc.exit || proc.pid <= 0) return;
  try {
    process.kill(proc.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function lastLines(text: string): string {
  return text
    .split('\n')
    .slice(-STDERR_TAIL_LINES - 1)
    .join('\n');
}

function invalid(message: string): never {
  throw new MpBusError(ErrorCodes.invalidOption, message);
}

function checkCount(count: unknown, where: string): void {
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 0 || count > MAX_CHILDREN)
    invalid(`${where} must be an integer 0..${MAX_CHILDREN}, got ${typeof count === 'string' ? JSON.stringify(count) : String(count)}`);
}

function resolveModule(module: string | URL): string {
  let path: string;
  const scheme = module instanceof URL ? module.protocol : typeof module === 'string' ? /^([a-z][a-z0-9+.-]+:)\/\//i.exec(module)?.[1] : undefined;
  if (scheme !== undefined && scheme !== 'file:')
    invalid(`launch() takes a module file (a path or a file: URL), got ${String(module)}, a ${scheme} URL: children load their module from this machine`);
  if (module instanceof URL) path = fileURLToPath(module);
  else if (typeof module === 'string' && module.startsWith('file:')) path = fileURLToPath(module);
  else if (typeof module === 'string' && module.length > 0) path = resolvePath(module);
  else invalid(`launch() takes a module path or file: URL, got ${String(module)}`);
  if (!existsSync(path) || !statSync(path).isFile())
    invalid(`launch(): no module file at ${path}: give the compiled .js file (a path or new URL('./worker.js', import.meta.url))`);
  return path;
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}

/** Every option of {@link LaunchOptions} (checked complete by the compiler). */
const LAUNCH_OPTION_KEYS = optionKeys<LaunchOptions>({
  count: true,
  name: true,
  args: true,
  env: true,
  execArgv: true,
  ready: true,
  restart: true,
  startTimeoutMs: true,
  stopTimeoutMs: true,
  placement: true,
});

/** @internal The launch options checked, with their defaults (exported for its unit test). */
export function resolveLaunchOptions(module: string | URL, options: LaunchOptions): Resolved {
  if (options === null || typeof options !== 'object') invalid(`launch() options must be an object, got ${String(options)}`);
  knownKeys(options, LAUNCH_OPTION_KEYS, 'launch() options');
  const path = resolveModule(module);
  const count = options.count ?? 1;
  checkCount(count, 'launch() option count');
  const name =
    options.name ??
    (basename(path, extname(path))
      .replace(/[^A-Za-z0-9_-]/g, '_')
      .slice(0, 32) ||
      'pool');
  if (typeof name !== 'string' || !/^[A-Za-z0-9_-]{1,32}$/.test(name))
    invalid(`launch() option name must be 1-32 characters of [A-Za-z0-9_-] (it names the children's actors), got ${JSON.stringify(name)}`);
  const args = options.args ?? [];
  if (typeof args !== 'function' && !isStringArray(args)) invalid('launch() option args must be an array of strings or a function of the child returning one');
  const env = options.env ?? {};
  if (env === null || typeof env !== 'object' || !Object.values(env).every((v) => typeof v === 'string' || v === undefined))
    invalid('launch() option env must be an object of strings (a variable given as undefined is not given)');
  const ownExecArgv = options.execArgv ?? [];
  if (!isStringArray(ownExecArgv)) invalid('launch() option execArgv must be an array of strings');
  const execArgv = [...moduleLoadingFlags(), ...ownExecArgv];
  const ready = options.ready ?? 'joined';
  const readyOk =
    ready === 'joined' ||
    ready === 'signal' ||
    (typeof ready === 'object' &&
      ready !== null &&
      (('group' in ready && typeof ready.group === 'string' && ready.group.length > 0) ||
        ('actors' in ready && (typeof ready.actors === 'function' || (isStringArray(ready.actors) && ready.actors.length > 0)))));
  if (!readyOk)
    invalid(`launch() option ready must be 'joined', 'signal', { actors: [names] | (child) => names } or { group: name }, got ${JSON.stringify(ready)}`);
  const restart =
    options.restart === undefined
      ? resolveRestartPolicy({}, 'launch() option restart')
      : options.restart === false
        ? false
        : resolveRestartPolicy(options.restart, 'launch() option restart');
  const startTimeoutMs = durationMs(options.startTimeoutMs ?? 30_000, 'launch() option startTimeoutMs', 1);
  const stopTimeoutMs = durationMs(options.stopTimeoutMs ?? 5000, 'launch() option stopTimeoutMs', 0);
  const placement = oneOf<Placement>(options.placement ?? DEFAULT_PLACEMENT, 'launch() option placement', ['spread', 'float']);
  return {
    module: path,
    count,
    name,
    args:
      typeof args === 'function'
        ? (child) => {
            const a = args(child);
            if (!isStringArray(a)) invalid(`launch() option args(child) must return an array of strings, got ${JSON.stringify(a)}`);
            return a;
          }
        : () => args,
    env: definedOnly(env) as Record<string, string>,
    execArgv,
    ready,
    restart,
    startTimeoutMs,
    stopTimeoutMs,
    placement,
  };
}
