/**
 * What one routed actor ask costs in each process of the flagship (docs/benchmarks.md, "One
 * actor ask across processes"): runs the flagship (a router in the primary, worker processes)
 * and reports, beside its throughput and latency, the CPU time each process spent per job
 * (from /proc/<pid>/stat, read just before each exits) and the garbage collections of all its
 * processes per 1,000 jobs (from `--trace-gc`, which the forked workers inherit): the count of
 * scavenges is proportional to the bytes allocated per job. CPU per job moves less with the
 * machine's load than jobs/s, so two builds run one after the other compare on a busy machine.
 *
 * With --stages, every process also runs under `--cpu-prof`, and the time of each process's JS
 * thread is split by stage of the ask (codec, send, drain, actor layer, GC, ...), per job: the
 * per-stage table of docs/benchmarks.md. (Profile samples are wall time of the thread: a
 * process descheduled inside a native call counts in that call's stage.)
 *
 * Run (after tsc): node dist/bench/profile-actors.js [--jobs 200000] [--workers 2] [--window 128]
 *   [--runs 3] [--stages] [--main dist/samples/flagship/main.js]
 * Every other option goes to the flagship as it is.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSeconds } from '../samples/lib/processes.js';

const repoRoot = join(fileURLToPath(import.meta.url), '..', '..', '..');
const args = process.argv.slice(2);
function take(name: string, fallback: string): string {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const [, value] = args.splice(i, 2);
  return value ?? fallback;
}
const runs = Number(take('--runs', '3'));
const stagesAt = args.indexOf('--stages');
const stages = stagesAt >= 0;
if (stages) args.splice(stagesAt, 1);
const main = take('--main', join(repoRoot, 'dist', 'samples', 'flagship', 'main.js'));
if (!args.includes('--jobs')) args.push('--jobs', '200000');
if (!args.includes('--workers')) args.push('--workers', '2');
const jobs = Number(args[args.indexOf('--jobs') + 1]);

function children(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) => readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
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

/** The stage of the ask a profile frame belongs to. */
function stageOf(functionName: string, url: string): string {
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(idle)') return 'idle (event loop waiting)';
  if (functionName === '(program)') return 'V8 (compiler, runtime)';
  if (url.includes('msgpackr')) return 'msgpack encode/decode';
  if (functionName === 'pump') return 'drain: mbxDrain, park, yields';
  if (functionName === 'nativeSend' || functionName === 'nativeSendMany') return 'send: mbxSend';
  if (url.includes('/src/bus/')) return 'mailbox layer (JS)';
  if (url.includes('/src/actors/')) return 'actor layer (JS)';
  if (url.includes('timers')) return 'timers';
  if (url.includes('/samples/')) return 'the app (flagship)';
  if (url.includes('node_modules/rxjs')) return 'rxjs';
  return 'start-up, other';
}

/** Microseconds per job of each stage, for the caller (the profile of `callerPid`) and for the workers together. */
function stagesOf(dir: string, callerPid: number): Map<string, { caller: number; workers: number }> {
  const table = new Map<string, { caller: number; workers: number }>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    const pid = Number(file.split('.')[3]);
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
      nodes: Array<{ id: number; callFrame: { functionName: string; url: string } }>;
      samples: number[];
      timeDeltas: number[];
    };
    const stageById = new Map(profile.nodes.map((n) => [n.id, stageOf(n.callFrame.functionName, n.callFrame.url)]));
    profile.samples.forEach((id, i) => {
      const stage = stageById.get(id)!;
      const row = table.get(stage) ?? { caller: 0, workers: 0 };
      const us = (profile.timeDeltas[i + 1] ?? 0) / jobs;
      if (pid === callerPid) row.caller += us;
      else row.workers += us;
      table.set(stage, row);
    });
  }
  return table;
}

function runOnce(): Promise<Run> {
  return new Promise((resolve, reject) => {
    const profileDir = stages ? mkdtempSync(join(tmpdir(), 'actors-prof-')) : undefined;
    const flags = ['--trace-gc', ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])];
    const child = spawn(process.execPath, [...flags, main, ...args, '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const last = new Map<number, number>();
    const poll = setInterval(() => {
      for (const pid of [child.pid!, ...children(child.pid!)]) {
        const t = cpuSeconds(pid);
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
      if (profileDir) {
        const table = stagesOf(profileDir, child.pid!);
        rmSync(profileDir, { recursive: true, force: true });
        console.log('stage (µs of thread time per job)      caller   workers (sum)');
        for (const [stage, t] of [...table].sort((a, b) => b[1].caller + b[1].workers - a[1].caller - a[1].workers)) {
          console.log(`${stage.padEnd(38)} ${t.caller.toFixed(2).padStart(7)}  ${t.workers.toFixed(2).padStart(8)}`);
        }
      }
      const callerSeconds = last.get(child.pid!) ?? 0;
      const workerSeconds = [...last].filter(([pid]) => pid !== child.pid).reduce((sum, [, t]) => sum + t, 0);
      resolve({
        throughput: r.throughputJobsPerSec,
        p50: r.latencyP50Us,
        p99: r.latencyP99Us,
        callerUsPerJob: (callerSeconds * 1e6) / jobs,
        workerUsPerJob: (workerSeconds * 1e6) / jobs,
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
    `jobs/s ${r.throughput}  p50 ${r.p50} us  p99 ${r.p99} us  CPU per job: caller ${r.callerUsPerJob.toFixed(1)} us, workers ${r.workerUsPerJob.toFixed(1)} us (both, incl. start-up)  GC per 1k jobs (all processes): ${r.scavengesPer1k.toFixed(2)} scavenges, ${r.markCompactsPer1k.toFixed(2)} mark-compacts, ${r.gcMsPer1k.toFixed(2)} ms`,
  );
}
const median = (f: (r: Run) => number): number => results.map(f).sort((a, b) => a - b)[Math.floor(results.length / 2)]!;
console.log(
  `median of ${runs}: jobs/s ${median((r) => r.throughput)}, caller ${median((r) => r.callerUsPerJob).toFixed(1)} us CPU/job, workers ${median((r) => r.workerUsPerJob).toFixed(1)} us CPU/job, GC ${median((r) => r.gcMsPer1k).toFixed(2)} ms and ${median((r) => r.scavengesPer1k).toFixed(2)} scavenges per 1k jobs`,
);
