/**
 * The job of the peers suite (bench/suites/peers.ts), the same for every implementation: a
 * caller asks worker processes to `square` a 64-byte value and gets the square back, or tells
 * them `count` (one way) and later asks each worker's `total`. Also: what a caller-side client
 * of one implementation offers the measuring code, and how a caller starts its worker processes.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchPackr } from '../values.js';

/** The message of a `square` ask or a `count` tell. */
export interface SquareValue {
  n: number;
  pad: string;
}

/** The payload size every peers row carries (msgpack encoding of a SquareValue). */
export const SQUARE_BYTES = 64;

/** A value whose msgpack encoding is SQUARE_BYTES long for n in 256..65535 (uint16). */
export function squareValue(n = 1000): SquareValue {
  const packr = benchPackr();
  let pad = 'x'.repeat(SQUARE_BYTES - 14);
  for (let i = 0; i < 8; i++) {
    const len = packr.pack({ n, pad }).length;
    if (len === SQUARE_BYTES) break;
    pad = 'x'.repeat(Math.max(0, pad.length + SQUARE_BYTES - len));
  }
  return { n, pad };
}

/** The square a worker replies. */
export function square(v: SquareValue): number {
  return v.n * v.n;
}

/**
 * One implementation, seen from the caller. `worker` picks one of the two workers for direct
 * asks and tells; clients that balance on their own (a router, a service broker) ignore it.
 */
export interface SquareClient {
  ask(worker: number, v: SquareValue): Promise<number>;
  tell(worker: number, v: SquareValue): void;
  /** The number of `count` tells worker 0 or 1 has handled. */
  total(worker: number): Promise<number>;
}

/** A worker process the caller started. */
export interface WorkerProcess {
  child: ChildProcess;
  pid: number;
}

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Forks `script` (in this directory) with `args` and waits for its `{ ready: true }` message,
 * at most `timeoutMs`; kills it by PID when it does not come.
 */
export async function startWorker(
  script: string,
  args: string[],
  options: { serialization?: 'json' | 'advanced'; timeoutMs?: number } = {},
): Promise<WorkerProcess> {
  const child = fork(join(here, script), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: options.serialization ?? 'json' });
  const worker = { child, pid: child.pid! };
  const timeoutMs = options.timeoutMs ?? 30_000;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${script} (pid ${child.pid}) not ready within ${timeoutMs} ms`)), timeoutMs);
      child.on('message', function onReady(m: { ready?: boolean }) {
        if (m?.ready !== true) return;
        child.off('message', onReady);
        clearTimeout(timer);
        resolve();
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${script} exited while starting (${signal ?? code})`));
      });
    });
  } catch (err) {
    await killWorker(worker);
    throw err;
  }
  return worker;
}

/** Asks a worker to stop (`{ stop: true }`), and kills it by PID after `graceMs`. */
export async function stopWorker(w: WorkerProcess, graceMs = 3000): Promise<void> {
  if (w.child.exitCode !== null || w.child.signalCode !== null) return;
  const exited = once(w.child, 'exit');
  if (w.child.connected) w.child.send({ stop: true });
  const timer = setTimeout(() => killPid(w.pid), graceMs);
  await exited;
  clearTimeout(timer);
}

async function killWorker(w: WorkerProcess): Promise<void> {
  if (w.child.exitCode !== null || w.child.signalCode !== null) return;
  const exited = once(w.child, 'exit');
  killPid(w.pid);
  await exited;
}

/** SIGKILL by PID; a process already gone is fine. */
export function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Calls `stop` once when the parent says `{ stop: true }` or goes away. */
export function onStopRequest(stop: () => Promise<void>): void {
  let stopping = false;
  const once = (): void => {
    if (stopping) return;
    stopping = true;
    void stop().finally(() => process.exit(0));
  };
  process.on('message', (m: { stop?: boolean }) => {
    if (m?.stop === true) once();
  });
  process.on('disconnect', once);
}
