/**
 * What a hop to another host costs: asks between two mpbus groups (two processes with their own
 * --file-prefix, standing in for two hosts) through a local nats-server, beside the local ring
 * rows of the other suites. Row `mpbus_nats`: sequential round trip p50/p99, and throughput
 * with 64 asks in flight. Needs Debian's nats-server (scripts/setup.sh installs it).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { rmSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, haveNatsServer, startNatsServer, stopProcess } from '../../samples/lib/nats.js';
import type { BenchContext } from '../lib.js';

const peer = join(fileURLToPath(import.meta.url), '..', '..', 'peers', 'cluster-peer.js');

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Removes what a group may leave behind when a peer is killed. */
function removeGroupFiles(prefix: string): void {
  const runtimeRoot = process.getuid?.() === 0 ? '/var/run/dpdk' : join(process.env.XDG_RUNTIME_DIR ?? '/tmp', 'dpdk');
  rmSync(join(runtimeRoot, prefix), { recursive: true, force: true });
  try {
    for (const f of readdirSync('/dev/hugepages')) if (f.startsWith(`${prefix}map_`)) rmSync(join('/dev/hugepages', f), { force: true });
  } catch {
    // no hugetlbfs here
  }
}

function askRun(
  prefix: string,
  url: string,
  cluster: string,
  asks: number,
  window: number,
): Promise<{ asks: number; seconds: number; p50Us: number; p99Us: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [peer, 'ask', prefix, url, cluster, String(asks), String(window), '64'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => {
      removeGroupFiles(prefix);
      if (code !== 0) reject(new Error(`cluster-peer ask exited with ${code}`));
      else resolve(JSON.parse(out.trim().split('\n').at(-1)!));
    });
  });
}

export async function run(ctx: BenchContext): Promise<void> {
  if (!haveNatsServer()) {
    ctx.progress('nats: nats-server is not installed (run scripts/setup.sh); skipped');
    return;
  }
  const port = await freePort();
  const url = `nats://127.0.0.1:${port}`;
  const server = await startNatsServer('127.0.0.1', port);
  const tag = `${process.pid}`;
  const servePrefix = `mpbench_nats_a_${tag}`;
  const askPrefix = `mpbench_nats_b_${tag}`;
  const cluster = `bench_${tag}`;
  let server2: ChildProcess | undefined;
  try {
    ctx.progress('nats: starting the serving group');
    server2 = fork(peer, ['serve', servePrefix, url, cluster], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await new Promise<void>((resolve, reject) => {
      server2!.once('message', () => resolve());
      server2!.once('exit', (code) => reject(new Error(`cluster-peer serve exited with ${code}`)));
    });
    ctx.progress('nats: ask round trips between two groups (window 1)');
    const seq = await askRun(askPrefix, url, cluster, ctx.quick ? 2000 : 20_000, 1);
    ctx.progress('nats: ask throughput between two groups (window 64)');
    const par = await askRun(askPrefix, url, cluster, ctx.quick ? 10_000 : 200_000, 64);
    ctx.addRows([
      {
        transport: 'mpbus_nats',
        payloadBytes: 64,
        rttP50Us: seq.p50Us,
        rttP99Us: seq.p99Us,
        throughputMsgsPerSec: Math.round(par.asks / par.seconds),
        notes: 'actor ask between two groups through a local nats-server: rtt sequential, throughput with 64 in flight',
      },
    ]);
  } finally {
    if (server2) {
      if (server2.connected) server2.disconnect();
      const t = setTimeout(() => server2!.kill('SIGKILL'), 3000);
      await exited(server2);
      clearTimeout(t);
    }
    removeGroupFiles(servePrefix);
    await stopProcess(server);
  }
}
