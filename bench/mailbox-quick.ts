/**
 * The mailbox bench's encoded throughput and round trips alone, for comparing two builds run
 * one after the other (development aid): `node dist/bench/mailbox-quick.js [runs=3] [seconds=1]`
 * prints, per payload size (64 B, 1 KiB), each run's batched one-way rate (trySendMany, 64 per
 * call) and one steady-state round-trip p50/p99, as the `mpbus` rows measure them.
 */
import { GroupFiles } from '../src/runtime/group.js';
import { Peer, throughput } from './suites/mailbox.js';

const runs = Number(process.argv[2] ?? 3);
const seconds = Number(process.argv[3] ?? 1);
const prefix = `mpbench_quick_${process.pid}`;
const peers: Peer[] = [];
try {
  for (const t of ['primary', 'secondary', 'secondary'] as const) peers.push(await Peer.spawn(prefix, t));
  const [, a, b] = peers as [Peer, Peer, Peer];
  for (const bytes of [64, 1024]) {
    const sink = `sink-${bytes}`;
    await b.call({ op: 'open', mode: 'count', names: [sink] });
    const rates: string[] = [];
    for (let i = 0; i < runs; i++) rates.push(`${((await throughput(a, b, [sink], bytes, false, seconds, 64)).perSec / 1e6).toFixed(2)} M/s`);
    await b.call({ op: 'open', mode: 'echo', name: `echo-${bytes}`, replyTo: `pong-${bytes}` });
    const rtt = await a.call<{ p50: number; p99: number }>({
      op: 'rtt',
      me: `pong-${bytes}`,
      to: `echo-${bytes}`,
      bytes,
      raw: false,
      rounds: 300_000,
      seconds,
    });
    console.log(`${bytes} B: ${rates.join(', ')}; RTT p50 ${rtt.p50.toFixed(1)} us, p99 ${rtt.p99.toFixed(1)} us`);
  }
} finally {
  await Promise.all(peers.map((p) => p.stop()));
  const group = new GroupFiles(prefix);
  if (!group.primaryAlive()) group.removeLeftovers(false);
}
