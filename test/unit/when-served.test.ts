/** system.whenServed (src/actors/when-served.ts) in one process: no DPDK. */
import { afterEach, describe, expect, it } from 'vitest';
import { ActorSystem } from '../../src/index.js';

let system: ActorSystem;
afterEach(() => system.close());

describe('whenServed', () => {
  it('resolves at once for names held, and once a spawn completes the list', async () => {
    system = new ActorSystem();
    await system.spawn('a', { hi: () => 'a' });
    await system.whenServed('a');
    const waiting = system.whenServed(['a', 'b']);
    const late = performance.now();
    setTimeout(() => void system.spawn('b', { hi: () => 'b' }), 120);
    await waiting;
    expect(performance.now() - late).toBeGreaterThanOrEqual(110);
    expect(await system.ref('b').ask('hi')).toBe('b');
  });

  it("rejects with its signal's reason, at once when it has aborted, and with SYSTEM_CLOSED when the system closes first", async () => {
    system = new ActorSystem();
    await expect(system.whenServed('nobody', { signal: AbortSignal.timeout(50) })).rejects.toMatchObject({ name: 'TimeoutError' });
    await expect(system.whenServed('nobody', { signal: AbortSignal.abort('no more') })).rejects.toBe('no more');
    const waiting = system.whenServed('never');
    void system.close();
    await expect(waiting).rejects.toMatchObject({ code: 'SYSTEM_CLOSED', message: expect.stringContaining("cannot wait for 'never'") });
    await expect(system.whenServed('never')).rejects.toMatchObject({ code: 'SYSTEM_CLOSED' });
  });

  it('refuses names that are not non-empty strings, and unknown options, with INVALID_OPTION', async () => {
    system = new ActorSystem();
    for (const names of [[], '', [''], [3], undefined]) {
      await expect(system.whenServed(names as never)).rejects.toMatchObject({
        code: 'INVALID_OPTION',
        message: expect.stringContaining('whenServed() takes a name'),
      });
    }
    await expect(system.whenServed('a', { timeoutMs: 5 } as never)).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(system.whenServed('a', { signal: 'soon' } as never)).rejects.toMatchObject({ code: 'INVALID_OPTION' });
  });
});
