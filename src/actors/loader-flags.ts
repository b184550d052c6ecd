/**
 * The Node flags of this process that decide how modules load (`--import`, `--require`,
 * `--loader`, `--conditions`): a launched child needs them to load the module its parent
 * loaded. Run through tsx, say, the parent has `--import <tsx's loader>`, and a child without
 * it cannot load a `.ts` module. Other flags (`--inspect`, `--cpu-prof`, heap sizes) stay the
 * parent's own (see the pool option `execArgv`).
 */

/** Flags that take a value, as `--flag value` or `--flag=value`. */
const VALUE_FLAGS = new Set(['--import', '--require', '-r', '--loader', '--experimental-loader', '--conditions', '-C']);

/** The module-loading flags of `execArgv` (this process's by default), in their order, each with its value. */
export function moduleLoadingFlags(execArgv: readonly string[] = process.execArgv): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i]!;
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    if (!VALUE_FLAGS.has(flag)) continue;
    if (eq > 0) kept.push(arg);
    else if (i + 1 < execArgv.length) kept.push(arg, execArgv[++i]!);
  }
  return kept;
}
