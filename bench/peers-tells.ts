/**
 * The peers suite's two mpbus tell rows alone (`peers_mpbus_direct_tell`, `peers_mpbus_router_tell`,
 * docs/benchmarks.md "Seventh pass: the tell path"), for comparing two builds run one after the
 * other: the same caller, workers and tell phase as the suite (bench/peers/client-mpbus.ts,
 * bench/peers/square-phases.ts), `rounds` rounds of `seconds` each per row, after a short untimed
 * round. Prints each round's tells/s and the CPU time per tell of the caller and of the workers
 * together (from /proc), as JSON lines.
 *
 *   node dist/bench/peers-tells.js [rounds=3] [seconds=0.5]
 */
import { readFileSync } from 'node:fs';
import { GroupFiles } from '../src/runtime/group.js';
import { MpbusClients } from './peers/client-mpbus.js';
import { tells } from './peers/square-phases.js';

const rounds = Number(process.argv[2] ?? 3);
const seconds = Number(process.argv[3] ?? 0.5);
const prefix = `tell_peers_${process.pid}`;

/** CPU time of a process so far (user + system, ms), from /proc (the clock ticks of `stat`). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

const workerPids: number[] = [];
const clients = await MpbusClients.start(prefix, (pid) => workerPids.push(pid));
try {
  await tells(clients.direct, 0.3);
  await tells(clients.router, 0.3);
  for (let round = 0; round < rounds; round++) {
    for (const row of ['direct', 'router'] as const) {
      const caller0 = cpuMs(process.pid);
      const workers0 = workerPids.reduce((sum, pid) => sum + cpuMs(pid), 0);
      const r = await tells(clients[row], seconds);
      const callerUs = ((cpuMs(process.pid) - caller0) * 1000) / r.count;
      const workersUs = ((workerPids.reduce((sum, pid) => sum + cpuMs(pid), 0) - workers0) * 1000) / r.count;
      console.log(
        JSON.stringify({
          row,
          round,
          tellsPerSec: Math.round(r.perSec),
          callerCpuUsPerTell: +callerUs.toFixed(3),
          workersCpuUsPerTell: +workersUs.toFixed(3),
          perWorker: r.perWorker,
        }),
      );
    }
  }
} finally {
  await clients.close();
  const group = new GroupFiles(prefix);
  if (!group.primaryAlive()) group.removeLeftovers(false);
}
