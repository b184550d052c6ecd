/**
 * mpbus mailboxes between real Node processes of one DPDK group (bench/peers/mailbox-peer.ts):
 * - rows `mpbus` and `mpbus_raw` (64 B and 1 KiB): one-way throughput (counted when the
 *   receiver has every value) and round trip p50/p99 to an echoing mailbox;
 * - `mailboxFanout`: the receiver's CPU per message with 1 mailbox and with 10,000 (one
 *   inbox per process: the cost must not grow);
 * - `mailboxPairs`: 4 sender/receiver pairs at once (8 processes on this machine's CPUs);
 * - `idleCpuPercent`: a process with open mailboxes and no traffic.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GroupFiles } from '../../src/runtime/group.js';
import type { BenchContext, BenchRow } from '../lib.js';
import { PAYLOAD_SIZES } from '../values.js';

const here = dirname(fileURLToPath(import.meta.url));
const peerScript = join(here, '..', 'peers', 'mailbox-peer.js');

interface Settings {
  seconds: number;
  rounds: number;
  /** Round trips of the mpbus RTT rows: enough for about a second at steady state. */
  steadyRounds: number;
  idleMs: number;
}

export class Peer {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly exited: Promise<unknown>;

  constructor(readonly child: ChildProcess) {
    this.exited = once(child, 'exit');
    child.on('message', (m: { id?: number; ok?: boolean; value?: unknown; error?: string }) => {
      if (m.id === undefined) return;
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.ok) p?.resolve(m.value);
      else p?.reject(new Error(`mailbox peer ${child.pid}: ${m.error}`));
    });
    child.on('exit', () => {
      for (const p of this.pending.values()) p.reject(new Error(`mailbox peer ${child.pid} exited`));
      this.pending.clear();
    });
  }

  static async spawn(prefix: string, procType: 'primary' | 'secondary', execArgv: string[] = process.execArgv): Promise<Peer> {
    const child = fork(peerScript, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const peer = new Peer(child);
    await once(child, 'message');
    await peer.call({ op: 'start', prefix, procType });
    return peer;
  }

  call<T = unknown>(cmd: Record<string, unknown>): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, ...cmd });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await this.call({ op: 'exit' }).catch(() => {});
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

interface EndStats {
  count: number;
  endNs: string;
  cpuUs: number;
}

/** One-way throughput from `sender` to the counting mailboxes `to` of `receiver`. */
export async function throughput(
  sender: Peer,
  receiver: Peer,
  to: string[],
  bytes: number,
  raw: boolean,
  seconds: number,
  batch = 1,
): Promise<{ perSec: number; receiverNsPerMsg: number; count: number }> {
  await receiver.call({ op: 'reset' });
  const stats = receiver.call<EndStats>({ op: 'awaitEnd' });
  const sent = await sender.call<{ sent: number; startNs: string }>({ op: 'throughput', to, bytes, raw, seconds, batch });
  const end = await stats;
  if (end.count !== sent.sent) throw new Error(`receiver counted ${end.count} of ${sent.sent} values`);
  const elapsedS = Number(BigInt(end.endNs) - BigInt(sent.startNs)) / 1e9;
  return { perSec: end.count / elapsedS, receiverNsPerMsg: (end.cpuUs * 1000) / end.count, count: end.count };
}

/**
 * The mailbox bus measured beside other rows, as the `mpbus` row measures it, in processes of its
 * own (a primary and two secondaries: the sender and the receiver): the peers and actors suites
 * divide their rows by it taken a second apart, not a suite apart.
 */
export class MailboxBaseline {
  private constructor(
    private readonly prefix: string,
    private readonly peers: [Peer, Peer, Peer],
  ) {}

  /** Starts its three processes in the group `prefix`; every one it started is stopped if one fails to. */
  static async start(prefix: string): Promise<MailboxBaseline> {
    const started: Peer[] = [];
    try {
      for (const procType of ['primary', 'secondary', 'secondary'] as const) started.push(await Peer.spawn(prefix, procType));
      const baseline = new MailboxBaseline(prefix, started as [Peer, Peer, Peer]);
      await baseline.receiver.call({ op: 'open', mode: 'count', names: ['sink'] });
      await baseline.receiver.call({ op: 'open', mode: 'echo', name: 'echo', replyTo: 'pong' });
      return baseline;
    } catch (err) {
      await MailboxBaseline.stopAll(prefix, started);
      throw err;
    }
  }

  private get sender(): Peer {
    return this.peers[1];
  }

  private get receiver(): Peer {
    return this.peers[2];
  }

  /**
   * Values of `bytes` per second one way, measured as the `mpbus` row is (give it the mailbox
   * suite's `seconds`): the best of two runs of 64 values per native call and one run of one
   * per call. Shorter runs read lower than that row (0.72-0.89 of it at 0.5 s, in the same
   * full runs), which made the figures divided by them read higher.
   */
  async oneWay(bytes: number, seconds: number): Promise<number> {
    const batched = await sequential(2, () => throughput(this.sender, this.receiver, ['sink'], bytes, false, seconds, 64));
    const single = await throughput(this.sender, this.receiver, ['sink'], bytes, false, seconds, 1);
    return Math.max(...batched.map((r) => r.perSec), single.perSec);
  }

  /** Round trips of `bytes` to the echo (µs), at most `rounds` or `seconds`. */
  roundTrips(bytes: number, rounds: number, seconds: number): Promise<{ p50: number; p99: number }> {
    return this.sender.call<{ p50: number; p99: number }>({ op: 'rtt', me: 'pong', to: 'echo', bytes, raw: false, rounds, seconds });
  }

  stop(): Promise<void> {
    return MailboxBaseline.stopAll(this.prefix, this.peers);
  }

  /** Secondaries first (a primary that left first would leave its files to them), then what is left of the group's files. */
  private static async stopAll(prefix: string, peers: Peer[]): Promise<void> {
    await Promise.all(peers.slice(1).map((p) => p.stop()));
    await peers[0]?.stop();
    const group = new GroupFiles(prefix);
    if (!group.primaryAlive()) group.removeLeftovers(false);
  }
}

const mps = (n: number): string => `${(n / 1e6).toFixed(2)} M/s`;

export async function run(ctx: BenchContext): Promise<void> {
  const s: Settings = ctx.quick
    ? { seconds: 0.3, rounds: 1000, steadyRounds: 20_000, idleMs: 1000 }
    : { seconds: 1, rounds: 5000, steadyRounds: 300_000, idleMs: 3000 };
  const prefix = `mpbench_mbx_${process.pid}`;
  const peers: Peer[] = [];
  const spawn = async (procType: 'primary' | 'secondary'): Promise<Peer> => {
    const p = await Peer.spawn(prefix, procType);
    peers.push(p);
    return p;
  };
  try {
    ctx.progress('mailbox: starting processes');
    const primary = await spawn('primary');
    const a = await spawn('secondary');
    const b = await spawn('secondary');

    const rows: BenchRow[] = [];
    for (const bytes of PAYLOAD_SIZES) {
      for (const raw of [false, true]) {
        const transport = raw ? 'mpbus_raw' : 'mpbus';
        ctx.progress(`mailbox ${bytes} B: ${transport} throughput`);
        const sink = `sink-${bytes}-${raw ? 'raw' : 'enc'}`;
        await b.call({ op: 'open', mode: 'count', names: [sink] });
        // Batched (trySendMany, 64 values per native call) is mpbus at its best; one value per call for comparison.
        const batched = Math.max(...(await sequential(2, () => throughput(a, b, [sink], bytes, raw, s.seconds, 64))).map((r) => r.perSec));
        const single = (await throughput(a, b, [sink], bytes, raw, s.seconds, 1)).perSec;
        // Raw bytes at their best: received through bursts$ (views of the shared buffers, one
        // emission per drain) rather than a Buffer copy and an emission per message.
        let bursts = 0;
        if (raw) {
          const burstSink = `${sink}-bursts`;
          await b.call({ op: 'open', mode: 'countBursts', names: [burstSink] });
          bursts = Math.max(...(await sequential(2, () => throughput(a, b, [burstSink], bytes, raw, s.seconds, 64))).map((r) => r.perSec));
        }
        const best = Math.max(batched, single, bursts);
        ctx.progress(`mailbox ${bytes} B: ${transport} round trips`);
        const echo = `echo-${bytes}-${raw ? 'raw' : 'enc'}`;
        const pong = `pong-${bytes}-${raw ? 'raw' : 'enc'}`;
        await b.call({ op: 'open', mode: 'echo', name: echo, replyTo: pong });
        // Microsecond round trips: 5,000 of them last ~15 ms, which measures where the scheduler
        // left the two processes after the previous phase more than the transport; a second of
        // them (10% warm-up) is the steady state.
        const rtt = await a.call<{ p50: number; p99: number }>({ op: 'rtt', me: pong, to: echo, bytes, raw, rounds: s.steadyRounds, seconds: s.seconds });
        rows.push({
          transport,
          payloadBytes: bytes,
          throughputMsgsPerSec: Math.round(best),
          rttP50Us: round2(rtt.p50),
          rttP99Us: round2(rtt.p99),
          notes: `one-way: ${mps(batched)} batched (trySendMany, 64 per call, best of 2), ${mps(single)} one value per call${raw ? `, ${mps(bursts)} batched and received through bursts$` : ''}; RTT to an echoing mailbox in another process`,
        });
      }
    }
    ctx.addRows(rows);

    ctx.progress('mailbox: receiving cost with 1 and with 10,000 mailboxes');
    const fanBytes = 64;
    await b.call({ op: 'open', mode: 'count', names: ['fan-one'], capacity: 4096 });
    const fanNames = Array.from({ length: 10_000 }, (_, i) => `fan-${i}`);
    await b.call({ op: 'open', mode: 'count', names: fanNames, capacity: 64 });
    const one = await throughput(a, b, ['fan-one'], fanBytes, false, s.seconds);
    const many = await throughput(a, b, fanNames, fanBytes, false, s.seconds);
    const fanout = [
      { mailboxes: 1, payloadBytes: fanBytes, throughputMsgsPerSec: Math.round(one.perSec), receiverCpuNsPerMsg: Math.round(one.receiverNsPerMsg) },
      { mailboxes: 10_000, payloadBytes: fanBytes, throughputMsgsPerSec: Math.round(many.perSec), receiverCpuNsPerMsg: Math.round(many.receiverNsPerMsg) },
    ];
    ctx.setField('mailboxFanout', fanout);
    ctx.progress(
      `mailbox fan-out: 1 mailbox ${mps(one.perSec)} (${fanout[0]!.receiverCpuNsPerMsg} ns CPU/msg at the receiver), 10,000 mailboxes round-robin ${mps(many.perSec)} (${fanout[1]!.receiverCpuNsPerMsg} ns/msg)`,
    );

    ctx.progress('mailbox: idle CPU of a process with open mailboxes');
    await primary.call({ op: 'open', mode: 'count', names: Array.from({ length: 100 }, (_, i) => `idle-${i}`) });
    const idle = await primary.call<{ percent: number; parked: boolean }>({ op: 'idle', ms: s.idleMs });
    ctx.setField('idleCpuPercent', round2(idle.percent));

    ctx.progress('mailbox: 4 process pairs at once');
    const pairs: Array<[Peer, Peer]> = [[a, b]];
    for (let i = 1; i < 4; i++) pairs.push([await spawn('secondary'), await spawn('secondary')]);
    await Promise.all(pairs.map(([, rx], i) => rx.call({ op: 'open', mode: 'count', names: [`pair-${i}`] })));
    const perPair = await Promise.all(pairs.map(([tx, rx], i) => throughput(tx, rx, [`pair-${i}`], 64, false, s.seconds * 2, 64)));
    await openPairEchoes(pairs);
    const rtts = await pairRoundTrips(pairs, false, s.rounds, s.seconds * 2);
    const total = perPair.reduce((sum, r) => sum + r.perSec, 0);
    ctx.setField('mailboxPairs', {
      pairs: pairs.length,
      payloadBytes: 64,
      totalMsgsPerSec: Math.round(total),
      perPairMsgsPerSec: perPair.map((r) => Math.round(r.perSec)),
      rttP50Us: rtts.map((r) => round2(r.p50)),
      rttP99Us: rtts.map((r) => round2(r.p99)),
    });
    ctx.progress(
      `mailbox 4 pairs: ${mps(total)} in all (${perPair.map((r) => mps(r.perSec)).join(', ')}); RTT p50 ${rtts.map((r) => r.p50.toFixed(1)).join(', ')} µs`,
    );
  } finally {
    await Promise.all(peers.map((p) => p.stop()));
    const group = new GroupFiles(prefix);
    if (!group.primaryAlive()) group.removeLeftovers(false);
  }
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

async function sequential<T>(times: number, fn: () => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < times; i++) out.push(await fn());
  return out;
}

/** Opens an echo mailbox on the second peer of every pair (`pecho-<i>`, answering to `ppong-<i>`). */
export async function openPairEchoes(pairs: Array<[Peer, Peer]>): Promise<void> {
  await Promise.all(pairs.map(([, rx], i) => rx.call({ op: 'open', mode: 'echo', name: `pecho-${i}`, replyTo: `ppong-${i}` })));
}

/** 64-byte round trips of every pair at once, through the echoes of {@link openPairEchoes}. */
export function pairRoundTrips(pairs: Array<[Peer, Peer]>, raw: boolean, rounds: number, seconds: number): Promise<Array<{ p50: number; p99: number }>> {
  return Promise.all(
    pairs.map(([tx], i) => tx.call<{ p50: number; p99: number }>({ op: 'rtt', me: `ppong-${i}`, to: `pecho-${i}`, bytes: 64, raw, rounds, seconds })),
  );
}
