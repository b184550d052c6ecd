/** The flagship's child processes: the worker pool (launched by a primary), and hosts (--hosts N). */
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ActorSystem, Placement, ProcessPool } from '../../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Launches `count` worker processes in `system`'s group, named `<pool>-<serial>`: ready once
 * each one's JobWorker joined the group 'workers'; a worker that dies is started again. The
 * workers get this process's Node options (`--trace-gc`, `--cpu-prof`: bench/profile-actors.ts
 * measures every process of a run so), except a debugger's, whose port only one may hold.
 * `placement` undefined: the pool's default.
 */
export function launchWorkers(system: ActorSystem, count: number, pool = 'worker', placement?: Placement): Promise<ProcessPool> {
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--inspect') && !a.startsWith('--debug'));
  return system.launch(join(here, 'worker.js'), {
    count,
    name: pool,
    ready: { group: 'workers' },
    stopTimeoutMs: 2000,
    execArgv,
    ...(placement ? { placement } : {}),
  });
}

/** A started host process (--hosts), with the worker processes it launched. */
export interface HostProcess {
  name: string;
  pid: number;
  child: ChildProcess;
  exited: Promise<void>;
  workers: Array<{ name: string; pid: number }>;
}

/**
 * Starts `count` host processes (each the primary of a group of its own, so not a pool's
 * children) and waits until each says it is ready.
 */
export async function startHosts(argsOf: (index: number) => string[], count: number): Promise<HostProcess[]> {
  const starting = [...Array(count).keys()].map(
    (i) =>
      new Promise<HostProcess>((resolve, reject) => {
        const child = fork(join(here, 'host.js'), argsOf(i), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        const exited = new Promise<void>((done) => child.once('exit', () => done()));
        const timer = setTimeout(() => reject(new Error(`host ${i + 1} did not start within 60 s`)), 60_000);
        child.once('exit', (code, signal) => reject(new Error(`host ${i + 1} exited while starting (${signal ?? code})`)));
        child.on('message', (msg: { type?: string; name?: string; pid?: number; workers?: Array<{ name: string; pid: number }> }) => {
          if (msg.type !== 'ready') return;
          clearTimeout(timer);
          resolve({ name: msg.name!, pid: msg.pid!, child, exited, workers: msg.workers ?? [] });
        });
      }),
  );
  return Promise.all(starting);
}

/** Asks hosts to stop (each stops its workers and leaves its group), and SIGKILLs those still running after 15 s. */
export async function stopHosts(hosts: HostProcess[]): Promise<void> {
  for (const h of hosts) if (h.child.connected) h.child.send({ type: 'stop' });
  const all = Promise.all(hosts.map((h) => h.exited));
  const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 15_000).unref());
  if ((await Promise.race([all, timeout])) === 'timeout') {
    for (const h of hosts) if (h.child.exitCode === null) h.child.kill('SIGKILL');
    await all;
  }
}
