/** Small helpers the samples share: start copies of a script as child processes, check cleanup. */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { constants as osConstants } from 'node:os';

export interface Child {
  child: ChildProcess;
  pid: number;
  /** Resolves with the exit code (or signal) when the process ends. */
  exited: Promise<number | string>;
}

const children = new Set<Child>();
/** The signal (SIGINT, SIGTERM) this launcher is ending on, once one came. */
let endingSignal: NodeJS.Signals | undefined;

/**
 * Ctrl-C or SIGTERM to the launcher: each child still running gets the signal once (each one
 * leaves its group as mpbus does on a signal), and the launcher exits with the signal's code when
 * they have all ended. The children run in their own process group, so a Ctrl-C in a terminal
 * reaches them through here only: a second signal would end an mpbus process at once, and a
 * launcher that exits first would give the shell back while they still print.
 */
function passSignalsOn(signal: NodeJS.Signals): void {
  endingSignal = signal;
  for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill(signal);
  void Promise.all([...children].map((c) => c.exited)).then(() => {
    for (const cleanup of cleanups) cleanup();
    process.exit(verdict(false, '', ''));
  });
}

const cleanups: (() => void)[] = [];

/** Runs `cleanup` when a signal ends the launcher, once its children have ended (files the run's own end would remove). */
export function onSignalEnd(cleanup: () => void): void {
  cleanups.push(cleanup);
}

/**
 * Prints how the launcher's run went and returns its exit code: 0 or 1, or the signal's code
 * (130 for SIGINT) when one stopped the run, whose children then end without finishing it.
 */
export function verdict(ok: boolean, done: string, failed: string): number {
  if (endingSignal) {
    console.log(`${endingSignal}: stopped; every process has ended`);
    return 128 + osConstants.signals[endingSignal];
  }
  console.log(ok ? done : failed);
  return ok ? 0 : 1;
}

/** Runs `script` with `args` as a child process that shares this one's stdout/stderr (see {@link passSignalsOn}). */
export function start(script: string, args: string[]): Child {
  if (children.size === 0) {
    process.once('SIGINT', passSignalsOn);
    process.once('SIGTERM', passSignalsOn);
  }
  const child = fork(script, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], detached: true });
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code ?? 0)));
  const started = { child, pid: child.pid!, exited };
  children.add(started);
  return started;
}

/** Waits for every child; SIGKILLs the ones still running after `timeoutMs`. Resolves true when all exited with 0. */
export async function waitAll(children: Child[], timeoutMs = 60_000): Promise<boolean> {
  const timer = setTimeout(() => {
    for (const c of children) if (c.child.exitCode === null) c.child.kill('SIGKILL');
  }, timeoutMs);
  const codes = await Promise.all(children.map((c) => c.exited));
  clearTimeout(timer);
  return codes.every((c) => c === 0);
}

/** Runtime dirs and hugepage files a group left behind (none after a clean exit). */
export function leftovers(prefix: string): string[] {
  const left: string[] = [];
  if (existsSync(`/var/run/dpdk/${prefix}`)) left.push(`/var/run/dpdk/${prefix}`);
  try {
    for (const f of readdirSync('/dev/hugepages')) if (f.startsWith(`${prefix}map_`)) left.push(`/dev/hugepages/${f}`);
  } catch {
    // no hugetlbfs mount
  }
  return left;
}

/** Resolves once `condition()` holds (polling), or rejects after `timeoutMs`. */
export async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** True while a process with this pid exists (signal 0 only checks). */
export function alive(pid: number): boolean {
  try {
    return process.kill(pid, 0);
  } catch {
    return false;
  }
}

/**
 * CPU time (user + system, every thread) a process has used so far, in seconds, from
 * /proc/<pid>/stat (clock ticks of 10 ms); undefined once it is gone.
 */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the fields after the command name, which is in parentheses and may hold spaces
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/**
 * CPU time (ns) of every thread of a process so far, from each thread's schedstat (finer than
 * the 10 ms ticks of {@link cpuSeconds}, which it falls back to where schedstat is missing).
 */
export function cpuNs(pid: number): number {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    return ns;
  } catch {
    return (cpuSeconds(pid) ?? 0) * 1e9;
  }
}

/** The CPUs a process may run on (`Cpus_allowed_list` of its main thread), or '?' when it is gone. */
export function cpusOf(pid: number): string {
  try {
    return /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?';
  } catch {
    return '?';
  }
}
