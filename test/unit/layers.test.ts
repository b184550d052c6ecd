/**
 * The layers hold: dependency-cruiser checks every import of src, samples and bench against the
 * rules in .dependency-cruiser.cjs (imports go down the layers, no cycles, DPDK's name registry
 * through src/bus/registry.ts only), and any violation fails (docs/architecture.md, "Layers").
 */
import { join } from 'node:path';
import { cruise, type IViolation } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../harness/paths.js';

const CONFIG = '.dependency-cruiser.cjs';
const SCOPE = ['src', 'samples', 'bench'];

/** One line per violation: the rule, the import, and the cycle it closes. */
function describeViolation(v: Pick<IViolation, 'rule' | 'from' | 'to' | 'cycle'>): string {
  const cycle = v.cycle && v.cycle.length > 0 ? ` (cycle: ${[v.from, ...v.cycle.map((c) => c.name)].join(' -> ')})` : '';
  return `${v.rule.name}: ${v.from} -> ${v.to}${cycle}`;
}

describe('layers', () => {
  it('imports go down the layers, without cycles', async () => {
    const options = await extractDepcruiseOptions(join(repoRoot, CONFIG));
    const result = await cruise(SCOPE, { ...options, baseDir: repoRoot, validate: true });
    if (typeof result.output === 'string') throw new Error('dependency-cruiser returned a report instead of a result');
    const { violations, totalCruised } = result.output.summary;
    expect(totalCruised, 'dependency-cruiser found no modules: is @swc/core installed?').toBeGreaterThan(100);

    // Every violation counts, whatever its severity: no rule is a warning.
    expect(violations.map(describeViolation), 'layer violations: make the import go down (docs/architecture.md, "Layers")').toEqual([]);
  });
});
