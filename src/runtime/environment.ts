/** Checks of the machine made before DPDK is touched, so failures name their fix. */
import { accessSync, constants, readdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { MpBusError, ErrorCodes } from '../errors.js';
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

// `npx mpbus setup` is the command that works for a user of the package (and in the checkout).
const RESERVE_FIX = '`npx mpbus setup`, or as root: echo 1024 > /proc/sys/vm/nr_hugepages';
const MOUNT_FIX = '`npx mpbus setup`, or as root: mkdir -p /dev/hugepages && mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages';

/**
 * Throws a typed error naming the fix when hugepages, hugetlbfs or the runtime dir are not
 * usable. Runs before mpbus writes anything, whatever role the process will take.
 */
export function checkEnvironment(group: GroupFiles): void {
  const pages = hugepageInfo();
  if (pages.total === 0) {
    throw new MpBusError(ErrorCodes.hugepagesNotReserved, `hugepages not reserved (HugePages_Total is 0): run ${RESERVE_FIX}`);
  }
  if (hugetlbfsMounts().length === 0) {
    throw new MpBusError(ErrorCodes.hugetlbfsNotMounted, `hugetlbfs is not mounted: run ${MOUNT_FIX}`);
  }
  const mounts = [...new Set(hugetlbfsMounts())].map((dir) => ({ dir, code: writeErrorOf(dir) }));
  const readOnlyMounts = mounts.filter((m) => m.code === 'EROFS').map((m) => m.dir);
  if (readOnlyMounts.length > 0) {
    throw new MpBusError(
      ErrorCodes.permissionDenied,
      `the hugetlbfs mount ${readOnlyMounts.join(', ')} is read-only: DPDK creates the group's hugepage files there; mount it read-write (in a container: a writable hugepages volume)`,
    );
  }
  const unwritable = mounts.filter((m) => m.code !== undefined).map((m) => m.dir);
  if (unwritable.length > 0) {
    throw new MpBusError(
      ErrorCodes.permissionDenied,
      `permission denied on the hugetlbfs mount ${unwritable.join(', ')}: run as root, or give this user the mount (chown ${process.getuid?.() ?? '$USER'} ${unwritable.join(' ')} as root, or mount it with uid=/gid= options)`,
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
      `all ${pages.total} hugepages are in use (HugePages_Free is 0): stop other DPDK groups or reserve more: \`MPBUS_HUGEPAGES=${more} npx mpbus setup\`, or as root: echo ${more} > /proc/sys/vm/nr_hugepages`,
    );
  }
}
