/**
 * OpenTelemetry traces across processes: a span per hop of a message (the send, a router's
 * choice of worker, the handler), linked through the envelope's `trace` field, which carries
 * W3C trace context (`traceparent`, then a space and `tracestate` when there is one). So an ask
 * from one process to an actor in another, on through a router or across hosts through the
 * cluster bridge, is one trace, and the spans a handler makes nest under the handler's span.
 *
 * `@opentelemetry/api` is an optional peer dependency: it is loaded only when installed, and
 * used only while the application has registered an SDK (a tracer provider). That is checked
 * when an ActorSystem is made (OpenTelemetry's SDKs are set up before the code they trace);
 * without one, {@link tracingOn} is false and the send and handle sites skip every hook here
 * with that one test. See docs/observability.md, "Traces".
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as Api from '@opentelemetry/api';
import { describeThrown } from '../errors.js';
import { EnvelopeKind, type DeliveryStatus, type Envelope } from './transport.js';

type OtelApi = typeof Api;

/** True while an OpenTelemetry SDK is registered (as found when the last ActorSystem was made): only then do the hooks run. */
export let tracingOn = false;

/** The API module; null when it is not installed (looked for once). */
let api: OtelApi | null | undefined;
let tracer: Api.Tracer | undefined;
/** The registered propagator reads and writes W3C `traceparent`; otherwise the trace field is coded here. */
let w3cPropagator = false;
/** The span of each message being handled: ended when its handler settles; sends made meanwhile outside its context fall back on it. */
const handling = new WeakMap<Envelope, Api.Span>();

/** Between traceparent and tracestate in `Envelope.trace`: a traceparent never holds a space. */
const STATE_SEPARATOR = ' ';
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

function loadApi(): OtelApi | null {
  if (api === undefined) {
    try {
      // Synchronous, so an ActorSystem's constructor can look; the API keeps its registrations
      // in one process-wide global, shared with the application's own import of it.
      // (a CommonJS bundle leaves `import.meta` empty: the package is then looked for from the working directory)
      const from = (import.meta.url as string | undefined) ?? pathToFileURL(join(process.cwd(), 'index.js')).href;
      api = createRequire(from)('@opentelemetry/api') as OtelApi;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
      api = null;
    }
  }
  return api;
}

/**
 * Looks whether an OpenTelemetry SDK is registered now and sets {@link tracingOn}: the API's
 * global tracer provider is a proxy that has a delegate only once an SDK registered one.
 */
export function refreshTracing(): void {
  const a = loadApi();
  tracer = undefined;
  if (a !== null) {
    // Duck-typed: the proxy may come from another copy of the API than the one loaded here.
    const provider = a.trace.getTracerProvider() as Api.TracerProvider & { getDelegateTracer?: (name: string) => Api.Tracer | undefined };
    tracer = typeof provider.getDelegateTracer === 'function' ? provider.getDelegateTracer('mpbus') : provider.getTracer('mpbus');
    w3cPropagator = a.propagation.fields().includes('traceparent');
  }
  tracingOn = tracer !== undefined;
}

/** The trace field for `ctx` (whose span is `span`). */
function inject(ctx: Api.Context, span: Api.Span): string | undefined {
  const a = api!;
  if (w3cPropagator) {
    const carrier: { traceparent?: string; tracestate?: string } = {};
    a.propagation.inject(ctx, carrier);
    if (carrier.traceparent !== undefined) return carrier.tracestate ? `${carrier.traceparent}${STATE_SEPARATOR}${carrier.tracestate}` : carrier.traceparent;
  }
  // No W3C propagator registered: the same format, written here.
  const sc = span.spanContext();
  if (!a.isSpanContextValid(sc)) return undefined;
  const parent = `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
  const state = sc.traceState?.serialize();
  return state ? `${parent}${STATE_SEPARATOR}${state}` : parent;
}

/** The context a received message's span starts under (the root one for no trace, or one that is not W3C). */
function extract(trace: string | undefined): Api.Context {
  const a = api!;
  if (trace === undefined) return a.ROOT_CONTEXT;
  const cut = trace.indexOf(STATE_SEPARATOR);
  const traceparent = cut < 0 ? trace : trace.slice(0, cut);
  const tracestate = cut < 0 ? undefined : trace.slice(cut + 1);
  if (w3cPropagator) return a.propagation.extract(a.ROOT_CONTEXT, tracestate === undefined ? { traceparent } : { traceparent, tracestate });
  const m = TRACEPARENT.exec(traceparent);
  if (m === null) return a.ROOT_CONTEXT;
  const sc: Api.SpanContext = { traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16), isRemote: true };
  if (tracestate !== undefined) sc.traceState = a.createTraceState(tracestate);
  return a.isSpanContextValid(sc) ? a.trace.setSpanContext(a.ROOT_CONTEXT, sc) : a.ROOT_CONTEXT;
}

function attributes(operation: string, type: string, destination: string, envelope: Envelope): Api.Attributes {
  const attrs: Api.Attributes = {
    'messaging.system': 'mpbus',
    'messaging.operation.type': type,
    'messaging.operation.name': operation,
    'messaging.destination.name': destination,
    'mpbus.action': envelope.action,
  };
  if (envelope.sender !== undefined) attrs['mpbus.sender'] = envelope.sender;
  return attrs;
}

/** Marks `span` failed with `err` (an MpBusError's code is its `error.type`). */
function recordFailure(span: Api.Span, err: unknown): void {
  const e = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown; name?: unknown; message?: unknown };
  span.recordException(err instanceof Error ? err : describeThrown(err));
  span.setAttribute('error.type', typeof e.code === 'string' ? e.code : typeof e.name === 'string' ? e.name : 'Error');
  span.setStatus({ code: api!.SpanStatusCode.ERROR, message: describeThrown(err) });
}

/**
 * Send site: starts the span of an ask (CLIENT) or tell (PRODUCER) to `to` and puts its context
 * into `envelope.trace`. Its parent is the active context; when that has no span (no context
 * manager, or a callback that lost it), the span of `handled`, the message the sending actor is
 * handling.
 */
export function traceSend(to: string, envelope: Envelope, handled: Envelope | undefined): Api.Span {
  const a = api!;
  let parent = a.context.active();
  if (handled !== undefined && a.trace.getSpan(parent) === undefined) {
    const span = handling.get(handled);
    if (span !== undefined) parent = a.trace.setSpan(parent, span);
  }
  const ask = envelope.kind === EnvelopeKind.ask;
  const operation = ask ? 'ask' : 'tell';
  const span = tracer!.startSpan(
    `${operation} ${to}`,
    { kind: ask ? a.SpanKind.CLIENT : a.SpanKind.PRODUCER, attributes: attributes(operation, 'send', to, envelope) },
    parent,
  );
  envelope.trace = inject(a.trace.setSpan(parent, span), span);
  return span;
}

/** A tell's span ends once it is handed to the transport (a name no one holds is its error). */
export function traceSent(span: Api.Span, status: DeliveryStatus): void {
  if (status === 'unknown') recordFailure(span, { code: 'ACTOR_NOT_FOUND', message: 'no actor holds the name' });
  span.end();
}

/** An ask's span ends when its answer (or error) comes. */
export function traceAsked<T>(span: Api.Span, asked: Promise<T>): Promise<T> {
  return asked.then(
    (value) => {
      span.end();
      return value;
    },
    (err: unknown) => {
      recordFailure(span, err);
      span.end();
      throw err;
    },
  );
}

/**
 * Router: a span (PRODUCER) for giving `envelope` to `worker` (undefined: the router has none,
 * the span's error). Returns what to forward: a copy of the envelope carrying the span's
 * context, so the worker's span is its child.
 */
export function traceRoute(router: string, worker: string | undefined, envelope: Envelope, attempt: number): Envelope {
  const a = api!;
  const parent = extract(envelope.trace);
  const attrs = attributes('route', 'send', router, envelope);
  if (worker !== undefined) attrs['mpbus.router.worker'] = worker;
  if (attempt > 0) attrs['mpbus.router.attempt'] = attempt;
  const span = tracer!.startSpan(`route ${router}`, { kind: a.SpanKind.PRODUCER, attributes: attrs }, parent);
  if (worker === undefined) {
    recordFailure(span, { code: 'NO_WORKERS', message: `router '${router}' has no workers` });
    span.end();
    return envelope;
  }
  const trace = inject(a.trace.setSpan(parent, span), span);
  span.end();
  return { ...envelope, trace };
}

/**
 * Handle site: runs `handler` inside a span (an ask's SERVER, a tell's CONSUMER) that is the
 * child of the sender's, as the active context, so the handler's own spans and sends nest
 * under it. The span ends with {@link traceHandled} or {@link traceHandlerFailed}.
 */
export function traceHandle<M, C>(actor: string, envelope: Envelope, handler: (msg: M, ctx: C) => unknown, ctx: C): unknown {
  const a = api!;
  const parent = extract(envelope.trace);
  const kind = envelope.kind === EnvelopeKind.ask ? a.SpanKind.SERVER : a.SpanKind.CONSUMER;
  const span = tracer!.startSpan(`process ${actor}`, { kind, attributes: attributes('process', 'process', actor, envelope) }, parent);
  handling.set(envelope, span);
  return a.context.with(a.trace.setSpan(parent, span), handler, undefined, envelope.payload as M, ctx);
}

/** The handler of `envelope` succeeded. */
export function traceHandled(envelope: Envelope): void {
  const span = handling.get(envelope);
  if (span === undefined) return;
  handling.delete(envelope);
  span.end();
}

/** The handler of `envelope` failed (or was abandoned) with `err`. */
export function traceHandlerFailed(envelope: Envelope, err: unknown): void {
  const span = handling.get(envelope);
  if (span === undefined) return;
  handling.delete(envelope);
  recordFailure(span, err);
  span.end();
}
