/**
 * A receiver of large tells (docs/mailboxes.md, "Large messages"): the primary's actor `sink`
 * takes byte strings from worker processes (children of `system.launch()`), each worker telling
 * one every `paceMs` for `seconds`, while a 1 ms interval timer in the primary records the gaps
 * of its event loop. Prints what arrived, the time the primary spent in `mbxDrain` (the copies
 * out of the shared heap) and the gaps.
 *
 * Run (after tsc): node dist/bench/large-tells.js [seconds=8] [paceMs=5] [bytes=1048576] [workers=2]
 */
import 'reflect-metadata';
import { setTimeout as sleep } from 'node:timers/promises';
import { launchedChild, startActorSystem } from '../src/index.js';
import { addon } from '../src/native/addon.js';

interface Sink {
  put: { msg: Uint8Array; reply: void };
}
interface Teller {
  go: { msg: { seconds: number; paceMs: number; bytes: number }; reply: number };
}

const me = launchedChild();
if (me) {
  const system = await startActorSystem();
  const sink = system.ref<Sink>('sink');
  await system.spawn<Teller>(me.name, {
    go: async ({ seconds, paceMs, bytes }) => {
      const body = new Uint8Array(bytes).fill(7);
      const end = Date.now() + seconds * 1000;
      let told = 0;
      for (; Date.now() < end; told++) {
        sink.tell('put', body);
        await sleep(paceMs);
      }
      return told;
    },
  });
} else {
  const [seconds = 8, paceMs = 5, bytes = 1 << 20, workers = 2] = process.argv.slice(2).map(Number);
  const system = await startActorSystem({ filePrefix: `mpbench_ltells_${process.pid}`, procType: 'primary', memoryMb: 1024 });
  let received = 0;
  await system.spawn<Sink>('sink', { put: () => void received++ });
  // the drain's own time, wrapped around the addon's function (the receive loop calls it there)
  const native = addon() as unknown as { mbxDrain: (spinUs: number) => number };
  const drain = native.mbxDrain.bind(native);
  let drainMs = 0;
  let longestDrainMs = 0;
  native.mbxDrain = (spinUs) => {
    const t0 = performance.now();
    const n = drain(spinUs);
    const took = performance.now() - t0;
    if (n > 0) {
      drainMs += took;
      longestDrainMs = Math.max(longestDrainMs, took);
    }
    return n;
  };
  const gaps: number[] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    gaps.push(now - last);
    last = now;
  }, 1);
  const pool = await system.launch(new URL(import.meta.url), { count: workers, name: 'teller', ready: { actors: (c) => [c.name] } });
  const tellers = pool.children().map((c) => system.ref<Teller>(c.child!.name));
  const t0 = performance.now();
  const told = await Promise.all(tellers.map((t) => t.ask('go', { seconds, paceMs, bytes }, { timeoutMs: seconds * 1000 + 60_000 })));
  const elapsed = performance.now() - t0;
  await sleep(200);
  clearInterval(timer);
  gaps.sort((a, b) => a - b);
  const at = (q: number): string => gaps[Math.min(gaps.length - 1, Math.floor(gaps.length * q))]!.toFixed(1);
  console.log(
    `${told.reduce((a, b) => a + b, 0)} told, ${received} received (${bytes} B each) in ${elapsed.toFixed(0)} ms; ` +
      `${drainMs.toFixed(0)} ms in the drain, longest ${longestDrainMs.toFixed(1)} ms; ` +
      `event-loop gaps p50 ${at(0.5)}, p99 ${at(0.99)}, longest ${gaps[gaps.length - 1]!.toFixed(1)} ms, over 50 ms: ${gaps.filter((g) => g > 50).length}`,
  );
  await system.close();
}
