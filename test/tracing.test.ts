/**
 * OpenTelemetry traces across real processes: agents of a DPDK group, and two groups bridged
 * through a real nats-server, each process with its own SDK exporting to memory. An ask from one
 * process to an actor in another, through a router here or there, and across hosts is one
 * trace: every hop a span whose parent is the span of the hop before, in whichever process.
 */
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ClusterOptions } from '../src/index.js';
import { describe, expect, it } from 'vitest';
import type { Agent } from './harness/group.js';
import { useTestGroups } from './harness/use-groups.js';
import { useNatsServer } from './harness/nats.js';
import { childOf, expectAskTellTree, spanNamed, type SpanRecord } from './harness/otel.js';
import { fixture } from './harness/fixtures.js';

const tr = fixture('tracing');
const natsServer = useNatsServer();
const testGroup = useTestGroups();

/** A group: a primary and `secondaries` secondaries, each with an SDK and an actor system. */
async function group(label: string, secondaries: number, cluster?: ClusterOptions): Promise<Agent[]> {
  const all = await testGroup(label).startMembers(secondaries);
  await Promise.all(all.map((a) => a.use(tr).start(cluster)));
  return all;
}

/** The spans of `agents`, once there are `count` of them, cleared for the next step. */
async function spansOf(agents: Agent[], count: number): Promise<SpanRecord[]> {
  let spans: SpanRecord[] = [];
  await expect
    .poll(
      async () => {
        spans = (await Promise.all(agents.map((a) => a.use(tr).spans()))).flat();
        return spans.length;
      },
      { timeout: 10_000 },
    )
    .toBe(count);
  await Promise.all(agents.map((a) => a.use(tr).spans(true)));
  return spans;
}

describe('traces across processes', () => {
  it('an ask to an actor in another process, and the tell its handler sends to a third: one trace, a span per hop in the process of the hop', async () => {
    const [caller, server, sinkProcess] = await group('trace', 2);
    await sinkProcess!.use(tr).serve('sink');
    await server!.use(tr).serve('svc', 'sink');
    await caller!.use(tr).waitFor('svc');
    expect(await caller!.use(tr).ask('svc', 'work', 21)).toEqual({ ok: true, value: 42 });
    await expect.poll(() => sinkProcess!.use(tr).noted(), { timeout: 10_000 }).toEqual([42]);
    const spans = await spansOf([caller!, server!, sinkProcess!], 6);
    const { request, ask, handler, lookup, tell, sink } = expectAskTellTree(spans);
    expect([request, ask].map((s) => s.pid)).toEqual([caller!.pid, caller!.pid]);
    expect([handler, lookup, tell].map((s) => s.pid)).toEqual([server!.pid, server!.pid, server!.pid]);
    expect(sink.pid).toBe(sinkProcess!.pid);
    expect(handler.attributes).toMatchObject({ 'messaging.system': 'mpbus', 'messaging.destination.name': 'svc', 'mpbus.action': 'work' });

    // A failing handler: its span and the caller's are errors, in the same trace.
    expect(await caller!.use(tr).ask('svc', 'fail', null)).toMatchObject({ ok: false });
    const failed = await spansOf([caller!, server!], 3);
    childOf(spanNamed(failed, 'process svc'), spanNamed(failed, 'ask svc'));
    for (const name of ['ask svc', 'process svc'])
      expect(spanNamed(failed, name).status).toMatchObject({ code: SpanStatusCode.ERROR, message: expect.stringContaining('out of stock') });
  });

  it("through a router in the caller's process and through one in another process: ask -> route -> the worker's span, tells too", async () => {
    const [caller, routerProcess, workerProcess] = await group('troute', 2);
    await workerProcess!.use(tr).serve('w1');
    await caller!.use(tr).waitFor('w1');
    await routerProcess!.use(tr).waitFor('w1');
    await caller!.use(tr).router('pool-here', ['w1']);
    await routerProcess!.use(tr).router('pool-there', ['w1']);
    await caller!.use(tr).waitFor('pool-there');
    const agents = [caller!, routerProcess!, workerProcess!];
    for (const [pool, routerPid] of [
      ['pool-here', caller!.pid],
      ['pool-there', routerProcess!.pid],
    ] as const) {
      expect(await caller!.use(tr).ask(pool, 'work', 1)).toEqual({ ok: true, value: 2 });
      const spans = await spansOf(agents, 5);
      const ask = spanNamed(spans, `ask ${pool}`);
      const route = spanNamed(spans, `route ${pool}`);
      const handler = spanNamed(spans, 'process w1');
      childOf(ask, spanNamed(spans, 'request'));
      childOf(route, ask);
      childOf(handler, route);
      childOf(spanNamed(spans, 'lookup'), handler);
      expect(route).toMatchObject({ kind: SpanKind.PRODUCER, pid: routerPid, attributes: { 'mpbus.router.worker': 'w1' } });
      expect(handler).toMatchObject({ kind: SpanKind.SERVER, pid: workerProcess!.pid });
    }
    await caller!.use(tr).tell('pool-there', 'note', 7);
    await expect.poll(() => workerProcess!.use(tr).noted(), { timeout: 10_000 }).toEqual([7]);
    const told = await spansOf(agents, 4);
    childOf(spanNamed(told, 'route pool-there'), spanNamed(told, 'tell pool-there'));
    childOf(spanNamed(told, 'process w1'), spanNamed(told, 'route pool-there'));
    expect(spanNamed(told, 'process w1').kind).toBe(SpanKind.CONSUMER);
  });

  it('across hosts through the cluster bridge: the ask to the other group and the tell back are one trace', async () => {
    const cluster = { servers: natsServer().url, name: `tr${process.pid}`, heartbeatMs: 250 };
    const [a] = await group('tra', 0, cluster);
    const [b] = await group('trb', 0, cluster);
    await a!.use(tr).serve('sink');
    await b!.use(tr).serve('svc', 'sink');
    await a!.use(tr).waitFor('svc');
    await b!.use(tr).waitFor('sink');
    expect(await a!.use(tr).ask('svc', 'work', 5)).toEqual({ ok: true, value: 10 });
    await expect.poll(() => a!.use(tr).noted(), { timeout: 10_000 }).toEqual([10]);
    const spans = await spansOf([a!, b!], 6);
    const ask = spanNamed(spans, 'ask svc');
    const handler = spanNamed(spans, 'process svc');
    const tell = spanNamed(spans, 'tell sink');
    childOf(ask, spanNamed(spans, 'request'));
    childOf(handler, ask);
    childOf(spanNamed(spans, 'lookup'), handler);
    childOf(tell, handler);
    childOf(spanNamed(spans, 'process sink'), tell);
    expect([ask.pid, handler.pid, tell.pid, spanNamed(spans, 'process sink').pid]).toEqual([a!.pid, b!.pid, b!.pid, a!.pid]);
  });
});
