/** Finding mpbus's package from its code, and what a bundle that took mpbus in is told (src/package-root.ts). */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { addonMissingMessage } from '../../src/native/addon.js';
import { findPackageRoot, mpbusCommand, packageRoot } from '../../src/package-root.js';

const scratch = mkdtempSync(join(tmpdir(), 'mpbus-root-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A directory with a package.json named `name` and, if `gyp`, a binding.gyp. */
function pkg(dir: string, name: string, gyp: boolean): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name }));
  if (gyp) writeFileSync(join(dir, 'binding.gyp'), '{}');
  return dir;
}

describe('findPackageRoot', () => {
  it("finds this checkout from mpbus's own modules", () => {
    expect(packageRoot()).toBe(findPackageRoot(pathToFileURL(join(packageRoot(), 'dist', 'src', 'index.js')).href));
  });

  it("finds node_modules/mpbus from its dist, past the application's own addon", () => {
    const app = pkg(join(scratch, 'app'), 'app', true); // an application with a native addon of its own
    const mpbus = pkg(join(app, 'node_modules', 'mpbus'), 'mpbus', true);
    mkdirSync(join(mpbus, 'dist', 'src'), { recursive: true });
    expect(findPackageRoot(pathToFileURL(join(mpbus, 'dist', 'src', 'package-root.js')).href)).toBe(mpbus);
  });

  it('tells a bundle that took mpbus in to keep it external', () => {
    const app = pkg(join(scratch, 'bundled'), 'app', true);
    const bundle = pathToFileURL(join(app, 'bundle', 'main.mjs')).href;
    expect(() => findPackageRoot(bundle)).toThrow(
      expect.objectContaining({ code: 'ADDON_MISSING', message: expect.stringMatching(/bundle.*main\.mjs.*--external:mpbus/) }),
    );
  });

  it('tells a CommonJS bundle, whose import.meta is empty, the same', () => {
    expect(() => findPackageRoot(undefined)).toThrow(
      expect.objectContaining({ code: 'ADDON_MISSING', message: expect.stringMatching(/CommonJS bundle.*--external:mpbus/) }),
    );
  });
});

describe('the commands errors name, by the package manager that installed mpbus', () => {
  const npmAgent = { npm_config_user_agent: 'npm/10.8.2 node/v20.20.2 linux x64' };
  const yarnAgent = { npm_config_user_agent: 'yarn/4.18.1 npm/? node/v20.20.2 linux x64' };

  it("`yarn mpbus` under Yarn (Plug'n'Play, or run by yarn), `npx mpbus` otherwise", () => {
    expect(mpbusCommand(npmAgent, process.versions)).toBe('npx mpbus');
    expect(mpbusCommand({}, process.versions)).toBe('npx mpbus');
    expect(mpbusCommand(yarnAgent, process.versions)).toBe('yarn mpbus');
    expect(mpbusCommand({}, { ...process.versions, pnp: '3' })).toBe('yarn mpbus');
  });

  it('the missing addon: why (pnpm 10, Yarn), and the build that works there', () => {
    const npm = addonMissingMessage('/app/node_modules/mpbus/build/Release/mpbus.node', 'npx mpbus');
    expect(npm).toMatch(/not built \(\/app\/node_modules\/mpbus\/.*\): run `npx mpbus setup` .*, or, with those installed, `npm rebuild mpbus`$/);
    expect(addonMissingMessage('/app/node_modules/.pnpm/mpbus@0.1.0/node_modules/mpbus/build/Release/mpbus.node', 'npx mpbus')).toContain(
      '(a pnpm install: pnpm 10',
    );
    const yarn = addonMissingMessage('/app/.yarn/unplugged/mpbus-virtual-1/node_modules/mpbus/build/Release/mpbus.node', 'yarn mpbus');
    expect(yarn).toContain("(a Yarn install: Yarn runs no dependency's build script while its setting enableScripts is false): run `yarn mpbus setup`");
    expect(yarn).not.toContain('npm rebuild');
  });
});
