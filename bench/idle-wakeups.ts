/**
 * `node dist/bench/idle-wakeups.js [--seconds 20] [--kills 6] [--idle-poll-ms N]`: what a quiet
 * group costs and how soon it learns of a death. A primary with one actor and a router over the
 * group `idle-workers` launches two secondaries with one actor each in that group, sends 1,000
 * asks through the router, then all stay idle for `--seconds`: each process's CPU (the
 * scheduler's run time of all its threads, /proc/<pid>/task/<tid>/schedstat) and context
 * switches per second (each a thread woken: the event loop, the doorbell thread, DPDK's and V8's
 * threads), all threads and the event loop's alone, are printed. `--idle-poll-ms 100` keeps the
 * actor transport's registry poll at its 100 ms (no idle back-off, as before it had one). Then, `--kills` times, a secondary that the primary did not
 * launch (so no child-process exit event tells it) is SIGKILLed: the time from the kill to the
 * primary's `peerDown$` for it is printed.
 */
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { launchedChild, Membership, startActorSystem } from '../src/index.js';
import { contextSwitches } from './lib.js';

const { values } = parseArgs({
  options: { seconds: { type: 'string' }, kills: { type: 'string' }, 'idle-poll-ms': { type: 'string' }, secondary: { type: 'string' } },
  strict: true,
});
const seconds = Number(values.seconds ?? 20);
const kills = Number(values.kills ?? 6);
const idlePollMs = values['idle-poll-ms'] ?? process.env.MPBENCH_IDLE_POLL_MS;
// the launched workers get it from the environment
if (idlePollMs !== undefined) process.env.MPBENCH_IDLE_POLL_MS = idlePollMs;
const mailboxes = idlePollMs !== undefined ? { idlePollMs: Number(idlePollMs) } : {};

/** Run time (ns) and context switches so far, summed over the process's threads, and those of its main thread (the event loop). */
function usage(pid: number): { runNs: number; switches: number; loopSwitches: number } {
  let runNs = 0;
  let switches = 0;
  let loopSwitches = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      runNs += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      const threadSwitches = contextSwitches(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'));
      switches += threadSwitches;
      if (tid === String(pid)) loopSwitches += threadSwitches;
    } catch {
      // a thread that ended meanwhile
    }
  }
  return { runNs, switches, loopSwitches };
}

async function primary(): Promise<void> {
  const filePrefix = `mpbench_idle_${process.pid}`;
  const system = await startActorSystem({ filePrefix, procType: 'primary', mailboxes });
  await system.spawn('idle-primary', { x: () => 0 });
  const router = system.router('idle-workers', { strategy: 'round-robin', group: 'idle-workers' });
  const pool = await system.launch(fileURLToPath(import.meta.url), { count: 2, name: 'idle', ready: { group: 'idle-workers' } });
  while (router.workers().length < 2) await sleep(20);
  for (let i = 0; i < 1000; i++) await router.ref.ask('x', i);
  await sleep(1000);
  const pids = [process.pid, ...pool.pids()];
  const before = pids.map(usage);
  for (let s = 0; s < seconds; s++) {
    process.stderr.write(`\ridle ${s + 1}/${seconds} s`);
    await sleep(1000);
  }
  process.stderr.write('\n');
  const after = pids.map(usage);
  pids.forEach((pid, i) => {
    const cpu = (after[i]!.runNs - before[i]!.runNs) / (seconds * 1e7);
    const switches = (after[i]!.switches - before[i]!.switches) / seconds;
    const loop = (after[i]!.loopSwitches - before[i]!.loopSwitches) / seconds;
    console.log(
      `${i === 0 ? 'primary  ' : 'secondary'} pid ${pid}: ${cpu.toFixed(3)}% CPU, ${switches.toFixed(1)} context switches/s (the event loop's ${loop.toFixed(1)})`,
    );
  });

  const members = Membership.join();
  const ms: number[] = [];
  for (let k = 0; k < kills; k++) {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--secondary', filePrefix], { stdio: 'inherit' });
    while (!members.peers().some((p) => p.pid === child.pid)) await sleep(20);
    await sleep(200 + Math.random() * 300); // at a random point of any periodic scan
    const down = new Promise<void>((resolve) => {
      const sub = members.peerDown$.subscribe((d) => {
        if (d.peer.pid !== child.pid) return;
        sub.unsubscribe();
        resolve();
      });
    });
    const t0 = performance.now();
    child.kill('SIGKILL');
    await down;
    ms.push(performance.now() - t0);
  }
  console.log(`a SIGKILLed secondary reported down after (ms): ${ms.map((x) => x.toFixed(1)).join(', ')}`);
  await system.close();
}

if (values.secondary !== undefined) {
  await startActorSystem({ filePrefix: values.secondary, procType: 'secondary' });
  setInterval(() => undefined, 60_000);
} else if (launchedChild()) {
  const system = await startActorSystem({ mailboxes });
  await system.spawn(`idle-worker-${launchedChild()!.index}`, { x: (n: number) => n }, { groups: ['idle-workers'] });
} else {
  await primary();
}
