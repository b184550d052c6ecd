/**
 * Machines that are not ready: Runtime.start refuses with a code and the fix, before DPDK runs.
 * Node runs here as a plain program (test/fixtures/start-once.ts) in a private mount namespace
 * or as another user, so the machine itself is never changed.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hugepageInfo } from '../src/runtime/environment.js';
import { uniquePrefix } from './harness/group.js';
import { useTestGroups } from './harness/use-groups.js';
import { repoRoot } from './harness/paths.js';

const isRoot = process.getuid?.() === 0;
const group = useTestGroups();
const hasTools = ['setpriv', 'unshare'].every((tool) => spawnSync('which', [tool]).status === 0);
const startOnce = join(repoRoot, 'dist', 'test', 'fixtures', 'start-once.js');
const hasPython = spawnSync('which', ['python3']).status === 0;
/**
 * A Python program that runs its arguments under a seccomp filter denying (EPERM) the x86_64
 * memory-policy calls, as Docker's default profile does without CAP_SYS_NICE: mbind,
 * set_mempolicy, get_mempolicy, migrate_pages, move_pages.
 */
const DENY_MEMPOLICY = `
import ctypes, os, struct, sys
# BPF: load the syscall number (0x20); for each denied one, jump-if-equal (0x15) to return (0x06)
# SECCOMP_RET_ERRNO | EPERM; else SECCOMP_RET_ALLOW. prctl 38, 22, 2: PR_SET_NO_NEW_PRIVS,
# PR_SET_SECCOMP, SECCOMP_MODE_FILTER.
ins = [(0x20, 0, 0, 0)]
for nr in (237, 238, 239, 256, 279):
    ins += [(0x15, 0, 1, nr), (0x06, 0, 0, 0x00050000 | 1)]
ins.append((0x06, 0, 0, 0x7fff0000))
code = ctypes.create_string_buffer(b''.join(struct.pack('HBBI', *i) for i in ins))
class Prog(ctypes.Structure):
    _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_void_p)]
prog = Prog(len(ins), ctypes.addressof(code))
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.byref(prog), 0, 0):
    sys.exit('seccomp: ' + os.strerror(ctypes.get_errno()))
os.execvp(sys.argv[1], sys.argv[1:])
`;
const copies: string[] = [];
afterAll(() => {
  for (const dir of copies.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/**
 * start-once.js as user nobody can run it. A checkout may live under a directory only root can
 * enter (a CI clone in a private temp dir): then the built program runs from a world-readable
 * copy of what it needs (dist, the addon, node_modules).
 */
let nobodysStartOnce: string | undefined;
function startOnceForNobody(): string {
  nobodysStartOnce ??= locateForNobody();
  return nobodysStartOnce;
}

function locateForNobody(): string {
  const readable = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'test', '-r', startOnce]).status === 0;
  if (readable) return startOnce;
  const copy = mkdtempSync(join(tmpdir(), 'mpbus-nobody-'));
  copies.push(copy);
  chmodSync(copy, 0o755);
  for (const part of ['package.json', 'binding.gyp', 'dist', 'node_modules']) cpSync(join(repoRoot, part), join(copy, part), { recursive: true });
  mkdirSync(join(copy, 'build', 'Release'), { recursive: true });
  cpSync(join(repoRoot, 'build', 'Release', 'mpbus.node'), join(copy, 'build', 'Release', 'mpbus.node'));
  return join(copy, 'dist', 'test', 'fixtures', 'start-once.js');
}

function run(command: string, args: string[]): { code?: string; message?: string; processType?: string } {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 60_000 });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as { code?: string; message?: string };
  } catch {
    throw new Error(`no result from ${command} (status ${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
}

describe.runIf(isRoot && hasTools)('a machine that is not ready', () => {
  it('hugetlbfs not mounted: HUGETLBFS_NOT_MOUNTED, with the mount command', () => {
    const prefix = uniquePrefix('nomount');
    const r = run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `umount -a -t hugetlbfs && exec ${process.execPath} ${startOnce} ${prefix}`]);
    expect(r.code).toBe('HUGETLBFS_NOT_MOUNTED');
    expect(r.message).toContain('mount -t hugetlbfs');
    expect(existsSync(`/var/run/dpdk/${prefix}`)).toBe(false);
  });

  it('a user who cannot write the hugetlbfs mount: PERMISSION_DENIED, naming the mount and the chown', () => {
    const prefix = uniquePrefix('perm');
    const r = run('setpriv', [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      'env',
      'XDG_RUNTIME_DIR=/nonexistent-mpbus',
      process.execPath,
      startOnceForNobody(),
      prefix,
    ]);
    expect(r.code).toBe('PERMISSION_DENIED');
    expect(r.message).toMatch(/\/dev\/hugepages.*chown/);
  });

  // A container with a read-only root filesystem: the message said "run as root" to root.
  it('a read-only filesystem where DPDK keeps its runtime dir: PERMISSION_DENIED naming it, and a writable mount there is the fix', () => {
    const prefix = uniquePrefix('rorun');
    const readOnlyRun = 'mount --bind /run /run && mount -o remount,bind,ro /run';
    const r = run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `${readOnlyRun} && exec ${process.execPath} ${startOnce} ${prefix}`]);
    expect(r.code).toBe('PERMISSION_DENIED');
    expect(r.message).toMatch(/read-only filesystem.*under \/var\/run\/dpdk: mount a writable directory there/);
    const fixed = run('unshare', [
      '-m',
      '--propagation',
      'private',
      'sh',
      '-c',
      `${readOnlyRun} && mount -t tmpfs tmpfs /run/dpdk && exec ${process.execPath} ${startOnce} ${prefix}`,
    ]);
    expect(fixed).toEqual({ processType: 'primary' });
  });

  it('a read-only hugetlbfs mount: PERMISSION_DENIED saying so, once, not a chown', () => {
    const prefix = uniquePrefix('rohuge');
    const readOnly = 'mount --bind /dev/hugepages /dev/hugepages && mount -o remount,bind,ro /dev/hugepages';
    const r = run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `${readOnly} && exec ${process.execPath} ${startOnce} ${prefix}`]);
    expect(r.code).toBe('PERMISSION_DENIED');
    expect(r.message).toMatch(/^the hugetlbfs mount \/dev\/hugepages is read-only/);
  });

  it('without root, with its own writable hugetlbfs mount (as README says), a primary starts and leaves nothing', () => {
    const prefix = uniquePrefix('nonroot');
    const runtimeRoot = mkdtempSync(join(tmpdir(), 'mpbus-xdg-'));
    chownSync(runtimeRoot, 65534, 65534);
    try {
      const mount = 'mount -t hugetlbfs -o pagesize=2M,uid=65534,gid=65534 nodev /dev/hugepages';
      const asNobody = `setpriv --reuid=65534 --regid=65534 --clear-groups env XDG_RUNTIME_DIR=${runtimeRoot} ${process.execPath} ${startOnceForNobody()} ${prefix}`;
      const r = run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `${mount} && exec ${asNobody}`]);
      expect(r).toEqual({ processType: 'primary' });
      // DPDK kept the group's files under $XDG_RUNTIME_DIR/dpdk, and the last process removed them
      expect(readdirSync(join(runtimeRoot, 'dpdk'))).toEqual([]);
    } finally {
      rmSync(runtimeRoot, { recursive: true, force: true });
    }
  });

  // A service's user with a directory of its own in the machine's mount: before the option
  // hugeDir, every hugetlbfs mount had to be writable, and --huge-dir in extraEalArgs was refused
  // so (with it, the group's files would not have been found to remove).
  it('without root, with a directory of its own in the hugetlbfs mount (hugeDir): a primary and its launched child start there and leave nothing', () => {
    const prefix = uniquePrefix('hugedir');
    const hugeDir = mkdtempSync('/dev/hugepages/mpbus-test-');
    const runtimeRoot = mkdtempSync(join(tmpdir(), 'mpbus-xdg-'));
    for (const dir of [hugeDir, runtimeRoot]) chownSync(dir, 65534, 65534);
    try {
      const asNobody = [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        'env',
        `XDG_RUNTIME_DIR=${runtimeRoot}`,
        process.execPath,
        startOnceForNobody(),
        prefix,
      ];
      expect(run('setpriv', asNobody).message).toMatch(/^permission denied on the hugetlbfs mount \/dev\/hugepages.*named by the option hugeDir/);
      const r = run('setpriv', [...asNobody, 'hugedir', hugeDir]);
      expect(r).toEqual({ processType: 'primary', launched: true, files: expect.any(Number) });
      expect((r as { files: number }).files).toBeGreaterThan(0);
      expect(readdirSync(hugeDir)).toEqual([]);
      expect(readdirSync(join(runtimeRoot, 'dpdk'))).toEqual([]);
    } finally {
      rmSync(hugeDir, { recursive: true, force: true });
      rmSync(runtimeRoot, { recursive: true, force: true });
    }
  });

  it("a killed primary's files in its hugeDir are found and removed by the group's next primary, which has none", () => {
    const prefix = uniquePrefix('hugedirkill');
    const hugeDir = mkdtempSync('/dev/hugepages/mpbus-test-');
    try {
      const killed = run(process.execPath, [startOnce, prefix, 'hugedir', hugeDir, 'kill']);
      expect(killed).toEqual({ processType: 'primary', files: expect.any(Number) });
      expect(readdirSync(hugeDir).length).toBe((killed as { files: number }).files);
      expect(run(process.execPath, [startOnce, prefix])).toEqual({ processType: 'primary' });
      expect(readdirSync(hugeDir)).toEqual([]);
      expect(existsSync(`/var/run/dpdk/${prefix}`)).toBe(false);
    } finally {
      rmSync(hugeDir, { recursive: true, force: true });
    }
  });

  // Docker's default seccomp profile (and containerd's RuntimeDefault) allows get_mempolicy,
  // set_mempolicy and mbind only with CAP_SYS_NICE: DPDK's init failed (primary and secondary
  // alike) and was taken for HUGEPAGES_SHORT, "reserve more hugepages", with pages free.
  it.runIf(process.arch === 'x64' && hasPython)(
    "the memory-policy calls denied, as a container's default seccomp profile does: MEMPOLICY_DENIED naming SYS_NICE, before DPDK runs",
    () => {
      const prefix = uniquePrefix('seccomp');
      const r = run('python3', ['-c', DENY_MEMPOLICY, process.execPath, startOnce, prefix]);
      expect(r.code).toBe('MEMPOLICY_DENIED');
      expect(r.message).toMatch(/get_mempolicy: EPERM.*--cap-add SYS_NICE/);
      expect(existsSync(`/var/run/dpdk/${prefix}`)).toBe(false);
    },
  );

  it.each([
    ['no hugepages reserved', 'HugePages_Total', /HugePages_Total is 0.*nr_hugepages/],
    ['every hugepage in use', 'HugePages_Free', /HugePages_Free is 0.*stop other DPDK groups/],
  ] as const)('%s: HUGEPAGES_NOT_RESERVED, with the fix', (_label, field, message) => {
    // the reservation is machine-wide: the kernel's report is replaced inside a private mount namespace
    const dir = mkdtempSync(join(tmpdir(), 'mpbus-meminfo-'));
    try {
      const fake = join(dir, 'meminfo');
      writeFileSync(fake, readFileSync('/proc/meminfo', 'utf8').replace(new RegExp(`^${field}:\\s+\\d+`, 'm'), `${field}:        0`));
      const prefix = uniquePrefix('nopages');
      const r = run('unshare', [
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        `mount --bind ${fake} /proc/meminfo && exec ${process.execPath} ${startOnce} ${prefix}`,
      ]);
      expect(r.code).toBe('HUGEPAGES_NOT_RESERVED');
      expect(r.message).toMatch(message);
      expect(existsSync(`/var/run/dpdk/${prefix}`)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Whether a private mount namespace can mount cgroup v1's hierarchy of `controller` (not where
 * the controller is in cgroup v2's unified hierarchy): tried.
 */
function cgroupV1Mountable(controller: string): boolean {
  const tryMount = `d=$(mktemp -d) && mount -t cgroup -o ${controller} none "$d" && umount "$d"; rc=$?; rmdir "$d"; exit $rc`;
  return spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', tryMount]).status === 0;
}

/**
 * start-once.js with `args` in a cgroup of its own in cgroup v1's `controller` hierarchy, mounted
 * in a private mount namespace (the cgroup is removed after); `limit` is a file of the cgroup and
 * what is written to it first. The limit counts what is charged from when the process enters.
 */
function inCgroup(controller: string, prefix: string, limit: [string, number], args: string): ReturnType<typeof run> {
  const script = [
    'set -e',
    'd=$(mktemp -d)',
    `mount -t cgroup -o ${controller} none "$d"`,
    `cg="$d/${prefix}"`,
    'mkdir "$cg"',
    `echo ${limit[1]} > "$cg/${limit[0]}"`,
    'set +e',
    `sh -c "echo \\$\\$ > $cg/tasks && exec ${process.execPath} ${startOnce} ${prefix} ${args}"`,
    'rc=$?',
    'rmdir "$cg"; umount "$d"; rmdir "$d"',
    'exit $rc',
  ].join('\n');
  return run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script]);
}

/** start-once.js with `args` in a hugetlb cgroup of `limitMiB`. */
function inHugetlbCgroup(prefix: string, limitMiB: number, args: string): ReturnType<typeof run> {
  return inCgroup('hugetlb', prefix, ['hugetlb.2MB.limit_in_bytes', limitMiB * 2 ** 20], args);
}

describe.runIf(isRoot && hasTools && hugepageInfo().sizeKb === 2048 && cgroupV1Mountable('hugetlb'))(
  "hugepages limited by a hugetlb cgroup (a Kubernetes pod's hugepages-2Mi)",
  () => {
    it("a send larger than the cgroup's limit allows fails at once with MESSAGE_TOO_LARGE, naming the limit", () => {
      const prefix = uniquePrefix('hugetlb');
      const r = inHugetlbCgroup(prefix, 64, 'send 100');
      // (before, the send waited its 10 s timeout, the heap asked again and again: SEND_TIMEOUT)
      expect(r.code).toBe('MESSAGE_TOO_LARGE');
      expect(r.message).toMatch(/a message of 100\.0 MiB .*hugepage memory.*hugetlb cgroup allows 64\.0 MiB/);
      expect(existsSync(`/var/run/dpdk/${prefix}`)).toBe(false);
    });

    it('a primary asking for more memory than the limit allows: HUGEPAGES_SHORT naming the limit, not the free hugepages of the machine', () => {
      const prefix = uniquePrefix('hugetlbmem');
      const r = inHugetlbCgroup(prefix, 64, 'memory 128');
      expect(r.code).toBe('HUGEPAGES_SHORT');
      expect(r.message).toMatch(/hugetlb cgroup allows 64\.0 MiB of hugepages, and 128 MB were asked: lower memoryMb.*raise the limit/);
      expect(existsSync(`/var/run/dpdk/${prefix}`)).toBe(false);
    });
  },
);

/** start-once.js with `args` in a pids cgroup of its own, which the program limits itself. */
function inPidsCgroup(prefix: string, args: string): ReturnType<typeof run> {
  return inCgroup('pids', prefix, ['pids.max', 1000], args);
}

describe.runIf(isRoot && hasTools && cgroupV1Mountable('pids'))("threads limited by a pids cgroup (docker --pids-limit, a pod's pid limit)", () => {
  it('DPDK cannot start its threads: THREAD_LIMIT naming the limit, and the process lives on and leaves nothing', () => {
    const prefix = uniquePrefix('pidsinit');
    const r = inPidsCgroup(prefix, 'tasks before');
    expect(r.code).toBe('THREAD_LIMIT');
    expect(r.message).toMatch(/its threads could not be started: this process's pids cgroup allows \d+ tasks.*raise the limit/);
    expect(existsSync(`/var/run/dpdk/${prefix}`)).toBe(false);
  });

  it("mpbus's own thread cannot be started (the mailboxes' doorbell): THREAD_LIMIT, not an abort; the runtime closes and leaves nothing", () => {
    const prefix = uniquePrefix('pidsmbx');
    // (before, std::thread's exception ended the process: "terminate called after throwing an
    // instance of 'std::system_error'", SIGABRT, the group's files left behind)
    const r = inPidsCgroup(prefix, 'tasks after');
    expect(r.code).toBe('THREAD_LIMIT');
    expect(r.message).toMatch(/cannot start the mailboxes' doorbell thread: .*pids cgroup's pids\.max/);
    expect(existsSync(`/var/run/dpdk/${prefix}`)).toBe(false);
  });

  it('a launched child that cannot start its threads: CHILD_FAILED says so and names the limit, not "fix the child module"', () => {
    const prefix = uniquePrefix('pidslaunch');
    const r = inPidsCgroup(prefix, 'tasks launch');
    expect(r.code, r.message).toBe('CHILD_FAILED');
    // (Node 20 waited for good in its own start, before any of the module ran: the launch said
    // "it never joined the group ... fix the child module" after its 30 s)
    expect(r.message).toMatch(/it could not start its threads \(this process's pids cgroup allows \d+ tasks.*raise the limit/);
    expect(r.message).not.toMatch(/fix the child module/);
    expect(existsSync(`/var/run/dpdk/${prefix}`)).toBe(false);
  });
});

describe.runIf(isRoot && spawnSync('which', ['prlimit']).status === 0)('hugepage files past the open-files limit (ulimit -n)', () => {
  // DPDK keeps a file open for each hugepage it maps: 600 MB of memory is 300 files
  it('a primary whose memoryMb needs more files than it may open: OPEN_FILES_LIMIT naming the limit and singleFileSegments, not HUGEPAGES_SHORT', () => {
    const prefix = uniquePrefix('nofile');
    const r = run('prlimit', ['--nofile=200:200', process.execPath, startOnce, prefix, 'memory', '600']);
    expect(r.code).toBe('OPEN_FILES_LIMIT');
    expect(r.message).toMatch(
      /may open 200 files \(ulimit -n\).*one open for each hugepage it maps \(300 more here\): raise the open-files limit.*singleFileSegments/,
    );
    expect(existsSync(`/var/run/dpdk/${prefix}`)).toBe(false);
  });

  it("a secondary that would open more of the group's hugepage files than it may: OPEN_FILES_LIMIT, not HUGEPAGES_SHORT", async () => {
    const g = group('nofilesec');
    await g.startAgent({ procType: 'primary', memoryMb: 600 });
    const r = run('prlimit', ['--nofile=200:200', process.execPath, startOnce, g.prefix, 'secondary']);
    expect(r.code).toBe('OPEN_FILES_LIMIT');
    expect(r.message).toMatch(/this secondary .*may open 200 files \(ulimit -n\).*for each hugepage it maps.*singleFileSegments/);
  });

  it('a send whose block needs more files than the process may open: MESSAGE_TOO_LARGE naming the limit', () => {
    const prefix = uniquePrefix('nofilesend');
    const r = run('prlimit', ['--nofile=200:200', process.execPath, startOnce, prefix, 'send', '300']);
    expect(r.code).toBe('MESSAGE_TOO_LARGE');
    expect(r.message).toMatch(/a message of 300\.0 MiB .*may open 200 files \(ulimit -n\).*raise the open-files limit/);
    expect(existsSync(`/var/run/dpdk/${prefix}`)).toBe(false);
  });
});

describe.runIf(isRoot && hasTools && hugepageInfo().sizeKb === 2048)("a hugetlbfs mount with a size= limit (a container's hugepages volume)", () => {
  const limitedMount = 'mount -t hugetlbfs -o pagesize=2M,size=64M nodev /dev/hugepages';

  it('a primary asking for more than the mount holds: HUGEPAGES_SHORT naming the mount and its size, not the free hugepages', () => {
    const prefix = uniquePrefix('hugesize');
    const r = run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `${limitedMount} && exec ${process.execPath} ${startOnce} ${prefix} memory 128`]);
    expect(r.code).toBe('HUGEPAGES_SHORT');
    expect(r.message).toMatch(/the hugetlbfs mount \/dev\/hugepages holds 64\.0 MiB \(its size= option\), and 128 MB were asked: .*mount it larger/);
    expect(existsSync(`/var/run/dpdk/${prefix}`)).toBe(false);
  });

  // DPDK puts the group's files in the hugeDir's mount only: another mount's size= is none of its business.
  it("with a hugeDir, only the mount holding it counts: it is named as the hugeDir's, not the smallest mount", () => {
    // (a mount point of the test's own, mounted only in the program's private mount namespace)
    const smaller = mkdtempSync(join(tmpdir(), 'mpbus-hugedir-'));
    try {
      const mounted = `${limitedMount} && mount -t hugetlbfs -o pagesize=2M,size=32M nodev ${smaller}`;
      const inMount = (args: string): ReturnType<typeof run> =>
        run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `${mounted} && exec ${process.execPath} ${startOnce} ${args}`]);
      const limited = inMount(`${uniquePrefix('hugesizedir')} memory 48 ${smaller}`);
      expect(limited.code).toBe('HUGEPAGES_SHORT');
      expect(limited.message).toContain(`the hugetlbfs mount holding the hugeDir ${smaller} holds 32.0 MiB (its size= option), and 48 MB were asked`);
      // (before, the smallest limited mount was named, whichever held the files)
      const other = inMount(`${uniquePrefix('hugesizedir')} memory 128 /dev/hugepages`);
      expect(other.code).toBe('HUGEPAGES_SHORT');
      expect(other.message).toContain('the hugetlbfs mount holding the hugeDir /dev/hugepages holds 64.0 MiB (its size= option), and 128 MB were asked');
    } finally {
      rmSync(smaller, { recursive: true, force: true });
    }
  });

  it('a send larger than the mount holds: MESSAGE_TOO_LARGE naming the mount', () => {
    const prefix = uniquePrefix('hugesizesend');
    const r = run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `${limitedMount} && exec ${process.execPath} ${startOnce} ${prefix} send 100`]);
    expect(r.code).toBe('MESSAGE_TOO_LARGE');
    expect(r.message).toMatch(/a message of 100\.0 MiB .*the hugetlbfs mount \/dev\/hugepages holds 64\.0 MiB \(its size= option\)/);
    expect(existsSync(`/var/run/dpdk/${prefix}`)).toBe(false);
  });
});
