// Builds the native addon with node-gyp against the system DPDK (pkg-config libdpdk), in the
// checkout or in an installed copy (node_modules/mpbus). `--if-possible` (npm's install hook)
// skips, with a note, when DPDK's development files or the compiler are not installed yet:
// `npx mpbus setup` installs them and builds afterwards. `--if-stale` and `--if-possible` build
// only when a native source is newer than the addon (or there is none); no flag: always.
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

/** What node-gyp needs besides itself: a C++ compiler, make and python3. */
function missingTools() {
  return [process.env.CXX?.split(' ')[0] || 'g++', 'make', 'python3'].filter((tool) => spawnSync('sh', ['-c', `command -v "$0"`, tool]).status !== 0);
}

function newestSource() {
  const files = ['binding.gyp', ...readdirSync(join(root, 'native')).map((f) => join('native', f))];
  return Math.max(...files.map((f) => statSync(join(root, f)).mtimeMs));
}

const missing = [...(hasLibdpdk() ? [] : ["DPDK's development files (pkg-config libdpdk)"]), ...missingTools()];
if (missing.length > 0) {
  const why = `mpbus: cannot build the native addon yet: missing ${missing.join(', ')}.`;
  if (ifPossible) {
    console.log(`${why} Run \`npx mpbus setup\`: it installs them and builds the addon.`);
    process.exit(0);
  }
  console.error(`${why} Run \`npx mpbus setup\` (or as root: apt-get install -y libdpdk-dev dpdk dpdk-dev pkg-config g++ make python3).`);
  process.exit(1);
}
// The install hook too: npm runs it again for a package it links (`npx mpbus` inside this
// checkout does), and a rebuild there took more than a minute (cut short, it left no addon).
if ((onlyIfStale || ifPossible) && existsSync(addon) && statSync(addon).mtimeMs >= newestSource()) process.exit(0);

// npm ships node-gyp: in its scripts (the install hook, `npm rebuild`) npm names its copy in
// npm_config_node_gyp; elsewhere look beside this node. Never a download.
const bundledGyp = [
  process.env.npm_config_node_gyp,
  join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
].find((p) => p && existsSync(p));
const gyp = bundledGyp ? [process.execPath, bundledGyp] : ['node-gyp'];
const jobs = ['-j', 'max'];
// Build against the installed Node's headers (no download: the machine has no network for it).
const headerDir = [process.env.npm_config_nodedir, dirname(dirname(process.execPath))].find((d) => d && existsSync(join(d, 'include', 'node', 'node_api.h')));
if (headerDir) jobs.push(`--nodedir=${headerDir}`);
// Said before and after: a build takes most of a minute, which would otherwise look like a hang,
// and `npx mpbus setup` printed the same line whether it had built or not.
const started = Date.now();
console.log(`mpbus: building the native addon${existsSync(addon) ? ' (its sources are newer than the build)' : ''}, about a minute...`);
try {
  execFileSync(gyp[0], [...gyp.slice(1), 'rebuild', '--loglevel=warn', ...jobs], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
} catch {
  console.error('mpbus: building the native addon failed (see the compiler output above).');
  process.exit(1);
}
console.log(`mpbus: native addon built in ${Math.round((Date.now() - started) / 1000)} s`);
