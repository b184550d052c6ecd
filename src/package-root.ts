/**
 * Where this mpbus package lives on disk (its checkout, or `node_modules/mpbus` in a user's
 * project): the native addon, its sources and the set-up scripts are found from there.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MpBusError, ErrorCodes } from './errors.js';

let root: string | undefined;

/** The directory holding mpbus's package.json and binding.gyp, found upwards from this module. */
export function packageRoot(): string {
  if (root !== undefined) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'binding.gyp'))) {
    const parent = dirname(dir);
    if (parent === dir)
      throw new MpBusError(
        ErrorCodes.addonMissing,
        `cannot find the mpbus package root above ${fileURLToPath(import.meta.url)} (no package.json beside a binding.gyp): reinstall mpbus`,
      );
    dir = parent;
  }
  root = dir;
  return dir;
}
