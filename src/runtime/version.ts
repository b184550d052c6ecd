/** mpbus's own version, from package.json (secondaries must match their primary's). */
import { readFileSync } from 'node:fs';

function readVersion(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'mpbus' && pkg.version) return pkg.version;
    } catch {
      // try the next location (src/ when run by vitest, dist/src/ when compiled)
    }
  }
  return '0.0.0';
}

export const MPBUS_VERSION = readVersion();
