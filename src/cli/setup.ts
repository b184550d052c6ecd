/**
 * `mpbus setup`: readies this machine for mpbus with the shipped scripts/setup-machine.sh (DPDK,
 * the addon's build tools, hugepages, hugetlbfs), then builds the native addon of this installed
 * copy of mpbus when it is missing or stale. Imports nothing that needs the addon or DPDK.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../package-root.js';
import type { Command } from './command.js';

const help = `Usage: npx mpbus setup

Makes this machine ready for mpbus, step by step, skipping what is already done:
  1. installs libdpdk-dev dpdk dpdk-dev pkg-config g++ make python3 with apt-get (Debian 12);
  2. reserves 1024 hugepages of 2 MB (MPBUS_HUGEPAGES=n for another target; never lowers);
  3. mounts hugetlbfs at /dev/hugepages when none is mounted;
  4. builds mpbus's native addon (node-gyp) when it is missing or older than its sources.
Steps 1-3 need root. Without root, nothing is changed and the exact commands to run are printed.
MPBUS_SETUP_QUIET=1 silences the progress lines.`;

function say(line: string): void {
  if (!process.env.MPBUS_SETUP_QUIET) console.log(`mpbus setup: ${line}`);
}

export const setup: Command = {
  summary: 'prepare this machine: DPDK packages, hugepages, hugetlbfs, the native addon',
  help,
  run(args) {
    if (args.length > 0) {
      console.error(`mpbus setup: unexpected argument '${args[0]}'\n\n${help}`);
      return 2;
    }
    const root = packageRoot();
    const machine = spawnSync('bash', [join(root, 'scripts', 'setup-machine.sh')], { stdio: 'inherit' });
    if (machine.status !== 0) return machine.status ?? 1;

    // A root run (sudo) in a project its user owns must not leave root-owned build files there.
    const owner = statSync(root).uid;
    if (process.getuid !== undefined && owner !== process.getuid()) {
      const built = existsSync(join(root, 'build', 'Release', 'mpbus.node'));
      say(built ? 'this machine is ready for mpbus' : `the machine is ready; now build the addon as the owner of ${root} (uid ${owner}): npm rebuild mpbus`);
      return 0;
    }
    const build = spawnSync(process.execPath, [join(root, 'scripts', 'build-native.mjs'), '--if-stale'], { stdio: 'inherit' });
    if (build.status !== 0) return build.status ?? 1;
    say('this machine is ready for mpbus');
    return 0;
  },
};
