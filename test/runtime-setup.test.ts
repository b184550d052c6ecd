/**
 * scripts/setup.sh (and so scripts/setup-machine.sh, its machine part, which `npx mpbus setup`
 * runs) without root: when something only root can fix is missing, it changes nothing and prints
 * the exact commands to run. The test runs a copy of the script as `nobody`, in a
 * private mount namespace where hugetlbfs is unmounted and with an empty dpkg database, so the
 * machine itself is never touched.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from './harness/paths.js';

const isRoot = process.getuid?.() === 0;
const hasTools = ['setpriv', 'unshare'].every((tool) => spawnSync('which', [tool]).status === 0);
const NOBODY = 65534;

const copy = mkdtempSync(join(tmpdir(), 'mpbus-setup-'));
afterAll(() => rmSync(copy, { recursive: true, force: true }));

/** Runs the copied setup scripts as nobody; `prelude` runs as root inside the private mount namespace first. */
function setupAsNobody(env: Record<string, string>, prelude = 'true'): { status: number | null; stdout: string; stderr: string } {
  mkdirSync(join(copy, 'scripts'), { recursive: true });
  for (const script of ['setup.sh', 'setup-machine.sh']) copyFileSync(join(repoRoot, 'scripts', script), join(copy, 'scripts', script));
  chmodSync(copy, 0o755);
  const vars = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const script = `${prelude} && exec setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups env ${vars.join(' ')} bash ${join(copy, 'scripts', 'setup.sh')}`;
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.runIf(isRoot && hasTools)('setup.sh without root', () => {
  it('with packages, hugepages and the mount missing, stops before doing anything and prints the exact commands', () => {
    const emptyDpkg = join(copy, 'dpkg');
    mkdirSync(emptyDpkg, { recursive: true });
    chmodSync(emptyDpkg, 0o755);
    spawnSync('touch', [join(emptyDpkg, 'status')]);
    chmodSync(join(emptyDpkg, 'status'), 0o644);
    const reserved = Number(readFileSync('/proc/sys/vm/nr_hugepages', 'utf8'));
    const want = reserved + 512;
    const r = setupAsNobody({ DPKG_ADMINDIR: emptyDpkg, MPBUS_HUGEPAGES: String(want) }, 'umount -a -t hugetlbfs');
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines).toEqual([
      'mpbus setup: this machine is not ready for mpbus, and only root can fix it. Run:',
      '  sudo apt-get update && sudo apt-get install -y libdpdk-dev dpdk dpdk-dev pkg-config g++ make python3 nats-server openssl dpdk-doc tmux clang-format',
      `  echo ${want} | sudo tee /proc/sys/vm/nr_hugepages`,
      `  sudo mkdir -p /dev/hugepages && sudo mount -t hugetlbfs -o pagesize=2M,uid=${NOBODY},gid=${NOBODY} nodev /dev/hugepages`,
      'then run this command again (as nobody).',
    ]);
    // nothing was done: no npm install, no build, and the machine's reservation is unchanged
    expect(readdirSync(copy).sort()).toEqual(['dpkg', 'scripts']);
    expect(Number(readFileSync('/proc/sys/vm/nr_hugepages', 'utf8'))).toBe(reserved);
    expect(readFileSync('/proc/mounts', 'utf8')).toMatch(/ hugetlbfs /);
  });

  it('with everything installed but a hugetlbfs mount this user cannot write, prints only the chown', () => {
    const writable = (statSync('/dev/hugepages').mode & 0o002) !== 0;
    const r = setupAsNobody({ MPBUS_HUGEPAGES: '512' });
    if (writable) return; // nothing missing for nobody on this machine: setup would go on to build
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n').slice(1)).toEqual([
      '  sudo chown nobody: /dev/hugepages',
      "  (or, to keep the mount root's: sudo mkdir /dev/hugepages/nobody && sudo chown nobody: /dev/hugepages/nobody, and start the primary with the option hugeDir: '/dev/hugepages/nobody')",
      'then run this command again (as nobody).',
    ]);
    expect(readdirSync(copy)).not.toContain('node_modules');
  });

  // (before, a user given a directory of its own in the mount was still told to chown the mount,
  // and setup stopped there, its addon not built)
  it('with a directory of its own in the mount (for the option hugeDir), asks no chown of the mount', () => {
    if ((statSync('/dev/hugepages').mode & 0o002) !== 0) return; // the mount is nobody's to write anyway
    const own = mkdtempSync('/dev/hugepages/mpbus-setup-');
    chownSync(own, NOBODY, NOBODY);
    try {
      // more hugepages than are reserved, so that setup stops (before it builds) and says what it needs
      const want = Number(readFileSync('/proc/sys/vm/nr_hugepages', 'utf8')) + 512;
      const r = setupAsNobody({ MPBUS_HUGEPAGES: String(want) });
      expect(r.status).toBe(1);
      expect(r.stderr.trim().split('\n').slice(1)).toEqual([`  echo ${want} | sudo tee /proc/sys/vm/nr_hugepages`, 'then run this command again (as nobody).']);
    } finally {
      rmSync(own, { recursive: true, force: true });
    }
  });
});
