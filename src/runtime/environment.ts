/** Checks of the machine made before DPDK is touched, so failures name their fix. */
import { accessSync, constants, readdirSync, readFileSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { MpBusError, ErrorCodes } from '../errors.js';
import { addon } from '../native/addon.js';
import { mpbusCommand } from '../package-root.js';
import { GroupFiles, hugetlbfsMounts } from './group.js';

export interface HugepageInfo {
  total: number;
  free: number;
  sizeKb: number;
}

export function hugepageInfo(): HugepageInfo {
  const text = readFileSync('/proc/meminfo', 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { total: field('HugePages_Total'), free: field('HugePages_Free'), sizeKb: field('Hugepagesize') };
}

/**
 * Bytes of hugepages the machine has reserved, of every size (/sys/kernel/mm/hugepages), or
 * undefined when that cannot be read. What a block in the group's hugepage heap can never exceed.
 */
export function hugepageBytes(): number | undefined {
  try {
    let bytes = 0;
    for (const dir of readdirSync('/sys/kernel/mm/hugepages')) {
      const kb = Number(/^hugepages-(\d+)kB$/.exec(dir)?.[1]);
      const pages = Number(readFileSync(`/sys/kernel/mm/hugepages/${dir}/nr_hugepages`, 'utf8'));
      if (kb > 0 && pages > 0) bytes += kb * 1024 * pages;
    }
    return bytes > 0 ? bytes : undefined;
  } catch {
    return undefined;
  }
}

/** `bytes` as MiB, one decimal: '40.0 MiB'. */
export function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** This process's open files now and its limit (the soft `ulimit -n`); undefined when unreadable. */
export function openFiles(): { open: number; limit: number } | undefined {
  try {
    const limit = Number(/^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1]);
    return Number.isFinite(limit) ? { open: readdirSync('/proc/self/fd').length, limit } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A clause saying that `pages` more hugepages would pass this process's open-files limit, or ''.
 * DPDK keeps a file open for each hugepage of the group's memory a process maps (without
 * `singleFileSegments`), in every process of the group; past the limit its allocation fails as if
 * the pages were short.
 */
export function openFilesNote(pages: number): string {
  const files = openFiles();
  if (files === undefined || files.open + pages < files.limit) return '';
  return `this process may open ${files.limit} files (ulimit -n) and has ${files.open} open now, and DPDK keeps one open for each hugepage it maps (${pages} more here)`;
}

/** What to do about {@link openFilesNote}. */
export const OPEN_FILES_FIX =
  'raise the open-files limit (ulimit -n, systemd LimitNOFILE=, docker --ulimit nofile=), or start the group with singleFileSegments: true';

/**
 * A hugetlbfs mount of the default page size mounted with a `size=` limit (a container's
 * hugepages volume may be: the files DPDK makes there cannot pass it), the smallest such: `what`
 * names it, with its size and free bytes; undefined when none is limited. With `hugeDir` (the
 * group's, {@link GroupFiles.activeHugeDir}), only the mount holding it counts: DPDK uses no other.
 */
export function hugetlbfsRoom(hugeDir?: string): { what: string; size: number; free: number } | undefined {
  const pageBytes = hugepageInfo().sizeKb * 1024;
  let smallest: { what: string; size: number; free: number } | undefined;
  for (const dir of hugeDir === undefined ? new Set(hugetlbfsMounts()) : [hugeDir]) {
    try {
      const fs = statfsSync(dir);
      // (no size= limit: the kernel reports no blocks)
      if (fs.bsize !== pageBytes || fs.blocks === 0) continue;
      const what = hugeDir === undefined ? `the hugetlbfs mount ${dir}` : `the hugetlbfs mount holding the hugeDir ${dir}`;
      if (smallest === undefined || fs.blocks * fs.bsize < smallest.size) smallest = { what, size: fs.blocks * fs.bsize, free: fs.bfree * fs.bsize };
    } catch {
      // not readable: not ours to judge
    }
  }
  return smallest;
}

/**
 * What bounds the hugepage memory this process may have, beyond the machine's free pages: `note`,
 * as clauses ('' when nothing does): a hugetlb cgroup's limit, a hugetlbfs mount's size, and,
 * when `bytes` more would pass it, the open-files limit (a file per page), then `filesShort`.
 */
export function hugepageBounds(bytes: number, hugeDir?: string): { note: string; filesShort: boolean } {
  const clauses: string[] = [];
  const limit = hugetlbLimit();
  if (limit !== undefined) clauses.push(`this process's hugetlb cgroup allows ${mib(limit.limit)}, ${mib(limit.usage)} of it in use`);
  const room = hugetlbfsRoom(hugeDir);
  if (room !== undefined) clauses.push(`${room.what} holds ${mib(room.size)} (its size= option), ${mib(room.free)} of it free`);
  const files = openFilesNote(Math.ceil(bytes / (hugepageInfo().sizeKb * 1024)));
  if (files !== '') clauses.push(files);
  return { note: clauses.join('; '), filesShort: files !== '' };
}

/** A cgroup's limit on this process (the lowest along its cgroup path), and what is charged to it now. */
export interface CgroupLimit {
  limit: number;
  usage: number;
  /** The cgroup's directory, whose limit this is. */
  dir: string;
}

/**
 * The hugetlb cgroup limit this process's hugepages of the default size are charged against (a
 * Kubernetes pod's `hugepages-2Mi`, `docker run` in such a cgroup), in bytes; undefined when
 * there is none or it cannot be read. DPDK maps a page past it and the kernel refuses it (a
 * SIGBUS, which DPDK's allocator catches): the heap's allocation fails as if the machine's pages
 * were gone.
 */
export function hugetlbLimit(): CgroupLimit | undefined {
  const { sizeKb } = hugepageInfo();
  const size = sizeKb >= 1024 * 1024 ? `${sizeKb / (1024 * 1024)}GB` : sizeKb >= 1024 ? `${sizeKb / 1024}MB` : `${sizeKb}KB`;
  return cgroupLimit('hugetlb', [`hugetlb.${size}.limit_in_bytes`, `hugetlb.${size}.usage_in_bytes`], [`hugetlb.${size}.max`, `hugetlb.${size}.current`]);
}

/**
 * The pids cgroup limit on this process's tasks (every thread counts: `docker --pids-limit`, a
 * pod's pid limit), and the tasks in it now; undefined when there is none or it cannot be read.
 */
export function taskLimit(): CgroupLimit | undefined {
  return cgroupLimit('pids', ['pids.max', 'pids.current'], ['pids.max', 'pids.current']);
}

/**
 * How many times a task (a thread, a process) could not be started for the pids cgroup's limit
 * (its pids.events 'max' count); undefined when there is no limit or it cannot be read.
 */
export function taskLimitHits(): number | undefined {
  const tasks = taskLimit();
  if (tasks === undefined) return undefined;
  try {
    return Number(/^max (\d+)/m.exec(readFileSync(`${tasks.dir}/pids.events`, 'utf8'))?.[1] ?? 0);
  } catch {
    return undefined;
  }
}

/** What a failure to start a thread or a process may owe to the pids cgroup: a clause, or ''. */
export function taskLimitNote(): string {
  const tasks = taskLimit();
  return tasks === undefined ? '' : `this process's pids cgroup allows ${tasks.limit} tasks (each thread is one), and ${tasks.usage} are in use`;
}

/**
 * A cgroup limit on this process, cgroup v1 (the hierarchy with `controller`, its files
 * `v1Files`: limit, usage) or v2 (`v2Files`): the lowest along the process's cgroup path, else
 * undefined.
 */
function cgroupLimit(controller: string, v1Files: [string, string], v2Files: [string, string]): CgroupLimit | undefined {
  try {
    // where each hierarchy is mounted: v1's with the controller among its options, v2's
    const mounts = readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .map((line) => line.split(' '))
      .filter(([, , type, options]) => type === 'cgroup2' || (type === 'cgroup' && options!.split(',').includes(controller)));
    let found: CgroupLimit | undefined;
    for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
      const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
      if (path === undefined) continue;
      const v1 = controllers!.split(',').includes(controller);
      if (!v1 && controllers !== '') continue;
      const [limitFile, usageFile] = v1 ? v1Files : v2Files;
      for (const [, root] of mounts.filter(([, , type]) => type === (v1 ? 'cgroup' : 'cgroup2'))) {
        // this cgroup and each above it (in a container's cgroup namespace the path is '/'; a
        // container's mount of its own cgroup at the root is found going up)
        for (let dir = path; ; dir = dir.slice(0, dir.lastIndexOf('/'))) {
          const at = `${root}${dir === '/' ? '' : dir}`;
          const limit = readNumber(`${at}/${limitFile}`);
          if (limit !== undefined && limit < 2 ** 62 && (found === undefined || limit < found.limit)) {
            found = { limit, usage: readNumber(`${at}/${usageFile}`) ?? 0, dir: at };
          }
          if (dir === '' || dir === '/') break;
        }
      }
    }
    return found;
  } catch {
    return undefined;
  }
}

/** A file's number, undefined when it cannot be read or says 'max'. */
function readNumber(file: string): number | undefined {
  try {
    const text = readFileSync(file, 'utf8').trim();
    const n = Number(text);
    return text !== '' && Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

// `npx mpbus setup` (`yarn mpbus setup` under Yarn) is the command that works for a user of the package (and in the checkout).
const reserveFix = (): string => `\`${mpbusCommand()} setup\`, or as root: echo 1024 > /proc/sys/vm/nr_hugepages`;
const mountFix = (): string => `\`${mpbusCommand()} setup\`, or as root: mkdir -p /dev/hugepages && mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages`;

/**
 * Throws a typed error naming the fix when hugepages, hugetlbfs or the runtime dir are not
 * usable, or the kernel refuses this process the memory-policy calls DPDK's memory makes.
 * Runs before mpbus writes anything, whatever role the process will take.
 */
export function checkEnvironment(group: GroupFiles): void {
  const pages = hugepageInfo();
  if (pages.total === 0) {
    throw new MpBusError(ErrorCodes.hugepagesNotReserved, `hugepages not reserved (HugePages_Total is 0): run ${reserveFix()}`);
  }
  if (hugetlbfsMounts().length === 0) {
    throw new MpBusError(ErrorCodes.hugetlbfsNotMounted, `hugetlbfs is not mounted: run ${mountFix()}`);
  }
  // (the group's hugeDir, this process's or its live primary's, is the one DPDK uses; else the mounts)
  const hugeDir = group.activeHugeDir();
  const what = hugeDir === undefined ? 'the hugetlbfs mount' : 'the hugeDir';
  const dirs = (hugeDir === undefined ? [...new Set(hugetlbfsMounts())] : [hugeDir]).map((dir) => ({ dir, code: writeErrorOf(dir) }));
  const readOnly = dirs.filter((m) => m.code === 'EROFS').map((m) => m.dir);
  if (readOnly.length > 0) {
    throw new MpBusError(
      ErrorCodes.permissionDenied,
      `${what} ${readOnly.join(', ')} is read-only: DPDK creates the group's hugepage files there; mount it read-write (in a container: a writable hugepages volume)`,
    );
  }
  const unwritable = dirs.filter((m) => m.code !== undefined).map((m) => m.dir);
  if (unwritable.length > 0) {
    const uid = process.getuid?.() ?? '$USER';
    throw new MpBusError(
      ErrorCodes.permissionDenied,
      hugeDir === undefined
        ? `permission denied on the hugetlbfs mount ${unwritable.join(', ')}: run as root, or give this user the mount (chown ${uid} ${unwritable.join(' ')} as root, or mount it with uid=/gid= options), or a directory of its own there, named by the option hugeDir (as root: mkdir ${unwritable[0]}/<name> && chown ${uid} ${unwritable[0]}/<name>)`
        : `permission denied on the hugeDir ${hugeDir}, where the group's hugepage files are: run as root, or give this user the directory (chown ${uid} ${hugeDir} as root)`,
    );
  }
  const blocker = group.writeBlocker();
  if (blocker?.code === 'EROFS') {
    throw new MpBusError(
      ErrorCodes.permissionDenied,
      `DPDK's runtime dir ${group.runtimeDir} cannot be made: ${blocker.dir} is on a read-only filesystem (a container's read-only root, say); DPDK keeps each group's files under ${dirname(group.runtimeDir)}: mount a writable directory there (a tmpfs volume)`,
    );
  }
  if (blocker !== undefined) {
    throw new MpBusError(
      ErrorCodes.permissionDenied,
      `permission denied on DPDK's runtime dir ${group.runtimeDir}: run as root, or give this user write access to it and to the hugetlbfs mount`,
    );
  }
  const denied = addon().memPolicyDenied();
  if (denied === 'EPERM' || denied === 'EACCES') {
    // (DPDK would fail its init saying memory is short, after using up the process's one init)
    throw new MpBusError(
      ErrorCodes.memPolicyDenied,
      `this process may not make the memory-policy calls DPDK's memory needs (get_mempolicy: ${denied}): a container's default seccomp profile allows get_mempolicy, set_mempolicy and mbind only with the capability SYS_NICE: run it with --cap-add SYS_NICE (Kubernetes: securityContext.capabilities.add: ["SYS_NICE"]), or with a seccomp profile that allows those calls`,
    );
  }
}

/** The error code of writing in `dir` (`EACCES`, `EROFS`), or undefined when this user can. */
function writeErrorOf(dir: string): string | undefined {
  try {
    accessSync(dir, constants.W_OK);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'EACCES';
  }
}

/** A primary needs free hugepages to create the group's memory (a secondary maps the primary's). */
export function checkFreeHugepages(): void {
  const pages = hugepageInfo();
  if (pages.free === 0) {
    const more = Math.max(1024, pages.total * 2);
    throw new MpBusError(
      ErrorCodes.hugepagesNotReserved,
      `all ${pages.total} hugepages are in use (HugePages_Free is 0): stop other DPDK groups or reserve more: \`MPBUS_HUGEPAGES=${more} ${mpbusCommand()} setup\`, or as root: echo ${more} > /proc/sys/vm/nr_hugepages`,
    );
  }
}
