/**
 * A Node process of the rte-mp bench (forked by bench/suites/rte-mp.ts):
 *   mp-peer primary <prefix>                 answers 'bench-echo' with the value it got
 *   mp-peer secondary <prefix> <n> <bytes>   after a warm-up of both, n sequential requests
 *                                            encoded then raw; sends { encodedNs, rawNs } to the parent
 * MPBUS_BENCH_SPIN_US sets the bus's spinMaxUs (0: no pre-poll spin) in both processes.
 */
import { MpBus, Runtime } from '../../src/index.js';

const [role, filePrefix, nArg, bytesArg] = process.argv.slice(2) as [string, string, string?, string?];
const rt = await Runtime.start({ filePrefix, procType: role === 'primary' ? 'primary' : 'secondary' });
const spinMaxUs = process.env.MPBUS_BENCH_SPIN_US === undefined ? undefined : Number(process.env.MPBUS_BENCH_SPIN_US);
const bus = MpBus.open({ spinMaxUs });

async function measure(n: number, send: () => Promise<unknown>): Promise<number[]> {
  const warm = Math.ceil(n / 10);
  const rtts: number[] = [];
  for (let i = 0; i < warm + n; i++) {
    const t0 = process.hrtime.bigint();
    await send();
    if (i >= warm) rtts.push(Number(process.hrtime.bigint() - t0));
  }
  return rtts;
}

if (role === 'primary') {
  bus.handle('bench-echo', (value) => value);
  process.send?.({ ready: true });
  const keepAlive = setInterval(() => undefined, 1 << 30); // the bus itself never holds the process open
  const leave = (): void => {
    clearInterval(keepAlive);
    void rt.close().then(() => process.exit(0));
  };
  process.on('disconnect', leave);
  process.on('SIGTERM', leave);
} else {
  const n = Number(nArg);
  const value = Buffer.alloc(Number(bytesArg), 1);
  const encoded = (): Promise<unknown> => bus.request('bench-echo', value, { timeoutMs: 5000 });
  const raw = (): Promise<unknown> => bus.request('bench-echo', value, { timeoutMs: 5000, raw: true });
  // Both paths JIT-compiled before either is measured (the first measured ran ~2x slower otherwise).
  await measure(Math.min(n, 1000), encoded);
  await measure(Math.min(n, 1000), raw);
  const encodedNs = await measure(n, encoded);
  const rawNs = await measure(n, raw);
  await rt.close();
  process.send?.({ encodedNs, rawNs }, () => process.exit(0));
}
