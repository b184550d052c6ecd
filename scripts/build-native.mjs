// Builds the native addon with node-gyp against the system DPDK (pkg-config libdpdk).
// `--if-possible` (used by npm's install hook) skips quietly when DPDK's headers are not yet
// installed: scripts/setup.sh installs them and builds afterwards.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ifPossible = process.argv.includes('--if-possible');
const onlyIfStale = process.argv.includes('--if-stale');
const addon = join(root, 'build', 'Release', 'mpbus.node');

function hasLibdpdk() {
  return spawnSync('pkg-config', ['--exists', 'libdpdk']).status === 0;
}

function newestSource() {
  const files = ['binding.gyp', ...readdirSync(join(root, 'native')).map((f) => join('native', f))];
  return Math.max(...files.map((f) => statSync(join(root, f)).mtimeMs));
}

if (!hasLibdpdk()) {
  if (ifPossible) {
    console.log('mpbus: DPDK development files not installed yet; the addon is built by `npm run setup`.');
    process.exit(0);
  }
  console.error('mpbus: pkg-config cannot find libdpdk. Run: apt-get install -y libdpdk-dev dpdk dpdk-dev pkg-config');
  process.exit(1);
}
if (onlyIfStale && existsSync(addon) && statSync(addon).mtimeMs >= newestSource()) process.exit(0);

// npm ships node-gyp (and puts it on PATH for scripts); use that copy, never a download.
const bundledGyp = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
const gyp = existsSync(bundledGyp) ? [process.execPath, bundledGyp] : ['node-gyp'];
const jobs = ['-j', 'max'];
// Build against the installed Node's headers (no download: the machine has no network for it).
const headerDir = [process.env.npm_config_nodedir, dirname(dirname(process.execPath))].find(
  (d) => d && existsSync(join(d, 'include', 'node', 'node_api.h')),
);
if (headerDir) jobs.push(`--nodedir=${headerDir}`);
try {
  execFileSync(gyp[0], [...gyp.slice(1), 'rebuild', '--loglevel=warn', ...jobs], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
} catch {
  console.error('mpbus: building the native addon failed (see the compiler output above).');
  process.exit(1);
}
