/**
 * The codec's own ceiling: msgpackr pack-only and unpack-only rates of the benchmark values in
 * one thread. Run directly (`node codec.js <payloadBytes> <seconds>`) it prints the result as
 * JSON, so the suite can measure it again in a process started with
 * MSGPACKR_NATIVE_ACCELERATION_DISABLED=true.
 */
import { isNativeAccelerationEnabled, Unpackr } from 'msgpackr';
import { fileURLToPath } from 'node:url';
import { benchPackr, benchValue } from '../values.js';

export interface CodecRates {
  packPerSec: number;
  unpackPerSec: number;
  nativeAcceleration: boolean;
}

/** Calls fn in a loop for about `ms` milliseconds; returns calls per second. */
function rate(fn: () => unknown, ms: number): number {
  const check = 1000;
  let calls = 0;
  const t0 = performance.now();
  let elapsed = 0;
  do {
    for (let i = 0; i < check; i++) fn();
    calls += check;
    elapsed = performance.now() - t0;
  } while (elapsed < ms);
  return calls / (elapsed / 1000);
}

export function measureCodec(payloadBytes: number, seconds: number): CodecRates {
  const packr = benchPackr();
  const unpackr = new Unpackr({ useRecords: false });
  const value = benchValue(payloadBytes);
  const encoded = Buffer.from(packr.pack(value));
  // warm up both paths so the JIT has compiled them before timing
  rate(() => unpackr.unpack(packr.pack(value)), 50);
  let sink: unknown;
  const packPerSec = rate(() => (sink = packr.pack(value)), (seconds * 1000) / 2);
  const unpackPerSec = rate(() => (sink = unpackr.unpack(encoded)), (seconds * 1000) / 2);
  void sink;
  return { packPerSec, unpackPerSec, nativeAcceleration: isNativeAccelerationEnabled };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(JSON.stringify(measureCodec(Number(process.argv[2]), Number(process.argv[3]))));
}
