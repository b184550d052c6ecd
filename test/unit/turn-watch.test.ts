/**
 * A loop asking an actor of its own process (an in-process hub, no DPDK) runs in microtasks
 * only: the actor lets the event loop turn about every 10 ms, so timers (and signals) still
 * come in while it runs.
 */
import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import { ActorSystem, InProcessHub } from '../../src/index.js';

interface Squarer {
  square: { msg: number; reply: number };
}

describe('asking an actor of this process in a loop', () => {
  it('lets the event loop turn: a timer of 20 ms fires while the loop runs', async () => {
    const system = new ActorSystem({ transport: new InProcessHub().connect() });
    try {
      const ref = await system.spawn<Squarer>('squarer', { square: (n) => n * n });
      const t0 = performance.now();
      let firedAt: number | undefined;
      setTimeout(() => (firedAt = performance.now() - t0), 20);
      let asks = 0;
      // ends when the timer fired, or after 2 s without it
      while (firedAt === undefined && performance.now() - t0 < 2000) {
        expect(await ref.ask('square', 3)).toBe(9);
        asks++;
      }
      expect(firedAt, `${asks} asks before the timer fired`).toBeLessThan(500);
      // and between two turns the asks went on
      expect(asks).toBeGreaterThan(10);
    } finally {
      await system.close({ timeoutMs: 500 });
    }
  });
});
