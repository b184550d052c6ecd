/** This process's membership of a DPDK multi-process group (Runtime): start, signals, a lost primary, close. See {@link Runtime}. */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { isMainThread } from 'node:worker_threads';
import type { Logger } from 'pino';
import { ReplaySubject, type Observable } from 'rxjs';
import { MpBusError, ErrorCodes } from '../errors.js';
import { logger, useLogger } from '../log.js';
import { durationMs } from '../validation.js';
import { addon } from '../native/addon.js';
import {
  checkEnvironment,
  checkFreeHugepages,
  hugepageBounds,
  hugepageInfo,
  hugetlbfsRoom,
  hugetlbLimit,
  mib,
  OPEN_FILES_FIX,
  openFilesNote,
  taskLimitNote,
} from './environment.js';
import { GroupFiles, livePrimaryPidNamespace, lockHolders, ownPidNamespace } from './group.js';
import { applyCpus, chooseCpus, formatCpuList, readAllowedCpus } from './cpus.js';
import { ealArgs, logLevelNumbers, MAX_LCORE, resolveOptions, type ResolvedOptions, type RuntimeOptions } from './options.js';
import { MPBUS_VERSION } from './version.js';
import { surveyGroups } from './group-survey.js';
import { exitAfterSignal, ignoreClosingFailures, SignalWatch } from './process-end.js';
import { loadDpdkLibraries } from './libraries.js';
import { attachCounters, retireCounters } from './counters.js';
import { ProcessExits } from './process-exits.js';
import { telemetryNative } from '../native/telemetry.js';

/** Why a runtime closes, and by when its close hooks should be done. */
export interface CloseContext {
  /** 'close': {@link Runtime.close} was called; 'signal': SIGINT/SIGTERM/SIGHUP/SIGUSR2; 'primary-lost': this secondary's primary died. */
  readonly reason: 'close' | 'signal' | 'primary-lost';
  /** Epoch ms by which in-flight work should be finished or abandoned. */
  readonly deadline: number;
}

/** A function run by {@link Runtime.close} before DPDK is cleaned up (latest registered runs first). */
export type CloseHook = (context: CloseContext) => void | Promise<void>;

/** Options of {@link Runtime.close}. */
export interface RuntimeCloseOptions {
  /** How long close hooks (the actor system on this runtime, say) may finish in-flight work, in ms. Default 5000. */
  timeoutMs?: number | undefined;
}

/** What {@link Runtime.primaryLost$} emits when a secondary's primary is gone. */
export interface PrimaryLost {
  /** The primary's pid, an mpbus primary's or a C primary's (the holder of its lock on `config`); undefined when it cannot be seen (another pid namespace). */
  readonly pid: number | undefined;
  /** 'died': killed or crashed (or a C primary that ended); 'left': it closed cleanly. */
  readonly reason: 'died' | 'left';
  /** What this process does about it (the `onPrimaryLost` option). */
  readonly policy: 'exit' | 'close' | 'ignore';
}

/**
 * Exit code of a secondary that ends because its primary died (`onPrimaryLost: 'exit'`):
 * sysexits' EX_UNAVAILABLE. One whose primary closed cleanly exits with 0.
 */
export const PRIMARY_LOST_EXIT_CODE = 69;

/** How long a secondary waits for a primary that holds the primary lock but is still in rte_eal_init. */
const PRIMARY_WAIT_MS = 15_000;
/** How long a new primary waits for a closing process that is removing the group's files. */
const CLEANUP_WAIT_MS = 2000;
/** Default of {@link RuntimeCloseOptions.timeoutMs}. */
const DEFAULT_CLOSE_TIMEOUT_MS = 5000;
/** After SIGINT/SIGTERM/SIGHUP/SIGUSR2: what close hooks get for in-flight work, and when the process ends whatever is left. */
const SIGNAL_GRACE_MS = 200;
const SIGNAL_EXIT_MS = 750;
/**
 * How often a secondary checks that its primary lives (a lock test on DPDK's `config`), where
 * it cannot watch the primary's process end ({@link ProcessExits}).
 */
const PRIMARY_WATCH_MS = 200;
/**
 * The same while it watches the primary's process end: its exit is then noticed at once, and
 * the check is for a primary that closed its runtime but runs on (its lock on `config` gone).
 */
const WATCHED_PRIMARY_WATCH_MS = 1000;
/** How long past its deadline a close hook is waited for (in-flight work is abandoned at the deadline; this is for the hook's own cleanup). */
const HOOK_OVERRUN_MS = 1000;
/** A secondary whose primary died ends within this, even if a close hook hangs. */
const PRIMARY_LOST_EXIT_MS = 1500;
/**
 * Longest the last process waits, as it leaves, for killed processes of its group to end
 * ({@link removeGroupFilesIfLast}): the kernel tears a process down in milliseconds (42 ms for
 * a Node process with 512 MB of memory).
 */
const ENDING_WAIT_MS = 500;

/**
 * What a layer above the runtime does in every {@link Runtime.start}, once DPDK is up and before
 * the start resolves (see {@link addStartHook}).
 */
export interface StartHook {
  /** Runs in every process that starts (it checks the process type itself); may throw. */
  run(rt: Runtime): void;
  /** Logged as a warning with the error when `run` throws: what the process goes on without. */
  readonly failure: string;
}

const startHooks: StartHook[] = [];

/**
 * @internal Runs `hook` in every `Runtime.start` from now on. The runtime imports no layer above
 * it: the package's entry (src/composition.ts) adds what those layers do at a start (a primary
 * serves interrupts to its secondaries from its start on). A hook that throws is logged and the
 * start goes on.
 */
export function addStartHook(hook: StartHook): void {
  if (!startHooks.includes(hook)) startHooks.push(hook);
}

let started: Runtime | undefined;
/** Set once rte_eal_init ran in this process, successful or not: DPDK cannot run it twice. */
let ealInitAttempted = false;
/** Set while a Runtime.start is under way, so a second concurrent call fails at once. */
let startInProgress = false;

/**
 * This process's membership of a DPDK multi-process group.
 *
 * ```ts
 * const rt = await Runtime.start({ filePrefix: 'orders', procType: 'auto' });
 * console.log(rt.processType, rt.lcoreId);
 * await rt.close();
 * ```
 */
export class Runtime {
  /** 'primary' or 'secondary': what this process became ('auto' resolved). */
  readonly processType: 'primary' | 'secondary';
  /** This process's lcore ID, unique among the live processes of the group. */
  readonly lcoreId: number;
  /** The group's `--file-prefix`. */
  readonly filePrefix: string;
  /** The CPUs this process may use (its affinity mask when it started, widened back when a pinned parent narrowed it). */
  readonly allowedCpus: readonly number[];
  /** This process's pid. */
  readonly pid = process.pid;
  /** DPDK's version string, e.g. "DPDK 22.11.11". */
  readonly dpdkVersion: string;
  /** The options in force, defaults applied. */
  readonly options: Readonly<ResolvedOptions>;
  /** @internal the group's files and locks */
  readonly group: GroupFiles;
  /**
   * False in a secondary whose primary is not an mpbus process (a C DPDK program): what only an
   * mpbus primary serves (the interrupt relay) is then refused at once with `ENOTREADY`.
   */
  readonly primaryIsMpbus: boolean;

  private readonly log: Logger;
  private cpuList: readonly number[];
  private readonly closeHooks: CloseHook[] = [];
  private readonly locks: number[];
  private membersFd: number;
  private closing: Promise<void> | undefined;
  /** close() has finished: DPDK is cleaned up and the group's files are dealt with. */
  private left = false;
  private signalCleanup: (() => void) | undefined;
  /** Set once a signal made this process end (a later signal ends it at once). */
  private endingOnSignal = false;
  private primaryWatch: NodeJS.Timeout | undefined;
  private unwatchPrimaryExit: (() => void) | undefined;
  /** The pid of the mpbus primary this secondary watches (undefined: a C primary, or not a secondary). */
  private watchedPrimaryPid: number | undefined;
  /** This secondary learned that its primary is gone (primaryLost$ emitted). */
  private lostPrimary = false;
  /** Whether it said once that the primary lost its lock on config (see primaryLostItsDpdkLock). */
  private warnedPrimaryLock = false;
  private readonly primaryLost = new ReplaySubject<PrimaryLost>(1);
  /**
   * Emits once, within a second, when this secondary's primary is gone (it died, or it closed:
   * either way no new secondary can join, and a new primary cannot start while this process
   * holds the group), then completes; it never emits in a primary, and completes without a value
   * when this runtime closes. What happens next is the `onPrimaryLost` option: by default the
   * process closes its actor system and runtime and exits, with {@link PRIMARY_LOST_EXIT_CODE}
   * when the primary died, 0 when it left.
   */
  readonly primaryLost$: Observable<PrimaryLost> = this.primaryLost.asObservable();

  private constructor(init: {
    processType: 'primary' | 'secondary';
    lcoreId: number;
    options: ResolvedOptions;
    cpus: readonly number[];
    allowedCpus: readonly number[];
    group: GroupFiles;
    locks: number[];
    membersFd: number;
    primaryIsMpbus: boolean;
  }) {
    this.processType = init.processType;
    this.lcoreId = init.lcoreId;
    this.options = init.options;
    this.cpuList = init.cpus;
    this.allowedCpus = init.allowedCpus;
    this.filePrefix = init.options.filePrefix;
    this.group = init.group;
    this.locks = init.locks;
    this.membersFd = init.membersFd;
    this.primaryIsMpbus = init.primaryIsMpbus;
    this.dpdkVersion = addon().dpdkVersion();
    this.log = logger('runtime', { prefix: this.filePrefix, role: this.processType, lcore: this.lcoreId });
  }

  /**
   * The CPUs this process runs on now: its `cpus` option, or the CPUs a process pool placed its
   * launcher on (`LaunchOptions.placement`), else {@link allowedCpus}.
   */
  get cpus(): readonly number[] {
    return this.cpuList;
  }

  /**
   * @internal Moves this process onto `cpus` (some of {@link allowedCpus}), as the placement of a
   * pool it launches asks. DPDK's record of the lcore's CPUs (`rte_lcore_cpuset`) keeps the set
   * of the start.
   */
  placeOn(cpus: readonly number[]): void {
    const chosen = chooseCpus(cpus, this.allowedCpus, 'placement');
    applyCpus(chosen, this.allowedCpus);
    this.cpuList = chosen;
    this.log.info({ cpus: formatCpuList(chosen) }, 'placed');
  }

  /** The runtime started in this process, if any (DPDK allows one per process). */
  static current(): Runtime | undefined {
    return started;
  }

  /**
   * The open runtime of this process, for `what` (a facility that needs one).
   *
   * @throws {MpBusError} `ENOTREADY` when none was started (in a worker thread: the main
   *   thread's is not this thread's), `CLOSED` when it is closed.
   */
  static required(what: string): Runtime {
    const rt = started;
    if (!rt) {
      const where = isMainThread
        ? 'await Runtime.start() (or startActorSystem()) first'
        : "this is a worker thread, and a runtime runs on the process's main thread only: use mpbus there and pass work to this thread by postMessage";
      throw new MpBusError(ErrorCodes.notReady, `${what} needs a started runtime in this process: ${where}`);
    }
    rt.assertOpen();
    return rt;
  }

  /**
   * Joins (or founds) a process group. Resolves once the EAL is initialised; EAL init runs on a
   * libuv pool thread, so the event loop keeps running meanwhile.
   *
   * @throws {MpBusError} with a code naming the cause: `HUGEPAGES_NOT_RESERVED`, `NO_PRIMARY`,
   *   `PRIMARY_DEAD`, `LCORE_IN_USE`, `SETTINGS_MISMATCH`, `EALREADY`, `MAIN_THREAD_ONLY` (in a worker thread),
   *   `MEMPOLICY_DENIED` (a container's seccomp profile), ...
   */
  static async start(options: RuntimeOptions = {}): Promise<Runtime> {
    const opts = resolveOptions(options);
    if (!isMainThread) throw workerThreadStart();
    if (started) {
      throw new MpBusError(
        ErrorCodes.alreadyStarted,
        `a runtime was already started in this process (group '${started.filePrefix}'${started.closed ? ', now closed' : ''}); DPDK allows one EAL per process: start another process to join a group again${started.closed ? ' (a test runner that runs several test files in one process, such as vitest with isolate: false, must run each in a process of its own: isolate: true, the default)' : ''}`,
      );
    }
    if (ealInitAttempted) {
      throw new MpBusError(
        ErrorCodes.alreadyStarted,
        'rte_eal_init already failed in this process and DPDK cannot run it twice: start a new process to try again',
      );
    }
    if (startInProgress) {
      throw new MpBusError(
        ErrorCodes.alreadyStarted,
        'Runtime.start is already under way in this process (DPDK allows one EAL per process): await that call instead',
      );
    }
    startInProgress = true;
    // Before anything of the start logs: every line of this runtime goes where the application's go.
    if (options.logger) useLogger(options.logger);
    const signals = opts.handleSignals ? SignalWatch.install(logger('runtime', { prefix: opts.filePrefix })) : undefined;
    let rt: Runtime;
    try {
      rt = await Runtime.join(opts, signals);
    } catch (err) {
      signals?.startFailed();
      throw err;
    } finally {
      startInProgress = false;
    }
    if (!signals) return rt;
    rt.signalCleanup = () => signals.remove();
    const signal = signals.takePending((s) => rt.endOnSignal(s));
    if (signal === undefined) return rt;
    rt.endOnSignal(signal);
    throw new MpBusError(
      ErrorCodes.closed,
      `${signal} came while the runtime started: it is closing and the process ends as ${signal} means (to handle ${signal} yourself, listen to it before the start, or set handleSignals: false)`,
    );
  }

  private static async join(opts: ResolvedOptions, signals: SignalWatch | undefined): Promise<Runtime> {
    const native = addon();
    const group = new GroupFiles(opts.filePrefix, opts.hugeDir);
    const locks: number[] = [];
    let membersFd = -1;
    // A signal before DPDK's init stops the start (at its next step, or in a wait for the group).
    const stopIfSignalled = (): void => {
      const signal = signals?.pendingSignal;
      if (signal) throw new MpBusError(ErrorCodes.closed, `${signal} came before DPDK's init: the start stops here and the process ends as ${signal} means`);
    };
    // idempotent: a closed fd number is soon reused by something else (libuv, the IPC channel)
    const releaseAll = (): void => {
      for (const fd of locks.splice(0)) group.unlock(fd);
      group.unlock(membersFd);
      membersFd = -1;
    };
    try {
      const allowedCpus = readAllowedCpus();
      const cpus = chooseCpus(opts.cpus, allowedCpus);
      checkEnvironment(group);
      const role = await Runtime.resolveRole(opts, group, locks);
      if (role === 'primary') checkFreeHugepages();
      membersFd =
        role === 'primary' ? await Runtime.prepareAsPrimary(opts, group, stopIfSignalled) : await Runtime.prepareAsSecondary(opts, group, stopIfSignalled);
      const lcoreId = Runtime.takeLcore(opts, group, locks);
      loadDpdkLibraries(opts.dpdkLibraries); // before EAL init: their tailqs register at load
      native.setLogEchoLevel(logLevelNumbers[opts.logLevel]);
      // Before EAL init, so that the threads mpbus starts from the JS thread follow it and EAL
      // leaves its control threads off these CPUs; a process whose mask a pinned parent narrowed
      // goes back to the CPUs it may use.
      applyCpus(cpus, allowedCpus);
      stopIfSignalled();
      ealInitAttempted = true;
      const result = await native.ealInit(ealArgs(opts, role, lcoreId, cpus), logLevelNumbers[opts.logLevel]).catch((err: unknown) => {
        // A primary that failed half-way still holds DPDK's lock on `config` and would pass for
        // a live primary: drop it, then clear what it created if no one else is in the group.
        // It also keeps its exclusive lock on the hugetlbfs mounts, which would block every other
        // DPDK primary on the machine for as long as this process lives.
        if (role === 'primary') {
          native.releaseFcntlLocks(group.configPath);
          native.unlockDirs(group.hugepageDirs());
        }
        // A secondary's failed init leaves its rte_mp socket (this process would pass for a live
        // secondary of the group while it runs on: no one would remove the group's files) and its
        // memseg list copies.
        if (role === 'secondary') group.removeSecondaryFilesOf(process.pid);
        releaseAll();
        removeGroupFilesIfLast(group, logger('runtime', { prefix: opts.filePrefix, role }));
        throw Runtime.explainInitFailure(err, role, opts, group);
      });
      const rt = new Runtime({
        processType: result.processType,
        lcoreId: result.lcoreId,
        options: opts,
        cpus,
        allowedCpus,
        group,
        locks,
        membersFd,
        primaryIsMpbus: result.processType === 'primary' || group.mpbusPrimaryAlive(),
      });
      started = rt;
      membersFd = -1; // the runtime's now (its close lets go of it; a number closed twice may be another's)
      try {
        attachCounters(group.runtimeDir, rt.lcoreId, rt.processType);
      } catch (err) {
        // The process works on, counting in private memory: only readers outside it lose sight.
        rt.log.warn({ err }, "cannot map the group's counters file; ps, top, telemetry and metrics will not see this process");
      }
      if (opts.telemetry) {
        try {
          telemetryNative().telemetryRegister();
        } catch (err) {
          // DPDK's own commands are still served; only mpbus's are missing.
          rt.log.warn({ err }, "cannot register mpbus's telemetry commands");
        }
      }
      for (const hook of startHooks) {
        try {
          hook.run(rt);
        } catch (err) {
          // What the layer above adds to the start is not worth the start: the process works on without it.
          rt.log.warn({ err }, hook.failure);
        }
      }
      process.on('exit', rt.onExit);
      if (rt.processType === 'secondary') {
        // A primary that died while DPDK attached this one (its requests to the dead primary
        // wait out their timeout: seconds): the start fails, as it would a moment earlier,
        // rather than hand the application a runtime that closes at once.
        if (rt.primaryGone()) {
          await rt.closeFor('primary-lost', 0).catch(() => undefined);
          throw new MpBusError(
            ErrorCodes.primaryDead,
            `DPDK started this secondary of group '${opts.filePrefix}', but ${primaryEndedWhileAttaching(opts.procType === 'auto')}`,
          );
        }
        rt.watchPrimary();
      }
      rt.log.info({ dpdk: rt.dpdkVersion }, 'joined group');
      return rt;
    } catch (err) {
      releaseAll();
      removeOwnLockDirIfAlone(group);
      throw err;
    }
  }

  /** Decides primary or secondary; a primary keeps `mpbus_primary.lock` for its whole life. */
  private static async resolveRole(opts: ResolvedOptions, group: GroupFiles, locks: number[]): Promise<'primary' | 'secondary'> {
    if (opts.procType === 'secondary') return 'secondary';
    const fd = group.tryLock('primary', true);
    if (fd >= 0 && !group.primaryAlive()) {
      locks.push(fd);
      return 'primary';
    }
    group.unlock(fd);
    if (opts.procType === 'primary') {
      throw new MpBusError(
        ErrorCodes.primaryExists,
        `a primary of group '${opts.filePrefix}' is already running: start this process with procType 'secondary' or 'auto', or use another filePrefix`,
      );
    }
    return 'secondary';
  }

  /** Primary: clears what a dead group left (only when none of its processes lives), publishes settings. */
  private static async prepareAsPrimary(opts: ResolvedOptions, group: GroupFiles, stopIfSignalled: () => void): Promise<number> {
    // The members lock is held exclusively for a moment by a process that is leaving (it checks
    // whether it is the last one): wait for that, but not for live members of a dead primary.
    const deadline = Date.now() + CLEANUP_WAIT_MS;
    let exclusive = group.tryLock('members', true);
    while (exclusive < 0 && group.liveSecondaryPids().length === 0 && Date.now() < deadline) {
      await sleep(20);
      stopIfSignalled();
      exclusive = group.tryLock('members', true);
    }
    const otherPids = group.liveSecondaryPids();
    if (exclusive < 0 || otherPids.length > 0) {
      group.unlock(exclusive);
      throw new MpBusError(
        ErrorCodes.primaryDead,
        `group '${opts.filePrefix}' has no primary but still has live processes${otherPids.length ? ` (pids ${otherPids.join(', ')})` : ''}: stop them before starting a new primary`,
      );
    }
    if (group.hasLeftovers()) group.removeLeftovers(true);
    group.writeSettings({
      mpbusVersion: MPBUS_VERSION,
      dpdkVersion: addon().dpdkVersion(),
      legacyMem: opts.legacyMem,
      singleFileSegments: opts.singleFileSegments,
      ...(opts.hugeDir !== undefined ? { hugeDir: opts.hugeDir } : {}),
      primaryPid: process.pid,
      pidNamespace: ownPidNamespace(),
    });
    group.unlock(exclusive);
    return Runtime.lockMembersShared(group);
  }

  private static lockMembersShared(group: GroupFiles): number {
    const fd = group.tryLock('members', false);
    if (fd < 0)
      throw new MpBusError(ErrorCodes.groupBusy, `group '${group.prefix}' is being cleaned up or founded by another process right now: try again in a moment`);
    return fd;
  }

  /** Secondary: a live primary must exist (waiting briefly for one that is starting), with the same settings. */
  private static async prepareAsSecondary(opts: ResolvedOptions, group: GroupFiles, stopIfSignalled: () => void): Promise<number> {
    const deadline = Date.now() + PRIMARY_WAIT_MS;
    while (!group.primaryAlive()) {
      const probe = group.tryLock('primary', true);
      group.unlock(probe);
      const primaryStarting = probe < 0;
      if (!primaryStarting || Date.now() > deadline) {
        if (group.hasLeftovers()) {
          throw new MpBusError(
            ErrorCodes.primaryDead,
            `the primary of group '${opts.filePrefix}' is dead (its files are left in ${group.runtimeDir}): start a new primary (it clears them), not a secondary`,
          );
        }
        throw new MpBusError(
          ErrorCodes.noPrimary,
          `no primary is running for group '${opts.filePrefix}' (none holds ${group.runtimeDir}): start one first (procType 'primary' or 'auto'); a primary in another container must share that directory, the hugetlbfs mount and the PID namespace with this one${otherLiveGroups()}`,
        );
      }
      await sleep(20);
      stopIfSignalled();
    }
    const settings = group.readSettings();
    // (past the wait above, the lock is held: an undefined holder is one this process cannot see)
    const primaryNamespace = livePrimaryPidNamespace(settings, group.primaryLockHolder());
    const pidNamespace = ownPidNamespace();
    if (primaryNamespace !== undefined && pidNamespace !== undefined && primaryNamespace !== pidNamespace) {
      // (the pids of one would be other processes, or none, in the other: a live process taken
      // for dead is reaped, a dead one taken for live keeps its names)
      throw new MpBusError(
        ErrorCodes.otherPidNamespace,
        `the primary of group '${opts.filePrefix}' runs in another PID namespace (${primaryNamespace}, this process is in ${pidNamespace}): the processes of a group know one another by pid, so they must share one PID namespace: run their containers with a shared one (docker run --pid=container:<the primary's container>, or --pid=host; Kubernetes: shareProcessNamespace: true in one pod)`,
      );
    }
    const mpbusPrimary = group.mpbusPrimaryAlive();
    if (!mpbusPrimary && opts.lcore === 'auto') {
      // A C primary (and its C secondaries) take lcore IDs mpbus has no record of; two processes
      // on one lcore ID corrupt mempool caches, so guessing is not an option.
      throw new MpBusError(
        ErrorCodes.lcoreRequired,
        `the primary of group '${opts.filePrefix}' is not an mpbus process, so mpbus cannot know which lcore IDs it and its other processes use: pass the option lcore with an ID none of them uses (e.g. one above the IDs in their --lcores / -l arguments)`,
      );
    }
    if (settings && mpbusPrimary) {
      const mismatches: string[] = [];
      const compare = (name: string, mine: unknown, theirs: unknown): void => {
        if (mine !== theirs) mismatches.push(`${name}: primary ${String(theirs)}, this process ${String(mine)}`);
      };
      // (what the caller left out is the primary's: a launched child's plain startActorSystem() joins a group of either)
      for (const key of opts.leftOut) opts[key] = settings[key];
      compare('legacyMem', opts.legacyMem, settings.legacyMem);
      compare('singleFileSegments', opts.singleFileSegments, settings.singleFileSegments);
      // (a secondary needs none: DPDK reads the primary's; one it gives would be ignored)
      if (opts.hugeDir !== undefined) compare('hugeDir', opts.hugeDir, settings.hugeDir ?? "DPDK's hugetlbfs mounts");
      compare('mpbus version', MPBUS_VERSION, settings.mpbusVersion);
      compare('DPDK version', addon().dpdkVersion(), settings.dpdkVersion);
      if (mismatches.length > 0) {
        throw new MpBusError(
          ErrorCodes.settingsMismatch,
          `this secondary does not match the primary of group '${opts.filePrefix}' (pid ${settings.primaryPid}), DPDK would corrupt shared memory: ${mismatches.join('; ')}`,
        );
      }
    }
    for (;;) {
      const fd = group.tryLock('members', false);
      if (fd >= 0) return fd;
      if (Date.now() > deadline) return Runtime.lockMembersShared(group);
      await sleep(10);
      stopIfSignalled();
    }
  }

  private static takeLcore(opts: ResolvedOptions, group: GroupFiles, locks: number[]): number {
    if (opts.lcore !== 'auto') {
      const fd = group.lockLcore(opts.lcore);
      if (fd < 0) {
        throw new MpBusError(
          ErrorCodes.lcoreInUse,
          `lcore ${opts.lcore} is held by another live process of group '${opts.filePrefix}': ` +
            (group.primaryAlive() && !group.mpbusPrimaryAlive()
              ? 'choose another, that none of its processes uses (its primary is not an mpbus process, so lcore cannot be auto)'
              : "choose another or use lcore 'auto'"),
        );
      }
      locks.push(fd);
      return opts.lcore;
    }
    for (let id = 0; id < MAX_LCORE; id++) {
      const fd = group.lockLcore(id);
      if (fd >= 0) {
        locks.push(fd);
        return id;
      }
    }
    throw new MpBusError(ErrorCodes.noFreeLcore, `all ${MAX_LCORE} lcore IDs of group '${opts.filePrefix}' are held by live processes`);
  }

  /** Turns an rte_eal_init failure into a code and a message that says the fix. */
  private static explainInitFailure(err: unknown, role: string, opts: ResolvedOptions, group: GroupFiles): MpBusError {
    const text = err instanceof Error ? err.message : String(err);
    const errno = (err as { errno?: number }).errno;
    const [code, fix] = diagnoseInitFailure(text, role, group, opts, opts.memoryMb ?? opts.socketMemMb?.reduce((a, b) => a + b, 0), opts.procType === 'auto');
    return new MpBusError(
      code,
      `DPDK could not start this ${role} of group '${opts.filePrefix}': ${fix}\n${text}`,
      errno === undefined ? { cause: err } : { cause: err, errno },
    );
  }

  /** True once {@link close} has been called. */
  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** Throws `CLOSED` when the runtime has been closed. Layers above call it before using DPDK. */
  assertOpen(): void {
    if (this.closing) throw new MpBusError(ErrorCodes.closed, 'the runtime is closed: start a new process to join a group again');
  }

  /** Registers work to run on close, before DPDK is cleaned up (buses, mailboxes, registries). */
  onClose(hook: CloseHook): () => void {
    this.closeHooks.push(hook);
    return () => {
      const i = this.closeHooks.indexOf(hook);
      if (i >= 0) this.closeHooks.splice(i, 1);
    };
  }

  /**
   * Leaves the group: runs close hooks (the actor system on this runtime closes first, with
   * `timeoutMs` for work in flight), calls `rte_eal_cleanup`, releases this process's lcore,
   * and, when it is the last process of the group, removes the group's hugepage files and
   * runtime dir (DPDK's cleanup leaves them). Idempotent: every call returns the same promise,
   * so it may be called from a close hook, an actor's handler or concurrently with
   * `system.close()`, in any order.
   */
  // async: a bad option rejects rather than throws
  async close(options: RuntimeCloseOptions = {}): Promise<void> {
    const timeoutMs = durationMs(options.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS, 'close timeoutMs', 0);
    return this.closeFor('close', timeoutMs);
  }

  private closeFor(reason: CloseContext['reason'], timeoutMs: number): Promise<void> {
    this.closing ??= this.doClose({ reason, deadline: Date.now() + timeoutMs });
    return this.closing;
  }

  /** 'exit' before close() finished: DPDK cannot be cleaned up any more, but the group's files can. */
  private readonly onExit = (): void => {
    if (!this.left) this.releaseForExit();
  };

  /** Lets go of the group's locks and removes its files when no other process lives; only for a process about to end. */
  private releaseForExit(): void {
    // DPDK's cleanup did not run, so this secondary's rte_mp socket is still there and would make
    // a live-looking secondary of this process while it ends: whoever is last would keep the files.
    // Its memseg list copies would stay until the group ends.
    if (this.processType === 'secondary') this.group.removeSecondaryFilesOf(process.pid);
    // An end the process chose (process.exit, the program's end, a signal): `mpbus ps` would
    // count it among the killed.
    retireCounters();
    for (const fd of this.locks.splice(0)) this.group.unlock(fd);
    this.group.unlock(this.membersFd);
    this.membersFd = -1;
    if (this.processType === 'primary') addon().releaseFcntlLocks(this.group.configPath);
    removeGroupFilesIfLast(this.group, this.log);
  }

  /**
   * @internal SIGINT/SIGTERM/SIGHUP/SIGUSR2 that mpbus acts on: closes within {@link SIGNAL_EXIT_MS} (a close
   * already under way, say the application's graceful one, is given the same deadline), then
   * ends the process as the signal means. A further signal meanwhile ends it at once.
   */
  endOnSignal(signal: NodeJS.Signals): void {
    const finish = (): void => {
      this.releaseForExit();
      exitAfterSignal(signal);
    };
    if (this.endingOnSignal) return finish();
    this.endingOnSignal = true;
    this.log.info({ signal }, 'closing on signal');
    ignoreClosingFailures(this.log);
    setTimeout(finish, SIGNAL_EXIT_MS);
    void this.closeFor('signal', SIGNAL_GRACE_MS).then(finish, finish);
  }

  /**
   * Secondaries: notices when the primary's lock on `config` is gone, at once when its process
   * ends (where exits can be watched), else within {@link PRIMARY_WATCH_MS}.
   */
  private watchPrimary(): void {
    // (a C primary, testpmd say, writes no settings: its pid is that of its lock's holder)
    const primaryPid = this.group.readSettings()?.primaryPid ?? this.group.primaryLockHolder();
    this.watchedPrimaryPid = primaryPid;
    const check = (): void => void this.checkPrimary(false);
    const exits = primaryPid !== undefined ? ProcessExits.shared() : undefined;
    // its lock is released before its exit is reported, so the check then sees it gone
    this.unwatchPrimaryExit = exits?.watch(primaryPid!, check);
    this.primaryWatch = setInterval(check, exits ? WATCHED_PRIMARY_WATCH_MS : PRIMARY_WATCH_MS);
    this.primaryWatch.unref();
  }

  /** Secondaries: the primary's lock on `config` is gone, and it holds no mpbus primary's lock either (it died). */
  private primaryGone(): boolean {
    const pid = this.group.readSettings()?.primaryPid ?? this.group.primaryLockHolder();
    return !this.group.primaryAlive() && !this.primaryLostItsDpdkLock(pid);
  }

  /**
   * Secondaries: acts on the primary's loss when its lock on `config` is gone or, with
   * `leaving`, as soon as it has begun to close (it says so before its actors stop). True when
   * the loss is known (now or before).
   */
  private checkPrimary(leaving: boolean): boolean {
    if (this.lostPrimary) return true;
    if (this.closing || this.primaryWatch === undefined) return false;
    const pid = this.watchedPrimaryPid;
    const alive = this.group.primaryAlive() || this.primaryLostItsDpdkLock(pid);
    if (alive && !leaving) return false;
    // A primary that closes cleanly says so first (before its actors stop, and before it lets go of its lock).
    const left = pid !== undefined && this.group.primaryLeftCleanly(pid);
    if (alive && !left) return false;
    this.stopWatchingPrimary();
    this.onPrimaryLost(pid, left ? 'left' : 'died');
    return true;
  }

  /**
   * DPDK's primary lock is a POSIX record lock on `config`, which the kernel drops when the
   * primary closes any descriptor of that file (a `readFileSync` of it, say): its secondaries then
   * took a live primary for dead and exited. The mpbus primary also holds a flock on its
   * `mpbus_primary.lock` for its whole life, which no such close drops and its death does: while
   * it holds that, it lives (a C primary has none: its `config` lock alone says). Looked at only
   * once the `config` lock is gone.
   */
  private primaryLostItsDpdkLock(pid: number | undefined): boolean {
    if (pid === undefined || !lockHolders(this.group.primaryLockFile, 'FLOCK').includes(pid)) return false;
    if (!this.warnedPrimaryLock) {
      this.warnedPrimaryLock = true;
      this.log.warn(
        { primaryPid: pid },
        "the primary lost DPDK's lock on its runtime dir's config file (a descriptor of that file was closed in the primary: never open it there), but it lives: it is not taken for dead; new secondaries cannot join until it starts again",
      );
    }
    return true;
  }

  /**
   * @internal Secondaries: whether the primary is gone (or, with `leaving`, has begun to close),
   * looked at now rather than at the watch's next look. An actor system asks when an actor it
   * asked went away or answered that its system closed: when that is the primary going, the
   * loss is acted on at once (`primaryLost$` emits, the `onPrimaryLost` policy runs) and true is
   * returned, so the ask fails as the primary's loss (`PRIMARY_LOST`), not as a missing actor.
   * Costs two system calls; only failures call it.
   */
  primaryGoneNow(leaving: boolean): boolean {
    return this.processType === 'secondary' && this.checkPrimary(leaving);
  }

  /**
   * @internal Primaries: says that this primary is leaving the group, before its actors stop
   * (an actor system that will close this runtime calls it as its close begins), so secondaries
   * whose asks then fail know why ({@link primaryGoneNow}).
   */
  announceLeaving(): void {
    if (this.processType === 'primary' && !this.left) this.group.markPrimaryLeft(process.pid);
  }

  private stopWatchingPrimary(): void {
    clearInterval(this.primaryWatch);
    this.primaryWatch = undefined;
    this.unwatchPrimaryExit?.();
    this.unwatchPrimaryExit = undefined;
  }

  private onPrimaryLost(pid: number | undefined, reason: PrimaryLost['reason']): void {
    this.lostPrimary = true;
    const policy = this.options.onPrimaryLost;
    const what = policy === 'exit' ? 'closing and exiting' : policy === 'close' ? 'closing' : 'left to the application';
    const message = `the primary of group '${this.filePrefix}' ${reason === 'died' ? 'died' : 'closed'}: ${what}`;
    if (reason === 'died') this.log.warn({ primaryPid: pid, policy }, message);
    else this.log.info({ primaryPid: pid, policy }, message);
    this.primaryLost.next({ pid, reason, policy });
    this.primaryLost.complete();
    if (policy === 'ignore') return;
    if (policy === 'exit') ignoreClosingFailures(this.log);
    const exit = (): void => {
      if (policy !== 'exit') return;
      this.releaseForExit();
      const code = reason === 'died' ? PRIMARY_LOST_EXIT_CODE : 0;
      process.exit(typeof process.exitCode === 'number' && process.exitCode !== 0 ? process.exitCode : code);
    };
    if (policy === 'exit') setTimeout(exit, PRIMARY_LOST_EXIT_MS);
    void this.closeFor('primary-lost', 0).then(exit, exit);
  }

  /**
   * A close hook's result, waited for until `deadline` at most: a hook that awaits this very
   * close (or hangs) then stops holding the group, and DPDK is cleaned up all the same.
   */
  private async withinDeadline(result: void | Promise<void>, deadline: number): Promise<void> {
    if (!result) return;
    let timer: NodeJS.Timeout | undefined;
    const overrun = new Promise<void>((resolve) => {
      timer = setTimeout(
        () => {
          this.log.warn('a close hook did not finish by the close deadline: leaving the group without it');
          resolve();
        },
        Math.max(0, deadline - Date.now()),
      );
    });
    try {
      await Promise.race([result, overrun]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async doClose(context: CloseContext): Promise<void> {
    this.stopWatchingPrimary();
    // Before the lock on `config` goes and before the close hooks stop the actors: secondaries
    // then know the primary left rather than died, and why its actors stopped answering.
    this.announceLeaving();
    for (const hook of [...this.closeHooks].reverse()) {
      try {
        await this.withinDeadline(hook(context), context.deadline + HOOK_OVERRUN_MS);
      } catch (err) {
        this.log.warn({ err }, 'close hook failed');
      }
    }
    retireCounters();
    // The last process: a lock of the shared memory config still held belongs to a dead process,
    // and rte_eal_cleanup would wait for it for good (see clearStaleLocks in native/eal.cc). Not
    // last while an mpbus secondary still holds the members lock: its own rte_eal_cleanup removes
    // its mp socket first and then write-locks the hotplug lock to detach its memory. Cleared
    // under it, its unlock left the word at -2 and this close spun in rte_memseg_walk for good
    // (a secondary closing as its primary closed: 5 of 54 runs).
    if (this.processType === 'primary' && this.group.liveSecondaryPids().length === 0 && !this.group.otherMemberAlive()) {
      const cleared = addon().clearStaleLocks(this.group.configPath);
      if (cleared.length > 0)
        this.log.warn({ cleared }, "cleared locks of the group's shared memory that dead processes left held (killed while they started or closed)");
    }
    try {
      // A secondary whose primary died, and on whose prefix another DPDK primary started since:
      // that one re-created the memory config under this process, and DPDK's cleanup would read
      // garbage there (a divide error killed the process, which then removed nothing).
      if (this.processType === 'secondary' && this.lostPrimary && !addon().memConfigIntact(this.group.configPath)) {
        this.log.warn(
          "the group's shared memory config was re-created by another primary since this secondary's primary died: DPDK's cleanup is skipped (end this process; its memory goes with it)",
        );
      } else await addon().ealCleanup();
    } finally {
      // rte_eal_cleanup keeps the primary's lock on `config`: while this process lives, the
      // group would look as if its primary were alive, and its files would never be removed.
      if (this.processType === 'primary') addon().releaseFcntlLocks(this.group.configPath);
      for (const fd of this.locks.splice(0)) this.group.unlock(fd);
      this.group.unlock(this.membersFd);
      this.membersFd = -1;
      removeGroupFilesIfLast(this.group, this.log);
      this.left = true;
      process.off('exit', this.onExit);
      this.signalCleanup?.();
      this.primaryLost.complete();
      this.log.info('left group');
    }
  }
}

/**
 * Runs `fn` only while no mpbus process is in the group (`members` taken exclusively) and none
 * is being elected primary (a candidate holds `primary` before it becomes a member): removing
 * the runtime dir then cannot pull a lock file from under a process that is starting.
 */
function whenGroupIsEmpty(group: GroupFiles, fn: () => void): void {
  if (!existsSync(group.runtimeDir)) return;
  const members = group.tryLock('members', true);
  const primary = members >= 0 ? group.tryLock('primary', true) : -1;
  try {
    if (primary >= 0) fn();
  } finally {
    group.unlock(primary);
    group.unlock(members);
  }
}

/**
 * Removes the group's hugepage files and runtime dir when no process of the group is alive any
 * more (no mpbus process, no DPDK primary holding `config`, no DPDK secondary with a live
 * `mp_socket_<pid>`). DPDK's own cleanup leaves them, and they hold hugepages. When another
 * process is starting, it is left to that process (a new primary clears leftovers itself).
 */
function removeGroupFilesIfLast(group: GroupFiles, log: Logger): void {
  awaitEndingMembers(group, log);
  whenGroupIsEmpty(group, () => {
    if (!group.primaryAlive() && group.liveSecondaryPids().length === 0) group.removeLeftovers(false);
    // DPDK processes that are not mpbus's live on (a C primary): theirs stays, mpbus's goes.
    else group.removeOwnFiles();
  });
}

/**
 * Waits, blocking, while a process of the group is being killed (at most {@link ENDING_WAIT_MS}):
 * until the kernel has torn it down it holds its locks and its rte_mp socket, so the check that
 * follows would see the group in use and keep its files, and the killed process removes nothing.
 * A pool killing a child that did not stop, or an application killing a worker, and then leaving
 * at once (a primary busy past its signal deadline does both in one turn) left the files.
 */
function awaitEndingMembers(group: GroupFiles, log: Logger): void {
  const until = Date.now() + ENDING_WAIT_MS;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  let ending = group.endingPids();
  while (ending.length > 0 && Date.now() < until) {
    Atomics.wait(pause, 0, 0, 2);
    ending = group.endingPids();
  }
  if (ending.length > 0)
    log.warn({ pids: ending }, 'killed processes of the group had not ended: their files are left to a later process of the group, or mpbus clean');
}

/**
 * After a start refused before DPDK ran: the lock files this process made must not linger,
 * beside a live C primary's files either.
 */
function removeOwnLockDirIfAlone(group: GroupFiles): void {
  whenGroupIsEmpty(group, () => (group.primaryAlive() ? group.removeOwnFiles() : group.removeIfOnlyLocks()));
}

/** Why a secondary's start failed when its primary ended (closed or died) while DPDK attached it, and the fix. */
function primaryEndedWhileAttaching(auto: boolean): string {
  return auto
    ? "the primary closed or died while this process attached to it (procType 'auto' found it running), and DPDK cannot start twice in one process: run this process again; with procType 'auto' it becomes the primary if none runs."
    : 'the primary closed or died while this secondary attached: start a primary again (it clears what a dead one left), then this secondary.';
}

/** [code, fix] for an rte_eal_init failure, from what DPDK logged. */
function diagnoseInitFailure(
  dpdkText: string,
  role: string,
  group: GroupFiles,
  opts: Pick<RuntimeOptions, 'singleFileSegments' | 'legacyMem'>,
  askedMb: number | undefined,
  auto: boolean,
): [string, string] {
  // Whatever DPDK failed at then (its memory may be gone too: a dead group's hugepage files are
  // deleted by the next DPDK primary to start on the machine), the cause is the primary's end.
  if (role === 'secondary' && !group.primaryAlive()) {
    return [ErrorCodes.primaryDead, primaryEndedWhileAttaching(auto)];
  }
  if (/Not enough memory|Cannot init memory|Cannot allocate|ENOMEM|No free .*hugepages|Could not map memory/i.test(dpdkText)) {
    // A file kept open per hugepage mapped: a secondary opens every file of the group, a primary
    // one per page it takes (legacyMem maps every free page at init, the others what was asked).
    const pages =
      role === 'secondary'
        ? group.hugepageFiles().length
        : opts.singleFileSegments
          ? 0
          : opts.legacyMem
            ? hugepageInfo().free
            : Math.ceil(((askedMb ?? 0) * 1024) / hugepageInfo().sizeKb);
    // (more pages than the machine has: those are short, whatever the files)
    const files = pages > 0 && pages <= hugepageInfo().total ? openFilesNote(pages) : '';
    if (files !== '') return [ErrorCodes.openFilesLimit, `${files}: ${OPEN_FILES_FIX}.`];
  }
  if (/base-virtaddr|Cannot reserve .* bytes at/.test(dpdkText)) {
    if (role === 'secondary' && group.primaryAlive() && !group.mpbusPrimaryAlive()) {
      // A C primary chose the addresses, by default DPDK's 0x100000000, where V8's heap often is.
      return [
        ErrorCodes.addressSpaceTaken,
        "this process already uses part of the address range the group's memory lives at, which the group's primary (not an mpbus process: a C DPDK program) chose: restart that program with the EAL flag --base-virtaddr=0x600000000000 (any address far from Node's heap), then start this secondary again.",
      ];
    }
    return [
      ErrorCodes.addressSpaceTaken,
      "this process already uses part of the address range the group's memory lives at: restart the primary with another baseVirtaddr (default 0x600000000000), e.g. 0x700000000000.",
    ];
  }
  if (/Invalid 'command line' arguments|invalid option|unrecognized option/.test(dpdkText)) {
    return [
      ErrorCodes.invalidEalArgs,
      'DPDK refused the command line built from the options: check extraEalArgs, vdevs and pciAllowList (DPDK said why below).',
    ];
  }
  if (/failed to create .*thread|Cannot create thread|pthread_create/i.test(dpdkText) && /Resource temporarily unavailable|EAGAIN/.test(dpdkText)) {
    const note = taskLimitNote();
    return [
      ErrorCodes.threadLimit,
      `its threads could not be started: ${note === '' ? 'this process may start no more (its limit of tasks: a pids cgroup, or ulimit -u)' : note}; each mpbus process takes about 16 threads (Node's and DPDK's): raise the limit (docker --pids-limit, a pod's pid limit, ulimit -u), or run fewer processes.`,
    ];
  }
  if (/Not enough memory|Cannot init memory|Cannot allocate|ENOMEM|No free .*hugepages/i.test(dpdkText)) {
    // (what the cgroup, or the mount, shows in use then includes what the failed init took and
    // has not yet given back: the limits alone say whether what was asked could ever fit)
    const limit = hugetlbLimit();
    if (limit !== undefined && askedMb !== undefined && askedMb * 2 ** 20 >= limit.limit) {
      // the machine may have the pages: the kernel refused them past the cgroup's limit
      return [
        ErrorCodes.hugepagesShort,
        `this process's hugetlb cgroup allows ${mib(limit.limit)} of hugepages, and ${askedMb} MB were asked: lower memoryMb / socketMemMb, or raise the limit (a Kubernetes pod's hugepages-2Mi resource, the container's hugetlb limit).`,
      ];
    }
    const hugeDir = group.activeHugeDir();
    const room = hugetlbfsRoom(hugeDir);
    if (room !== undefined && askedMb !== undefined && askedMb * 2 ** 20 > room.size) {
      // the machine may have the pages: the files DPDK makes for them cannot pass the mount's size
      return [
        ErrorCodes.hugepagesShort,
        `${room.what} holds ${mib(room.size)} (its size= option), and ${askedMb} MB were asked: lower memoryMb / socketMemMb, or mount it larger (a container's hugepages volume).`,
      ];
    }
    const bounds = hugepageBounds(0, hugeDir).note;
    return [
      ErrorCodes.hugepagesShort,
      `not enough free hugepage memory: lower memoryMb / socketMemMb, stop other DPDK groups, or reserve more hugepages (echo ${hugepagesFor(askedMb)} > /proc/sys/vm/nr_hugepages as root; ${hugepageSummary()}${bounds === '' ? '' : `; ${bounds}`}).`,
    ];
  }
  if (/another primary process running|Cannot create lock/.test(dpdkText)) {
    return [
      ErrorCodes.primaryExists,
      "a DPDK primary (maybe not mpbus) holds the group's config: start this process as a secondary, or use another filePrefix.",
    ];
  }
  if (/Permission denied|EACCES|EPERM/.test(dpdkText)) {
    return [ErrorCodes.permissionDenied, `permission denied: run as root, or give this user write access to ${group.runtimeDir} and the hugetlbfs mount.`];
  }
  const tailq = /Cannot initialize tailq: (\S+)/.exec(dpdkText);
  if (tailq) {
    return [
      ErrorCodes.ealInitFailed,
      `this process loads a DPDK library whose shared list ${tailq[1]} the group's primary never registered (a secondary may only use libraries its primary loaded): load fewer here (dpdkLibraries), or start the primary with that library (mpbus: dpdkLibraries; C: link it).`,
    ];
  }
  return [ErrorCodes.ealInitFailed, 'rte_eal_init failed; DPDK said why below (set logLevel to see more).'];
}

/**
 * A hugepage count to reserve: what is in use now and `askedMb` more; when no amount was asked
 * (DPDK takes what it needs as it goes), twice what is reserved, at least 2048.
 */
function hugepagesFor(askedMb: number | undefined): number {
  const { total, free, sizeKb } = hugepageInfo();
  if (askedMb === undefined || !(sizeKb > 0)) return Math.max(2048, total * 2);
  return total - free + Math.ceil((askedMb * 1024) / sizeKb) + 64; // (64 for other groups' growth and DPDK's own)
}

function hugepageSummary(): string {
  const { total, free } = hugepageInfo();
  return `HugePages_Total ${total}, HugePages_Free ${free}`;
}

/** The groups with a live primary on this machine, for NO_PRIMARY: the one meant may have another name. */
function otherLiveGroups(): string {
  const alive = surveyGroups()
    .filter((g) => g.state === 'alive')
    .map((g) => `'${g.prefix}'`);
  if (alive.length === 0) return '';
  return `; the groups with a live primary here are ${alive.join(', ')} (a C DPDK program's is 'rte' unless it was given --file-prefix): give filePrefix the one to join`;
}

/**
 * A start in a worker thread. Signals reach only the main thread, so a worker's runtime could
 * not close on Ctrl-C or SIGTERM: a primary started in a worker left its runtime dir and all its
 * hugepage files behind on Ctrl-C, and so did `worker.terminate()`. And the EAL is once per
 * process, while each thread has its own copy of mpbus's modules: a second thread's start was
 * taken for another process (`NO_PRIMARY`).
 */
function workerThreadStart(): MpBusError {
  return new MpBusError(
    ErrorCodes.mainThreadOnly,
    "Runtime.start was called in a worker thread: mpbus's runtime runs on the process's main thread only (SIGINT and SIGTERM reach only that thread, so a worker's runtime could not clean up on them, and DPDK's EAL is once per process). Start it on the main thread and pass work to worker threads by postMessage, or launch() worker processes; a test runner must run such tests in processes (vitest: pool 'forks'). An ActorSystem within one thread (new ActorSystem()) needs no runtime and works in any thread.",
  );
}
