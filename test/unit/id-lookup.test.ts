/** The membership test a transport sweeps its queues with when a signal calls asks off (src/actors/id-lookup.ts). */
import { describe, expect, it } from 'vitest';
import { idLookup } from '../../src/actors/id-lookup.js';

/** What `idLookup(ids)` says of every number from `from` to `to`, as the numbers it accepts. */
function accepted(ids: number[], from: number, to: number): number[] {
  const has = idLookup(ids);
  const found: number[] = [];
  for (let n = from; n <= to; n++) if (has(n)) found.push(n);
  return found;
}

describe('idLookup', () => {
  it('ids close together (a bitmap over their range): exactly those, at the edges of its bytes too', () => {
    const ids = [7, 8, 9, 15, 16, 23, 24, 31, 100];
    expect(accepted(ids, -5, 120)).toEqual(ids);
    const run = Array.from({ length: 10_000 }, (_, i) => 1_000_000 + i);
    expect(accepted(run, 999_990, 1_010_010)).toEqual(run);
  });

  it('ids far apart (a Set), in any order, repeated: exactly those', () => {
    const ids = [5_000_000, 3, 3, 2 ** 40];
    const has = idLookup(ids);
    expect([3, 5_000_000, 2 ** 40].every(has)).toBe(true);
    expect([0, 2, 4, 4_999_999, 2 ** 40 - 1, 2 ** 40 + 1].some(has)).toBe(false);
  });

  it('no ids accepts nothing; numbers that are not integers are not taken for their neighbours', () => {
    expect(accepted([], -10, 10)).toEqual([]);
    expect(accepted([1, 2.5, 4], 0, 5)).toEqual([1, 4]);
    expect(idLookup([1, 2.5, 4])(2.5)).toBe(true);
    expect(idLookup([1, 2, 3])(2.5)).toBe(false);
  });
});
