/**
 * The peers suite's router rows alone, for deep windows (docs/benchmarks.md, "Many asks in
 * flight"): this process is the caller of bench/peers/client-mpbus.ts (a router over the actors
 * of two worker processes, 64-byte `square` asks) and runs the windows given, alternated round
 * by round in the same processes, so the ratio of two windows holds on a loaded machine. Per
 * window and round: asks/s, the caller's scavenge pauses (ms per 100,000 asks) and the CPU of
 * the caller and the workers (µs per ask). The workers inherit node's flags, so
 * `node --trace-gc-nvp dist/bench/profile-window.js` traces all three processes.
 *
 * Run (after tsc): node dist/bench/profile-window.js [rounds=4] [seconds=1] [windows=1024,10000] [--placement=spread|float]
 * (bytes surviving scavenges per ask: the caller's `new_space_survived` summed over its
 * `gc=s` lines of `--trace-gc-nvp`, divided by the last line's count of asks)
 */
import { PerformanceObserver, constants as perfConstants, type PerformanceEntry } from 'node:perf_hooks';
import { GroupFiles } from '../src/runtime/group.js';
import { MpbusClients } from './peers/client-mpbus.js';
import { windowed } from './peers/square-phases.js';
import { cpuNs } from '../samples/lib/processes.js';
import { placementArg } from './lib.js';

const placement = placementArg(process.argv);
const rounds = Number(process.argv[2] ?? 4);
const seconds = Number(process.argv[3] ?? 1);
const windows = (process.argv[4] ?? '1024,10000').split(',').map(Number);
const prefix = `mpbench_window_${process.pid}`;

let scavengeMs = 0;
const gc = new PerformanceObserver((list) => {
  for (const e of list.getEntries() as Array<PerformanceEntry & { detail?: { kind?: number } }>)
    if (e.detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) scavengeMs += e.duration;
});
gc.observe({ entryTypes: ['gc'] });

const clients = await MpbusClients.start(prefix, () => {}, placement);
console.log(`placement ${placement}: caller CPUs ${clients.system.runtime!.cpus.join(',')}`);
try {
  const pids = [process.pid, ...clients.workers.map((w) => w.pid)];
  let asks = 0;
  for (const w of windows) asks += (await windowed(clients.router, w, Math.min(seconds, 0.5))).count; // JIT and buffers
  const rates = new Map<number, number[]>(windows.map((w) => [w, []]));
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? windows : [...windows].reverse();
    const line: string[] = [];
    for (const w of order) {
      const cpu0 = pids.map(cpuNs);
      scavengeMs = 0;
      const r = await windowed(clients.router, w, seconds);
      asks += r.count;
      await new Promise((resolve) => setImmediate(resolve)); // the gc entries of the run
      const cpuUs = pids.map((pid, i) => (cpuNs(pid) - cpu0[i]!) / 1000 / r.count);
      rates.get(w)!.push(r.perSec);
      line.push(
        `window ${w}: ${Math.round(r.perSec / 1000)} k/s, p99 ${((r.p99Us ?? 0) / 1000).toFixed(1)} ms, caller scavenges ${((scavengeMs * 1e5) / r.count).toFixed(0)} ms/100k, ` +
          `CPU µs/ask caller ${cpuUs[0]!.toFixed(2)} workers ${(cpuUs[1]! + cpuUs[2]!).toFixed(2)}, rss ${r.peakRssMb} MB`,
      );
    }
    const [a, b] = windows;
    const ratio = b === undefined ? '' : `; ${b}/${a} = ${(rates.get(b)!.at(-1)! / rates.get(a!)!.at(-1)!).toFixed(2)}`;
    console.log(`round ${round + 1}: ${line.join('; ')}${ratio}`);
  }
  if (windows.length > 1) {
    const ratios = rates.get(windows[1]!)!.map((r, i) => (r / rates.get(windows[0]!)![i]!).toFixed(2));
    console.log(`window ${windows[1]} / window ${windows[0]} by round: ${ratios.join(', ')}`);
  }
  console.log(`asks answered in all (warm-up included, for --trace-gc-nvp sums): ${asks}`);
} finally {
  gc.disconnect();
  await clients.close();
  const group = new GroupFiles(prefix);
  if (!group.primaryAlive()) group.removeLeftovers(false);
}
