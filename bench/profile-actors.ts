/**
 * What one routed actor ask costs in each process of the flagship (docs/benchmarks.md, "One
 * actor ask across processes"): runs the flagship (a router in the primary, worker processes)
 * and reports, beside its throughput and latency, the CPU time each process spent per job
 * (from /proc/<pid>/stat, read just before each exits) and the caller's garbage collections per
 * 1,000 jobs (from `--trace-gc`). CPU per job, unlike jobs/s, hardly moves with the machine's
 * load, so two builds compare even on a busy machine.
 *
 * Run (after tsc): node dist/bench/profile-actors.js [--jobs 200000] [--workers 2] [--window 128]
 *   [--runs 3] [--main dist/samples/flagship/main.js]
 * Every option but --runs and --main goes to the flagship as it is.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = join(fileURLToPath(import.meta.url), '..', '..', '..');
const args = process.argv.slice(2);
function take(name: string, fallback: string): string {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const [, value] = args.splice(i, 2);
  return value ?? fallback;
}
const runs = Number(take('--runs', '3'));
const main = take('--main', join(repoRoot, 'dist', 'samples', 'flagship', 'main.js'));
if (!args.includes('--jobs')) args.push('--jobs', '200000');
if (!args.includes('--workers')) args.push('--workers', '2');
const jobs = Number(args[args.indexOf('--jobs') + 1]);

/** CPU time of a process so far (user + system), in clock ticks (100 per second here). */
function cpuTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

function children(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8')
        .split(' ')
        .filter(Boolean)
        .map(Number),
    );
  } catch {
    return [];
  }
}

interface Run {
  throughput: number;
  p50: number;
  p99: number;
  callerUsPerJob: number;
  workerUsPerJob: number;
  scavengesPer1k: number;
  markCompactsPer1k: number;
  gcMsPer1k: number;
}

function runOnce(): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--trace-gc', main, ...args, '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const last = new Map<number, number>();
    const poll = setInterval(() => {
      for (const pid of [child.pid!, ...children(child.pid!)]) {
        const t = cpuTicks(pid);
        if (t !== undefined) last.set(pid, t);
      }
    }, 20);
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => {
      clearInterval(poll);
      const lines = out.split('\n');
      const json = lines.filter((l) => l.startsWith('{')).at(-1);
      if (code !== 0 || !json) {
        reject(new Error(`the flagship exited with ${code}`));
        return;
      }
      const r = JSON.parse(json) as { throughputJobsPerSec: number; latencyP50Us: number; latencyP99Us: number };
      const gcs = lines.filter((l) => /\b(Scavenge|Mark-Compact|Mark-sweep)\b/i.test(l));
      const gcMs = gcs.reduce((sum, l) => sum + Number(/,\s*([\d.]+)\s*\/\s*[\d.]+\s*ms/.exec(l)?.[1] ?? 0), 0);
      const callerTicks = last.get(child.pid!) ?? 0;
      const workerTicks = [...last].filter(([pid]) => pid !== child.pid).reduce((sum, [, t]) => sum + t, 0);
      resolve({
        throughput: r.throughputJobsPerSec,
        p50: r.latencyP50Us,
        p99: r.latencyP99Us,
        callerUsPerJob: (callerTicks * 10_000) / jobs,
        workerUsPerJob: (workerTicks * 10_000) / jobs,
        scavengesPer1k: (gcs.filter((l) => /Scavenge/.test(l)).length * 1000) / jobs,
        markCompactsPer1k: (gcs.filter((l) => /Mark/.test(l)).length * 1000) / jobs,
        gcMsPer1k: (gcMs * 1000) / jobs,
      });
    });
  });
}

const results: Run[] = [];
for (let i = 0; i < runs; i++) {
  const r = await runOnce();
  results.push(r);
  console.log(
    `jobs/s ${r.throughput}  p50 ${r.p50} us  p99 ${r.p99} us  CPU per job: caller ${r.callerUsPerJob.toFixed(1)} us, workers ${r.workerUsPerJob.toFixed(1)} us (both, incl. start-up)  caller GC per 1k jobs: ${r.scavengesPer1k.toFixed(2)} scavenges, ${r.markCompactsPer1k.toFixed(2)} mark-compacts, ${r.gcMsPer1k.toFixed(2)} ms`,
  );
}
const median = (f: (r: Run) => number): number => results.map(f).sort((a, b) => a - b)[Math.floor(results.length / 2)]!;
console.log(
  `median of ${runs}: jobs/s ${median((r) => r.throughput)}, caller ${median((r) => r.callerUsPerJob).toFixed(1)} us CPU/job, workers ${median((r) => r.workerUsPerJob).toFixed(1)} us CPU/job, caller GC ${median((r) => r.gcMsPer1k).toFixed(2)} ms per 1k jobs`,
);
