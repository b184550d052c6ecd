/** Finding mpbus's package from its code, and what a bundle that took mpbus in is told (src/package-root.ts). */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { findPackageRoot, packageRoot } from '../../src/package-root.js';

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
