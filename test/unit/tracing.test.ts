/**
 * OpenTelemetry traces within one process (actor systems on an in-process hub, no DPDK): the
 * spans of asks, tells, routers and handlers, their parents, kinds, attributes and errors; the
 * trace field without an SDK; W3C trace context without a registered propagator. Across real
 * processes and hosts: test/tracing.test.ts.
 */
import 'reflect-metadata';
import { context, createTraceState, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { ActorSystem, InProcessHub, type Envelope } from '../../src/index.js';
import { tracingOn } from '../../src/actors/tracing.js';
import { childOf, expectAskTellTree, installTracing, spanNamed, type TestTracing } from '../harness/otel.js';

let tracing: TestTracing | undefined;
const systems: ActorSystem[] = [];
afterEach(async () => {
  await Promise.all(systems.splice(0).map((s) => s.close({ timeoutMs: 500 })));
  await tracing?.uninstall();
  tracing = undefined;
});

/** A system on its own hub; `traces` collects the trace field of every envelope it sends. */
function system(traces: (string | undefined)[] = []): ActorSystem {
  const transport = new InProcessHub().connect();
  const deliver = transport.deliver.bind(transport);
  transport.deliver = (to: string, envelope: Envelope) => {
    traces.push(envelope.trace);
    return deliver(to, envelope);
  };
  const s = new ActorSystem({ transport });
  systems.push(s);
  return s;
}

const tracer = () => trace.getTracer('app');

describe('traces in one process', () => {
  it('without an SDK: no spans, and the trace field stays as before (nothing set)', async () => {
    const traces: (string | undefined)[] = [];
    const s = system(traces);
    expect(tracingOn).toBe(false);
    const echo = await s.spawn('echo', { echo: (m: string) => m });
    expect(await echo.ask('echo', 'hi')).toBe('hi');
    echo.tell('echo', 'there');
    expect(traces.filter((t) => t !== undefined)).toEqual([]);
  });

  it("an ask is a CLIENT span, its handler a SERVER span under it; the handler's own spans and tells nest under that", async () => {
    tracing = installTracing();
    const s = system();
    expect(tracingOn).toBe(true);
    let told!: () => void;
    const toldDone = new Promise<void>((resolve) => (told = resolve));
    await s.spawn('sink', { note: () => told() });
    const svc = await s.spawn('svc', {
      work: async (n: number, ctx) => {
        const doubled = await tracer().startActiveSpan('lookup', async (span) => {
          await new Promise((resolve) => setTimeout(resolve, 5));
          span.end();
          return n * 2;
        });
        ctx.ref('sink').tell('note', doubled);
        return doubled;
      },
    });
    const answer = await tracer().startActiveSpan('request', async (span) => {
      try {
        return await svc.ask('work', 21);
      } finally {
        span.end();
      }
    });
    expect(answer).toBe(42);
    await toldDone;
    await expect.poll(() => tracing!.spans().length).toBe(6);
    const spans = tracing.spans();
    const { ask, handler: process, tell } = expectAskTellTree(spans);
    expect(ask.attributes).toEqual({
      'messaging.system': 'mpbus',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'ask',
      'messaging.destination.name': 'svc',
      'mpbus.action': 'work',
    });
    expect(process.attributes).toEqual({
      'messaging.system': 'mpbus',
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.destination.name': 'svc',
      'mpbus.action': 'work',
    });
    expect(tell.attributes).toMatchObject({
      'messaging.operation.name': 'tell',
      'messaging.destination.name': 'sink',
      'mpbus.action': 'note',
      'mpbus.sender': 'svc',
    });
    expect(spans.every((sp) => sp.status.code === SpanStatusCode.UNSET)).toBe(true);
  });

  it('errors: a failing handler and the ask it answers are ERROR spans with the exception; a tell to no one too', async () => {
    tracing = installTracing();
    const s = system();
    const svc = await s.spawn('svc', {
      fail: () => {
        throw new Error('out of stock');
      },
    });
    await expect(svc.ask('fail')).rejects.toThrow('out of stock');
    s.ref('nobody').tell('anything');
    await expect.poll(() => tracing!.spans().length).toBe(3);
    const spans = tracing.spans();
    const ask = spanNamed(spans, 'ask svc');
    const process = spanNamed(spans, 'process svc');
    childOf(process, ask);
    for (const span of [ask, process]) {
      expect(span.status).toMatchObject({ code: SpanStatusCode.ERROR, message: expect.stringContaining('out of stock') });
      expect(span.events).toEqual(['exception']);
      expect(span.attributes['error.type']).toBeTypeOf('string');
    }
    expect(spanNamed(spans, 'tell nobody')).toMatchObject({ status: { code: SpanStatusCode.ERROR }, attributes: { 'error.type': 'ACTOR_NOT_FOUND' } });
  });

  it("a router is a hop: ask -> route (PRODUCER, naming the worker) -> the worker's span; tells too; no workers is an ERROR span", async () => {
    tracing = installTracing();
    const s = system();
    await s.spawn('w1', { job: (n: number) => n + 1, note: () => undefined });
    const router = s.router('pool', { workers: ['w1'] });
    s.router('empty');
    expect(await router.ref.ask('job', 1)).toBe(2);
    router.ref.tell('note');
    await expect(s.ref('empty').ask('job', 1)).rejects.toMatchObject({ code: 'NO_WORKERS' });
    await expect.poll(() => tracing!.spans().length).toBe(8);
    const spans = tracing.spans();
    const [routeAsk, routeTell] = spans.filter((sp) => sp.name === 'route pool');
    childOf(routeAsk!, spanNamed(spans, 'ask pool'));
    childOf(routeTell!, spanNamed(spans, 'tell pool'));
    const handled = spans.filter((sp) => sp.name === 'process w1');
    childOf(
      handled.find((sp) => sp.kind === SpanKind.SERVER)!,
      routeAsk!,
    );
    childOf(
      handled.find((sp) => sp.kind === SpanKind.CONSUMER)!,
      routeTell!,
    );
    expect(routeAsk).toMatchObject({
      kind: SpanKind.PRODUCER,
      attributes: { 'messaging.operation.name': 'route', 'messaging.destination.name': 'pool', 'mpbus.router.worker': 'w1' },
    });
    const empty = spanNamed(spans, 'route empty');
    childOf(empty, spanNamed(spans, 'ask empty'));
    expect(empty).toMatchObject({ status: { code: SpanStatusCode.ERROR }, attributes: { 'error.type': 'NO_WORKERS' } });
  });

  for (const propagator of [true, false]) {
    it(`W3C trace context with${propagator ? '' : 'out'} a registered propagator: one trace, tracestate kept`, async () => {
      tracing = installTracing({ propagator });
      const traces: (string | undefined)[] = [];
      const s = system(traces);
      const svc = await s.spawn('svc', { work: () => trace.getActiveSpan()?.spanContext().traceState?.serialize() });
      const remote = trace.setSpanContext(ROOT_CONTEXT, {
        traceId: '0af7651916cd43dd8448eb211c80319c',
        spanId: 'b7ad6b7169203331',
        traceFlags: 1,
        isRemote: true,
        traceState: createTraceState('vendor=abc'),
      });
      const state = await context.with(remote, () => svc.ask('work'));
      expect(state).toBe('vendor=abc');
      expect(traces[0]).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01 vendor=abc$/);
      const spans = tracing.spans();
      childOf(spanNamed(spans, 'process svc'), spanNamed(spans, 'ask svc'));
      expect(spanNamed(spans, 'ask svc').parentSpanId).toBe('b7ad6b7169203331');
    });
  }
});
