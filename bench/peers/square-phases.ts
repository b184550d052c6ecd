/**
 * The measurements of the peers suite, run in the caller process against any SquareClient:
 * sequential asks (p50/p99), asks with a fixed number in flight (throughput, p50/p99) and
 * one-way tells (throughput, counted by asking the workers' totals). Every wait has a deadline.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Samples } from '../lib.js';
import { square, squareValue, type SquareClient, type SquareValue } from './square.js';

/** What one measurement found. */
export interface PhaseResult {
  /** Asks (or tells) per second. */
  perSec: number;
  count: number;
  p50Us?: number;
  p99Us?: number;
  /** Windowed asks: the caller's peak resident memory during the measurement (sampled every 50 ms). */
  peakRssMb?: number;
  /** Tells: how many each worker handled (shows how they were spread). */
  perWorker?: number[];
}

/** 64 different values (n = 1000..1063, all 64 bytes encoded) and their squares. */
const VALUES: SquareValue[] = Array.from({ length: 64 }, (_, i) => squareValue(1000 + i));
const SQUARES = VALUES.map(square);

/** A phase that has not finished by then failed: the run reports it rather than hanging. */
function deadline<T>(what: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

function wrong(i: number, r: number): Error {
  return new Error(`ask ${i}: got ${r}, expected ${SQUARES[i & 63]}`);
}

/** Asks one at a time for `seconds` (at most `maxAsks`), alternating workers; the first 10% warm up. */
export function sequential(client: SquareClient, seconds: number, maxAsks: number): Promise<PhaseResult> {
  const run = async (): Promise<PhaseResult> => {
    const warmup = Math.ceil(maxAsks / 10);
    const rtts = new Samples();
    const end = performance.now() + seconds * 1000;
    let t0 = 0;
    let i = 0;
    for (; i < warmup + maxAsks; i++) {
      if (i === warmup) t0 = performance.now();
      const start = process.hrtime.bigint();
      const r = await client.ask(i, VALUES[i & 63]!);
      const us = Number(process.hrtime.bigint() - start) / 1000;
      if (r !== SQUARES[i & 63]) throw wrong(i, r);
      if (i >= warmup) rtts.add(us);
      if (i >= warmup + 100 && performance.now() > end) break;
    }
    const elapsed = (performance.now() - t0) / 1000;
    return { perSec: rtts.length / elapsed, count: rtts.length, p50Us: rtts.percentile(50), p99Us: rtts.percentile(99) };
  };
  return deadline('sequential asks', seconds * 1000 + 60_000, run());
}

/**
 * Keeps `window` asks in flight for `seconds` (each answer starts the next ask), then waits for
 * the last ones; throughput counts every answer over the whole time, drain included.
 */
export function windowed(client: SquareClient, window: number, seconds: number): Promise<PhaseResult> {
  const run = new Promise<PhaseResult>((resolve, reject) => {
    const rtts = new Samples();
    let started = 0;
    let inFlight = 0;
    let failed = false;
    let peakRss = process.memoryUsage.rss();
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 50);
    const done = (r: PhaseResult): void => {
      clearInterval(sampler);
      resolve({ ...r, peakRssMb: Math.round(Math.max(peakRss, process.memoryUsage.rss()) / 2 ** 20) });
    };
    const fail = (err: Error): void => {
      clearInterval(sampler);
      reject(err);
    };
    const t0 = performance.now();
    const stopAt = t0 + seconds * 1000;
    const launch = (): void => {
      const i = started++;
      inFlight++;
      const sentAt = performance.now();
      client.ask(i, VALUES[i & 63]!).then(
        (r) => {
          const now = performance.now();
          inFlight--;
          if (failed) return; // the phase already failed: start nothing more
          if (r !== SQUARES[i & 63]) {
            failed = true;
            fail(wrong(i, r));
            return;
          }
          rtts.add((now - sentAt) * 1000);
          if (now < stopAt) launch();
          else if (inFlight === 0)
            done({ perSec: rtts.length / ((now - t0) / 1000), count: rtts.length, p50Us: rtts.percentile(50), p99Us: rtts.percentile(99) });
        },
        (err: unknown) => {
          inFlight--;
          if (!failed) {
            failed = true;
            fail(err as Error);
          }
        },
      );
    };
    for (let k = 0; k < window; k++) launch();
  });
  return deadline(`${window} asks in flight`, seconds * 1000 + 90_000, run);
}

/** Tells sent per turn of the event loop. */
const TELL_BATCH = 1024;
/** Batches whose handling is unconfirmed before the sender waits (bounds what is queued anywhere). */
const TELL_BATCHES_AHEAD = 8;

/**
 * Sends `count` tells for `seconds`, alternating workers, in batches of TELL_BATCH; after each
 * batch it asks both workers' totals (not awaited: an ask behind the tells that confirms them),
 * and waits for the oldest such confirmation when TELL_BATCHES_AHEAD are open, so no
 * implementation queues without limit. The time runs until the workers' totals reach every
 * tell (asked again until they do).
 */
export function tells(client: SquareClient, seconds: number): Promise<PhaseResult> {
  const run = async (): Promise<PhaseResult> => {
    const each = (): Promise<number[]> => Promise.all([client.total(0), client.total(1)]);
    const totals = async (): Promise<number> => (await each()).reduce((a, b) => a + b, 0);
    const start = await each();
    const before = start[0]! + start[1]!;
    const confirmations: Array<Promise<number>> = [];
    let sent = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < seconds * 1000) {
      for (let k = 0; k < TELL_BATCH; k++, sent++) client.tell(sent, VALUES[sent & 63]!);
      confirmations.push(totals());
      if (confirmations.length >= TELL_BATCHES_AHEAD) await confirmations.shift();
      else await nextTurn();
    }
    await Promise.all(confirmations);
    let counted = (await totals()) - before;
    while (counted < sent) {
      await nextTurn();
      counted = (await totals()) - before;
    }
    if (counted !== sent) throw new Error(`tells: the workers counted ${counted} of ${sent}`);
    const perSec = sent / ((performance.now() - t0) / 1000);
    const end = await each();
    return { perSec, count: sent, perWorker: end.map((n, i) => n - start[i]!) };
  };
  return deadline('tells', seconds * 1000 + 60_000, run());
}
