/**
 * What an idle actor process costs: a primary with an actor and a router following the group
 * `idlers`, and two worker processes it launches, each with an actor in that group. After one
 * ask through the router to each worker (so the primary tracks their names), nothing is sent
 * for `seconds`; over that time it reads, for every thread of the three processes,
 * utime+stime (`/proc/<pid>/task/<tid>/stat`) and voluntary+nonvoluntary context switches
 * (`/proc/<pid>/task/<tid>/status`), and prints per process the CPU % of one CPU and the
 * context switches per second (each one a thread woken: the event loop, the doorbell thread,
 * DPDK's and V8's threads), all threads and the main thread's (the event loop's) alone. docs/actors.md ("Design notes") has the figures before and after the
 * transport's poll backed off while idle.
 *
 * Run (after tsc): node dist/bench/idle-wakeups.js [seconds=20] [idlePollMs]
 * (`idlePollMs` equal to the poll's 100 ms: the poll never backs off, as before it did).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { launchedChild, startActorSystem, type MailboxTransportOptions } from '../src/index.js';

interface Idler {
  hello: { msg: null; reply: number };
}

/** Clock ticks per second of /proc's utime and stime (USER_HZ: 100 on Linux). */
const TICKS_PER_SECOND = 100;

interface Usage {
  ticks: number;
  switches: number;
  /** Those of the main thread: each one the event loop woken. */
  loopSwitches: number;
}

/** CPU ticks and context switches of every thread of `pid` so far. */
function usageOf(pid: number): Usage {
  let ticks = 0;
  let switches = 0;
  let loopSwitches = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      for (const m of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)) {
        switches += Number(m[1]);
        if (tid === String(pid)) loopSwitches += Number(m[1]);
      }
    } catch {
      // a thread that ended between the listing and the read
    }
  }
  return { ticks, switches, loopSwitches };
}

const me = launchedChild();
const idleArg = me ? process.argv[2] : process.argv[3];
const mailboxes: MailboxTransportOptions = idleArg !== undefined ? { idlePollMs: Number(idleArg) } : {};

if (me) {
  const system = await startActorSystem({ mailboxes });
  await system.spawn<Idler>(me.name, { hello: () => process.pid }, { groups: ['idlers'] });
} else {
  const seconds = Number(process.argv[2] ?? 20);
  const system = await startActorSystem({ filePrefix: `mpbench_idle_${process.pid}`, procType: 'primary', mailboxes });
  try {
    await system.spawn<Idler>('idle-primary', { hello: () => process.pid });
    const router = system.router<Idler>('idlers', { strategy: 'round-robin', group: 'idlers' });
    const pool = await system.launch(new URL(import.meta.url), {
      count: 2,
      name: 'idler',
      ready: { group: 'idlers' },
      args: idleArg !== undefined ? [idleArg] : [],
    });
    while (router.workers().length < 2) await sleep(20);
    for (let i = 0; i < 2; i++) await router.ref.ask('hello', null);
    await sleep(2000); // past the last activity's polls
    const pids = [process.pid, ...pool.pids()];
    const before = pids.map(usageOf);
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const wallSeconds = (performance.now() - t0) / 1000;
    const after = pids.map(usageOf);
    const rows = pids.map((pid, i) => ({
      process: i === 0 ? 'primary' : `worker ${i}`,
      pid,
      cpuPercent: Number((((after[i]!.ticks - before[i]!.ticks) / TICKS_PER_SECOND / wallSeconds) * 100).toFixed(2)),
      switchesPerSecond: Number(((after[i]!.switches - before[i]!.switches) / wallSeconds).toFixed(1)),
      loopSwitchesPerSecond: Number(((after[i]!.loopSwitches - before[i]!.loopSwitches) / wallSeconds).toFixed(1)),
    }));
    console.log(`idle for ${wallSeconds.toFixed(1)} s, idlePollMs ${idleArg ?? 'default'}`);
    console.table(rows);
  } finally {
    await system.close({ timeoutMs: 2000 });
  }
}
