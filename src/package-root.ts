/**
 * Where this mpbus package lives on disk (its checkout, or `node_modules/mpbus` in a user's
 * project): the native addon, its sources and the set-up scripts are found from there.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MpBusError, ErrorCodes } from './errors.js';

let root: string | undefined;

/** The directory holding mpbus's package.json and binding.gyp, found upwards from this module. */
export function packageRoot(): string {
  // (a CommonJS bundle leaves `import.meta` empty: the URL is then undefined)
  root ??= findPackageRoot(import.meta.url);
  return root;
}

/** Whether `dir` holds mpbus's package.json (by its name: the application's own may sit beside a binding.gyp of its own) and binding.gyp. */
function isMpbusRoot(dir: string): boolean {
  if (!existsSync(join(dir, 'binding.gyp'))) return false;
  try {
    return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown }).name === 'mpbus';
  } catch {
    return false;
  }
}

/**
 * The mpbus package directory above the module at `moduleUrl`.
 * @throws {MpBusError} `ADDON_MISSING` when there is none: mpbus's code was copied out of its
 *   package, which is what a bundler does to the dependencies it takes into its bundle.
 */
export function findPackageRoot(moduleUrl: string | undefined): string {
  const from = typeof moduleUrl === 'string' && moduleUrl.startsWith('file:') ? fileURLToPath(moduleUrl) : undefined;
  if (from !== undefined) {
    for (let dir = dirname(from); ; dir = dirname(dir)) {
      if (isMpbusRoot(dir)) return dir;
      if (dirname(dir) === dir) break;
    }
  }
  throw bundledError(
    from === undefined
      ? 'runs in a module that has no file URL (a CommonJS bundle)'
      : `runs at ${from}, with no mpbus package.json beside a binding.gyp above it`,
  );
}

/** `ADDON_MISSING` for mpbus's code taken into a bundle, `what` saying how that showed. */
export function bundledError(what: string): MpBusError {
  return new MpBusError(
    ErrorCodes.addonMissing,
    `mpbus's code ${what}: a bundler (esbuild, webpack, rollup, ncc) took mpbus into the bundle, away from its native addon. ` +
      `Keep mpbus out of the bundle (esbuild --external:mpbus or --packages=external, webpack externals, rollup external) and install it beside the bundle (npm install mpbus); ` +
      `if nothing bundled it, reinstall mpbus`,
  );
}

/**
 * The command that runs mpbus's bin in the application's project, for the fixes errors name:
 * `yarn mpbus` in a Yarn install (Plug'n'Play has no `node_modules/.bin`, and `npx mpbus` there
 * asks the registry for a package of that name), `npx mpbus` otherwise.
 */
export function mpbusCommand(env: NodeJS.ProcessEnv = process.env, versions: NodeJS.ProcessVersions = process.versions): string {
  const yarn = 'pnp' in versions || (env.npm_config_user_agent ?? '').startsWith('yarn/');
  return yarn ? 'yarn mpbus' : 'npx mpbus';
}
