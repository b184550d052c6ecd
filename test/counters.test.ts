/**
 * Specification of the group's shared counters: every process's actors, asks and own figures
 * are readable from outside the group (this test process never joins it), `system.counters`
 * reads the same rows, a process that leaves disappears and a killed one shows as dead.
 */
import { describe, expect, it } from 'vitest';
import type { Agent } from './harness/group.js';
import { fixture } from './harness/fixtures.js';
import { useTestGroups } from './harness/use-groups.js';
import { actorViews, readGroupCounters } from '../src/obs/group-counters.js';
import { SAMPLE_INTERVAL_MS } from '../src/runtime/counters.js';
import { sleep } from './harness/wait.js';
import { mpbus } from './harness/cli.js';
import { readGroupView } from '../src/obs/group-view.js';
import { groupMetricsText } from '../src/obs/prometheus.js';
import { ROWS } from '../src/runtime/counters-layout.js';

const group = useTestGroups();
const actors = fixture('actors');

describe('shared counters', () => {
  it("a reader outside the group sees each process (pid, role, lcore, CPU, RSS) and each actor's counters and ask latencies", async () => {
    const g = group('ctr');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    await p.use(actors).startSystem();
    await s.use(actors).startSystem();
    await p.use(actors).spawnTestActor('echo');
    // a spawn of a name another process holds fails, and leaves no row of its own (a phantom
    // 'echo' of the secondary, with zero counts, was in ps and the metrics)
    await expect(s.use(actors).spawnTestActor('echo')).rejects.toMatchObject({ code: 'ACTOR_NAME_TAKEN' });
    for (let i = 0; i < 20; i++) expect((await s.use(actors).ask('echo', 'echo', i)).value).toBe(i);
    expect((await s.use(actors).ask('echo', 'fail', 'bad')).error).toBeDefined();
    expect((await s.use(actors).ask('echo', 'nothing', 1)).error).toBeDefined();
    // a timeout is an ask that failed (and timed out)
    expect((await s.use(actors).ask('echo', 'slow', 300, 100)).error?.code).toBe('ASK_TIMEOUT');
    await sleep(SAMPLE_INTERVAL_MS * 2);

    const read = readGroupCounters(g.prefix)!;
    const byPid = new Map(read.processes.map((x) => [x.pid, x]));
    expect(byPid.get(p.pid)).toMatchObject({ role: 'primary', state: 'alive', lcore: 0 });
    expect(byPid.get(s.pid)).toMatchObject({ role: 'secondary', state: 'alive', lcore: 1 });
    for (const x of read.processes) {
      expect(x.rssBytes).toBeGreaterThan(10 * 2 ** 20);
      expect(x.cpuUserUs).toBeGreaterThan(0);
      expect(x.uptimeMs).toBeGreaterThan(0);
      expect(x.command).toMatch(/^node /);
    }
    expect(actorViews(read).map((a) => [a.name, a.pid])).toEqual([['echo', p.pid]]);
    const echo = actorViews(read).find((a) => a.name === 'echo')!;
    expect(echo).toMatchObject({
      pid: p.pid,
      received: 23,
      processed: 21,
      failed: 1,
      restarts: 1,
      deadLettered: 1,
      depth: 0,
      asks: 23,
      askFailed: 3,
      askTimeouts: 1,
    });
    expect(echo.p50Ms).toBeGreaterThan(0);
    expect(echo.p99Ms).toBeGreaterThanOrEqual(echo.p50Ms!);
    expect(byPid.get(p.pid)!.deadLetters).toBe(1);
    // system.counters reads the same row
    expect(await p.use(actors).counters('echo')).toEqual({ received: 23, processed: 21, failed: 1, restarts: 1, deadLettered: 1, mailboxDepth: 0 });

    // mailboxes: the actor's, and one opened without actors (nobody reads it), with depth and capacity
    await s.use(fixture('mailbox')).openUnread('plain', 16);
    await p.use(fixture('mailbox')).send('plain', 1);
    await p.use(fixture('mailbox')).send('plain', 2);
    await sleep(SAMPLE_INTERVAL_MS * 2);
    const boxes = readGroupCounters(g.prefix)!.processes.flatMap((x) =>
      x.rows.filter((r) => r.kind === 'mailbox').map((r) => ({ pid: x.pid, name: r.name, depth: r.depth, capacity: r.capacity })),
    );
    expect(boxes).toEqual(
      expect.arrayContaining([
        { pid: p.pid, name: 'echo', depth: 0, capacity: expect.any(Number) as unknown as number },
        { pid: s.pid, name: 'plain', depth: 2, capacity: 16 },
      ]),
    );

    await s.close();
    expect(readGroupCounters(g.prefix)!.processes.map((x) => x.pid)).toEqual([p.pid]);
    p.kill('SIGKILL');
    await p.exited;
    expect(readGroupCounters(g.prefix)!.processes).toMatchObject([{ pid: p.pid, state: 'dead' }]);
    expect(actorViews(readGroupCounters(g.prefix)!)).toEqual([]);
  });

  it('a process with more actors than its counter rows says so: ps names it and how many, and a metric counts them', async () => {
    const g = group('ctrfull');
    const p = await g.startAgent({ procType: 'primary' });
    await p.use(actors).startSystem();
    await p.use(actors).spawnMany('m', ROWS + 40);
    await sleep(SAMPLE_INTERVAL_MS * 2);
    const dropped = readGroupView(g.prefix)!.processes.find((x) => x.pid === p.pid)!.rowsDropped;
    expect(dropped).toBeGreaterThanOrEqual(40);
    const ps = await mpbus('ps', g.prefix);
    expect(ps.stdout).toContain(
      `pid ${p.pid} had more actors, mailboxes and asked names than its ${ROWS} counter rows: ${dropped} could not be counted since it started (what is shown of it may miss some)`,
    );
    expect(await groupMetricsText({ filePrefix: g.prefix })).toContain(
      `mpbus_process_counter_rows_dropped_total{group="${g.prefix}",pid="${p.pid}"} ${dropped}`,
    );
  });

  it('a process asking actors that come and go (1,100 of them, each asked directly and through a router) keeps bounded state: ask rows, mailbox refs, router counts', async () => {
    const g = group('ctrchurn');
    const [p, s] = (await g.startMembers(1)) as [Agent, Agent];
    await Promise.all([p, s].map((a) => a.use(actors).startSystem()));
    await s.use(actors).spawnActorMaker('maker');
    await p.use(actors).router('eph-rr', 'round-robin', 'eph');
    const r = await p.use(actors).askShortLived('maker', 'eph-rr', 1100);
    expect(r.failures).toEqual([]);
    // names no one holds are dropped once 1,024 refs are cached; the router keeps the counts of the last 64 that left
    expect(r.refs).toBeLessThan(1024);
    expect(r.routerWorkers).toBeLessThanOrEqual(2 * 64 + 1);
    // the row of asks to each actor is freed when it goes (the table has 512 rows)
    await sleep(SAMPLE_INTERVAL_MS * 2);
    const primary = readGroupCounters(g.prefix)!.processes.find((x) => x.pid === p.pid)!;
    expect(primary.rowsDropped).toBe(0);
    expect(primary.rows.filter((row) => row.kind === 'asks').length).toBeLessThan(50);
  });
});
