/**
 * Checks of public numeric and enumerated options: one rule per kind of value, one error shape
 * (`INVALID_OPTION`, naming the option, the accepted range and the value given), so that NaN,
 * Infinity, negatives and values Node would silently clamp (a `setTimeout` beyond 2^31-1 ms
 * fires after 1 ms) are refused where they are given instead of misbehaving later.
 */
import { ErrorCodes, MpBusError } from './errors.js';

/** The longest delay a Node timer can wait (2^31-1 ms, about 24.8 days); longer ones fire at once. */
export const MAX_DELAY_MS = 2 ** 31 - 1;

function invalid(name: string, rule: string, value: unknown, code: string = ErrorCodes.invalidOption): never {
  const shown = typeof value === 'string' ? JSON.stringify(value) : typeof value === 'bigint' ? `${value}n` : String(value);
  throw new MpBusError(code, `${name} must be ${rule}, got ${shown}`);
}

/**
 * A duration in ms: a finite number in [min, {@link MAX_DELAY_MS}]. `min` is 1 for timeouts
 * (0 would mean "already late": there is no "wait forever", a timeout must be given) and 0 for
 * grace periods (0: none).
 */
export function durationMs(value: unknown, name: string, min: 0 | 1): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > MAX_DELAY_MS) {
    invalid(name, `a number of milliseconds from ${min} to ${MAX_DELAY_MS} (about 24.8 days)`, value);
  }
  return value;
}

/**
 * An integer in [min, max] (`max` Infinity: no upper bound). The one integer check of the
 * project: options fail with INVALID_OPTION, arguments of a call with the `code` given
 * (INVALID_ARGUMENT).
 */
export function integerIn(value: unknown, name: string, min: number, max: number, code: string = ErrorCodes.invalidOption): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    invalid(name, max === Infinity ? `an integer of at least ${min}` : `an integer from ${min} to ${max}`, value, code);
  return value;
}

/** One of `allowed`. */
export function oneOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) invalid(name, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, value);
  return value as T;
}

/**
 * An object of options (or undefined: none given). JavaScript callers can pass anything: a
 * string or `null` where options go would otherwise read as no options, or throw a TypeError.
 */
export function optionsObject<T extends object>(value: T | undefined, name: string): T | undefined {
  if (value !== undefined && (value === null || typeof value !== 'object' || Array.isArray(value))) invalid(name, 'an object of options', value);
  return value;
}

/** A function (a callback option). */
export function callback<T>(value: unknown, name: string): T {
  if (typeof value !== 'function') invalid(name, 'a function', value);
  return value as T;
}

/** An `AbortSignal` (an `AbortController`'s `signal`, `AbortSignal.timeout()`...). */
export function abortSignal(value: unknown, name: string): AbortSignal {
  if (!(value instanceof AbortSignal)) invalid(name, "an AbortSignal (an AbortController's signal)", value);
  return value;
}

/** A boolean flag. */
export function flag(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') invalid(name, 'true or false', value);
  return value;
}

/**
 * What a DPDK file prefix may be: it names the group's runtime dir (`/var/run/dpdk/<prefix>`) and
 * hugepage files, so it is a name, never a path (no `/`, not `.`, `..` or empty).
 */
const FILE_PREFIX = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,47}$/;

/** True when `value` is a file prefix (see {@link filePrefix}). */
export function isFilePrefix(value: unknown): value is string {
  return typeof value === 'string' && FILE_PREFIX.test(value);
}

/** A group's file prefix: 1-48 characters of [A-Za-z0-9_.-], not starting with a dot. */
export function filePrefix(value: unknown, name: string): string {
  if (!isFilePrefix(value))
    invalid(name, "1-48 characters of [A-Za-z0-9_.-], not starting with '.' (it names the group's runtime dir and hugepage files)", value);
  return value;
}

/**
 * Refuses keys of `options` that are not among `known` (a typo such as `maxRestart` would
 * otherwise leave the default in force unseen), naming the closest known one.
 */
export function knownKeys(options: object, known: readonly string[], name: string, code: string = ErrorCodes.invalidOption): void {
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const near = known.find((k) => editDistance(k.toLowerCase(), key.toLowerCase()) <= 2);
    throw new MpBusError(code, `${name} has no option '${key}'${near === undefined ? '' : ` (did you mean '${near}'?)`}: it takes ${known.join(', ')}`);
  }
}

/**
 * The keys of an options type as {@link knownKeys} takes them. `all` names each key once, and
 * the compiler checks it names every key of `T`, so the list cannot fall behind the type.
 */
export function optionKeys<T extends object>(all: Record<keyof T, true>): readonly string[] {
  return Object.keys(all);
}

/**
 * `options` without its keys whose value is `undefined`: an option given as undefined is one not
 * given, so spreading it over defaults (`{ ...defaults, ...definedOnly(options) }`) keeps them.
 */
export function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter((entry) => entry[1] !== undefined)) as Partial<T>;
}

/** `value` as an options object (or undefined: none given) naming only options in `known`. */
export function checkedOptions<T extends object>(value: T | undefined, known: readonly string[], name: string): T | undefined {
  const options = optionsObject(value, name);
  if (options !== undefined) knownKeys(options, known, name);
  return options;
}

/** Levenshtein distance of two short strings (option names). */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}
