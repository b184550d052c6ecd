/**
 * What the tracing hooks cost (docs/benchmarks.md, "Tracing hooks"): `n` tells, then `n / 10`
 * sequential asks, to one actor in this process (each message passes a send site and a handle
 * site), timed. Without `--sdk` no OpenTelemetry SDK is registered (the hooks are skipped);
 * with it, one exporting to memory through a batch processor is, and every message makes its
 * spans (all sampled).
 *
 *   node dist/bench/tracing-overhead.js [n] [--sdk] [--lib <another build's dist/src/index.js>]
 *
 * For instruction counts, under callgrind (the difference between n and 0 is the messages'):
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null node --single-threaded --predictable dist/bench/tracing-overhead.js 100000
 */
import { pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const n = Number(args.find((a) => /^\d+$/.test(a)) ?? 100_000);
const sdk = args.includes('--sdk');
const libAt = args.indexOf('--lib');
const lib = libAt >= 0 ? pathToFileURL(args[libAt + 1]!).href : '../src/index.js';

if (sdk) {
  const { trace, propagation, context } = await import('@opentelemetry/api');
  const { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter } = await import('@opentelemetry/sdk-trace-base');
  const { W3CTraceContextPropagator } = await import('@opentelemetry/core');
  const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
  const exporter = new InMemorySpanExporter();
  // the exporter is emptied as it goes, so memory stays flat
  setInterval(() => exporter.reset(), 100).unref();
  // the batch processor, as in production (the simple one exports each span as it ends)
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter, { maxQueueSize: 1 << 20 })] }));
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
}

const { ActorSystem, InProcessHub } = (await import(lib)) as typeof import('../src/index.js');
const system = new ActorSystem({ transport: new InProcessHub().connect() });
let count = 0;
const ref = await system.spawn('bench', { count: () => ++count, echo: (m: string) => m, total: () => count });
// warm-up: the hot paths compiled before the measured part
for (let i = 0; i < 2000; i++) ref.tell('count');
await ref.ask('total', undefined, { timeoutMs: 600_000 });
let t0 = performance.now();
for (let i = 0; i < n; i++) ref.tell('count');
await ref.ask('total', undefined, { timeoutMs: 600_000 });
const tellUs = ((performance.now() - t0) * 1000) / Math.max(1, n);
t0 = performance.now();
const asks = Math.floor(n / 10);
for (let i = 0; i < asks; i++) await ref.ask('echo', 'x');
const askUs = ((performance.now() - t0) * 1000) / Math.max(1, asks);
await system.close();
console.log(JSON.stringify({ n, sdk, tellUs: Number(tellUs.toFixed(3)), askUs: Number(askUs.toFixed(3)) }));
