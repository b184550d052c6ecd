/**
 * The actor guide prints whole programs: each ```ts block of docs/actors.md is the file of
 * samples/guide/ named in its section's heading, with `mpbus` where the sample imports
 * `../../src/index.js`. The samples run in actors-samples.test.ts; the blocks as printed are
 * compiled against the installed package in package.test.ts. Any drift between the two fails here.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { codeBlocks } from './harness/markdown.js';
import { repoRoot } from './harness/paths.js';

const guide = readFileSync(join(repoRoot, 'docs', 'actors.md'), 'utf8');
const samples = join(repoRoot, 'samples', 'guide');

describe('docs/actors.md', () => {
  const blocks = codeBlocks(guide).filter((b) => b.lang === 'ts');

  it('prints every guide sample once, in order, as a user writes it', () => {
    const named = blocks.map((b) => /\(`(\d\d-[\w-]+\.ts)`\)/.exec(b.heading)?.[1]);
    expect(named).toEqual(
      readdirSync(samples)
        .filter((f) => f.endsWith('.ts'))
        .sort(),
    );
    for (const [i, block] of blocks.entries()) {
      const sample = readFileSync(join(samples, named[i]!), 'utf8');
      expect(sample, `samples/guide/${named[i]} imports the library from ../../src/index.js`).toContain("from '../../src/index.js'");
      expect(block.code, `docs/actors.md, section '${block.heading}'`).toBe(sample.replaceAll("'../../src/index.js'", "'mpbus'"));
    }
  });
});
