/**
 * Typed loader of the native addon (`build/Release/mpbus.node`). No policy lives here: options
 * are validated by the callers in src/runtime, src/bus and src/actors before any native call.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MpBusError, ErrorCodes } from '../errors.js';
import { bundledError, mpbusCommand, packageRoot } from '../package-root.js';

/** Functions of native/eal.cc. */
export interface EalBinding {
  ealInit(args: string[], echoLevel: number): Promise<{ lcoreId: number; processType: 'primary' | 'secondary' }>;
  ealCleanup(): Promise<void>;
  /** Primary, no other process of the group alive: clears the memory config's locks that dead processes left held; which (and their values). */
  clearStaleLocks(configPath: string): Array<{ lock: string; value: number }>;
  /** Whether this process's mapping of the group's memory config still holds DPDK's magic and version (another primary may have re-created it). */
  memConfigIntact(configPath: string): boolean;
  primaryAlive(configPath: string): boolean;
  dpdkVersion(): string;
  lcoreId(): number;
  recentDpdkLog(lines?: number): string;
  setLogEchoLevel(level: number): void;
  /** sched_setaffinity of this thread, or of every thread of the process; returns how many threads were set. */
  setCpuAffinity(cpus: number[], wholeProcess: boolean): number;
  /** The errno name of get_mempolicy(2) when this process may not call it (a container's seccomp profile), else undefined. */
  memPolicyDenied(): string | undefined;
  readonly maxLcore: number;
}

/** Functions of native/fs_lock.cc. */
export interface FsLockBinding {
  /** Returns the locked fd, or -1 when another process holds the lock (and `wait` is false). */
  flockOpen(path: string, exclusive: boolean, wait: boolean): number;
  flockClose(fd: number): void;
  /** Pid of a process holding a POSIX lock on the file (a DPDK primary on its `config`), 0 when none. */
  fcntlLockHolder(path: string): number;
  /** Drops this process's POSIX locks on the file (a failed primary's lock on `config`). */
  releaseFcntlLocks(path: string): void;
  /** Drops this process's flock(2) locks on these directories; returns how many it dropped. */
  unlockDirs(paths: string[]): number;
}

/** Functions of native/proc_exits.cc (one watcher per Node environment). */
export interface ProcExitsBinding {
  /** Starts watching; throws ENOSYS/EPERM when the kernel has no pidfd_open (callers poll then). */
  procExitsOpen(onExit: (pid: number) => void): void;
  /** True when the process is watched now, false when no such process is left. */
  procExitsWatch(pid: number): boolean;
  procExitsUnwatch(pid: number): void;
}

/**
 * The constants the addon exports (`constants`, set in C++ by each facility's init): statuses,
 * bits and error codes are written once, in C++. TypeScript names them in src/native/*.ts as
 * literals (modules load without the addon: unit tests, a package not built yet), and checks
 * them against these once, when a facility first loads the addon (e.g. {@link mailboxNative}).
 */
export interface NativeConstants {
  /** Codes of the errors the addon throws on its own account (the others are errno names). */
  readonly errors: {
    readonly notReady: string;
    readonly notAttached: string;
    /** Another process is mid-way (creating the group's objects, reaping a slot): try again from a timer. */
    readonly retryLater: string;
    readonly settingsMismatch: string;
    readonly notInPool: string;
    /** The process may start no more threads (its limit of tasks: a pids cgroup, ulimit -u). */
    readonly threadLimit: string;
  };
  /** native/mbx.h */
  readonly mailbox: {
    /** What mbxSend answers (mbxSendMany: the negated status when nothing was sent). */
    readonly send: {
      readonly ok: number;
      readonly mailboxFull: number;
      readonly inboxFull: number;
      readonly noBuffers: number;
      readonly peerGone: number;
      readonly mailboxClosed: number;
      readonly heapShort: number;
    };
    /** Why a received descriptor was refused (the reason in a drained row's flags). */
    readonly bad: {
      readonly outOfRange: number;
      readonly misaligned: number;
      readonly notInFlight: number;
      readonly magic: number;
      readonly version: number;
      readonly length: number;
      readonly codec: number;
    };
    /**
     * One drained descriptor: `words` words [mailbox id, payload offset (or index in
     * mbxTakeLarge()), length, flags]; flags = codec (`codecMask`) | `large` | reason <<
     * `badShift` | sender slot << `senderShift` (reason and slot: `byteMask` once shifted down).
     */
    readonly row: {
      /** Rows one drain writes at most (the output array holds `burst * words` words). */
      readonly burst: number;
      readonly words: number;
      readonly codecMask: number;
      readonly large: number;
      readonly badShift: number;
      readonly senderShift: number;
      readonly byteMask: number;
    };
    /** A message's codec, in its buffer header and its drained row. */
    readonly codec: { readonly raw: number; readonly msgpack: number };
  };
}

export interface Addon extends EalBinding, FsLockBinding, ProcExitsBinding {
  setErrorClass(ctor: new (code: string, message: string) => Error): void;
  readonly constants: NativeConstants;
}

let loaded: Addon | undefined;

/**
 * Why the addon at `path` is missing and how to build it, `command` running mpbus's bin. npm's
 * install hook builds it only when DPDK's development files and a compiler were there; pnpm 10
 * runs no dependency's install script it was not told to allow, and Yarn none while its
 * `enableScripts` is false (the default of Yarn 4.18).
 */
export function addonMissingMessage(path: string, command: string): string {
  const yarn = command.startsWith('yarn');
  const why = path.includes('/node_modules/.pnpm/')
    ? ' (a pnpm install: pnpm 10 and later run no install script of a dependency they were not told to allow)'
    : yarn
      ? " (a Yarn install: Yarn runs no dependency's build script while its setting enableScripts is false)"
      : '';
  const rebuild = yarn ? '' : ', or, with those installed, `npm rebuild mpbus`';
  return `mpbus's native addon is not built (${path})${why}: run \`${command} setup\` (installs DPDK 22.11's development files, g++, make and python3, reserves hugepages, then builds the addon)${rebuild}`;
}

/** Loads the addon once and hands it the MpBusError class, so C++ throws typed errors. */
export function addon(): Addon {
  if (loaded) return loaded;
  const path = join(packageRoot(), 'build', 'Release', 'mpbus.node');
  if (!existsSync(path)) {
    throw new MpBusError(ErrorCodes.addonMissing, addonMissingMessage(path, mpbusCommand()));
  }
  let binding: Addon;
  try {
    binding = createRequire(import.meta.url)(path) as Addon;
  } catch (err) {
    // The file is there, so the require that cannot find it is not Node's: webpack puts its own
    // in place of createRequire's, and fails so when it took mpbus into a bundle.
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') throw bundledError(`loads its native addon (${path}) through a require that cannot find that file, though it is there`);
    throw err;
  }
  binding.setErrorClass(MpBusError);
  loaded = binding;
  return binding;
}
