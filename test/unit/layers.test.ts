/**
 * The layers hold: dependency-cruiser checks every import of src, samples and bench against the
 * rules in .dependency-cruiser.cjs (imports go down the layers, no cycles, DPDK's name registry
 * through src/bus/registry.ts only). The violations known when the rules were written are
 * listed in .dependency-cruiser-known-violations.json (docs/architecture.md names them): a new
 * one fails, and so does a known one that is gone (the list then shrinks with it).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cruise, type IViolation } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../harness/paths.js';

const CONFIG = '.dependency-cruiser.cjs';
const KNOWN = '.dependency-cruiser-known-violations.json';
const SCOPE = ['src', 'samples', 'bench'];
const REFRESH = `if the change is meant, refresh the list with \`npm run layers:baseline\` and update docs/architecture.md`;

/** One line per violation: the rule, the import, and the cycle it closes. */
function describeViolation(v: Pick<IViolation, 'rule' | 'from' | 'to' | 'cycle'>): string {
  const cycle = v.cycle && v.cycle.length > 0 ? ` (cycle: ${[v.from, ...v.cycle.map((c) => c.name)].join(' -> ')})` : '';
  return `${v.rule.name}: ${v.from} -> ${v.to}${cycle}`;
}

describe('layers', () => {
  it('imports go down the layers, without cycles, beyond the known violations', async () => {
    const options = await extractDepcruiseOptions(join(repoRoot, CONFIG));
    const known = JSON.parse(readFileSync(join(repoRoot, KNOWN), 'utf8')) as IViolation[];
    const result = await cruise(SCOPE, { ...options, baseDir: repoRoot, validate: true, knownViolations: known });
    if (typeof result.output === 'string') throw new Error('dependency-cruiser returned a report instead of a result');
    const { violations, totalCruised } = result.output.summary;
    expect(totalCruised, 'dependency-cruiser found no modules: is @swc/core installed?').toBeGreaterThan(100);

    const fresh = violations.filter((v) => v.rule.severity !== 'ignore').map(describeViolation);
    expect.soft(fresh, `new layer violations; fix the import, or ${REFRESH}`).toEqual([]);

    const stillThere = new Set(violations.map(describeViolation));
    const gone = known.map(describeViolation).filter((v) => !stillThere.has(v));
    expect.soft(gone, `known violations that no longer occur: ${REFRESH}`).toEqual([]);
  });
});
