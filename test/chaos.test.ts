/**
 * The chaos scenarios of issue 13 that held, kept as tests at a size CI affords: workers
 * SIGKILLed at random during one run while replacements join (every job answered exactly
 * once), and forged descriptors injected into a receiver's inbox during checked traffic (no
 * wrong answer, the receiver keeps serving).
 */
import { describe, expect, it } from 'vitest';
import type { Agent } from './harness/group.js';
import { useTestGroups } from './harness/use-groups.js';
import { fixture } from './harness/paths.js';

const group = useTestGroups();
const actors = fixture('actors');
const mb = fixture('mailbox');
const own = fixture('ownership');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('chaos', () => {
  it('three random workers SIGKILLed during one run, a replacement joining after each: every job answered exactly once', async () => {
    const g = group('chaos-kill');
    const primary = await g.startAgent({ procType: 'primary' });
    await primary.call(actors, 'startSystem');
    let serial = 0;
    const startWorker = async (): Promise<{ agent: Agent; name: string }> => {
      const agent = await g.startAgent({ procType: 'secondary' });
      await agent.call(actors, 'startSystem');
      const name = await agent.call<string>(actors, 'spawnTestActor', `worker-${serial++}`, { groups: ['workers'] });
      return { agent, name };
    };
    const workers = await Promise.all([startWorker(), startWorker(), startWorker()]);
    await primary.call(actors, 'router', 'jobs', 'round-robin', 'workers');
    const members = async (): Promise<string[]> => primary.call<string[]>(actors, 'routerWorkers', 'jobs');
    const waitMembers = async (accept: (w: string[]) => boolean): Promise<void> => {
      for (const deadline = Date.now() + 15_000; !accept(await members()); await sleep(50)) {
        if (Date.now() > deadline) throw new Error(`router workers never settled: ${JSON.stringify(await members())}`);
      }
    };
    await waitMembers((w) => w.length === 3);
    await primary.call(actors, 'startLoad', 'jobs', 32);
    for (let round = 0; round < 3; round++) {
      expect(await primary.call<number>(actors, 'answeredIn', 'jobs', 500)).toBeGreaterThan(0);
      const victim = workers.splice(Math.floor(Math.random() * workers.length), 1)[0]!;
      victim.agent.kill('SIGKILL');
      const replacement = await startWorker();
      workers.push(replacement);
      await waitMembers((w) => !w.includes(victim.name) && w.includes(replacement.name));
    }
    expect(await primary.call<number>(actors, 'answeredIn', 'jobs', 500)).toBeGreaterThan(0);
    const r = await primary.call<{ sent: number; answered: number; duplicates: number; failures: string[] }>(actors, 'stopLoad', 'jobs');
    expect(r.failures).toEqual([]);
    expect(r.duplicates).toBe(0);
    expect(r.answered).toBe(r.sent);
    expect((await members()).sort()).toEqual(workers.map((w) => w.name).sort());
  }, 90_000);

  it('forged descriptors injected into a receiver every few ms during checked traffic: no wrong answer, refused ones reported, the receiver keeps serving', async () => {
    const g = group('chaos-forge');
    const receiver = await g.startAgent({ procType: 'primary' });
    const client = await g.startAgent({ procType: 'secondary' });
    const forger = await g.startAgent({ procType: 'secondary' });
    const slot = await receiver.call<number>(own, 'serveEcho', 'echo', 'victim');
    await client.call(own, 'startTraffic', 'echo', 16);
    const victimId = (await forger.call<{ id: number }>(mb, 'addressOf', 'victim')).id;
    await forger.call(own, 'startInjecting', slot, victimId, 5);
    await sleep(3000);
    const injected = await forger.call<number>(own, 'stopInjecting');
    const t = await client.call<{ sent: number; answered: number; wrong: number; duplicates: number; failures: string[] }>(own, 'stopTraffic');
    expect(t.failures).toEqual([]);
    expect(t.wrong).toBe(0);
    expect(t.duplicates).toBe(0);
    expect(t.answered).toBe(t.sent);
    expect(t.answered).toBeGreaterThan(100);
    expect(injected).toBeGreaterThan(50);
    const errors = await receiver.call<Array<{ code: string }>>(mb, 'errors');
    expect(errors.length).toBeGreaterThan(0);
    expect(new Set(errors.map((e) => e.code))).toEqual(new Set(['BAD_DESCRIPTOR']));
    console.log(`chaos-forge: ${injected} forged descriptors, ${errors.length} refused, ${t.answered} checked answers`);
    await forger.call(own, 'sendText', 'victim', 'after the storm');
    const deadline = Date.now() + 10_000;
    while ((await receiver.call<Record<string, number>>(own, 'victimSeen'))['after the storm'] !== 1) {
      if (Date.now() > deadline) throw new Error('the receiver stopped serving');
      await sleep(50);
    }
  }, 60_000);
});
