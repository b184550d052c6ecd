/**
 * Hosts for real: each "host" is a DPDK group of its own (its own --file-prefix, its own
 * hugepage files and mailboxes) with real agent processes in a network namespace of its own,
 * linked by a veth pair to a bridge where a real nats-server listens. Where the machine does not
 * allow namespaces, hosts share the loopback (the reason is printed).
 */
import { readlinkSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Agent, TestGroup } from './harness/group.js';
import { NatsServer } from './harness/nats.js';
import { HostNetwork } from './harness/netns.js';
import { fixture } from './harness/fixtures.js';
import { useTestGroups } from './harness/use-groups.js';
import { pollUntil } from './harness/wait.js';
import { mpbus } from './harness/cli.js';
import { readGroupView } from '../src/obs/group-view.js';
import { groupMetricsText } from '../src/index.js';

const cl = fixture('cluster');
let nats: NatsServer;
let clusterSeq = 0;
let cluster = '';
let network: HostNetwork | undefined;
const namespaceOf = new Map<TestGroup, string | undefined>();
let loopbackReasonPrinted = false;

beforeEach(async () => {
  const made = HostNetwork.create(3);
  if (made instanceof HostNetwork) network = made;
  else {
    network = undefined;
    if (!loopbackReasonPrinted) console.log(`cluster tests: hosts share the loopback (no network namespaces: ${made.reason})`);
    loopbackReasonPrinted = true;
  }
  nats = await NatsServer.start(network?.serverAddress ?? '127.0.0.1');
  cluster = `g${process.pid}_${++clusterSeq}`;
});
afterEach(async () => {
  namespaceOf.clear();
  await nats?.cleanup();
  network?.cleanup();
});
// After the hooks above: vitest runs after-hooks last registered first, so each test's groups
// end before its nats-server and network namespaces.
const group = useTestGroups();

/** A host: a new DPDK group with a primary agent whose actor system joined the cluster. */
async function host(label: string, options: Record<string, unknown> = {}): Promise<Agent> {
  const g = group(`cl${label}`);
  const netns = network?.namespaces[namespaceOf.size];
  namespaceOf.set(g, netns);
  const agent = await g.startAgent({ procType: 'primary' }, netns);
  await agent.use(cl).join({ servers: nats.url, name: cluster, heartbeatMs: 250, ...options });
  return agent;
}

/** Another process of the same host (DPDK group) as `primary`, also joined. */
async function sibling(primary: Agent): Promise<Agent> {
  const agent = await primary.group.startAgent({ procType: 'secondary' }, namespaceOf.get(primary.group));
  await agent.use(cl).join({ servers: nats.url, name: cluster, heartbeatMs: 250 });
  return agent;
}

describe('actors across hosts (DPDK groups joined through nats-server)', () => {
  it('ask and tell across groups, to a primary and to a secondary of the other group', async () => {
    const a = await host('a');
    const a2 = await sibling(a);
    const b = await host('b');
    if (network) {
      // each host in a network namespace of its own (a's two processes share a's)
      const here = readlinkSync('/proc/self/ns/net');
      const [nsA, nsA2, nsB] = await Promise.all([a, a2, b].map((x) => x.use(cl).networkNamespace()));
      expect(new Set([here, nsA, nsB]).size).toBe(3);
      expect(nsA2).toBe(nsA);
    }
    await a.use(cl).serve('alpha', 'a');
    await a2.use(cl).serve('alpha-2', 'a2');
    await b.use(cl).waitFor('alpha', true);
    await b.use(cl).waitFor('alpha-2', true);
    expect(await b.use(cl).ask('alpha', 'echo', { deep: [1, 'two', { three: 3 }] })).toEqual({ ok: true, value: { deep: [1, 'two', { three: 3 }] } });
    expect(await b.use(cl).ask('alpha-2', 'whereAmI', null)).toEqual({ ok: true, value: { label: 'a2', pid: a2.pid } });
    // within group a, alpha-2 is reached through the mailboxes (both work the same for the caller)
    expect(await a.use(cl).ask('alpha-2', 'whereAmI', null)).toEqual({ ok: true, value: { label: 'a2', pid: a2.pid } });
    await b.use(cl).tell('alpha', 'tellMe', { n: 42 });
    await expect.poll(() => a.use(cl).handledIds(), { timeout: 10_000 }).toEqual([42]);
    expect(await b.use(cl).ask('nobody', 'echo', 1)).toMatchObject({ ok: false, code: 'ACTOR_NOT_FOUND', name: 'ActorNotFoundError' });
  });

  it("asks to an actor on another host show in the asking group's metrics and ps (the actor's own counters are on its host)", async () => {
    const a = await host('a');
    const b = await host('b');
    await a.use(cl).serve('alpha', 'a');
    await b.use(cl).waitFor('alpha', true);
    for (let i = 0; i < 5; i++) expect(await b.use(cl).ask('alpha', 'echo', i)).toEqual({ ok: true, value: i });
    expect(await b.use(cl).ask('alpha', 'no-such-action', null)).toMatchObject({ ok: false });
    const view = await pollUntil(
      "b's view",
      () => readGroupView(b.group.prefix),
      (v) => v?.remoteAsks.length === 1,
    );
    expect(view!.remoteAsks).toEqual([expect.objectContaining({ name: 'alpha', asks: 6, askFailed: 1, askTimeouts: 0 })]);
    expect(view!.remoteAsks[0]!.p50Ms).toBeGreaterThan(0);
    expect(view!.actors.map((x) => x.name)).not.toContain('alpha');
    // the host of the actor counts what it received; the asker's group what it asked
    expect(readGroupView(a.group.prefix)!.remoteAsks).toEqual([]);
    const text = await groupMetricsText({ filePrefix: b.group.prefix });
    expect(text).toContain(`mpbus_remote_asks_total{group="${b.group.prefix}",actor="alpha"} 6`);
    expect(text).toContain(`mpbus_remote_ask_failures_total{group="${b.group.prefix}",actor="alpha"} 1`);
    expect(text).toContain(`mpbus_remote_ask_duration_seconds_count{group="${b.group.prefix}",actor="alpha"} 6`);
    const ps = await mpbus('ps', b.group.prefix);
    expect(ps.stdout).toMatch(/ASKED ON OTHER HOSTS +ASKS +FAILED +TIMEOUTS +P50 +P99\n *alpha +6 +1 +0 /);
  });

  it('the deadline crosses hosts and processes: a nested ask does not outlive the caller on another host', async () => {
    const a = await host('a');
    const a2 = await sibling(a);
    const b = await host('b');
    await a2.use(cl).serve('slow', 'a2');
    await a.use(cl).serveNested('outer', 'slow');
    await b.use(cl).waitFor('outer', true);
    const outcome = await b.use(cl).ask('outer', 'work', null, 500);
    // the caller times out, or (timers racing) hears of the inner timeout just in time
    if (outcome.ok) expect(outcome.value).toBe('inner failed');
    else expect(outcome.code).toBe('ASK_TIMEOUT');
    await expect.poll(() => a.use(cl).nestedOutcome(), { timeout: 10_000 }).not.toBeNull();
    const inner = await a.use(cl).nestedOutcome();
    expect(inner!.code).toBe('ASK_TIMEOUT');
    expect(inner!.timeoutMs).toBeLessThanOrEqual(500);
  });

  it('a name served by two groups is a queue group: each job to exactly one worker, spread over both', async () => {
    const a = await host('a');
    const b = await host('b');
    const c = await host('c');
    await a.use(cl).serve('pool', 'a');
    await b.use(cl).serve('pool', 'b');
    await expect.poll(() => c.use(cl).holders('pool'), { timeout: 10_000 }).toBe(2);
    const count = 300;
    const run = await c.use(cl).runJobs('pool', count, 16);
    expect(run.answers.every((n) => n === 1)).toBe(true);
    expect(run.errors).toEqual({});
    const handledA = await a.use(cl).handledIds();
    const handledB = await b.use(cl).handledIds();
    expect([...handledA, ...handledB].sort((x, y) => x - y)).toEqual([...Array(count).keys()]);
    expect(handledA.length).toBeGreaterThan(0);
    expect(handledB.length).toBeGreaterThan(0);
    expect(run.perLabel).toEqual({ a: handledA.length, b: handledB.length });
  });

  it('a group SIGKILLed mid-run: its names vanish, callers get typed errors, no job is answered twice', async () => {
    const a = await host('a');
    const b = await host('b');
    const c = await host('c');
    await a.use(cl).serve('pool', 'a', 2);
    await b.use(cl).serve('pool', 'b', 2);
    await b.use(cl).serve('only-b', 'b');
    await expect.poll(() => c.use(cl).holders('pool'), { timeout: 10_000 }).toBe(2);
    await c.use(cl).waitFor('only-b', true);
    const count = 600;
    const running = c.use(cl).runJobs('pool', count, 16, 5000);
    await c.next('progress', 60_000, (p: { done: number }) => p.done >= 100);
    b.kill('SIGKILL');
    const vanishedMs = await c.use(cl).waitFor('only-b', false, 20_000);
    const run = await running;
    expect(run.answers.every((n) => n === 1)).toBe(true);
    expect(run.perLabel.a! + run.perLabel.b!).toBe(count);
    expect(await c.use(cl).holders('pool')).toBe(1);
    expect(await c.use(cl).ask('only-b', 'echo', 1)).toMatchObject({ ok: false, code: 'ACTOR_NOT_FOUND' });
    // every job a answered is in its handled list, and none twice there
    const handledA = await a.use(cl).handledIds();
    expect(new Set(handledA).size).toBe(handledA.length);
    console.log(`cluster: SIGKILLed group's names vanished after ${vanishedMs} ms; caller errors while it went: ${JSON.stringify(run.errors)}`);
  });

  it('nats-server restarted mid-run: clients reconnect and re-subscribe, later asks succeed', async () => {
    const a = await host('a');
    const b = await host('b');
    await a.use(cl).serve('echo-a', 'a');
    await b.use(cl).waitFor('echo-a', true);
    expect(await b.use(cl).ask('echo-a', 'echo', 1)).toEqual({ ok: true, value: 1 });
    await nats.stop('SIGKILL');
    await expect.poll(() => b.use(cl).connected(), { timeout: 20_000 }).toBe(false);
    expect(await b.use(cl).ask('echo-a', 'echo', 2)).toMatchObject({ ok: false, code: 'CLUSTER_UNAVAILABLE' });
    await nats.run();
    await expect.poll(() => Promise.all([a.use(cl).connected(), b.use(cl).connected()]), { timeout: 30_000 }).toEqual([true, true]);
    await b.use(cl).waitFor('echo-a', true);
    await expect.poll(() => b.use(cl).ask('echo-a', 'echo', 3, 2000), { timeout: 30_000, interval: 200 }).toEqual({ ok: true, value: 3 });
  });
});
