/**
 * `node dist/samples/demo/main.js`: one DPDK process group from Node.
 *
 * This process starts with procType 'auto' and, finding no primary, becomes the primary. It then
 * starts two more Node processes that join the same group as secondaries, each with its own
 * lcore ID, not pinned to a CPU. They leave, the primary leaves last, and the group's runtime
 * dir and hugepage files are gone: nothing is left behind.
 *
 * `node dist/samples/demo/main.js [--prefix name]`
 */
import { fork } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Runtime } from '../../src/index.js';
import { sampleArgs, stringFlag } from '../lib/args.js';

function cpus(): string {
  return /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '?';
}

function describe(rt: Runtime): string {
  return `pid ${rt.pid} joined group '${rt.filePrefix}' as ${rt.processType}, lcore ${rt.lcoreId}, runs on CPUs ${cpus()}`;
}

async function secondary(filePrefix: string): Promise<void> {
  const rt = await Runtime.start({ procType: 'secondary', filePrefix });
  console.log(`  secondary: ${describe(rt)}`);
  await rt.close();
  console.log(`  secondary: pid ${rt.pid} left the group`);
}

function runSecondary(filePrefix: string): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ['--secondary', filePrefix], { stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.on('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`secondary ${child.pid} ended with ${signal ?? code}`))));
  });
}

const usage = `mpbus demo: one DPDK process group from Node, a primary and two secondaries

usage: node dist/samples/demo/main.js [--prefix P]
  --prefix P   the group's file prefix (default mpbus_demo_<pid>)
  --help       this text`;

async function main(): Promise<void> {
  const { values } = sampleArgs(usage, { prefix: { type: 'string' } });
  const filePrefix = stringFlag(usage, 'prefix', values.prefix, `mpbus_demo_${process.pid}`);
  const rt = await Runtime.start({ procType: 'auto', filePrefix });
  console.log(`mpbus demo on ${rt.dpdkVersion}`);
  console.log(`  primary:   ${describe(rt)}`);
  await Promise.all([runSecondary(filePrefix), runSecondary(filePrefix)]);
  const { runtimeDir } = rt.group;
  await rt.close();
  const left = existsSync(runtimeDir) || rt.group.hugepageFiles().length > 0;
  console.log(
    `  primary:   pid ${rt.pid} left the group last; ${left ? `files are LEFT in ${runtimeDir}` : `${runtimeDir} and its hugepage files are removed`}`,
  );
  if (left) process.exitCode = 1;
}

const at = process.argv.indexOf('--secondary');
(at >= 0 ? secondary(process.argv[at + 1]!) : main()).catch((err: unknown) => {
  console.error(err instanceof Error ? `${(err as { code?: string }).code ?? ''} ${err.message}` : err);
  process.exitCode = 1;
});
