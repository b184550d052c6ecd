/** The counters file's histogram arithmetic (no DPDK): buckets at most 25% wide, quantiles from them. */
import { describe, expect, it } from 'vitest';
import { BUCKETS, bucketOf, bucketUpperMs, FILE_BYTES, quantileMs, ROW_BYTES, SLOT_BYTES } from '../../src/runtime/counters-layout.js';

describe('counters layout', () => {
  it('a slot is whole pages, so each process maps only its own', () => {
    expect(SLOT_BYTES % 4096).toBe(0);
    expect(ROW_BYTES * 512).toBe(SLOT_BYTES);
    expect(FILE_BYTES).toBe(128 * SLOT_BYTES);
  });

  it('a latency falls in a bucket whose upper bound is at most 25% above it', () => {
    for (let ms = 0.0011; ms < 30_000; ms *= 1.07) {
      const b = bucketOf(ms);
      expect(bucketUpperMs(b)).toBeGreaterThanOrEqual(ms);
      expect(bucketUpperMs(b)).toBeLessThanOrEqual(ms * 1.25 + 1e-9);
      if (b > 1) expect(bucketUpperMs(b - 1)).toBeLessThan(ms + 1e-9);
    }
    expect(bucketOf(0)).toBe(0);
    expect(bucketOf(-1)).toBe(0);
    expect(bucketOf(NaN)).toBe(0);
    expect(bucketOf(1e9)).toBe(BUCKETS - 1);
  });

  it('quantiles come from the cumulative counts', () => {
    const h = new Array<number>(BUCKETS).fill(0);
    expect(quantileMs(h, 0.5)).toBeUndefined();
    for (let i = 0; i < 99; i++) h[bucketOf(0.1)]!++;
    h[bucketOf(50)]!++;
    expect(quantileMs(h, 0.5)).toBe(bucketUpperMs(bucketOf(0.1)));
    expect(quantileMs(h, 0.99)).toBe(bucketUpperMs(bucketOf(0.1)));
    expect(quantileMs(h, 1)).toBe(bucketUpperMs(bucketOf(50)));
  });
});
