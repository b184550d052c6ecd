/**
 * The `dpdkLibraries` option: DPDK libraries loaded into this process before its EAL init, so
 * that C DPDK secondaries linking them can join (the tailq rule, docs/process-model.md "Beside C
 * DPDK programs"). Each DPDK library registers its tailqs from a constructor when it is loaded,
 * and a secondary's EAL init fails (`Cannot initialize tailq: RTE_RIB`) unless the primary
 * registered every tailq the secondary's own libraries do. The addon links only what it uses.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ErrorCodes, MpBusError } from '../errors.js';
import { addon } from '../native/addon.js';

/** Native functions of native/libraries.cc. */
interface LibrariesBinding {
  dpdkLibraryPath(name: string): string | null;
  loadLibrary(path: string): string | null;
}

const NAME = /^[a-z0-9_]{1,32}$/;

/** Checks the option's shape: 'all', or names of DPDK libraries without `librte_` (`rib`, `fib`, `lpm`). */
export function validateDpdkLibraries(value: unknown): string[] | 'all' {
  if (value === undefined) return [];
  if (value === 'all') return 'all';
  if (!Array.isArray(value) || !value.every((n) => typeof n === 'string' && NAME.test(n.replace(/^(lib)?rte_/, '')))) {
    throw new MpBusError(
      ErrorCodes.invalidOption,
      `dpdkLibraries takes 'all' or names of DPDK libraries like ['rib', 'fib'] (librte_rib, librte_fib), got ${JSON.stringify(value)}`,
    );
  }
  return value.map((n: string) => n.replace(/^(lib)?rte_/, ''));
}

/** Every library of `pkg-config --libs libdpdk` (drivers are not in it: EAL loads those itself). */
function allLibraries(): string[] {
  let out: string;
  try {
    out = execFileSync('pkg-config', ['--libs-only-l', 'libdpdk'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new MpBusError(
      ErrorCodes.invalidOption,
      `dpdkLibraries: 'all' reads the list from \`pkg-config --libs-only-l libdpdk\`, which failed (install pkg-config and libdpdk-dev, or list the libraries by name): ${(err as Error).message}`,
    );
  }
  return out
    .split(/\s+/)
    .filter((f) => f.startsWith('-lrte_'))
    .map((f) => f.slice('-lrte_'.length));
}

/** Loads the libraries (before rte_eal_init); returns what was loaded, by name. */
export function loadDpdkLibraries(option: string[] | 'all'): string[] {
  const names = option === 'all' ? allLibraries() : option;
  if (names.length === 0) return [];
  const native = addon() as unknown as LibrariesBinding;
  for (const name of names) {
    const path = native.dpdkLibraryPath(name);
    if (path === null || !existsSync(path)) {
      throw new MpBusError(
        ErrorCodes.invalidOption,
        `dpdkLibraries: DPDK has no library '${name}' here (${path ?? 'librte_eal not found'}): use the names of \`pkg-config --libs-only-l libdpdk\` without -lrte_, e.g. 'rib'`,
      );
    }
    const failure = native.loadLibrary(path);
    if (failure !== null) throw new MpBusError(ErrorCodes.invalidOption, `dpdkLibraries: loading ${path} failed: ${failure}`);
  }
  return names;
}
