/**
 * Asks carrying large byte strings across processes, against `child_process.fork` with
 * `serialization: 'advanced'` in the same run (docs/benchmarks.md, "Large values"): the caller
 * asks a worker process (a child of `system.launch()`) to answer the length of a `Uint8Array`
 * of each size, one ask at a time, in rounds that alternate mpbus and the fork peer so that load
 * from elsewhere hits both alike. Prints, per size, the median ms per ask of each and their ratio.
 *
 * Run (after tsc): node dist/bench/large-asks.js [rounds=5] [asks=30] [sizes=65536,1048576,4194304]
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { launchedChild, startActorSystem } from '../src/index.js';

interface Sizer {
  size: { msg: Uint8Array; reply: number };
}

const me = launchedChild();
if (process.argv[2] === 'fork-peer') {
  process.on('message', (m: Uint8Array) => process.send!(m.length));
} else if (me) {
  const system = await startActorSystem();
  await system.spawn<Sizer>(me.name, { size: (bytes) => bytes.length });
} else {
  const rounds = Number(process.argv[2] ?? 5);
  const asks = Number(process.argv[3] ?? 30);
  const sizes = (process.argv[4] ?? '65536,1048576,4194304').split(',').map(Number);
  const system = await startActorSystem({ filePrefix: `mpbench_large_${process.pid}`, procType: 'primary', askTimeoutMs: 60_000 });
  await system.launch(new URL(import.meta.url), { name: 'sizer', ready: { actors: ['sizer-1'] } });
  const worker = system.ref<Sizer>('sizer-1');
  const peer = fork(fileURLToPath(import.meta.url), ['fork-peer'], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const askPeer = (bytes: Uint8Array): Promise<number> =>
    new Promise((resolve) => {
      peer.once('message', resolve as (n: unknown) => void);
      peer.send(bytes);
    });
  /** ms per ask over `asks` sequential asks. */
  const timed = async (ask: (bytes: Uint8Array) => Promise<number>, bytes: Uint8Array): Promise<number> => {
    const t0 = performance.now();
    for (let i = 0; i < asks; i++) if ((await ask(bytes)) !== bytes.length) throw new Error('wrong length answered');
    return (performance.now() - t0) / asks;
  };
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const rows = [];
  for (const size of sizes) {
    const bytes = new Uint8Array(size).fill(7);
    await timed((b) => worker.ask('size', b), bytes); // warm-up
    await timed(askPeer, bytes);
    const mpbus: number[] = [];
    const forked: number[] = [];
    for (let r = 0; r < rounds; r++) {
      mpbus.push(await timed((b) => worker.ask('size', b), bytes));
      forked.push(await timed(askPeer, bytes));
      process.stderr.write(`\r${size} B: round ${r + 1}/${rounds}`);
    }
    process.stderr.write('\n');
    const a = median(mpbus);
    const b = median(forked);
    rows.push({
      bytes: size,
      'mpbus ms/ask': +a.toFixed(2),
      'fork (advanced) ms/ask': +b.toFixed(2),
      'fork / mpbus': +(b / a).toFixed(2),
      'mpbus MB/s one way': Math.round(size / 1e3 / a),
    });
  }
  console.table(rows);
  peer.kill();
  await system.close();
}
