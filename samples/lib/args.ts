/**
 * The command lines of the small samples: known flags only, `--help`, and numbers checked, so
 * that a typo says so (exit 2) instead of running with a NaN or crashing later.
 */
import { parseArgs } from 'node:util';

type Flags = Record<string, { type: 'string' | 'boolean' }>;

/** Parses this process's flags; prints `usage` and exits 0 on --help, 2 on an unknown or malformed flag. */
export function sampleArgs<F extends Flags>(usage: string, flags: F): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const options: Flags = { ...flags, help: { type: 'boolean' } };
    const { values, positionals } = parseArgs({ args: process.argv.slice(2), options, allowPositionals: true });
    const known = values as Record<string, string | boolean | undefined>;
    if (known.help === true) {
      console.log(usage);
      process.exit(0);
    }
    return { values: known, positionals };
  } catch (err) {
    return badArgs(usage, (err as Error).message);
  }
}

/** The integer value of a flag (`fallback` when not given), between `min` and `max`; else exits 2. */
export function intFlag(usage: string, name: string, value: string | boolean | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) return badArgs(usage, `--${name} takes a whole number from ${min} to ${max}, got ${String(value)}`);
  return n;
}

/** A string flag's value, or `fallback`; exits 2 when it was given without one. */
export function stringFlag(usage: string, name: string, value: string | boolean | undefined, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value === '') return badArgs(usage, `--${name} takes a value`);
  return value;
}

function badArgs(usage: string, why: string): never {
  console.error(`${why}\n\n${usage}`);
  process.exit(2);
}
