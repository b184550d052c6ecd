/**
 * rte_mp request round trip, secondary -> primary -> secondary: through mpbus (Node processes,
 * handler in JavaScript) and through a plain C program pair (bench/c/mp_rtt.c, handler on DPDK's
 * IPC thread: the physical limit of the transport). Both are sequential: one request at a time.
 */
import { execFileSync, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { percentile, type BenchContext, type BenchRow } from '../lib.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..', '..');
const PAYLOAD_BYTES = 64;

function removeGroupFiles(prefix: string): void {
  rmSync(join('/var/run/dpdk', prefix), { recursive: true, force: true });
  for (const f of readdirSync('/dev/hugepages')) if (f.startsWith(`${prefix}map_`)) rmSync(join('/dev/hugepages', f), { force: true });
}

function row(transport: string, rttNs: number[], notes: string): BenchRow & { rttP50Us: number } {
  return { transport, payloadBytes: PAYLOAD_BYTES, rttP50Us: percentile(rttNs, 50) / 1000, rttP99Us: percentile(rttNs, 99) / 1000, notes };
}

async function cPair(binary: string, n: number): Promise<number[]> {
  const prefix = `mpbench_cmp_${process.pid}`;
  const eal = ['--no-pci', '--no-telemetry', '--log-level=error', `--file-prefix=${prefix}`];
  const primary = spawn(binary, [...eal, '--proc-type=primary', '--lcores=0@(0-1)', '--base-virtaddr=0x600000000000', '--', 'primary'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  try {
    const lines = createInterface({ input: primary.stdout });
    const [first] = (await once(lines, 'line')) as [string];
    if (first !== 'READY') throw new Error(`C primary: ${first}`);
    const out = execFileSync(binary, [...eal, '--proc-type=secondary', '--lcores=1@(0-1)', '--', 'secondary', String(n), String(PAYLOAD_BYTES)], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    const line = out.split('\n').find((l) => l.startsWith('RTT_NS'));
    if (!line) throw new Error(`C secondary printed no RTT_NS line: ${out}`);
    return line.split(' ').slice(1).map(Number);
  } finally {
    primary.stdin.end();
    if (primary.exitCode === null) await Promise.race([once(primary, 'exit'), new Promise((r) => setTimeout(r, 3000))]);
    if (primary.exitCode === null) primary.kill('SIGKILL');
    removeGroupFiles(prefix);
  }
}

async function mpbusPair(n: number): Promise<{ encodedNs: number[]; rawNs: number[] }> {
  const prefix = `mpbench_nmp_${process.pid}`;
  const peer = join(here, '..', 'peers', 'mp-peer.js');
  const primary = fork(peer, ['primary', prefix], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    await once(primary, 'message');
    const secondary = fork(peer, ['secondary', prefix, String(n), String(PAYLOAD_BYTES)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const exited = once(secondary, 'exit'); // may come before the message is read
    const [result] = (await once(secondary, 'message')) as [{ encodedNs: number[]; rawNs: number[] }];
    await exited;
    return result;
  } finally {
    if (primary.connected) primary.disconnect();
    if (primary.exitCode === null) await Promise.race([once(primary, 'exit'), new Promise((r) => setTimeout(r, 5000))]);
    if (primary.exitCode === null) primary.kill('SIGKILL');
    removeGroupFiles(prefix);
  }
}

export async function run(ctx: BenchContext): Promise<void> {
  const n = ctx.quick ? 500 : 5000;
  const buildDir = mkdtempSync(join(tmpdir(), 'mpbus-bench-mp-'));
  try {
    const binary = join(buildDir, 'mp_rtt');
    const flags = execFileSync('pkg-config', ['--cflags', '--libs', 'libdpdk'], { encoding: 'utf8' }).trim().split(/\s+/);
    execFileSync('cc', ['-O2', '-Wall', join(repoRoot, 'bench', 'c', 'mp_rtt.c'), '-o', binary, ...flags], { stdio: 'pipe' });
    ctx.progress(`rte-mp: C pair, ${n} requests...`);
    const c = await cPair(binary, n);
    ctx.progress(`rte-mp: mpbus pair, ${n} requests...`);
    const m = await mpbusPair(n);
    const cRow = row('c_rte_mp', c, 'C secondary rte_mp_request_sync -> C primary replying on the IPC thread');
    const mRow = row('mpbus_rte_mp', m.encodedNs, 'Node secondary bus.request (msgpack value) -> Node primary handler on the JS thread');
    const rawRow = row('mpbus_rte_mp_raw', m.rawNs, 'as mpbus_rte_mp with { raw: true } (no header, no msgpack)');
    ctx.addRows([cRow, mRow, rawRow]);
    ctx.setField('rteMpP50RatioVsC', Number((mRow.rttP50Us / cRow.rttP50Us).toFixed(2)));
  } finally {
    rmSync(buildDir, { recursive: true, force: true });
  }
}
