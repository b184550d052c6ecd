/**
 * An actor whose handlers await (an in-process hub, no DPDK) still finds the asks that expired
 * while it awaited: it drops them ('expired' dead letters) rather than run them for askers that
 * stopped waiting.
 */
import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import { ActorSystem, InProcessHub } from '../../src/index.js';

describe('an actor whose handler awaits', () => {
  it("drops asks whose askers stopped waiting ('expired' dead letters), as one whose handler does not", async () => {
    const system = new ActorSystem({ transport: new InProcessHub().connect() });
    try {
      let ran = 0;
      const expired: string[] = [];
      system.deadLetters$.subscribe((l) => l.reason === 'expired' && expired.push(l.action));
      const ref = await system.spawn<{ nap: { msg: number; reply: number } }>('napper', {
        nap: async (ms) => {
          ran++;
          await new Promise((r) => setTimeout(r, ms));
          return ms;
        },
      });
      const results = await Promise.allSettled([...Array(20).keys()].map(() => ref.ask('nap', 30, { timeoutMs: 100 })));
      await new Promise((r) => setTimeout(r, 100));
      const answered = results.filter((x) => x.status === 'fulfilled').length;
      expect(answered).toBeGreaterThanOrEqual(2);
      // ~4 run in time; the one in hand when the others expire may still run
      expect(ran).toBeLessThanOrEqual(answered + 2);
      expect(expired.length).toBe(20 - ran);
    } finally {
      await system.close({ timeoutMs: 500 });
    }
  });
});
