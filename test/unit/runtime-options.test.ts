/**
 * Runtime.start's options (src/runtime/options.ts), walked with bad values: each is
 * INVALID_OPTION naming the option before DPDK is touched; and the EAL command line built from
 * good ones. The shared checks of src/validation.ts and the interrupt watch specs too.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { validatePort, validateWatch } from '../../src/interrupts/validate.js';
import type { WatchSpec } from '../../src/interrupts/types.js';
import { onHugetlbfs } from '../../src/runtime/group.js';
import { ealArgs, resolveOptions } from '../../src/runtime/options.js';
import { repoRoot } from '../harness/paths.js';
import { MAX_DELAY_MS, callback, durationMs, integerIn, oneOf } from '../../src/validation.js';

function refuses(name: string, make: () => unknown): void {
  expect(make, `${name} was accepted`).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', message: expect.stringContaining(name) }));
}

const bad =
  (options: Record<string, unknown>): (() => unknown) =>
  () =>
    resolveOptions(options);

describe('runtime options', () => {
  it('refuses each option given a value of the wrong kind or range, naming it', () => {
    refuses('procType', bad({ procType: 'tertiary' }));
    for (const v of ['', '.hidden', 'a/b', 'x'.repeat(49), 'sp ace', 5]) refuses('filePrefix', bad({ filePrefix: v }));
    for (const v of [-1, 128, 1.5, '3', Number.NaN]) refuses('lcore', bad({ lcore: v }));
    for (const v of [0, -1, 1.5, '64', Number.NaN]) refuses('memoryMb', bad({ memoryMb: v }));
    refuses('socketMemMb[1]', bad({ socketMemMb: [64, 0] }));
    refuses('at least one NUMA socket', bad({ socketMemMb: [] }));
    refuses('cannot be used together', bad({ memoryMb: 64, socketMemMb: 64 }));
    refuses('logLevel', bad({ logLevel: 'verbose' }));
    for (const v of ['600000000000', '0xZZ', '']) refuses('baseVirtaddr', bad({ baseVirtaddr: v }));
    refuses('vdevs', bad({ vdevs: [''] }));
    refuses('pciAllowList', bad({ pciAllowList: [3] }));
    refuses('handleSignals', bad({ handleSignals: 'yes' }));
    refuses('onPrimaryLost', bad({ onPrimaryLost: 'restart' }));
    for (const flag of ['--file-prefix=x', '--huge-unlink', '-m', '--proc-type=primary']) refuses('extraEalArgs', bad({ extraEalArgs: [flag] }));
    refuses('dpdkLibraries', bad({ dpdkLibraries: ['rib', '../evil'] }));
    refuses('dpdkLibraries', bad({ dpdkLibraries: 'rib' }));
  });

  it('refuses a list option given as one string, and flags that are not booleans', () => {
    for (const name of ['vdevs', 'pciAllowList', 'extraEalArgs']) refuses(name, bad({ [name]: 'net_null0' }));
    refuses('extraEalArgs', bad({ extraEalArgs: [5] }));
    refuses('legacyMem', bad({ legacyMem: 'yes' }));
    refuses('singleFileSegments', bad({ singleFileSegments: 1 }));
  });

  it("logger: a pino logger (or one with pino's methods), else INVALID_OPTION naming what it lacks; kept out of the resolved options", () => {
    for (const v of [null, 'info', console, { child: () => undefined }]) refuses('logger must be a pino logger', bad({ logger: v }));
    refuses('without child, fatal', bad({ logger: console }));
    const log = pino({ level: 'silent' });
    expect(resolveOptions({ logger: log })).not.toHaveProperty('logger');
  });

  it('hugeDir: an absolute path to a directory on hugetlbfs, else INVALID_OPTION; --huge-dir in extraEalArgs names it', () => {
    for (const v of ['dev/hugepages', '', 5, '/nonexistent-mpbus-dir', tmpdir(), join(repoRoot, 'package.json')]) refuses('hugeDir', bad({ hugeDir: v }));
    refuses('not on hugetlbfs', bad({ hugeDir: tmpdir() }));
    refuses('use the option hugeDir', bad({ extraEalArgs: ['--huge-dir=/dev/hugepages'] }));
    refuses('use the option hugeDir', bad({ extraEalArgs: ['--huge-dir', '/dev/hugepages'] }));
  });

  it.runIf(onHugetlbfs('/dev/hugepages'))("hugeDir goes to the primary's EAL command line as its real path, not to a secondary's", () => {
    const opts = resolveOptions({ hugeDir: '/dev/../dev/hugepages/' });
    expect(opts.hugeDir).toBe('/dev/hugepages');
    expect(ealArgs(opts, 'primary', 0)).toContain('--huge-dir=/dev/hugepages');
    expect(ealArgs(opts, 'secondary', 1).some((a) => a.startsWith('--huge-dir'))).toBe(false); // DPDK reads the primary's
  });

  it('fills defaults, and builds the EAL command line from the options', () => {
    const opts = resolveOptions({ filePrefix: 'grp', vdevs: ['net_null0'], legacyMem: true, memoryMb: 256, dpdkLibraries: ['librte_rib', 'fib'] });
    expect(opts).toMatchObject({
      procType: 'auto',
      lcore: 'auto',
      logLevel: 'none',
      handleSignals: true,
      onPrimaryLost: 'exit',
      dpdkLibraries: ['rib', 'fib'],
    });
    const primary = ealArgs(opts, 'primary', 3);
    expect(primary).toEqual(
      expect.arrayContaining([
        '--proc-type=primary',
        '--file-prefix=grp',
        '--no-pci',
        '--base-virtaddr=0x600000000000',
        '-m',
        '256',
        '--legacy-mem',
        '--vdev=net_null0',
      ]),
    );
    expect(primary.find((a) => a.startsWith('--lcores='))).toMatch(/^--lcores=3@\([0-9,-]+\)$/);
    const secondary = ealArgs(resolveOptions({ pciAllowList: ['0000:00:04.0'], extraEalArgs: ['--iova-mode=va'] }), 'secondary', 5);
    expect(secondary).toEqual(expect.arrayContaining(['--proc-type=secondary', '-a', '0000:00:04.0', '--iova-mode=va']));
    expect(secondary).not.toContain('--no-pci');
    expect(secondary.some((a) => a.startsWith('--base-virtaddr'))).toBe(false); // the primary's choice
  });
});

describe('shared option checks', () => {
  it('durations: finite ms up to the longest timer delay; timeouts from 1, grace periods from 0', () => {
    for (const v of [Number.NaN, Infinity, -1, MAX_DELAY_MS + 1, '5', 5n]) refuses('t', () => durationMs(v, 't', 0));
    refuses('t', () => durationMs(0, 't', 1));
    expect(durationMs(0, 'grace', 0)).toBe(0);
    expect(durationMs(0.5 + 1, 't', 1)).toBe(1.5);
    expect(durationMs(MAX_DELAY_MS, 't', 1)).toBe(MAX_DELAY_MS);
  });

  it('integers in a range, one of a set, callbacks', () => {
    for (const v of [0, 11, 1.5, Number.NaN, '3']) refuses('n', () => integerIn(v, 'n', 1, 10));
    expect(integerIn(10, 'n', 1, 10)).toBe(10);
    refuses("one of 'a', 'b'", () => oneOf('c', 'mode', ['a', 'b']));
    expect(oneOf('b', 'mode', ['a', 'b'])).toBe('b');
    refuses('cb', () => callback('f', 'cb'));
    const f = (): void => undefined;
    expect(callback(f, 'cb')).toBe(f);
  });

  it('interrupt watches and port ids', () => {
    for (const port of [-1, 65536, 1.5, '0']) refuses('port id', () => validatePort(port));
    const watches: unknown[] = [
      null,
      'lsc',
      { type: 'lsc', port: -1 },
      { type: 'alarm', name: '', delayMs: 10 },
      { type: 'alarm', name: 'a', delayMs: 0 },
      { type: 'alarm', name: 'a', delayMs: 24 * 3600 * 1000 + 1 },
      { type: 'fd' },
    ];
    for (const w of watches) expect(() => validateWatch(w as WatchSpec)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    for (const w of [{ type: 'lsc', port: 0 }, { type: 'removal', port: 65535 }, { type: 'ports' }, { type: 'alarm', name: 'tick', delayMs: 1 }])
      expect(() => validateWatch(w as WatchSpec)).not.toThrow();
  });
});
