/**
 * A Node process of the interrupts bench (forked by bench/suites/interrupts.ts):
 *   intr-peer primary <prefix>     an eventfd source; on { fire, intervalMs } signals it `fire`
 *                                  times, then answers { maxGapMs, relay } (its event loop's
 *                                  longest stall meanwhile, from a 5 ms ticker, and relayStats())
 *   intr-peer secondary <prefix>   records each event's latency (primary callback -> delivery
 *                                  here); on { report } answers { latenciesUs, seqs } and resets
 */
import { Runtime } from '../../src/index.js';

const [role, filePrefix] = process.argv.slice(2) as [string, string];
const rt = await Runtime.start({ filePrefix, procType: role === 'primary' ? 'primary' : 'secondary' });
const intr = rt.interrupts;
const keepAlive = setInterval(() => undefined, 1 << 30); // interrupts never hold a process open
const leave = (): void => {
  clearInterval(keepAlive);
  void rt.close().then(() => process.exit(0));
};
process.on('disconnect', leave);
process.on('SIGTERM', leave);

if (role === 'primary') {
  const source = intr.eventSource('bench');
  let last = performance.now();
  let maxGapMs = 0;
  setInterval(() => {
    const now = performance.now();
    maxGapMs = Math.max(maxGapMs, now - last);
    last = now;
  }, 5).unref();
  process.on('message', (m: { fire: number; intervalMs: number }) => {
    maxGapMs = 0;
    let left = m.fire;
    const tick = (): void => {
      source.signal(1);
      if (--left > 0) setTimeout(tick, m.intervalMs);
      else setTimeout(() => process.send?.({ maxGapMs, relay: intr.relayStats() }), 200);
    };
    tick();
  });
} else {
  let latenciesUs: number[] = [];
  let seqs: number[] = [];
  intr.events$.subscribe((e) => {
    latenciesUs.push((performance.timeOrigin + performance.now() - e.timestamp) * 1000);
    seqs.push(e.seq);
  });
  process.on('message', () => {
    process.send?.({ latenciesUs, seqs });
    latenciesUs = [];
    seqs = [];
  });
}
process.send?.({ ready: true });
