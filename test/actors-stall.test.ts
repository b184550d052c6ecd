/**
 * Specification of a stalled worker behind a router: with one of two worker processes stopped
 * (SIGSTOP) for a few seconds, the router keeps serving at >= 40% of its rate before the stop;
 * no ask is lost; with the default ('wait') the stopped worker's asks are answered once it
 * resumes, with 'regive' they are answered by the other worker meanwhile.
 *
 * consistent-hash with 'wait' is the exception to the rate: equal keys go to one worker, so the
 * asks for the stopped worker's keys that reach it before the stall is found (1.5 ms of traffic
 * fill a window of 64 here) wait there with it, and a caller whose window they fill waits too.
 * Its case checks that the keys really are spread over both workers, and that nothing is lost;
 * with 'regive' the held asks go to the next worker on the ring and the rate holds.
 */
import { describe, expect, it } from 'vitest';
import type { RoutingStrategy } from '../src/index.js';
import type { Agent } from './harness/group.js';
import { fixture } from './harness/fixtures.js';
import { useTestGroups } from './harness/use-groups.js';
import { poll, sleep } from './harness/wait.js';

const group = useTestGroups();
const RATE_WINDOW_MS = 400;
const STOP_TRIES = 3;

/** The best answers/s of `windows` consecutive windows, each counted by `answeredInWindow`. */
async function bestRate(answeredInWindow: () => Promise<number>, windows: number): Promise<number> {
  let best = 0;
  for (let i = 0; i < windows; i++) best = Math.max(best, ((await answeredInWindow()) * 1000) / RATE_WINDOW_MS);
  return best;
}
const actors = fixture('actors');

/** A primary with the router 'jobs' (stallMs 300) over the actors `w0` and `w1` of two secondaries. */
async function routerOverTwo(label: string, strategy: RoutingStrategy, onStall: 'wait' | 'regive'): Promise<{ p: Agent; workers: Agent[] }> {
  const g = group(label);
  const p = await g.startAgent({ procType: 'primary' });
  await p.use(actors).startSystem();
  const workers = [await g.startAgent({ procType: 'secondary' }), await g.startAgent({ procType: 'secondary' })];
  for (const [i, w] of workers.entries()) {
    await w.use(actors).startSystem();
    await w.use(actors).spawnTestActor(`w${i}`, { groups: ['workers'] });
  }
  await p.use(actors).stallRouter('jobs', strategy, 'workers', 300, onStall);
  await poll(
    () => p.use(actors).routerWorkers('jobs'),
    (w) => w.length >= 2,
  );
  return { p, workers };
}

describe('a stalled worker costs only what it holds', () => {
  // [strategy, onStall, the least share of the rate before that must go on while a worker is stopped]
  const cases: Array<[RoutingStrategy, 'wait' | 'regive', number]> = [
    ['round-robin', 'wait', 0.4],
    ['least-loaded', 'wait', 0.4],
    ['consistent-hash', 'wait', 0],
    ['round-robin', 'regive', 0.4],
    ['consistent-hash', 'regive', 0.4],
  ];
  it.each(cases)(
    '%s, onStall %s: one of two workers SIGSTOPped, the pool serves on (at least %s of its rate) and loses nothing',
    async (strategy, onStall, minShare) => {
      const { p, workers } = await routerOverTwo('stall', strategy, onStall);
      await p.use(actors).startLoad('jobs', 64);
      await p.use(actors).answeredIn('jobs', 300); // warm up
      // Rates are the best of several short windows, before and during the stop alike, and a
      // shortfall is measured again (up to STOP_TRIES stops): the other test file running
      // alongside can take the CPUs for seconds, which twice made one try read 0.21-0.24 of the
      // rate before while every other run reads 0.7-1.4. A pool that really stops serving
      // falls short in every try.
      const tries: string[] = [];
      for (let attempt = 1; attempt <= STOP_TRIES; attempt++) {
        const before = await bestRate(() => p.use(actors).answeredIn('jobs', RATE_WINDOW_MS), 3);
        const shares = await p.use(actors).routerStats('jobs');
        expect(Object.values(shares).filter((n) => n > 0).length, `both workers get work before the stop: ${JSON.stringify(shares)}`).toBe(2);
        workers[1]!.kill('SIGSTOP');
        let during: number;
        try {
          await p.use(actors).answeredIn('jobs', 500); // the stall is noticed
          during = await bestRate(() => p.use(actors).answeredIn('jobs', RATE_WINDOW_MS), 5);
        } finally {
          workers[1]!.kill('SIGCONT');
        }
        tries.push(`${before} answers/s before, ${during} while one worker is stopped (${(during / before).toFixed(2)})`);
        console.log(`${strategy}, onStall ${onStall}, try ${attempt}: ${tries.at(-1)}`);
        if (during >= minShare * before) break;
        expect(attempt, `every try fell short of ${minShare}: ${tries.join('; ')}`).toBeLessThan(STOP_TRIES);
        await p.use(actors).answeredIn('jobs', 1000); // the worker is back and answers what it held
      }
      const r = await p.use(actors).stopLoad('jobs');
      expect(r.failures).toEqual([]);
      expect(r.duplicates).toBe(0);
      expect(r.answered).toBe(r.sent);
    },
  );

  it("consistent-hash, onStall 'regive': asks waiting in the caller for room in the stalled worker's full mailbox go to the next worker only, not also to it once it resumes", async () => {
    const { p, workers } = await routerOverTwo('stallq', 'consistent-hash', 'regive');
    // 30,000 at once: the stopped worker's keys (10 keys, spread over both) are thousands more
    // asks than its mailbox holds (4,096); the rest wait in the caller until the stall is found.
    workers[1]!.kill('SIGSTOP');
    let r: { failures: string[]; answered: number[]; redelivered: number };
    try {
      r = await p.use(actors).routeJobs('jobs', 30_000, 30_000);
    } finally {
      workers[1]!.kill('SIGCONT');
    }
    expect(r.failures).toEqual([]);
    expect(r.answered).toHaveLength(30_000);
    expect(r.redelivered, 'the stopped worker held asks, given to the other').toBeGreaterThan(4096);
    // Once resumed it handles what had reached its mailbox, and no more.
    const processed = async (): Promise<number> => (await workers[1]!.use(actors).counters('w1'))!.processed;
    await poll(processed, (n) => n > 0);
    await sleep(500);
    expect(await processed()).toBeLessThanOrEqual(4096);
  });
});
