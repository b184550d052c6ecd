/**
 * The files of one process group on disk, and the liveness-safe locks mpbus keeps there.
 *
 * DPDK keeps a group's state in its runtime dir (`/var/run/dpdk/<prefix>/`) and its memory in
 * hugepage files (`/dev/hugepages/<prefix>map_*`); `rte_eal_cleanup` removes neither. mpbus adds
 * flock(2) files beside DPDK's, which the kernel releases when a process dies:
 * - `mpbus_primary.lock`: held exclusively by the mpbus primary for its whole life;
 * - `mpbus_members.lock`: held shared by every mpbus process; whoever can take it exclusively
 *   knows no other mpbus process of the group is alive;
 * - `mpbus_lcore_<id>.lock`: held by the process that owns lcore `<id>`;
 * - `mpbus_settings.json`: the primary's settings, checked by secondaries before they attach;
 * - `mpbus_primary_left_<pid>`: written by a primary that closes cleanly, before it lets go of
 *   DPDK's lock on `config`, so secondaries can tell a primary that left from one that died;
 * - `mpbus_intr_end_<pid>`: the interrupt relay's last seq (src/interrupts/relay-protocol.ts).
 */
import { filePrefix } from '../validation.js';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
  renameSync,
  accessSync,
  constants,
  statfsSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { addon } from '../native/addon.js';
import { COUNTERS_FILE } from './counters-layout.js';

/** Prefix of the file a cleanly closing primary leaves (followed by its pid). */
const PRIMARY_LEFT = 'mpbus_primary_left_';

/** Settings a secondary must share with its primary. */
export interface GroupSettings {
  mpbusVersion: string;
  dpdkVersion: string;
  legacyMem: boolean;
  singleFileSegments: boolean;
  /** The primary's option hugeDir (its real path), absent when DPDK chose the mounts. */
  hugeDir?: string | undefined;
  primaryPid: number;
  /** The primary's PID namespace (`/proc/self/ns/pid`, `pid:[inode]`); absent in older settings. */
  pidNamespace?: string | undefined;
}

/**
 * This process's PID namespace (`pid:[inode]`), or undefined when it cannot be read. The group's
 * processes know one another by pid (liveness, reaping, death watch), which only holds within
 * one PID namespace.
 */
export function ownPidNamespace(): string | undefined {
  return pidNamespaceOf('self');
}

/**
 * The PID namespace of a group's live mpbus primary, as its `settings` record it, when they are
 * that primary's: `holder`, the pid of the lock holder on `config` as this process sees it, is in
 * that namespace (settings that an mpbus primary killed earlier left under a C primary are not),
 * or undefined, when this process cannot see it (it runs in a namespace this one cannot see into).
 */
export function livePrimaryPidNamespace(settings: GroupSettings | undefined, holder: number | undefined): string | undefined {
  if (settings?.pidNamespace === undefined) return undefined;
  if (holder === undefined) return settings.pidNamespace;
  return pidNamespaceOf(holder) === settings.pidNamespace ? settings.pidNamespace : undefined;
}

/** The PID namespace of process `pid` as this one sees it, or undefined when it cannot be read. */
export function pidNamespaceOf(pid: number | 'self'): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
}

/** DPDK's runtime directory root: /var/run/dpdk as root, else $XDG_RUNTIME_DIR/dpdk or /tmp/dpdk. */
export function dpdkRuntimeRoot(): string {
  if (process.getuid?.() === 0) return '/var/run/dpdk';
  return join(process.env.XDG_RUNTIME_DIR ?? '/tmp', 'dpdk');
}

/** Mount points of hugetlbfs file systems, from /proc/mounts. */
export function hugetlbfsMounts(): string[] {
  try {
    return readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((line) => line.split(' '))
      .filter((f) => f[2] === 'hugetlbfs')
      .map((f) => f[1]!.replace(/\\040/g, ' '));
  } catch {
    return [];
  }
}

/** statfs's f_type of a hugetlbfs file system (linux/magic.h). */
const HUGETLBFS_MAGIC = 0x958458f6;

/** Whether `dir` is a directory on hugetlbfs (a mount or a directory within one). */
export function onHugetlbfs(dir: string): boolean {
  try {
    return statSync(dir).isDirectory() && statfsSync(dir).type === HUGETLBFS_MAGIC;
  } catch {
    return false;
  }
}

/** SIGKILL's bit in /proc's pending-signal masks (signal n is bit n - 1). */
const SIGKILL_BIT = 1 << 8;

/**
 * What /proc/<pid>/status says of a process that has not ended: `ending` while it is being
 * killed (SIGKILL pending, or its main thread a zombie while other threads still run). A killed
 * child its parent has not reaped yet (a zombie) still has a status: it has ended, and holds
 * nothing of the group any more, once its zombie main thread is its last thread; until then
 * (milliseconds; tens for a process with much memory) the other threads hold its files: locks,
 * sockets, hugepage mappings. Undefined when it has ended or cannot be read.
 */
function processState(pid: number): { ending: boolean } | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const field = (name: string): string => new RegExp(`^${name}:\\s+(\\S+)`, 'm').exec(status)?.[1] ?? '';
  if (field('State') === 'Z') return field('Threads') === '1' ? undefined : { ending: true };
  const killPending = (mask: string): boolean => (parseInt(mask.slice(-4), 16) & SIGKILL_BIT) !== 0;
  return { ending: killPending(field('ShdPnd')) || killPending(field('SigPnd')) };
}

/**
 * True while a process with this pid exists (EPERM: it exists but belongs to another user): one
 * `kill(pid, 0)`, cheap enough for every call of a hot path; an ended child its parent has not
 * reaped yet (a zombie) still exists here, see {@link pidAlive}.
 */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True while a process with this pid exists and has not ended (a zombie has). */
export function pidAlive(pid: number): boolean {
  return pidExists(pid) && processState(pid) !== undefined;
}

/**
 * When process `pid` started, in ms since the epoch (within ~20 ms), from its start in clock
 * ticks since boot (`/proc/<pid>/stat`, field 22; Linux's USER_HZ is 100) and the boot time
 * (`/proc/uptime`); undefined when it is not there.
 */
export function processStartMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // (the command name, in parentheses, may hold spaces and parentheses: fields follow the last ')')
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    const uptimeS = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    if (!Number.isFinite(ticks) || !Number.isFinite(uptimeS)) return undefined;
    return Date.now() - uptimeS * 1000 + ticks * 10;
  } catch {
    return undefined;
  }
}

/** True while process `pid` is being killed: see {@link processState}. */
export function pidEnding(pid: number): boolean {
  return processState(pid)?.ending ?? false;
}

/** How much later than a secondary's socket file its pid's process may seem to start and still be the one that made it. */
const PID_REUSE_MARGIN_MS = 1000;

export class GroupFiles {
  readonly runtimeDir: string;

  /**
   * @param hugeDir this process's option hugeDir, where its group's hugepage files are besides
   *   what the primary's settings say
   */
  constructor(
    readonly prefix: string,
    readonly hugeDir?: string,
  ) {
    // (a path here would make every read and removal below reach outside the group's own files)
    filePrefix(prefix, 'a group prefix');
    this.runtimeDir = join(dpdkRuntimeRoot(), prefix);
  }

  get configPath(): string {
    return join(this.runtimeDir, 'config');
  }

  private lockPath(name: string): string {
    return join(this.runtimeDir, `mpbus_${name}.lock`);
  }

  /** The file the mpbus primary holds a flock on for its whole life (see the list above). */
  get primaryLockFile(): string {
    return this.lockPath('primary');
  }

  ensureDir(): void {
    mkdirSync(this.runtimeDir, { recursive: true, mode: 0o700 });
  }

  /**
   * Why this user cannot write (or create) the runtime dir: the first directory on its way that
   * exists, and the error code of writing there (`EACCES`; `EROFS` on a read-only filesystem, a
   * container's read-only root); undefined when it can.
   */
  writeBlocker(): { dir: string; code: string } | undefined {
    let dir = this.runtimeDir;
    while (!existsSync(dir)) dir = join(dir, '..');
    try {
      accessSync(dir, constants.W_OK);
      return undefined;
    } catch (err) {
      return { dir, code: (err as NodeJS.ErrnoException).code ?? 'EACCES' };
    }
  }

  /** True while a DPDK primary of this group (mpbus or C) lives: it holds a lock on `config`. */
  primaryAlive(): boolean {
    return existsSync(this.configPath) && addon().primaryAlive(this.configPath);
  }

  /**
   * Pid of the live primary of this group, mpbus or C (the holder of its lock on `config`), or
   * undefined when none holds it or its pid cannot be seen (another pid namespace).
   */
  primaryLockHolder(): number | undefined {
    const pid = existsSync(this.configPath) ? addon().fcntlLockHolder(this.configPath) : 0;
    return pid > 0 ? pid : undefined;
  }

  /** Tries to take a lock; returns the fd or -1 when another process holds it. */
  tryLock(name: string, exclusive: boolean): number {
    for (let attempt = 0; ; attempt++) {
      this.ensureDir();
      try {
        return addon().flockOpen(this.lockPath(name), exclusive, false);
      } catch (err) {
        // the last process of the group removed the dir between mkdir and open: make it again
        if ((err as { code?: string }).code !== 'ENOENT' || attempt >= 3) throw err;
      }
    }
  }

  unlock(fd: number): void {
    if (fd >= 0) addon().flockClose(fd);
  }

  /** Takes the lowest free lcore ID (or the one asked for); -1 when it is taken. */
  lockLcore(id: number): number {
    return this.tryLock(`lcore_${id}`, true);
  }

  /**
   * True when another mpbus process of this group lives: it holds the group's members lock
   * (read from the kernel's lock table) from before its DPDK init until its DPDK cleanup is done,
   * which its `mp_socket` file does not cover (DPDK removes that first in rte_eal_cleanup).
   */
  otherMemberAlive(): boolean {
    return lockHolders(this.lockPath('members'), 'FLOCK').some((pid) => pid !== process.pid && pidAlive(pid));
  }

  /**
   * Pids of DPDK secondaries (mpbus or not) that are alive, from their `mp_socket_<pid>_*` files.
   * A process with that pid that started after the file was made is another one (the pid was
   * reused after the secondary died without DPDK's cleanup, SIGKILLed say): its files would
   * otherwise keep a dead group from being removed, cleaned or founded again.
   */
  liveSecondaryPids(): number[] {
    const live: number[] = [];
    for (const [pid, madeAtMs] of this.secondarySockets()) {
      if (!pidAlive(pid)) continue;
      const startedAt = processStartMs(pid);
      // (a margin for the clocks' precision: a pid is not reused within a second)
      if (startedAt !== undefined && startedAt > madeAtMs + PID_REUSE_MARGIN_MS) continue;
      live.push(pid);
    }
    return live;
  }

  /** Pids of the `mp_socket_<pid>_*` files of DPDK secondaries, this process aside, alive or not. */
  private secondaryPids(): number[] {
    return [...this.secondarySockets().keys()];
  }

  /** The `mp_socket_<pid>_*` files of DPDK secondaries, this process aside: when the oldest of each pid's was made (ms since the epoch). */
  private secondarySockets(): Map<number, number> {
    const made = new Map<number, number>();
    if (!existsSync(this.runtimeDir)) return made;
    for (const f of readdirSync(this.runtimeDir)) {
      const m = /^mp_socket_(\d+)_/.exec(f);
      if (!m || Number(m[1]) === process.pid) continue;
      let at: number;
      try {
        const st = statSync(join(this.runtimeDir, f));
        at = Math.min(st.mtimeMs, st.ctimeMs);
      } catch {
        continue; // removed meanwhile
      }
      const pid = Number(m[1]);
      made.set(pid, Math.min(made.get(pid) ?? Infinity, at));
    }
    return made;
  }

  /**
   * Pids of the group's processes that are being killed ({@link pidEnding}): its DPDK
   * secondaries (from their `mp_socket_<pid>_*` files) and its primary, this process aside.
   */
  endingPids(): number[] {
    const primaryPid = this.readSettings()?.primaryPid;
    const pids = this.secondaryPids();
    if (primaryPid !== undefined && primaryPid !== process.pid && !pids.includes(primaryPid)) pids.push(primaryPid);
    return pids.filter(pidEnding);
  }

  /**
   * Removes what DPDK made for a secondary alone: its rte_mp socket files (`mp_socket_<pid>_*`)
   * and its own copies of the memseg lists (`fbarray_memseg-*_<pid>`). Only for a process about
   * to end without DPDK's cleanup.
   */
  removeSecondaryFilesOf(pid: number): void {
    const own = (f: string): boolean => f.startsWith(`mp_socket_${pid}_`) || (f.startsWith('fbarray_') && f.endsWith(`_${pid}`));
    try {
      for (const f of readdirSync(this.runtimeDir)) if (own(f)) rmSync(join(this.runtimeDir, f), { force: true });
    } catch {
      // the dir is gone already
    }
  }

  /** True when the group's live primary is an mpbus process (settings of an earlier mpbus primary do not describe a C primary). */
  mpbusPrimaryAlive(): boolean {
    const pid = this.readSettings()?.primaryPid;
    return typeof pid === 'number' && pidAlive(pid) && this.primaryAlive();
  }

  readSettings(): GroupSettings | undefined {
    try {
      return JSON.parse(readFileSync(join(this.runtimeDir, 'mpbus_settings.json'), 'utf8')) as GroupSettings;
    } catch {
      return undefined;
    }
  }

  writeSettings(settings: GroupSettings): void {
    this.ensureDir();
    const tmp = join(this.runtimeDir, `.mpbus_settings.${process.pid}`);
    writeFileSync(tmp, JSON.stringify(settings));
    renameSync(tmp, join(this.runtimeDir, 'mpbus_settings.json'));
  }

  /** Primary: records that it is leaving cleanly (see {@link primaryLeftCleanly}). */
  markPrimaryLeft(pid: number): void {
    try {
      writeFileSync(join(this.runtimeDir, `${PRIMARY_LEFT}${pid}`), '');
    } catch {
      // the dir is gone: no secondary is left to tell
    }
  }

  /** True when the primary with this pid closed cleanly (rather than died). */
  primaryLeftCleanly(pid: number): boolean {
    return existsSync(join(this.runtimeDir, `${PRIMARY_LEFT}${pid}`));
  }

  /**
   * Where this group's hugepage files may be: every hugetlbfs mount, and the group's hugeDir
   * (this process's option, and the primary's, from its settings, if that is on hugetlbfs).
   */
  hugepageDirs(): string[] {
    const given = [this.hugeDir, this.primarysHugeDir()];
    return [...new Set([...hugetlbfsMounts(), ...given.filter((d) => d !== undefined)])];
  }

  /** The hugeDir the group's settings name (its primary's, live or last known), when that is a directory on hugetlbfs. */
  primarysHugeDir(): string | undefined {
    const dir = this.readSettings()?.hugeDir;
    return typeof dir === 'string' && onHugetlbfs(dir) ? dir : undefined;
  }

  /**
   * The directory DPDK keeps this group's hugepage files in, when a hugeDir names it: this
   * process's option, or its live primary's; undefined: DPDK's choice among the mounts.
   */
  activeHugeDir(): string | undefined {
    if (this.hugeDir !== undefined) return this.hugeDir;
    const theirs = this.primarysHugeDir();
    return theirs !== undefined && this.primaryAlive() ? theirs : undefined;
  }

  /** Hugepage files of this group, in every hugetlbfs mount and its hugeDir. */
  hugepageFiles(): string[] {
    const files: string[] = [];
    for (const dir of this.hugepageDirs()) {
      try {
        for (const f of readdirSync(dir)) if (f.startsWith(`${this.prefix}map_`)) files.push(join(dir, f));
      } catch {
        // an unreadable mount is not ours to clean
      }
    }
    return files;
  }

  /**
   * Removes what DPDK leaves behind: hugepage files and the runtime dir. The caller must hold
   * `members` exclusively (no mpbus process alive) and have checked that no DPDK process is.
   * Lock files that are still open by the caller are removed too; their fds stay valid.
   */
  removeLeftovers(keepDir: boolean): void {
    for (const f of this.hugepageFiles()) rmSync(f, { force: true });
    if (!existsSync(this.runtimeDir)) return;
    if (keepDir) {
      for (const f of readdirSync(this.runtimeDir)) {
        if (!f.startsWith('mpbus_') || f === 'mpbus_settings.json' || f === COUNTERS_FILE || f.startsWith(PRIMARY_LEFT))
          rmSync(join(this.runtimeDir, f), { recursive: true, force: true });
      }
    } else {
      rmSync(this.runtimeDir, { recursive: true, force: true });
    }
  }

  /**
   * For a group whose DPDK processes outlive its last mpbus process (a C primary, C
   * secondaries): removes mpbus's own files from the runtime dir (`mpbus_*`: locks, counters,
   * settings) and the per-process files DPDK left of secondaries that are dead (`mp_socket_<pid>_*`,
   * `fbarray_*_<pid>`: a Node secondary that crashed), and keeps the rest, which is the live
   * processes'. The caller must hold `members` and `primary` exclusively (no mpbus process alive
   * or starting). Lock files it still holds are removed too; their fds stay valid.
   */
  removeOwnFiles(): void {
    let entries: string[];
    try {
      entries = readdirSync(this.runtimeDir);
    } catch {
      return; // the dir is gone already
    }
    const dead = new Set<number>();
    for (const f of entries) {
      const pid = /^mp_socket_(\d+)_/.exec(f)?.[1] ?? /^fbarray_.*_(\d+)$/.exec(f)?.[1];
      if (pid !== undefined && Number(pid) !== process.pid && !pidAlive(Number(pid))) dead.add(Number(pid));
    }
    for (const pid of dead) this.removeSecondaryFilesOf(pid);
    for (const f of entries) if (f.startsWith('mpbus_') || f.startsWith('.mpbus_settings.')) rmSync(join(this.runtimeDir, f), { force: true });
  }

  /**
   * Removes the runtime dir when it holds nothing but mpbus lock files, i.e. when only mpbus
   * created it (a start refused before DPDK ran). The caller must hold `members` exclusively.
   */
  removeIfOnlyLocks(): void {
    if (!existsSync(this.runtimeDir)) return;
    const entries = readdirSync(this.runtimeDir);
    if (entries.every((f) => f.startsWith('mpbus_') && f.endsWith('.lock'))) rmSync(this.runtimeDir, { recursive: true, force: true });
  }

  /** True when files of an earlier run of this group are on disk. */
  hasLeftovers(): boolean {
    return existsSync(this.configPath) || this.hugepageFiles().length > 0;
  }
}

/** Pids holding a lock of `kind` on `path`, from /proc/locks (matched by device and inode). */
export function lockHolders(path: string, kind: 'POSIX' | 'FLOCK'): number[] {
  let ino: number;
  let dev: number;
  try {
    ({ ino, dev } = statSync(path));
  } catch {
    return [];
  }
  const pids: number[] = [];
  let table = '';
  try {
    table = readFileSync('/proc/locks', 'utf8');
  } catch {
    return [];
  }
  for (const line of table.split('\n')) {
    // "22: POSIX  ADVISORY  WRITE 24935 fe:00:1491059 136 17543" (blocked waiters have "->")
    const f = line.trim().split(/\s+/);
    if (f[1] !== kind) continue;
    const [major, minor, inode] = (f[5] ?? '').split(':');
    if (Number(inode) !== ino || parseInt(major!, 16) !== Math.floor(dev / 256) % 4096 || parseInt(minor!, 16) !== dev % 256) continue;
    pids.push(Number(f[4]));
  }
  return pids;
}
