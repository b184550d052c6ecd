/**
 * `system.unsent()` and `system.drained()` (actor systems on an in-process hub, no DPDK): what a
 * producer of tells paces itself with. Nothing waits in-process; messages a transport had no room
 * for are counted until they go, and `drained()` resolves once none waits, or once a close made
 * them dead letters.
 */
import 'reflect-metadata';
import { afterEach, describe, expect, it } from 'vitest';
import { ActorSystem, InProcessHub, type ActorTransport, type DeadLetter } from '../../src/index.js';

const systems: ActorSystem[] = [];
afterEach(async () => {
  await Promise.all(systems.splice(0).map((s) => s.close({ timeoutMs: 200 })));
});

/** An in-process transport whose mailbox of `far` is full until `makeRoom()`. */
function fullUntilRoom(): { transport: ActorTransport; makeRoom: () => void } {
  const inner = new InProcessHub().connect();
  let full = true;
  let room!: () => void;
  const roomMade = new Promise<void>((resolve) => (room = resolve));
  const transport = new Proxy(inner, {
    get(target, key) {
      if (key === 'deliver')
        return (to: string, envelope: Parameters<ActorTransport['deliver']>[1]) => (to === 'far' && full ? 'full' : target.deliver(to, envelope));
      if (key === 'waitForRoom') return () => roomMade;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return {
    transport,
    makeRoom: () => {
      full = false;
      room();
    },
  };
}

/** A system on `transport` with an actor `far` that keeps what it was told. */
async function withFar(transport: ActorTransport): Promise<{ system: ActorSystem; told: number[]; letters: DeadLetter[] }> {
  const system = new ActorSystem({ transport });
  systems.push(system);
  const told: number[] = [];
  await system.spawn('far', { keep: (n: number) => void told.push(n) });
  const letters: DeadLetter[] = [];
  system.deadLetters$.subscribe((l) => letters.push(l));
  return { system, told, letters };
}

describe('unsent() and drained()', () => {
  it('in one process nothing waits: unsent() is 0 and drained() resolves at once', async () => {
    const { system, told } = await withFar(new InProcessHub().connect());
    for (let n = 0; n < 3; n++) system.ref('far').tell('keep', n);
    expect(system.unsent()).toBe(0);
    await system.drained();
    await new Promise((resolve) => setImmediate(resolve));
    expect(told).toEqual([0, 1, 2]);
  });

  it('messages waiting for room are counted; drained() resolves once they went, in order', async () => {
    const { transport, makeRoom } = fullUntilRoom();
    const { system, told } = await withFar(transport);
    for (let n = 0; n < 5; n++) system.ref('far').tell('keep', n);
    expect(system.unsent()).toBe(5);
    let drained = false;
    const waiting = system.drained().then(() => (drained = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(drained).toBe(false);
    makeRoom();
    await waiting;
    expect(system.unsent()).toBe(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(told).toEqual([0, 1, 2, 3, 4]);
  });

  it('a close resolves drained(): what still waited is a dead letter (closed)', async () => {
    const { transport } = fullUntilRoom();
    const { system, letters } = await withFar(transport);
    for (let n = 0; n < 3; n++) system.ref('far').tell('keep', n);
    const waiting = system.drained();
    await system.close({ timeoutMs: 50 });
    await waiting;
    expect(system.unsent()).toBe(0);
    expect(letters.filter((l) => l.reason === 'closed').map((l) => l.payload)).toEqual([0, 1, 2]);
  });

  it("drained({ signal }) rejects with the signal's reason once it aborts (at once if it has); the others still wait, and resolve at the drain", async () => {
    const { transport, makeRoom } = fullUntilRoom();
    const { system } = await withFar(transport);
    system.ref('far').tell('keep', 1);
    const controller = new AbortController();
    const givenUp = system.drained({ signal: controller.signal });
    const plain = system.drained();
    const timedOut = system.drained({ signal: AbortSignal.timeout(10) });
    controller.abort(new Error('the receiver is stuck'));
    await expect(givenUp).rejects.toThrow('the receiver is stuck');
    await expect(timedOut).rejects.toMatchObject({ name: 'TimeoutError' });
    await expect(system.drained({ signal: controller.signal })).rejects.toThrow('the receiver is stuck');
    let drained = false;
    void plain.then(() => (drained = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(drained).toBe(false);
    makeRoom();
    await plain;
    // a signal that never aborts: resolves with the drain (and at once when nothing waits)
    await system.drained({ signal: new AbortController().signal });
  });

  it('drained() options are checked: INVALID_OPTION for a signal that is not an AbortSignal, or an unknown option', async () => {
    const { system } = await withFar(new InProcessHub().connect());
    await expect(system.drained({ signal: 'soon' as unknown as AbortSignal })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(system.drained({ timeoutMs: 5 } as never)).rejects.toMatchObject({ code: 'INVALID_OPTION' });
  });
});
