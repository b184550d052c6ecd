/**
 * `node dist/bench/telemetry-cost.js [--rounds 10]`: what DPDK telemetry (the `telemetry`
 * option, on by default) costs a process. Rounds alternate a primary started with telemetry on
 * and one with it off, each a fresh process in a group of its own: it reports how long
 * `Runtime.start` took, the process's threads and RSS once started, and the CPU it used while
 * idle for one second after. Medians of each side and their differences are printed.
 */
import { fork } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Runtime } from '../src/index.js';
import { GroupFiles } from '../src/runtime/group.js';
import { percentile } from './lib.js';

interface Sample {
  startMs: number;
  threads: number;
  rssMiB: number;
  idleCpuMs: number;
  socket: boolean;
}

async function child(telemetry: boolean, filePrefix: string): Promise<void> {
  process.on('disconnect', () => process.exit(1));
  const t0 = performance.now();
  const rt = await Runtime.start({ procType: 'primary', filePrefix, telemetry });
  const startMs = performance.now() - t0;
  const threads = readdirSync('/proc/self/task').length;
  const rssMiB = process.memoryUsage.rss() / 2 ** 20;
  const socket = readdirSync(new GroupFiles(filePrefix).runtimeDir).includes('dpdk_telemetry.v2');
  const cpu0 = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const cpu = process.cpuUsage(cpu0);
  await rt.close();
  const sample: Sample = { startMs, threads, rssMiB, idleCpuMs: (cpu.user + cpu.system) / 1000, socket };
  process.send?.(sample, () => process.exit(0));
}

function once(telemetry: boolean, round: number): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const c = fork(fileURLToPath(import.meta.url), ['--child', String(telemetry), `mpbus_telcost_${process.pid}_${round}_${telemetry ? 'on' : 'off'}`]);
    c.once('message', (m) => resolve(m as Sample));
    c.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`child exited with ${code}`))));
  });
}

async function main(): Promise<void> {
  const i = process.argv.indexOf('--rounds');
  const rounds = i >= 0 ? Number(process.argv[i + 1]) : 10;
  const samples: Record<'on' | 'off', Sample[]> = { on: [], off: [] };
  for (let r = 0; r < rounds; r++) {
    for (const on of r % 2 === 0 ? [true, false] : [false, true]) samples[on ? 'on' : 'off'].push(await once(on, r));
  }
  const median = (side: 'on' | 'off', key: 'startMs' | 'threads' | 'rssMiB' | 'idleCpuMs'): number =>
    percentile(
      samples[side].map((s) => s[key]),
      50,
    );
  const rows = (['startMs', 'threads', 'rssMiB', 'idleCpuMs'] as const).map((key) => ({
    measure: key,
    telemetryOn: Number(median('on', key).toFixed(2)),
    telemetryOff: Number(median('off', key).toFixed(2)),
    difference: Number((median('on', key) - median('off', key)).toFixed(2)),
  }));
  console.table(rows);
  console.log(`telemetry socket present: on ${samples.on.every((s) => s.socket)}, off ${samples.off.some((s) => s.socket)}`);
}

if (process.argv[2] === '--child') await child(process.argv[3] === 'true', process.argv[4]!);
else await main();
