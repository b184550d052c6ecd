/** The parent's module-loading flags a launched child gets (src/actors/loader-flags.ts). */
import { describe, expect, it } from 'vitest';
import { moduleLoadingFlags } from '../../src/actors/loader-flags.js';

describe('moduleLoadingFlags', () => {
  it("keeps tsx's flags, as tsx runs a program", () => {
    const tsx = ['--require', '/app/node_modules/tsx/dist/preflight.cjs', '--import', 'file:///app/node_modules/tsx/dist/loader.mjs'];
    expect(moduleLoadingFlags([...tsx, '--inspect=0'])).toEqual(tsx);
  });

  it('keeps both spellings, short ones included, and drops the rest', () => {
    expect(
      moduleLoadingFlags([
        '--max-semi-space-size=32',
        '-r',
        'a.cjs',
        '--loader=ts-node/esm',
        '--cpu-prof',
        '-C',
        'development',
        '--import=b.mjs',
        '--conditions=x',
      ]),
    ).toEqual(['-r', 'a.cjs', '--loader=ts-node/esm', '-C', 'development', '--import=b.mjs', '--conditions=x']);
  });

  it('keeps nothing of a plain node', () => {
    expect(moduleLoadingFlags([])).toEqual([]);
    expect(moduleLoadingFlags(['--enable-source-maps', '--inspect'])).toEqual([]);
  });

  it('a value-taking flag with no value left is dropped', () => {
    expect(moduleLoadingFlags(['--import'])).toEqual([]);
  });
});
