/**
 * A compiled fixture run as its own process, as a user runs a program: one JSON argument, its
 * output collected, `ready` on stdout awaited, tracked by a {@link TestGroup} (ended by PID at
 * cleanup).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { ShutdownTarget } from '../fixtures/shutdown-target.js';
import { fixturePath } from './paths.js';
import type { TestGroup } from './group.js';
import { sleep } from './wait.js';

/** How a script process ended, with all it printed. */
export interface ScriptEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Script {
  child: ChildProcess;
  ended: Promise<ScriptEnd>;
  /** What it printed on stdout so far. */
  stdout(): string;
}

/**
 * Starts `script` with `arg` (as JSON) in `g`; resolves once it printed `ready`. `ownProcessGroup`:
 * it leads a process group of its own, as a terminal's foreground job does (Ctrl-C there is
 * `process.kill(-pid, 'SIGINT')`: the script and every process it started).
 */
export async function startScript(
  g: TestGroup,
  script: string,
  arg: unknown,
  readyWithinMs = 30_000,
  ownProcessGroup = false,
  /** A command that runs Node for the script (`['unshare', '--pid', ...]`): its arguments come first. */
  wrapper: readonly string[] = [],
): Promise<Script> {
  const [command, ...args] = [...wrapper, process.execPath, script, JSON.stringify(arg)];
  const child = g.track(spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: ownProcessGroup }));
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const ended = new Promise<ScriptEnd>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr })));
  const deadline = Date.now() + readyWithinMs;
  while (!stdout.includes('ready')) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${script} exited before it was ready: ${stderr}`);
    if (Date.now() > deadline) throw new Error(`${script} not ready within ${readyWithinMs} ms: ${stderr}`);
    await sleep(20);
  }
  return { child, ended, stdout: () => stdout };
}

/**
 * The shutdown target (an actor system that its timer keeps alive) in `g`, as PID 1 of a PID
 * namespace of its own, as a container's command runs: its script (the wrapper's process) and
 * its pid as seen here. Killing the script kills it (`--kill-child`).
 */
export async function startShutdownTargetAsPid1(g: TestGroup): Promise<Script & { pid1: number }> {
  const target: ShutdownTarget = { prefix: g.prefix, entry: 'actors', load: 'timer' };
  const script = await startScript(g, fixturePath('shutdown-target'), target, 30_000, false, ['unshare', '--pid', '--fork', '--mount-proc', '--kill-child']);
  const pid1 = Number(readFileSync(`/proc/${script.child.pid}/task/${script.child.pid}/children`, 'utf8').trim());
  return { ...script, pid1 };
}
