/**
 * An OpenTelemetry SDK as an application registers one, for trace tests: a tracer provider
 * exporting to memory, the W3C trace-context propagator and the AsyncLocalStorage context
 * manager, registered as the API's globals; and the finished spans as plain records (they cross
 * from agent processes to the test as JSON).
 */
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { expect } from 'vitest';

/** A finished span, as plain data. */
export interface SpanRecord {
  name: string;
  kind: SpanKind;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  attributes: Record<string, unknown>;
  status: { code: number; message?: string };
  events: string[];
  traceState: string | undefined;
  pid: number;
}

export interface TestTracing {
  exporter: InMemorySpanExporter;
  provider: BasicTracerProvider;
  spans(): SpanRecord[];
  uninstall(): Promise<void>;
}

/** Registers an SDK (with the W3C propagator unless `propagator` is false). */
export function installTracing(options: { propagator?: boolean } = {}): TestTracing {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  trace.setGlobalTracerProvider(provider);
  if (options.propagator !== false) propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  return {
    exporter,
    provider,
    spans: () =>
      exporter.getFinishedSpans().map((s) => ({
        name: s.name,
        kind: s.kind,
        traceId: s.spanContext().traceId,
        spanId: s.spanContext().spanId,
        parentSpanId: s.parentSpanContext?.spanId,
        attributes: { ...s.attributes },
        status: { ...s.status },
        events: s.events.map((e) => e.name),
        traceState: s.spanContext().traceState?.serialize(),
        pid: process.pid,
      })),
    async uninstall() {
      await provider.shutdown();
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}

/** The one span named `name` among `spans` (throws when there is not exactly one). */
export function spanNamed(spans: SpanRecord[], name: string): SpanRecord {
  const found = spans.filter((s) => s.name === name);
  if (found.length !== 1) throw new Error(`expected one span '${name}', found ${found.length} among ${spans.map((s) => s.name).join(', ')}`);
  return found[0]!;
}

/** Expects `child` to be a child span of `parent`, in its trace. */
export function childOf(child: SpanRecord, parent: SpanRecord): void {
  expect(child.traceId, `${child.name} in the trace of ${parent.name}`).toBe(parent.traceId);
  expect(child.parentSpanId, `${child.name} child of ${parent.name}`).toBe(parent.spanId);
}

/**
 * The trace of the tests' scenario, checked: the application's span `request` around an ask to
 * `svc`, whose handler makes its own span `lookup` and tells `sink`. Returns the spans by hop.
 */
export function expectAskTellTree(spans: SpanRecord[]): Record<'request' | 'ask' | 'handler' | 'lookup' | 'tell' | 'sink', SpanRecord> {
  const tree = {
    request: spanNamed(spans, 'request'),
    ask: spanNamed(spans, 'ask svc'),
    handler: spanNamed(spans, 'process svc'),
    lookup: spanNamed(spans, 'lookup'),
    tell: spanNamed(spans, 'tell sink'),
    sink: spanNamed(spans, 'process sink'),
  };
  childOf(tree.ask, tree.request);
  childOf(tree.handler, tree.ask);
  childOf(tree.lookup, tree.handler);
  childOf(tree.tell, tree.handler);
  childOf(tree.sink, tree.tell);
  expect([tree.ask.kind, tree.handler.kind, tree.tell.kind, tree.sink.kind]).toEqual([SpanKind.CLIENT, SpanKind.SERVER, SpanKind.PRODUCER, SpanKind.CONSUMER]);
  return tree;
}
