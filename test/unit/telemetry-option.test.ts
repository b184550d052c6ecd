/** The runtime's telemetry option and the EAL command line built from it (no DPDK; the other runtime options: runtime-options.test.ts). */
import { describe, expect, it } from 'vitest';
import { ealArgs, resolveOptions } from '../../src/runtime/options.js';

describe('runtime options: telemetry', () => {
  it('is on by default, as in DPDK; telemetry: false passes --no-telemetry', () => {
    expect(ealArgs(resolveOptions({}), 'primary', 0)).not.toContain('--no-telemetry');
    expect(ealArgs(resolveOptions({ telemetry: false }), 'secondary', 1)).toContain('--no-telemetry');
  });

  it('--telemetry and --no-telemetry in extraEalArgs are refused, naming the flag and the option', () => {
    for (const flag of ['--telemetry', '--no-telemetry']) {
      expect(() => resolveOptions({ extraEalArgs: [flag] })).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTION', message: expect.stringContaining(`must not contain ${flag}: telemetry is an option`) }),
      );
    }
    expect(() => resolveOptions({ telemetry: 'yes' as unknown as boolean })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
  });
});
