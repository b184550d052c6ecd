/**
 * Typed loader of the native addon (`build/Release/mpbus.node`). No policy lives here: options
 * are validated by the callers in src/runtime, src/bus and src/actors before any native call.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MpBusError, ErrorCodes } from '../errors.js';
import { packageRoot } from '../package-root.js';

/** Functions of native/eal.cc. */
export interface EalBinding {
  ealInit(args: string[], echoLevel: number): Promise<{ lcoreId: number; processType: 'primary' | 'secondary' }>;
  ealCleanup(): Promise<void>;
  primaryAlive(configPath: string): boolean;
  dpdkVersion(): string;
  lcoreId(): number;
  recentDpdkLog(lines?: number): string;
  setLogEchoLevel(level: number): void;
  readonly maxLcore: number;
}

/** Functions of native/fs_lock.cc. */
export interface FsLockBinding {
  /** Returns the locked fd, or -1 when another process holds the lock (and `wait` is false). */
  flockOpen(path: string, exclusive: boolean, wait: boolean): number;
  flockClose(fd: number): void;
  isFcntlLocked(path: string): boolean;
  /** Drops this process's POSIX locks on the file (a failed primary's lock on `config`). */
  releaseFcntlLocks(path: string): void;
  /** Drops this process's flock(2) locks on these directories; returns how many it dropped. */
  unlockDirs(paths: string[]): number;
}

export interface Addon extends EalBinding, FsLockBinding {
  setErrorClass(ctor: new (code: string, message: string) => Error): void;
}

let loaded: Addon | undefined;

/** Loads the addon once and hands it the MpBusError class, so C++ throws typed errors. */
export function addon(): Addon {
  if (loaded) return loaded;
  const path = join(packageRoot(), 'build', 'Release', 'mpbus.node');
  if (!existsSync(path)) {
    // npm's install hook builds it only when DPDK's development files and a compiler were there.
    throw new MpBusError(
      ErrorCodes.addonMissing,
      `mpbus's native addon is not built (${path}): run \`npx mpbus setup\` (installs DPDK 22.11's development files, g++, make and python3, reserves hugepages, then builds the addon), or, with those installed, \`npm rebuild mpbus\``,
    );
  }
  const require = createRequire(import.meta.url);
  const binding = require(path) as Addon;
  binding.setErrorClass(MpBusError);
  loaded = binding;
  return binding;
}
