/**
 * Waiting in tests: a pause, and polling until something holds, in one place instead of a copy
 * per test file. Used by test files, fixtures (inside agents) and unit tests alike: it imports
 * nothing of mpbus.
 */

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Reads `read()` every `intervalMs` until `ok` accepts its value, and returns that value; after
 * `timeoutMs`, returns the last value read, so that the test's `expect` on it shows what was
 * there instead.
 */
export async function poll<T>(read: () => T | Promise<T>, ok: (value: T) => boolean, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() > deadline) return value;
    await sleep(intervalMs);
  }
}

/** Checks `check()` every `intervalMs` until it is true; throws "timed out waiting for <what>" after `timeoutMs`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000, intervalMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/**
 * Reads `read()` every `intervalMs` until `ok` accepts its value, and returns that value; after
 * `timeoutMs`, throws "timed out waiting for <what>" with the last value read.
 */
export async function pollUntil<T>(what: string, read: () => T | Promise<T>, ok: (value: T) => boolean, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  const value = await poll(read, ok, timeoutMs, intervalMs);
  if (!ok(value)) throw new Error(`timed out waiting for ${what}; last ${JSON.stringify(value)}`);
  return value;
}
