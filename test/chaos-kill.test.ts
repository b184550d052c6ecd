/**
 * A chaos scenario of issue 13 kept as a test at a size CI affords: workers SIGKILLed at random
 * during one run while replacements join; every job is answered exactly once.
 */
import { describe, expect, it } from 'vitest';
import type { Agent } from './harness/group.js';
import { useTestGroups } from './harness/use-groups.js';
import { fixture } from './harness/fixtures.js';
import { pollUntil } from './harness/wait.js';

const group = useTestGroups();
const actors = fixture('actors');

describe('chaos: SIGKILLed workers', () => {
  it('two workers, three of them SIGKILLed at random during one run, a replacement joining after each: every job answered exactly once', async () => {
    const g = group('chaos-kill');
    const primary = await g.startAgent({ procType: 'primary' });
    await primary.use(actors).startSystem();
    let serial = 0;
    const startWorker = async (): Promise<{ agent: Agent; name: string }> => {
      const agent = await g.startAgent({ procType: 'secondary' });
      await agent.use(actors).startSystem();
      const name = await agent.use(actors).spawnTestActor(`worker-${serial++}`, { groups: ['workers'] });
      return { agent, name };
    };
    const workers = await Promise.all([startWorker(), startWorker()]);
    await primary.use(actors).router('jobs', 'round-robin', 'workers');
    const members = async (): Promise<string[]> => primary.use(actors).routerWorkers('jobs');
    const waitMembers = (accept: (w: string[]) => boolean): Promise<string[]> => pollUntil('the router workers to settle', members, accept, 15_000);
    await waitMembers((w) => w.length === 2);
    await primary.use(actors).startLoad('jobs', 32);
    for (let round = 0; round < 3; round++) {
      expect(await primary.use(actors).answeredIn('jobs', 500)).toBeGreaterThan(0);
      const victim = workers.splice(Math.floor(Math.random() * workers.length), 1)[0]!;
      victim.agent.kill('SIGKILL');
      const replacement = await startWorker();
      workers.push(replacement);
      await waitMembers((w) => !w.includes(victim.name) && w.includes(replacement.name));
    }
    expect(await primary.use(actors).answeredIn('jobs', 500)).toBeGreaterThan(0);
    const r = await primary.use(actors).stopLoad('jobs');
    expect(r.failures).toEqual([]);
    expect(r.duplicates).toBe(0);
    expect(r.answered).toBe(r.sent);
    expect((await members()).sort()).toEqual(workers.map((w) => w.name).sort());
  }, 90_000);
});
