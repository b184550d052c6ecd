/**
 * Actors across real processes of a DPDK group (the mailbox transport): every test starts a
 * primary and secondaries as separate Node processes (test/harness) and drives actors in them.
 */
import { describe, expect, it } from 'vitest';
import type { Agent } from './harness/group.js';
import { fixture } from './harness/fixtures.js';
import { useTestGroups } from './harness/use-groups.js';
import { pollUntil, sleep } from './harness/wait.js';

const group = useTestGroups();

const actors = fixture('actors');

/** A primary and `secondaries` secondaries, each with an actor system. */
async function cluster(label: string, secondaries: number): Promise<Agent[]> {
  const all = await group(label).startMembers(secondaries);
  await Promise.all(all.map((a) => a.use(actors).startSystem()));
  return all;
}

describe('actors across processes', () => {
  it('ask and tell work any to any (secondary to secondary, primary to secondary, secondary to primary), in order', async () => {
    const [p, s1, s2] = await cluster('askTell', 2);
    await p!.use(actors).spawnTestActor('on-primary');
    await s1!.use(actors).spawnTestActor('on-s1');
    await s2!.use(actors).spawnTestActor('on-s2');
    // secondary -> secondary, 500 tells then an ask: all arrive, in the order sent
    await s1!.use(actors).tellMany('on-s2', 'record', 500);
    const list = await s1!.use(actors).ask('on-s2', 'list', null);
    expect(list.value).toEqual([...Array(500).keys()]);
    // primary -> secondary and secondary -> primary
    const fromPrimary = await p!.use(actors).ask('on-s1', 'whoami', null);
    expect(fromPrimary.value).toEqual({ name: 'on-s1', pid: s1!.pid });
    const toPrimary = await s2!.use(actors).ask('on-primary', 'echo', { deep: [1, 'two', { three: 3 }] });
    expect(toPrimary.value).toEqual({ deep: [1, 'two', { three: 3 }] });
    // large messages travel too
    const big = 'x'.repeat(300_000);
    expect((await s1!.use(actors).ask('on-s2', 'echo', big)).value).toBe(big);
    // and several at once, each sent alone out of its batch with its envelope's tail (answers too)
    expect(await s1!.use(actors).askBurst('on-s2', 'echo', big, 4, 30_000)).toMatchObject({ answered: 4, failed: [] });
  });

  it('asks across processes, one and 64 at a time: the event loop keeps turning (immediates, timers) while the receive loop drains right after sends', async () => {
    const [, s1, s2] = await cluster('turns', 2);
    await s2!.use(actors).spawnTestActor('echoer');
    await s1!.use(actors).ask('echoer', 'echo', 'warm');
    for (const window of [1, 64]) {
      const r = await s1!.use(actors).askInTurnsFor('echoer', 600, window);
      expect(r.asks).toBeGreaterThan(100);
      // A drain right after sends runs in the microtask that sent (src/bus/mailbox-pump.ts), and
      // what it delivers may send again: such drains end when one finds nothing, and follow one
      // another for at most 0.5 ms after a turn of the event loop. (Measured here: ~20,000-36,000
      // immediates and ~540 interval ticks in 600 ms, the longest gap 4-7 ms, either window.)
      expect(r.immediates).toBeGreaterThan(60);
      expect(r.intervals).toBeGreaterThan(30);
      expect(r.longestGapMs).toBeLessThan(150);
    }
  });

  it("names the group's registry cannot hold are refused as actor and router names, saying why: 64 bytes, a router's '$', a group whose members' aliases would not fit", async () => {
    const [p] = await cluster('refusedNames', 0);
    const r = await p!.use(actors).refusedNames();
    expect(r.longActor).toEqual({ code: 'INVALID_NAME', message: expect.stringContaining('actor and router names are strings of 1 to 63 UTF-8 bytes') });
    expect(r.dollarRouter).toEqual({ code: 'INVALID_NAME', message: expect.stringContaining("names starting with '$' are reserved") });
    expect(r.longGroup).toEqual({ code: 'INVALID_OPTION', message: expect.stringContaining('a group name is at most 58 UTF-8 bytes') });
    expect(r.longestGroup).toBe('accepted');
    expect(r.launchReadyGroup).toEqual({ code: 'INVALID_OPTION', message: expect.stringContaining('can have no members') });
  });

  it('an ask to an unknown actor rejects at once; a tell to it is a dead letter', async () => {
    const [, s1] = await cluster('unknown', 1);
    const r = await s1!.use(actors).ask('nobody-here', 'echo', 1, 60_000);
    expect(r.error).toMatchObject({ name: 'ActorNotFoundError', code: 'ACTOR_NOT_FOUND' });
    expect(r.ms).toBeLessThan(30_000);
    await s1!.use(actors).tellMany('nobody-here', 'echo', 1);
    expect(await s1!.use(actors).deadLetters()).toContainEqual(expect.objectContaining({ to: 'nobody-here', reason: 'unknown-actor', kind: 'tell' }));
  });

  it('an ask times out with ASK_TIMEOUT (or is aborted by its signal, ASK_ABORTED) and the late reply from the other process goes to dead letters', async () => {
    const [, s1, s2] = await cluster('timeout', 2);
    await s2!.use(actors).spawnTestActor('sleepy');
    const r = await s1!.use(actors).ask('sleepy', 'slow', 600, 100);
    expect(r.error).toMatchObject({ name: 'AskTimeoutError', code: 'ASK_TIMEOUT' });
    const aborted = await s1!.use(actors).ask('sleepy', 'slow', 300, 5000, 50);
    expect(aborted.error).toMatchObject({ name: 'AbortError', code: 'ASK_ABORTED' });
    expect(aborted.ms).toBeLessThan(500);
    await pollUntil(
      'two late-reply dead letters',
      () => s1!.use(actors).deadLetters(),
      (letters) => letters.filter((l) => l.reason === 'late-reply').length === 2,
    );
  });

  it('an actor behind on its asks: each answer leaves while it works on the rest, and asks whose askers stopped waiting are dropped unhandled', async () => {
    // 40 asks of 5 ms of CPU work each, 100 ms to answer: about half can be. Before, answers
    // left when the actor's run of messages ended (up to 256 messages: here all 40, 200 ms), so
    // none came in time, and the worker handled every ask its asker had given up on.
    const [, s1, s2] = await cluster('behind', 2);
    await s2!.use(actors).spawnTestActor('spinner');
    const r = await s1!.use(actors).askBurst('spinner', 'spin', 5, 40, 100);
    expect(r.answered + r.failed.length).toBe(40);
    expect(r.failed.every((code) => code === 'ASK_TIMEOUT')).toBe(true);
    // about 16 here; 1 before (the one ask that came alone)
    expect(r.answered).toBeGreaterThanOrEqual(4);
    // The worker may still be on the asks it began just before their deadlines when the asker
    // has given up on the rest: read what it handled and what it dropped together, until every
    // ask is one or the other.
    const { handled, expired } = await pollUntil(
      'every ask handled or expired at the worker',
      async () => ({
        handled: (await s2!.use(actors).counters('spinner'))!.processed,
        expired: (await s2!.use(actors).deadLetters()).filter((l) => l.reason === 'expired').length,
      }),
      (n) => n.handled + n.expired >= 40,
    );
    expect(expired + handled).toBe(40);
    expect(expired).toBeGreaterThanOrEqual(10);
    // an ask it handled was started before its deadline: only those finished just after it are
    // late, and each late answer reaches the asker's dead letters. On a loaded machine an answer
    // that arrived in time is late too when the asker's event loop was held up past the deadline
    // (its timers run before its receive loop in the turn that follows): 8 were seen once, beside
    // the other test file, where 0-3 is usual.
    const late = await pollUntil(
      'the late answers at the asker',
      async () => (await s1!.use(actors).deadLetters()).filter((l) => l.reason === 'late-reply').length,
      (n) => n >= handled - r.answered,
    );
    expect(late).toBe(handled - r.answered);
    expect(late).toBeLessThanOrEqual(12);
  });

  it("asks that wait in their sender for room in a stuck actor's full mailbox leave once their timeout passes ('expired' dead letters), not at the sender's close", async () => {
    const [p, s1] = await cluster('expiredInQueue', 1);
    await p!.use(actors).spawnTestActor('stuck');
    // the first ask holds the actor for 5 s; the next ones fill its mailbox; the rest wait in s1
    const burst = await s1!.use(actors).askBurst('stuck', 'slow', 5000, 12_000, 150);
    expect(burst.answered).toBe(0);
    expect(new Set(burst.failed)).toEqual(new Set(['ASK_TIMEOUT']));
    await pollUntil(
      'the asks that expired in the queue to go',
      () => s1!.use(actors).unsent(),
      (n) => n === 0,
      2000,
    );
    const expired = (await s1!.use(actors).deadLetters()).filter((l) => l.to === 'stuck' && l.reason === 'expired');
    expect(expired.length).toBeGreaterThan(500);
  });

  it("asks aborted while they wait in their sender for room in a busy actor's full mailbox are not sent ('expired' dead letters): the actor handles only those that reached it", async () => {
    const [p, s1] = await cluster('abortInQueue', 1);
    await p!.use(actors).spawnTestActor('busy');
    const r = await s1!.use(actors).abortQueued('busy', 12_000);
    expect(r.codes).toEqual(['ASK_ABORTED']);
    expect(r.waitingBefore).toBeGreaterThan(1000);
    expect(r.waitingAfter).toBe(0);
    expect(r.first).toBe('drained');
    expect(r.expired).toBe(r.waitingBefore);
    expect(r.handled).toBe(12_000 - r.expired);
  });

  it('asks with a signal each, aborted one after the other while they wait in their sender: they are taken out together (one pass through the queue per 64th of it), not one pass each', async () => {
    const [p, s1] = await cluster('abortEachInQueue', 1);
    await p!.use(actors).spawnTestActor('busy');
    // One pass per abort went through ~56,000 queued asks 60,000 times (over a minute).
    const r = await s1!.use(actors).abortQueued('busy', 60_000, 'each');
    expect(r.codes).toEqual(['ASK_ABORTED']);
    expect(r.waitingBefore).toBeGreaterThan(50_000);
    // those aborted last may not have made up a 64th of the queue yet: they may still go
    expect(r.waitingAfter).toBeLessThanOrEqual(r.waitingBefore / 64 + 1);
    expect(r.expired).toBeGreaterThanOrEqual(r.waitingBefore - r.waitingBefore / 64 - 1);
    expect(r.handled + r.expired).toBe(60_000);
  });

  it('a burst of large tells lets the event loop turn while it goes (each turn sends for 20 ms at most); every tell arrives', async () => {
    const [p, s1] = await cluster('largeBurst', 1);
    await p!.use(actors).spawnTestActor('bulk');
    // 160 x 512 KiB fits in the large-message slots at once: before, one turn sent them all
    expect(await s1!.use(actors).tellLargeBurst('bulk', 'count', 160, 512 * 1024)).toBeGreaterThan(0);
    // asked by the sender: handled after its tells (order per sender)
    expect((await s1!.use(actors).ask('bulk', 'count', null)).value).toBe(161);
  });

  it('a message that does not encode fails its ask with ENCODE_FAILED and is a dead letter; messages sent with it still go', async () => {
    const [, s1, s2] = await cluster('encode', 2);
    await s2!.use(actors).spawnTestActor('echoer');
    expect((await s1!.use(actors).ask('echoer', 'echo', 1)).value).toBe(1);
    expect(await s1!.use(actors).askUnencodable('echoer')).toEqual({ alone: 'ENCODE_FAILED', batched: 'ENCODE_FAILED', after: 'fine' });
    const letters = (await s1!.use(actors).deadLetters()) as Array<{ to: string; reason: string }>;
    expect(letters.filter((l) => l.to === 'echoer' && l.reason === 'encode-failed')).toHaveLength(2);
    // a handler's error that cannot cross as it is: its asker gets its name and code at once (it waited for its timeout)
    const failed = await s1!.use(actors).ask('echoer', 'failDeep', 5000, 20_000);
    expect(failed.error).toMatchObject({ name: 'ActorHandlerError', code: 'E_DEEP' });
    expect(failed.error!.message).toContain('deep field (the rest of it could not be sent');
    expect(failed.ms).toBeLessThan(10_000);
  });

  it("a message or an answer larger than the group's hugepage heap can give fails its ask at once with MESSAGE_TOO_LARGE, saying why; such a tell is a dead letter; messages sent with it still go", async () => {
    // --socket-limit caps the group's heap, as a hugetlb cgroup's limit (a pod's hugepages-2Mi) does
    const g = group('heapShort');
    const p = await g.startAgent({ procType: 'primary', extraEalArgs: ['--socket-limit', '96'] });
    const s = await g.startAgent({ procType: 'secondary' });
    await Promise.all([p, s].map((a) => a.use(actors).startSystem()));
    await s.use(actors).spawnTestActor('holder');
    const got = await p.use(actors).beyondTheHeap('holder', 100 << 20);
    // (each waited for its 10 s timeout before: ASK_TIMEOUT, and the tell never went nor failed)
    expect(got.ask).toMatch(/^MESSAGE_TOO_LARGE: the message 'echo' to 'holder' cannot be sent: a message of 100\.0 MiB .*hugepage memory/);
    expect(got.answer).toMatch(/^MESSAGE_TOO_LARGE: the answer could not be sent: a message of 100\.0 MiB .*hugepage memory/);
    expect(got.slowestMs).toBeLessThan(5000);
    expect(got.counted).toBe(3);
    expect(got.letters).toEqual(['encode-failed holder echo', 'encode-failed holder count']);
  });

  it('a failing handler in another process: the asker gets the error, supervision restarts the actor there', async () => {
    const [p, s1] = await cluster('supervise', 1);
    await s1!.use(actors).spawnTestActor('fragile', { supervision: { strategy: 'restart', maxRestarts: 5, withinMs: 60_000 } });
    expect((await p!.use(actors).ask('fragile', 'count', null)).value).toBe(1);
    expect((await p!.use(actors).ask('fragile', 'count', null)).value).toBe(2);
    const failed = await p!.use(actors).ask('fragile', 'fail', 'kaboom');
    expect(failed.error).toMatchObject({ name: 'ActorHandlerError', code: 'HANDLER_FAILED' });
    expect(failed.error?.message).toContain('kaboom');
    expect((await p!.use(actors).ask('fragile', 'count', null)).value).toBe(1); // a fresh instance
  });

  it('supervision across processes: resume keeps state, stop ends the actor, escalate restarts the parent', async () => {
    const [p, s1] = await cluster('strategies', 1);
    await s1!.use(actors).spawnTestActor('resumer', { supervision: { strategy: 'resume' } });
    await s1!.use(actors).spawnTestActor('stopper', { supervision: { strategy: 'stop' } });
    await s1!.use(actors).spawnFamily('parent', 'child');
    // resume: the failure is answered, the state survives
    expect((await p!.use(actors).ask('resumer', 'count', null)).value).toBe(1);
    expect((await p!.use(actors).ask('resumer', 'fail', 'oops')).error?.code).toBe('HANDLER_FAILED');
    expect((await p!.use(actors).ask('resumer', 'count', null)).value).toBe(2);
    // stop: the actor goes away, watchers in other processes see it
    await p!.use(actors).watch('stopper');
    const stopped = p!.next<{ name: string; reason: string }>('terminated', 15_000);
    expect((await p!.use(actors).ask('stopper', 'fail', 'fatal')).error?.code).toBe('HANDLER_FAILED');
    expect(await stopped).toMatchObject({ name: 'stopper', reason: 'stopped' });
    expect((await p!.use(actors).ask('stopper', 'count', null)).error?.code).toBe('ACTOR_NOT_FOUND');
    // escalate: the child's failure restarts its parent, which stops the child and spawns it again
    expect((await p!.use(actors).ask('parent', 'starts', null)).value).toBe(1);
    expect((await p!.use(actors).ask('child', 'fail', 'child broke')).error?.code).toBe('HANDLER_FAILED');
    await pollUntil(
      'parent restarted',
      () => p!.use(actors).ask('parent', 'starts', null),
      (r) => r.value === 2,
    );
    await pollUntil(
      'child answers',
      () => p!.use(actors).ask('child', 'ping', null),
      (r) => r.value === 'pong',
    );
  });

  it('death watch: a SIGKILLed process is seen by watchers within about a second, and asks pending there fail', async () => {
    const [p, s1, s2] = await cluster('deathwatch', 2);
    await s2!.use(actors).spawnTestActor('doomed');
    await s1!.use(actors).watch('doomed');
    const pending = s1!.use(actors).ask('doomed', 'slow', 60_000, 60_000);
    await sleep(100);
    const terminated = s1!.next<{ name: string; reason: string; at: number }>('terminated', 15_000);
    const killedAt = Date.now();
    s2!.kill('SIGKILL');
    const t = await terminated;
    expect(t).toMatchObject({ name: 'doomed', reason: 'process-exited' });
    // Spec: within 1 s (membership scans every 200 ms). Asserted loosely: tests run on a loaded machine.
    console.log(`death watch: SIGKILL seen after ${t.at - killedAt} ms`);
    expect(t.at - killedAt).toBeLessThan(5000);
    const r = await pending;
    expect(r.error).toMatchObject({ code: 'ACTOR_STOPPED' });
    // and an actor stopped normally is seen as 'stopped'
    await s1!.use(actors).spawnTestActor('short-lived');
    await p!.use(actors).watch('short-lived');
    const stopped = p!.next<{ reason: string }>('terminated', 15_000);
    await p!.use(actors).stop('short-lived'); // a remote stop, by message
    expect(await stopped).toMatchObject({ reason: 'stopped' });
  });

  it('stopping an actor of another process acts at once, as a local stop: the message in hand finishes, the asks queued fail, stop() resolves once it is gone', async () => {
    const [p, s1] = await cluster('remote-stop', 1);
    await s1!.use(actors).spawnTestActor('busy');
    const r = await p!.use(actors).stopWhileBusy('busy');
    expect(r.inHand).toBe('slept 400');
    expect(r.queued).toEqual(['ACTOR_STOPPED', 'ACTOR_STOPPED']);
    expect(r.after).toBe('ACTOR_NOT_FOUND');
    expect(r.hasAfterStop).toBe(false);
    // it waited for the message in hand (300 ms of it were left)
    expect(r.stopMs).toBeGreaterThan(150);
  });

  it('routers spread jobs over workers in other processes; workers join and leave at runtime', async () => {
    const [p, s1, s2] = await cluster('router', 2);
    await s1!.use(actors).spawnTestActor('w1', { groups: ['workers'] });
    await s1!.use(actors).spawnTestActor('w2', { groups: ['workers'] });
    await s2!.use(actors).spawnTestActor('w3', { groups: ['workers'] });
    await p!.use(actors).router('rr', 'round-robin', 'workers');
    await p!.use(actors).router('ll', 'least-loaded', 'workers');
    await p!.use(actors).router('ch', 'consistent-hash', 'workers');
    await pollUntil(
      'three workers',
      () => p!.use(actors).routerWorkers('rr'),
      (w) => w.length === 3,
    );
    const rr = await p!.use(actors).routeJobs('rr', 300, 1);
    expect(rr.answered).toEqual([...Array(300).keys()]);
    expect(rr.perWorker).toEqual({ w1: 100, w2: 100, w3: 100 });
    const ll = await p!.use(actors).routeJobs('ll', 300, 16);
    expect(ll.answered).toEqual([...Array(300).keys()]);
    expect(Object.keys(ll.perWorker).length).toBeGreaterThan(1);
    const ch = await p!.use(actors).routeJobs('ch', 300, 16);
    for (const owners of Object.values(ch.keyOwners)) expect(owners).toHaveLength(1);
    // a router elsewhere is reachable by name: a secondary asks the primary's router
    const viaName = await s2!.use(actors).ask('rr', 'job', 7);
    expect(viaName.value).toMatchObject({ n: 7 });
    // workers join and leave at runtime
    await s2!.use(actors).spawnTestActor('w4', { groups: ['workers'] });
    await pollUntil(
      'w4 in the router',
      () => p!.use(actors).routerWorkers('rr'),
      (w) => w.includes('w4'),
    );
    await s1!.use(actors).stop('w1');
    await pollUntil(
      'w1 out of the router',
      () => p!.use(actors).routerWorkers('rr'),
      (w) => !w.includes('w1'),
    );
    const after = await p!.use(actors).routeJobs('rr', 90, 1);
    expect(after.failures).toEqual([]);
    expect(after.perWorker).toEqual({ w2: 30, w3: 30, w4: 30 });
  });

  it("a router with no workers reads its group at once: a worker's own process asks it right after the spawn and the worker gets the ask", async () => {
    const [p, s1] = await cluster('freshWorker', 1);
    await p!.use(actors).router('fresh-rr', 'round-robin', 'fresh');
    expect((await s1!.use(actors).ask('fresh-rr', 'echo', 1)).error?.code).toBe('NO_WORKERS');
    // the primary's next poll of the registry is up to idlePollMs (800 ms) away
    const first = await s1!.use(actors).spawnAndAsk('fresh-1', ['fresh'], 'fresh-rr', 'whoami', null);
    expect(first).toMatchObject({ value: { name: 'fresh-1', pid: s1!.pid } });
  });

  it("a handler's error with the code ACTOR_NOT_FOUND (a nested ask's) is the handler's answer: the router keeps its workers and does not ask again", async () => {
    const [p, s1] = await cluster('nestedNotFound', 1);
    for (const w of ['nested-1', 'nested-2']) await s1!.use(actors).spawnTestActor(w, { groups: ['nested'] });
    await p!.use(actors).router('nested-rr', 'round-robin', 'nested');
    await pollUntil(
      'two workers',
      () => p!.use(actors).routerWorkers('nested-rr'),
      (w) => w.length === 2,
    );
    for (const to of ['nested-rr', 'nested-1']) {
      const r = await p!.use(actors).ask(to, 'askOn', ['no-such-actor', 'x']);
      expect(r.error).toMatchObject({ name: 'ActorHandlerError', code: 'ACTOR_NOT_FOUND' });
      expect(r.error!.message).toContain("no actor named 'no-such-actor'");
    }
    // each ask handled once (not given to the other worker), and both workers still serve
    expect(await s1!.use(actors).askOnCount()).toBe(2);
    await sleep(300);
    expect((await p!.use(actors).routerWorkers('nested-rr')).sort()).toEqual(['nested-1', 'nested-2']);
    for (let i = 0; i < 4; i++) expect((await p!.use(actors).ask('nested-rr', 'whoami', null)).value).toMatchObject({ pid: s1!.pid });
  });

  it('an idle transport polls the registry less often (doubling to idlePollMs); a send or a new group member brings the poll back', async () => {
    // defaults: pollMs 100, idlePollMs 800 (every 100 ms would be 20 polls in 2 s)
    const [p, s1] = await cluster('idlePoll', 1);
    await s1!.use(actors).spawnTestActor('poll-w1', { groups: ['pollers'] });
    await p!.use(actors).router('poll-rr', 'round-robin', 'pollers'); // follows the group
    await pollUntil(
      'poll-w1 in the router',
      () => p!.use(actors).routerWorkers('poll-rr'),
      (w) => w.includes('poll-w1'),
    );
    expect((await p!.use(actors).ask('poll-w1', 'echo', 1)).value).toBe(1); // a tracked name now
    // idle: 100, 200, 400, 800, 800 ms after the ask (generous bounds: a loaded machine delays timers, never adds them)
    const idle = await Promise.all([p!.use(actors).countPolls(2000), s1!.use(actors).countPolls(2000)]);
    for (const { polls } of idle) expect(polls).toBeLessThanOrEqual(8);
    // in use (a tell every 50 ms): woken at once from its long delay, then every pollMs
    const busy = await p!.use(actors).countPolls(1000, 'poll-w1', 50);
    expect(busy.polls).toBeGreaterThanOrEqual(6);
    expect(busy.firstMs).toBeLessThan(400);
    // idle again; a worker joining the followed group is seen within idlePollMs, and the poll that saw it keeps pollMs
    expect((await p!.use(actors).countPolls(2000)).polls).toBeLessThanOrEqual(8);
    const t0 = Date.now();
    await s1!.use(actors).spawnTestActor('poll-w2', { groups: ['pollers'] });
    await pollUntil(
      'poll-w2 in the router',
      () => p!.use(actors).routerWorkers('poll-rr'),
      (w) => w.includes('poll-w2'),
      5000,
      20,
    );
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('least-loaded reads the mailbox depth of workers in other processes, including messages other senders queued', async () => {
    const [p, s1, s2] = await cluster('leastLoaded', 2);
    await s1!.use(actors).spawnTestActor('loaded');
    await s2!.use(actors).spawnTestActor('idle');
    // someone else (s2) gives 'loaded' five slow messages: its mailbox depth shows them until they
    // are done (4 s each, so it stays above the idle worker's for as long as the jobs can take on a
    // loaded machine: with 1.5 s each, one full run of the suite routed a job to it)
    for (let i = 0; i < 5; i++) await s2!.use(actors).tell('loaded', 'slow', 4000);
    await pollUntil(
      'a depth of 4',
      () => p!.use(actors).depth('loaded'),
      (d) => (d ?? 0) >= 4,
    );
    await p!.use(actors).router('ll', 'least-loaded', undefined, ['loaded', 'idle']);
    const r = await p!.use(actors).routeJobs('ll', 40, 2);
    expect(r.perWorker).toEqual({ idle: 40 });
  });

  /**
   * 3,000 jobs through a round-robin router over 'steady' (in s1) and 'victim' (in s2), 64 in
   * flight; `end` ends s2 once 600 were answered. Every job must be answered once.
   */
  async function jobsWhileAWorkerEnds(label: string, end: (p: Agent, s2: Agent) => Promise<void>): Promise<{ p: Agent; perWorker: Record<string, number> }> {
    const [p, s1, s2] = await cluster(label, 2);
    await s1!.use(actors).spawnTestActor('steady', { groups: ['workers'] });
    await s2!.use(actors).spawnTestActor('victim', { groups: ['workers'] });
    await p!.use(actors).router('jobs', 'round-robin', 'workers');
    await pollUntil(
      'two workers',
      () => p!.use(actors).routerWorkers('jobs'),
      (w) => w.length === 2,
    );
    const run = p!.use(actors).routeJobs('jobs', 3000, 64, 600);
    await p!.next('progress', 60_000);
    await end(p!, s2!);
    const r = await run;
    expect(r.failures).toEqual([]);
    expect(r.answered).toEqual([...Array(3000).keys()]);
    return { p: p!, perWorker: r.perWorker };
  }

  it('a worker process killed mid-run loses no job: its in-flight asks go to the other workers', async () => {
    const { p, perWorker } = await jobsWhileAWorkerEnds('redeliver', async (_, s2) => void s2.kill('SIGKILL'));
    expect(perWorker.steady).toBeGreaterThan(1500);
    expect(await p.use(actors).routerWorkers('jobs')).toEqual(['steady']);
  });

  it('a worker process ended by SIGTERM mid-run loses no job: the asks its closing system gave back go to the other workers', async () => {
    await jobsWhileAWorkerEnds('redeliverTerm', async (p, s2) => {
      // in hand while it closes: meanwhile its actor refuses what comes (SYSTEM_CLOSED)
      await p.use(actors).tell('victim', 'slow', 300);
      await sleep(20);
      s2.kill('SIGTERM');
    });
  });

  it('close with a deadline: the message in hand may finish, asks still queued are answered SYSTEM_CLOSED in the asking process; later ones are refused at once', async () => {
    const [p, s1] = await cluster('closeDeadline', 1);
    await s1!.use(actors).spawnTestActor('busy');
    const inHand = p!.use(actors).ask('busy', 'slow', 300, 30_000);
    const queued = [1, 2, 3].map(() => p!.use(actors).ask('busy', 'slow', 5000, 30_000));
    await pollUntil(
      'four received',
      () => s1!.use(actors).counters('busy'),
      (c) => (c?.received ?? 0) >= 4,
    ); // all four reached the actor
    await s1!.use(actors).closeSystem(1000);
    expect(await inHand).toMatchObject({ value: 'slept 300' });
    // The asker's own system is open: the error says whose closed, and does not advise a restart.
    for (const r of await Promise.all(queued))
      expect(r.error).toMatchObject({
        name: 'SystemClosedError',
        code: 'SYSTEM_CLOSED',
        message: expect.stringMatching(
          /^the actor system of the actor asked closed: actor 'busy' was shut down before it answered 'slow'; this process's system is open/,
        ),
      });
    expect(await p!.use(actors).has('busy')).toBe(false);
  });

  it("a producer that pauses on system.drained() when system.unsent() reaches its limit keeps at most that many tells waiting for a slower actor's full mailbox; every tell arrives, in order", async () => {
    const [p, s1] = await cluster('tellsPaced', 1);
    await p!.use(actors).spawnTestActor('slow');
    // ~20 µs per tell at the actor: without pauses most of the 30,000 would wait in the sender
    const r = await s1!.use(actors).tellPaced('slow', 'recordSlowly', 30_000, 1000);
    expect(r.mostUnsent).toBe(1000);
    expect(r.pauses).toBeGreaterThan(5);
    expect(await s1!.use(actors).unsent()).toBe(0);
    await pollUntil(
      'every tell to be handled',
      async () => ((await p!.use(actors).ask('slow', 'list', null)).value as number[]).length,
      (n) => n === 30_000,
      10_000,
    );
    expect((await p!.use(actors).ask('slow', 'list', null)).value).toEqual([...Array(30_000).keys()]);
  });

  it('drained() resolves while the receiving process is stopped (SIGSTOP), once the asks that waited here for room in its mailbox were aborted', async () => {
    const [p, s1] = await cluster('drainedStopped', 1);
    await s1!.use(actors).spawnTestActor('busy');
    const r = await p!.use(actors).drainedWhileStopped('busy', 12_000, s1!.pid);
    expect(r.waitingBefore).toBeGreaterThan(1000);
    expect(r.first).toBe('drained');
  });

  it("close lets this process's tells that wait for room in a slower actor's full mailbox go before its deadline; what the deadline leaves is a dead letter ('closed')", async () => {
    const [p, s1, s2] = await cluster('tellsAtClose', 2);
    await p!.use(actors).spawnTestActor('slow-1');
    await p!.use(actors).spawnTestActor('slow-2');
    // 10,000 tells to an actor taking ~20 µs each: most wait for room when the sender closes
    expect(await s1!.use(actors).tellManyThenClose('slow-1', 'recordSlowly', 10_000, 30_000)).toEqual({});
    expect((await p!.use(actors).ask('slow-1', 'list', null)).value).toEqual([...Array(10_000).keys()]);
    // closing at once: every tell either arrived or is a dead letter, in order
    const dropped = await s2!.use(actors).tellManyThenClose('slow-2', 'recordSlowly', 10_000, 0);
    await sleep(500);
    const arrived = (await p!.use(actors).ask('slow-2', 'list', null)).value as number[];
    expect(arrived).toEqual([...Array(arrived.length).keys()]);
    expect(Object.keys(dropped)).toEqual(['closed']);
    expect(arrived.length + dropped.closed!).toBe(10_000);
  });

  it("a closing system's router keeps its name until the asks it gave to workers are answered (callers elsewhere get them), and refuses new ones", async () => {
    const [p, s1] = await cluster('routerClose', 1);
    for (const w of ['rc-1', 'rc-2']) await s1!.use(actors).spawnTestActor(w, { groups: ['rc'] });
    await s1!.use(actors).router('rc-router', 'round-robin', 'rc');
    const asks = [0, 1, 2].map(() => p!.use(actors).ask('rc-router', 'slow', 400, 10_000));
    await pollUntil(
      'three received',
      async () => ((await s1!.use(actors).counters('rc-1'))?.received ?? 0) + ((await s1!.use(actors).counters('rc-2'))?.received ?? 0),
      (n) => n >= 3,
    );
    const closing = s1!.use(actors).closeSystem(5000);
    await sleep(100);
    const late = await p!.use(actors).ask('rc-router', 'echo', 1, 10_000);
    expect(late.error?.code).toMatch(/^(SYSTEM_CLOSED|ACTOR_NOT_FOUND)$/);
    for (const r of await Promise.all(asks)) expect(r).toMatchObject({ value: 'slept 400' });
    await closing;
  });

  it('close refuses messages that reach an actor after it began, and answers every message that reached the process before its name goes', async () => {
    const [p, s1] = await cluster('closeRefuse', 1);
    await s1!.use(actors).spawnTestActor('closing');
    const first = p!.use(actors).ask('closing', 'slow', 400, 30_000);
    await pollUntil(
      'one received',
      () => s1!.use(actors).counters('closing'),
      (c) => (c?.received ?? 0) >= 1,
    );
    const closing = s1!.use(actors).closeSystem(5000);
    await sleep(100);
    const late = await p!.use(actors).ask('closing', 'echo', 1, 30_000);
    expect(late.error?.code).toMatch(/^(SYSTEM_CLOSED|ACTOR_NOT_FOUND)$/);
    expect(late.ms).toBeLessThan(10_000);
    expect(await first).toMatchObject({ value: 'slept 400' });
    await closing;
  });

  it('whenServed: a process waits for names another process spawns later, and gives up on its signal', async () => {
    const [p, s1] = await cluster('served', 1);
    const waiting = s1!.use(actors).whenServed(['later', 'later2'], 15_000);
    await sleep(300);
    await p!.use(actors).spawnTestActor('later');
    await p!.use(actors).spawnTestActor('later2');
    const spawnedAt = performance.now();
    const served = await waiting;
    expect(served).toMatchObject({ ms: expect.any(Number) });
    expect((served as { ms: number }).ms).toBeGreaterThanOrEqual(200); // (it waited for the spawn)
    // (seen at the next look, at most 100 ms after the spawn: the 2 s allow for a loaded machine)
    expect(performance.now() - spawnedAt).toBeLessThan(2000);
    expect((await s1!.use(actors).ask('later', 'echo', 7)).value).toBe(7);
    expect(await s1!.use(actors).whenServed(['later'], 1000)).toMatchObject({ ms: expect.any(Number) });
    expect(await s1!.use(actors).whenServed(['later', 'nobody'], 200)).toMatchObject({ error: { name: 'TimeoutError' } });
  });

  it('close: a closing system stops its actors and peers see them go', async () => {
    const [p, s1] = await cluster('close', 1);
    await s1!.use(actors).spawnTestActor('leaving');
    expect(await p!.use(actors).has('leaving')).toBe(true);
    await p!.use(actors).watch('leaving');
    const gone = p!.next<{ reason: string }>('terminated', 15_000);
    await s1!.use(actors).closeSystem(1000);
    expect(await gone).toMatchObject({ reason: 'stopped' });
    expect(await p!.use(actors).has('leaving')).toBe(false);
    const r = await p!.use(actors).ask('leaving', 'echo', 1);
    expect(r.error?.code).toBe('ACTOR_NOT_FOUND');
  });
});
