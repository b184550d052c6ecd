/**
 * The 4-pairs part of the mailbox bench alone (development aid):
 * `node dist/bench/pairs-only.js [pairs=4] [seconds=2] [runs=3]`: one-way throughput of every
 * pair at once, `runs` times, then encoded and raw round trips of every pair at once
 * (`RTT_ROUNDS`, default 5,000 per pair).
 */
import { GroupFiles } from '../src/runtime/group.js';
import { Peer, openPairEchoes, pairRoundTrips, throughput } from './suites/mailbox.js';

const pairsN = Number(process.argv[2] ?? 4);
const seconds = Number(process.argv[3] ?? 2);
const prefix = `mpbench_pairs_${process.pid}`;
const peers: Peer[] = [];
const spawn = async (t: 'primary' | 'secondary'): Promise<Peer> => {
  const p = await Peer.spawn(prefix, t);
  peers.push(p);
  return p;
};
try {
  await spawn('primary');
  setTimeout(() => {}, 0);
  const pairs: Array<[Peer, Peer]> = [];
  for (let i = 0; i < pairsN; i++) pairs.push([await spawn('secondary'), await spawn('secondary')]);
  await Promise.all(pairs.map(([, rx], i) => rx.call({ op: 'open', mode: 'count', names: [`pair-${i}`] })));
  console.log('pids tx ' + pairs.map(([tx]) => tx.child.pid).join(' ') + ' rx ' + pairs.map(([, rx]) => rx.child.pid).join(' '));
  for (let run = 0; run < Number(process.argv[4] ?? 3); run++) {
    const perPair = await Promise.all(pairs.map(([tx, rx], i) => throughput(tx, rx, [`pair-${i}`], 64, false, seconds, 64)));
    const total = perPair.reduce((s, r) => s + r.perSec, 0);
    console.log(
      `${new Date().toISOString().slice(14, 23)} run ${run}: total ${(total / 1e6).toFixed(2)} M/s; per pair ${perPair.map((r) => (r.perSec / 1e6).toFixed(2)).join(' ')}; rx ns/msg ${perPair.map((r) => Math.round(r.receiverNsPerMsg)).join(' ')}`,
    );
  }
  await openPairEchoes(pairs);
  for (const raw of [false, true]) {
    const rtts = await pairRoundTrips(pairs, raw, Number(process.env.RTT_ROUNDS ?? 5000), 2);
    console.log(`${raw ? 'raw' : 'encoded'} rtt p50 ${rtts.map((r) => r.p50.toFixed(1)).join(' ')} p99 ${rtts.map((r) => r.p99.toFixed(0)).join(' ')}`);
  }
} finally {
  await Promise.all(peers.map((p) => p.stop()));
  const group = new GroupFiles(prefix);
  if (!group.primaryAlive()) group.removeLeftovers(false);
}
