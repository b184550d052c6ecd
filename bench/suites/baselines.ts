/**
 * Baselines for the mpbus rows of issue 4, each transport at its own best, between two Node
 * processes (worker_threads: two threads) with the same values (bench/values.ts):
 * - child_process: Node's IPC channel (`process.send`), JSON or advanced serialization, whichever is faster;
 * - worker_threads: a MessagePort to a worker;
 * - unix_socket: a Unix domain socket with length-prefixed msgpackr frames, batched writes, decoded on receipt;
 * - unix_socket_raw: the same with raw payload frames (no codec);
 * - c_rte_ring: two C DPDK processes using rte_ring and a mempool directly (bench/c/ring_pair.c, built here);
 * - codec_ceiling: msgpackr pack-only and unpack-only in one thread; the slower bounds any encoded transport.
 * Throughput is one-way (sender -> receiver, counted when the receiver has them all); round
 * trips send one value and wait for it to come back.
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { isNativeAccelerationEnabled } from 'msgpackr';
import { GroupFiles } from '../../src/runtime/group.js';
import { Samples, type BenchContext, type BenchRow } from '../lib.js';
import { measureCodec, type CodecRates } from '../peers/codec.js';
import { ACK_EVERY, FrameReader, type ControlMessage } from '../peers/baseline-peer.js';
import { benchPackr, benchValue, PAYLOAD_SIZES, rawPayload } from '../values.js';

const here = dirname(fileURLToPath(import.meta.url));
const peerScript = join(here, '..', 'peers', 'baseline-peer.js');
const codecScript = join(here, '..', 'peers', 'codec.js');
const repoRoot = join(here, '..', '..', '..');

/** Values in flight before the sender waits for an acknowledgement (object transports). */
const WINDOW = 32 * ACK_EVERY;

interface Settings {
  seconds: number;
  roundTrips: number;
  /** Throughput runs per row; the best one counts (as for the mpbus rows). */
  repeats: number;
}

/** The best of `s.repeats` sequential throughput runs. */
async function best(s: Settings, measure: () => Promise<number>): Promise<number> {
  let top = 0;
  for (let i = 0; i < s.repeats; i++) top = Math.max(top, await measure());
  return top;
}

interface Rtt {
  p50: number;
  p99: number;
}

// ---- object transports: child_process IPC and worker_threads ------------------------------

interface ObjectPeer {
  send(message: unknown): void;
  onMessage(cb: (message: unknown) => void): void;
  close(): Promise<void>;
}

function ipcPeer(mode: 'sink' | 'echo', serialization: 'json' | 'advanced'): ObjectPeer {
  const child = fork(peerScript, ['ipc', mode], { serialization, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return {
    send: (m) => child.send(m as object),
    onMessage: (cb) => child.on('message', cb),
    close: () => endChild(child),
  };
}

function workerPeer(mode: 'sink' | 'echo'): ObjectPeer {
  const worker = new Worker(peerScript, { workerData: { mode } });
  return {
    send: (m) => worker.postMessage(m),
    onMessage: (cb) => worker.on('message', cb),
    close: async () => {
      await worker.terminate();
    },
  };
}

async function endChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  process.kill(child.pid!, 'SIGKILL');
  await exited;
}

async function objectThroughput(peer: ObjectPeer, value: unknown, s: Settings): Promise<number> {
  let acked = 0;
  let wake: (() => void) | undefined;
  let finished: (n: number) => void = () => {};
  const done = new Promise<number>((resolve) => (finished = resolve));
  peer.onMessage((m) => {
    const msg = m as ControlMessage;
    if (msg.ctl === 'ack') {
      acked = msg.n;
      wake?.();
    } else if (msg.ctl === 'done') finished(msg.n);
  });
  let sent = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < s.seconds * 1000) {
    const limit = Math.min(acked + WINDOW, sent + ACK_EVERY);
    while (sent < limit) {
      peer.send(value);
      sent++;
    }
    if (sent >= acked + WINDOW) await new Promise<void>((resolve) => (wake = resolve));
    else await yieldToLoop();
  }
  peer.send({ ctl: 'end', n: sent });
  const received = await done;
  const elapsed = (performance.now() - t0) / 1000;
  await peer.close();
  return received / elapsed;
}

async function objectRtt(peer: ObjectPeer, value: unknown, s: Settings): Promise<Rtt> {
  let next: (() => void) | undefined;
  peer.onMessage(() => next?.());
  const samples = await timeRoundTrips(s, () => {
    const back = new Promise<void>((resolve) => (next = resolve));
    peer.send(value);
    return back;
  });
  await peer.close();
  return samples;
}

/** Runs round trips (10% warm-up first) for at most `roundTrips` or `seconds`; returns p50/p99 in µs. */
async function timeRoundTrips(s: Settings, trip: () => Promise<void>): Promise<Rtt> {
  const warmup = Math.ceil(s.roundTrips / 10);
  const rtts = new Samples();
  const deadline = performance.now() + s.seconds * 1000;
  for (let i = 0; i < warmup + s.roundTrips; i++) {
    const t0 = process.hrtime.bigint();
    await trip();
    const us = Number(process.hrtime.bigint() - t0) / 1000;
    if (i >= warmup) rtts.add(us);
    if (i >= warmup + 100 && performance.now() > deadline) break;
  }
  return { p50: rtts.percentile(50), p99: rtts.percentile(99) };
}

// ---- frame transports: Unix domain socket ---------------------------------------------------

interface FramePeer {
  socket: Socket;
  close(): Promise<void>;
}

async function framePeer(codec: 'msgpackr' | 'raw', mode: 'sink' | 'echo'): Promise<FramePeer> {
  const dir = mkdtempSync(join(tmpdir(), 'mpbus-bench-'));
  const path = join(dir, 'sock');
  const server = createServer();
  server.listen(path);
  await once(server, 'listening');
  const child = fork(peerScript, ['unix', path, codec, mode], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [socket] = (await once(server, 'connection')) as [Socket];
  socket.setNoDelay(true);
  return {
    socket,
    close: async () => {
      socket.destroy();
      server.close();
      await endChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const BATCH_BYTES = 256 * 1024;

async function frameThroughput(peer: FramePeer, encode: () => Buffer, s: Settings): Promise<number> {
  const { socket } = peer;
  let finished: () => void = () => {};
  const done = new Promise<void>((resolve) => (finished = resolve));
  const reader = new FrameReader((_buf, start, end) => {
    if (start === end) finished();
  });
  socket.on('data', (chunk: Buffer) => reader.push(chunk));
  let batch = Buffer.allocUnsafe(BATCH_BYTES);
  let off = 0;
  let sent = 0;
  const flush = async (): Promise<void> => {
    const full = socket.write(batch.subarray(0, off));
    batch = Buffer.allocUnsafe(BATCH_BYTES);
    off = 0;
    if (!full) await once(socket, 'drain');
  };
  const t0 = performance.now();
  while (performance.now() - t0 < s.seconds * 1000) {
    for (let i = 0; i < 256; i++) {
      const frame = encode();
      if (off + 4 + frame.length > BATCH_BYTES) await flush();
      batch.writeUInt32LE(frame.length, off);
      frame.copy(batch, off + 4);
      off += 4 + frame.length;
      sent++;
    }
  }
  batch.writeUInt32LE(0, off); // end of the run
  off += 4;
  await flush();
  await done;
  const elapsed = (performance.now() - t0) / 1000;
  await peer.close();
  return sent / elapsed;
}

async function frameRtt(peer: FramePeer, encode: () => Buffer, s: Settings): Promise<Rtt> {
  const { socket } = peer;
  let next: (() => void) | undefined;
  const reader = new FrameReader(() => next?.());
  socket.on('data', (chunk: Buffer) => reader.push(chunk));
  const rtt = await timeRoundTrips(s, () => {
    const back = new Promise<void>((resolve) => (next = resolve));
    const payload = encode();
    const frame = Buffer.allocUnsafe(4 + payload.length);
    frame.writeUInt32LE(payload.length, 0);
    payload.copy(frame, 4);
    socket.write(frame);
    return back;
  });
  await peer.close();
  return rtt;
}

// ---- C programs on rte_ring --------------------------------------------------------------

/** Builds bench/c/ring_pair.c; undefined (and a progress note) when no C toolchain or DPDK. */
function buildRingPair(ctx: BenchContext): { binary: string; dir: string } | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'mpbus-bench-c-'));
  const binary = join(dir, 'ring_pair');
  try {
    const flags = execFileSync('pkg-config', ['--cflags', '--libs', 'libdpdk'], { encoding: 'utf8' }).trim().split(/\s+/);
    execFileSync('cc', ['-O2', join(repoRoot, 'bench', 'c', 'ring_pair.c'), '-o', binary, ...flags], { stdio: 'pipe' });
    return { binary, dir };
  } catch (err) {
    ctx.progress(`c_rte_ring skipped: cannot build bench/c/ring_pair.c (${(err as Error).message.split('\n')[0]})`);
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
}

function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`ring_pair: no ${pattern} within ${timeoutMs} ms; output: ${text}`)), timeoutMs);
    const onData = (d: Buffer): void => {
      text += d.toString();
      const line = text.split('\n').find((l) => pattern.test(l));
      if (line) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        resolve(line);
      }
    };
    child.stdout!.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`ring_pair exited (${code}) before ${pattern}; output: ${text}`));
    });
  });
}

async function cRingPair(binary: string, payloadBytes: number, s: Settings): Promise<{ throughput: number; rtt: Rtt }> {
  const prefix = `mpbus_bench_c_${process.pid}_${payloadBytes}`;
  const cpus = `(0-${availableParallelism() - 1})`;
  const eal = (role: string, lcore: number): string[] => [
    `--proc-type=${role}`,
    `--file-prefix=${prefix}`,
    `--lcores=${lcore}@${cpus}`,
    '--no-pci',
    '--no-telemetry',
    '--log-level=error',
  ];
  const primary = spawn(
    binary,
    [...eal('primary', 0), '--base-virtaddr=0x600000000000', '--', 'primary', String(payloadBytes), String(s.seconds), String(s.roundTrips * 10)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let secondary: ChildProcess | undefined;
  try {
    await waitForLine(primary, /^READY/, 30_000);
    secondary = spawn(binary, [...eal('secondary', 1), '--', 'secondary', String(payloadBytes)], { stdio: ['ignore', 'ignore', 'inherit'] });
    const line = await waitForLine(primary, /^RESULT/, 60_000 + s.seconds * 4000);
    const [, , throughput, p50, p99] = line.trim().split(/\s+/).map(Number);
    return { throughput: throughput!, rtt: { p50: p50!, p99: p99! } };
  } finally {
    await Promise.all([endChildGracefully(primary), secondary ? endChildGracefully(secondary) : undefined]);
    new GroupFiles(prefix).removeLeftovers(false);
  }
}

/** Waits a moment for a C process to leave the group by itself, then kills it by PID. */
async function endChildGracefully(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  const timer = setTimeout(() => process.kill(child.pid!, 'SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

// ---- the suite ------------------------------------------------------------------------------

function codecCeilingWithoutNative(payloadBytes: number, seconds: number): CodecRates | undefined {
  try {
    const out = execFileSync(process.execPath, [codecScript, String(payloadBytes), String(seconds)], {
      encoding: 'utf8',
      env: { ...process.env, MSGPACKR_NATIVE_ACCELERATION_DISABLED: 'true' },
    });
    return JSON.parse(out) as CodecRates;
  } catch {
    return undefined;
  }
}

const fmt = (n: number): string => `${(n / 1e6).toFixed(2)} M/s`;

export async function run(ctx: BenchContext): Promise<void> {
  const s: Settings = ctx.quick ? { seconds: 0.3, roundTrips: 1000, repeats: 1 } : { seconds: 1, roundTrips: 5000, repeats: 3 };
  ctx.progress(`baselines: msgpackr native acceleration ${isNativeAccelerationEnabled ? 'enabled' : 'DISABLED'}`);
  ctx.setField('msgpackrNativeAcceleration', isNativeAccelerationEnabled);
  const ringPair = buildRingPair(ctx);
  const packr = benchPackr();
  try {
    for (const bytes of PAYLOAD_SIZES) {
      const rows: BenchRow[] = [];
      const value = benchValue(bytes);
      const raw = rawPayload(bytes);

      ctx.progress(`baselines ${bytes} B: codec_ceiling`);
      const codec = measureCodec(bytes, s.seconds * 2);
      const plain = codecCeilingWithoutNative(bytes, s.seconds * 2);
      rows.push({
        transport: 'codec_ceiling',
        payloadBytes: bytes,
        throughputMsgsPerSec: Math.round(Math.min(codec.packPerSec, codec.unpackPerSec)),
        notes:
          `pack ${fmt(codec.packPerSec)}, unpack ${fmt(codec.unpackPerSec)} (native acceleration ${codec.nativeAcceleration ? 'on' : 'off'})` +
          (plain ? `; without native acceleration: pack ${fmt(plain.packPerSec)}, unpack ${fmt(plain.unpackPerSec)}` : ''),
      });

      ctx.progress(`baselines ${bytes} B: child_process (json, advanced)`);
      const ipc: Array<{ serialization: 'json' | 'advanced'; throughput: number }> = [];
      for (const serialization of ['json', 'advanced'] as const) {
        ipc.push({ serialization, throughput: await best(s, () => objectThroughput(ipcPeer('sink', serialization), value, s)) });
      }
      ipc.sort((a, b) => b.throughput - a.throughput);
      const bestIpc = ipc[0]!;
      const ipcRtt = await objectRtt(ipcPeer('echo', bestIpc.serialization), value, s);
      rows.push({
        transport: 'child_process',
        payloadBytes: bytes,
        throughputMsgsPerSec: Math.round(bestIpc.throughput),
        rttP50Us: ipcRtt.p50,
        rttP99Us: ipcRtt.p99,
        notes: `serialization '${bestIpc.serialization}' (the other: ${fmt(ipc[1]!.throughput)}); window ${WINDOW}, ack every ${ACK_EVERY}`,
      });

      ctx.progress(`baselines ${bytes} B: worker_threads`);
      const wt = await best(s, () => objectThroughput(workerPeer('sink'), value, s));
      const wtRtt = await objectRtt(workerPeer('echo'), value, s);
      rows.push({
        transport: 'worker_threads',
        payloadBytes: bytes,
        throughputMsgsPerSec: Math.round(wt),
        rttP50Us: wtRtt.p50,
        rttP99Us: wtRtt.p99,
        notes: `window ${WINDOW}, ack every ${ACK_EVERY}`,
      });

      ctx.progress(`baselines ${bytes} B: unix_socket (msgpackr frames)`);
      const encode = (): Buffer => packr.pack(value);
      const us = await best(s, async () => frameThroughput(await framePeer('msgpackr', 'sink'), encode, s));
      const usRtt = await frameRtt(await framePeer('msgpackr', 'echo'), encode, s);
      rows.push({
        transport: 'unix_socket',
        payloadBytes: bytes,
        throughputMsgsPerSec: Math.round(us),
        rttP50Us: usRtt.p50,
        rttP99Us: usRtt.p99,
        notes: `writes batched up to ${BATCH_BYTES / 1024} KiB`,
      });

      ctx.progress(`baselines ${bytes} B: unix_socket_raw`);
      const rawEncode = (): Buffer => raw;
      const ur = await best(s, async () => frameThroughput(await framePeer('raw', 'sink'), rawEncode, s));
      const urRtt = await frameRtt(await framePeer('raw', 'echo'), rawEncode, s);
      rows.push({
        transport: 'unix_socket_raw',
        payloadBytes: bytes,
        throughputMsgsPerSec: Math.round(ur),
        rttP50Us: urRtt.p50,
        rttP99Us: urRtt.p99,
        notes: `writes batched up to ${BATCH_BYTES / 1024} KiB`,
      });

      if (ringPair) {
        ctx.progress(`baselines ${bytes} B: c_rte_ring`);
        try {
          // each run starts two DPDK processes: two runs are enough to dodge one unlucky one
          const runs: Array<{ throughput: number; rtt: Rtt }> = [];
          for (let i = 0; i < Math.min(s.repeats, 2); i++) runs.push(await cRingPair(ringPair.binary, bytes, s));
          const c = runs.reduce((a, b) => (b.throughput > a.throughput ? b : a));
          rows.push({
            transport: 'c_rte_ring',
            payloadBytes: bytes,
            throughputMsgsPerSec: Math.round(c.throughput),
            rttP50Us: c.rtt.p50,
            rttP99Us: c.rtt.p99,
            notes: 'mempool buffers, bursts of 32, payload copied in and out, both sides spinning',
          });
        } catch (err) {
          ctx.progress(`c_rte_ring ${bytes} B failed: ${(err as Error).message}`);
        }
      }
      ctx.addRows(rows);
    }
  } finally {
    if (ringPair) rmSync(ringPair.dir, { recursive: true, force: true });
  }
}
