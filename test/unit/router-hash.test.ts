/**
 * The consistent-hash ring of routers (src/actors/router.ts), through the public API on an
 * in-process actor system: equal keys go to the same worker, keys spread over the workers, and
 * a worker that joins or leaves moves only the keys it takes or held.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ActorSystem, InProcessHub, fnv1a, type Router } from '../../src/index.js';

const systems: ActorSystem[] = [];
afterEach(async () => {
  await Promise.all(systems.splice(0).map((s) => s.close()));
});

/** An in-process system with workers that answer `which` with their own name, behind a consistent-hash router. */
async function ring(workers: string[], virtualNodes?: number): Promise<{ system: ActorSystem; router: Router }> {
  const system = new ActorSystem({ transport: new InProcessHub().connect() });
  systems.push(system);
  for (const name of [...workers, 'w-extra']) await system.spawn(name, { which: () => name });
  const router = system.router('by-key', { strategy: 'consistent-hash', workers, ...(virtualNodes ? { virtualNodes } : {}) });
  return { system, router };
}

const KEYS = Array.from({ length: 400 }, (_, i) => `order-${i}`);

async function owners(system: ActorSystem, keys = KEYS): Promise<Map<string, string>> {
  const ref = system.ref('by-key');
  const answers = await Promise.all(keys.map((key) => ref.ask('which', { key }) as Promise<string>));
  return new Map(keys.map((key, i) => [key, answers[i]!]));
}

function shares(owner: Map<string, string>): Map<string, number> {
  const perWorker = new Map<string, number>();
  for (const worker of owner.values()) perWorker.set(worker, (perWorker.get(worker) ?? 0) + 1 / owner.size);
  return perWorker;
}

describe('consistent-hash router', () => {
  it('hashes with 32-bit FNV-1a (the same worker for a key in every process and run)', () => {
    expect(fnv1a('')).toBe(0x811c9dc5);
    expect(fnv1a('a')).toBe(0xe40c292c);
    expect(fnv1a('foobar')).toBe(0xbf9cf968);
  });

  it('sends equal keys to the same worker, and spreads keys over every worker', async () => {
    const { system } = await ring(['w0', 'w1', 'w2', 'w3']);
    const first = await owners(system);
    expect(await owners(system)).toEqual(first);
    expect([...shares(first).keys()].sort()).toEqual(['w0', 'w1', 'w2', 'w3']);
  });

  // FNV-1a alone bunched similar strings on the ring (12% / 23% / 25% / 40% here); the ring
  // hash adds murmur3's finalizer.
  it('gives each of 4 workers a fair share of 2,000 keys (at least 15%)', async () => {
    const { system } = await ring(['w0', 'w1', 'w2', 'w3']);
    const keys = Array.from({ length: 2000 }, (_, i) => `order-${i}`);
    for (const share of shares(await owners(system, keys)).values()) expect(share).toBeGreaterThan(0.15);
  });

  it('moves only the keys a joining worker takes, and only the keys a leaving worker held', async () => {
    const { system, router } = await ring(['w0', 'w1', 'w2', 'w3']);
    const before = await owners(system);
    router.addWorker('w-extra');
    const joined = await owners(system);
    const moved = KEYS.filter((k) => joined.get(k) !== before.get(k));
    expect(moved.length).toBeGreaterThan(0);
    for (const k of moved) expect(joined.get(k)).toBe('w-extra');

    router.removeWorker('w2');
    const left = await owners(system);
    for (const k of KEYS) {
      if (joined.get(k) === 'w2') expect(left.get(k)).not.toBe('w2');
      else expect(left.get(k)).toBe(joined.get(k));
    }
  });

  it('uses the key function when one is given', async () => {
    const system = new ActorSystem({ transport: new InProcessHub().connect() });
    systems.push(system);
    for (const name of ['a', 'b', 'c']) await system.spawn(name, { which: () => name });
    system.router('by-user', { strategy: 'consistent-hash', workers: ['a', 'b', 'c'], key: (msg) => String((msg as { user: string }).user) });
    const ref = system.ref('by-user');
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => ref.ask('which', { user: 'u-1', n: i })));
    expect(new Set(answers).size).toBe(1);
  });

  it("takes a key function's number as its digits (all went to one worker); one that throws or gives no key fails the ask with ROUTE_KEY_FAILED, and a tell is a dead letter, not a throw", async () => {
    const system = new ActorSystem({ transport: new InProcessHub().connect() });
    systems.push(system);
    for (const name of ['a', 'b', 'c']) await system.spawn(name, { which: () => name });
    const letters: string[] = [];
    system.deadLetters$.subscribe((l) => letters.push(l.reason));
    system.router('by-number', { strategy: 'consistent-hash', workers: ['a', 'b', 'c'], key: (msg: { n: number }) => msg.n as unknown as string });
    const byNumber = system.ref('by-number');
    const answers = await Promise.all(Array.from({ length: 200 }, (_, n) => byNumber.ask('which', { n })));
    expect(new Set(answers).size).toBe(3);
    system.router('broken', {
      strategy: 'consistent-hash',
      workers: ['a', 'b', 'c'],
      key: (msg: { user?: string }) => {
        if (msg.user === 'boom') throw new Error('no user');
        return msg.user as string;
      },
    });
    const broken = system.ref('broken');
    await expect(broken.ask('which', { user: 'boom' })).rejects.toMatchObject({ code: 'ROUTE_KEY_FAILED', message: expect.stringContaining('threw') });
    await expect(broken.ask('which', {})).rejects.toMatchObject({ code: 'ROUTE_KEY_FAILED', message: expect.stringContaining('gave undefined') });
    expect(() => broken.tell('which', { user: 'boom' })).not.toThrow();
    expect(await broken.ask('which', { user: 'u-1' })).toMatch(/^[abc]$/);
    expect(letters).toEqual(['key-failed', 'key-failed', 'key-failed']);
  });
});
