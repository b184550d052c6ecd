/**
 * The benchmarks' latency recorder (bench/lib.ts `Samples`): its percentiles are those of
 * `percentile` over the same values, also once it has grown past its first capacity, and it
 * says NaN when nothing was recorded.
 */
import { describe, expect, it } from 'vitest';
import { percentile, Samples } from '../../bench/lib.js';

describe('Samples', () => {
  it('gives the percentiles percentile() gives, past its first capacity', () => {
    const values = Array.from({ length: 200_000 }, (_, i) => ((i * 7919) % 100_003) / 7);
    const samples = new Samples();
    for (const v of values) samples.add(v);
    expect(samples.length).toBe(values.length);
    for (const p of [0, 1, 50, 99, 99.9, 100]) expect(samples.percentile(p)).toBe(percentile([...values], p));
  });

  it('is NaN with nothing recorded, and exact with one value', () => {
    const samples = new Samples();
    expect(samples.percentile(50)).toBeNaN();
    samples.add(4.5);
    expect(samples.percentile(1)).toBe(4.5);
    expect(samples.percentile(99)).toBe(4.5);
  });
});
