/** Child processes of the flagship (workers, and hosts with --hosts): started and stopped alike. */
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { alive } from '../lib/processes.js';

/** A started child; hosts also report the worker processes they started. */
export interface WorkerProcess {
  name: string;
  pid: number;
  child: ChildProcess;
  exited: Promise<void>;
  workers?: Array<{ name: string; pid: number }>;
}

const here = dirname(fileURLToPath(import.meta.url));

/** Starts `count` copies of `script` (args per copy) and waits until each says it is ready. */
export async function startChildren(script: string, argsOf: (index: number) => string[], count: number, what: string): Promise<WorkerProcess[]> {
  const starting = [...Array(count).keys()].map(
    (i) =>
      new Promise<WorkerProcess>((resolve, reject) => {
        const child = fork(join(here, script), argsOf(i), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        const exited = new Promise<void>((done) => child.once('exit', () => done()));
        const timer = setTimeout(() => reject(new Error(`${what} ${i + 1} did not start within 60 s`)), 60_000);
        child.once('exit', (code, signal) => reject(new Error(`${what} ${i + 1} exited while starting (${signal ?? code})`)));
        child.on('message', (msg: { type?: string; name?: string; pid?: number; workers?: Array<{ name: string; pid: number }> }) => {
          if (msg.type !== 'ready') return;
          clearTimeout(timer);
          resolve({ name: msg.name!, pid: msg.pid!, child, exited, ...(msg.workers ? { workers: msg.workers } : {}) });
        });
      }),
  );
  return Promise.all(starting);
}

/** Starts the worker processes of group `prefix` (actor names `worker-<namePrefix><n>`). */
export function startWorkers(prefix: string, count: number, namePrefix = ''): Promise<WorkerProcess[]> {
  return startChildren('worker.js', (i) => [prefix, `${namePrefix}${i + 1}`], count, 'worker');
}

/** Asks children to stop, and SIGKILLs those still running after 15 s. */
export async function stopWorkers(workers: WorkerProcess[]): Promise<void> {
  for (const w of workers) if (w.child.connected) w.child.send({ type: 'stop' });
  const all = Promise.all(workers.map((w) => w.exited));
  const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 15_000).unref());
  if ((await Promise.race([all, timeout])) === 'timeout') {
    for (const w of workers) if (alive(w.pid)) process.kill(w.pid, 'SIGKILL');
    await all;
  }
}
