/**
 * What an ask reads from the clock (actor systems on an in-process hub, no DPDK): the latency
 * sample of its counters row starts when it was made (never before, never after it was
 * answered), and the deadline its envelope carries is the wall clock at the ask plus its timeout.
 */
import 'reflect-metadata';
import { afterEach, describe, expect, it } from 'vitest';
import { ActorSystem, InProcessHub, type Envelope } from '../../src/index.js';
import { processCounters } from '../../src/runtime/counters.js';
import { R } from '../../src/runtime/counters-layout.js';

const systems: ActorSystem[] = [];
afterEach(async () => {
  await Promise.all(systems.splice(0).map((s) => s.close({ timeoutMs: 500 })));
});

describe('the clock of an ask', () => {
  it('times each ask from when it was made: quick asks have latencies between 0 and their round trip', async () => {
    const s = new ActorSystem({ transport: new InProcessHub().connect() });
    systems.push(s);
    const name = `clock-echo-${process.pid}`;
    await s.spawn<{ echo: { msg: number; reply: number } }>(name, { echo: (n) => n });
    const ref = s.ref<{ echo: { msg: number; reply: number } }>(name);
    let slowest = 0;
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      expect(await ref.ask('echo', i)).toBe(i);
      slowest = Math.max(slowest, performance.now() - t0);
    }
    const row = processCounters().row('asks', name);
    expect(row[R.asks]).toBe(200);
    const sumMs = row[R.askLatencySumMs]!;
    expect(sumMs).toBeGreaterThanOrEqual(0);
    expect(sumMs).toBeLessThanOrEqual(200 * slowest);
  });

  it("writes the envelope's deadline as Date.now() at the ask plus its timeout", async () => {
    const transport = new InProcessHub().connect();
    const deadlines: number[] = [];
    const deliver = transport.deliver.bind(transport);
    transport.deliver = (to: string, envelope: Envelope) => {
      if (envelope.deadline !== undefined) deadlines.push(envelope.deadline);
      return deliver(to, envelope);
    };
    const s = new ActorSystem({ transport });
    systems.push(s);
    await s.spawn<{ echo: { msg: number; reply: number } }>('echo', { echo: (n) => n });
    const before = Date.now();
    await s.ref<{ echo: { msg: number; reply: number } }>('echo').ask('echo', 1, { timeoutMs: 5000 });
    const after = Date.now();
    expect(deadlines).toHaveLength(1);
    expect(Number.isInteger(deadlines[0])).toBe(true);
    expect(deadlines[0]).toBeGreaterThanOrEqual(before + 5000 - 1);
    expect(deadlines[0]).toBeLessThanOrEqual(after + 5000 + 1);
  });
});
