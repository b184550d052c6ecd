/**
 * `npm run stress:attach [-- --count 300] [-- --prefix name] [-- --base-virtaddr 0x...] [-- --keep-going] [-- --json]`
 *
 * Attaches and detaches a Node secondary `count` times in a row to one primary (this process)
 * and fails on the first attach that does not succeed. Every attach is a fresh Node process,
 * because DPDK initialises once per process: each one lands V8's heap at new random addresses,
 * which is what made about 1 attach in 60 fail with DPDK's default base address.
 * `--base-virtaddr 0x100000000` (DPDK's own default on x86_64) shows the failure mpbus avoids;
 * `--keep-going` counts every failed attach instead of stopping at the first.
 * Ends by checking that closing the primary removed the group's runtime dir and hugepage files.
 */
import { fork } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Runtime } from '../src/index.js';

interface AttachReport {
  ok: boolean;
  lcoreId?: number;
  processType?: string;
  startMs?: number;
  code?: string;
  message?: string;
}

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Child: join as a secondary, report, leave, exit. */
async function secondary(filePrefix: string): Promise<void> {
  // the stress run went away (killed): do not linger
  process.on('disconnect', () => process.exit(1));
  const t0 = performance.now();
  try {
    const rt = await Runtime.start({ procType: 'secondary', filePrefix });
    const report: AttachReport = { ok: true, lcoreId: rt.lcoreId, processType: rt.processType, startMs: performance.now() - t0 };
    await rt.close();
    process.send?.(report, () => process.exit(0));
  } catch (err) {
    const e = err as { code?: string; message?: string };
    process.send?.({ ok: false, code: e.code, message: e.message } satisfies AttachReport, () => process.exit(1));
  }
}

/** One attach: a new process joins, reports and leaves; resolves once it has exited. */
function attachOnce(filePrefix: string): Promise<AttachReport & { exitCode: number | null; stderr: string }> {
  const child = fork(fileURLToPath(import.meta.url), ['--secondary', filePrefix], { stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  let report: AttachReport = { ok: false, message: 'the secondary exited without reporting' };
  child.on('message', (m: AttachReport) => (report = m));
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      if (signal) report = { ok: false, message: `the secondary was killed by ${signal}` };
      resolve({ ...report, exitCode: code, stderr });
    });
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function main(): Promise<void> {
  const count = Number(argValue('--count') ?? 300);
  const filePrefix = argValue('--prefix') ?? `mpbus_stress_${process.pid}`;
  const json = process.argv.includes('--json');
  const keepGoing = process.argv.includes('--keep-going');
  if (!Number.isInteger(count) || count <= 0) throw new Error(`--count must be a positive integer, got ${argValue('--count')}`);

  const baseVirtaddr = argValue('--base-virtaddr');
  const primary = await Runtime.start({ procType: 'primary', filePrefix, ...(baseVirtaddr ? { baseVirtaddr } : {}) });
  const startMs: number[] = [];
  const lcores = new Set<number>();
  const t0 = performance.now();
  let failure: (AttachReport & { attempt: number; stderr: string }) | undefined;
  let failures = 0;
  for (let attempt = 1; attempt <= count; attempt++) {
    const r = await attachOnce(filePrefix);
    if (!r.ok || r.exitCode !== 0 || r.processType !== 'secondary') {
      failures += 1;
      failure ??= { ...r, attempt };
      if (keepGoing) continue;
      break;
    }
    startMs.push(r.startMs!);
    lcores.add(r.lcoreId!);
    if (!json && attempt % 50 === 0) console.log(`  ${attempt}/${count} attached`);
  }
  const elapsedMs = performance.now() - t0;
  const group = primary.group;
  await primary.close();
  const leftovers = existsSync(group.runtimeDir) || group.hugepageFiles().length > 0;

  startMs.sort((a, b) => a - b);
  const summary = {
    attaches: startMs.length,
    asked: count,
    failures,
    firstFailure: failure ? { attempt: failure.attempt, code: failure.code, message: failure.message, stderr: failure.stderr.slice(-2000) } : undefined,
    lcoreIds: [...lcores],
    startMsP50: Number(percentile(startMs, 50).toFixed(1)),
    startMsP99: Number(percentile(startMs, 99).toFixed(1)),
    cycleMsMean: Number((elapsedMs / Math.max(1, startMs.length)).toFixed(1)),
    groupFilesRemoved: !leftovers,
    otherGroupsHugepageFiles: readdirSync('/dev/hugepages').length,
  };
  if (json) console.log(JSON.stringify(summary));
  else {
    console.log(`${summary.attaches}/${count} secondaries attached and detached${keepGoing ? '' : ' in a row'}, ${summary.failures} failures`);
    console.log(
      `  Runtime.start of a secondary: p50 ${summary.startMsP50} ms, p99 ${summary.startMsP99} ms; one attach+detach cycle (process start to exit) ${summary.cycleMsMean} ms`,
    );
    console.log(`  lcore IDs used: ${summary.lcoreIds.join(', ')}; group files removed after close: ${summary.groupFilesRemoved}`);
    if (failure) console.log(`  first failure at attach ${failure.attempt}: ${failure.code ?? ''} ${failure.message ?? ''}\n${failure.stderr}`);
  }
  process.exitCode = failure || leftovers ? 1 : 0;
}

if (process.argv.includes('--secondary')) void secondary(argValue('--secondary')!);
else
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
