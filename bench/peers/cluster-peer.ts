/**
 * A process of its own DPDK group joined to a cluster through nats-server, for
 * bench/suites/nats.ts:
 *
 *   node cluster-peer.js serve <filePrefix> <natsUrl> <cluster>
 *       spawns 'echo' and answers until its IPC channel closes;
 *   node cluster-peer.js ask <filePrefix> <natsUrl> <cluster> <asks> <window> <payloadBytes>
 *       asks 'echo' on the other host and prints one line of JSON: {asks, seconds, rttsUs[] summary}.
 */
import 'reflect-metadata';
import { startActorSystem } from '../../src/index.js';

const [role, filePrefix, servers, cluster, ...rest] = process.argv.slice(2);
if (!role || !filePrefix || !servers || !cluster) {
  console.error('cluster-peer.js is started by bench/suites/nats.ts');
  process.exit(2);
}

const system = await startActorSystem({ filePrefix, procType: 'primary', cluster: { servers, name: cluster } });

if (role === 'serve') {
  await system.spawn('echo', { echo: (m: unknown) => m });
  process.send?.({ ready: true });
  process.on('disconnect', () => void system.close({ timeoutMs: 500 }).then(() => process.exit(0)));
} else {
  const asks = Number(rest[0] ?? 1000);
  const window = Number(rest[1] ?? 1);
  const payload = 'x'.repeat(Number(rest[2] ?? 64));
  const deadline = Date.now() + 20_000;
  while (!system.has('echo')) {
    if (Date.now() > deadline) throw new Error("'echo' never appeared in the cluster directory");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const echo = system.ref('echo');
  for (let i = 0; i < Math.min(1000, asks); i++) await echo.ask('echo', payload); // warm-up
  const rtts = new Float64Array(asks);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    [...Array(window).keys()].map(async () => {
      while (next < asks) {
        const i = next++;
        const s = performance.now();
        await echo.ask('echo', payload, { timeoutMs: 30_000 });
        rtts[i] = (performance.now() - s) * 1000;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  rtts.sort();
  const at = (p: number): number => rtts[Math.min(asks - 1, Math.max(0, Math.ceil((p / 100) * asks) - 1))]!;
  console.log(JSON.stringify({ asks, seconds, p50Us: at(50), p99Us: at(99) }));
  await system.close({ timeoutMs: 500 });
  process.exit(0);
}
