/**
 * What an `asks` row counts (no DPDK: rows are plain arrays here): sampled asks count for the
 * asks they stand for, so a warm-up's slow first asks do not become the p99; a timeout is an
 * ask that failed; and an exporter's ask totals do not drop when an asker leaves.
 */
import { describe, expect, it } from 'vitest';
import { recordAsk } from '../../src/runtime/counters.js';
import { BUCKETS, R, ROW_FIELDS, quantileMs } from '../../src/runtime/counters-layout.js';
import { DepartedAsks } from '../../src/obs/departed-asks.js';
import { actorViews, emptyAskTotals, remoteAskViews, type GroupCounters, type ProcessCounters, type RowCounters } from '../../src/obs/group-counters.js';

const histogramOf = (row: Float64Array): number[] => Array.from(row.subarray(R.histogram, R.histogram + BUCKETS));

describe('an asks row', () => {
  it('weighs each sampled ask by the asks it stands for: 256 slow asks then 60,000 fast ones read a fast p99', () => {
    const row = new Float64Array(ROW_FIELDS);
    for (let i = 0; i < 256; i++) recordAsk(row, performance.now() - 5, false); // 5 ms each
    for (let i = 0; i < 60_000; i++) recordAsk(row, performance.now(), false);
    const histogram = histogramOf(row);
    expect(row[R.asks]).toBe(60_256);
    expect(Math.abs(histogram.reduce((a, b) => a + b, 0) - 60_256)).toBeLessThan(32);
    expect(quantileMs(histogram, 0.99)!).toBeLessThan(1);
    expect(quantileMs(histogram, 0.999)!).toBeGreaterThan(4);
  });
});

/** A live process whose rows are `rows`. */
function processWith(pid: number, rows: Array<Partial<RowCounters> & Pick<RowCounters, 'name' | 'kind'>>): ProcessCounters {
  const full = rows.map((r) => ({ received: 0, processed: 0, failed: 0, deadLettered: 0, restarts: 0, depth: 0, capacity: 0, ...emptyAskTotals(), ...r }));
  return {
    pid,
    role: 'secondary',
    lcore: pid,
    state: 'alive',
    command: 'node',
    startedAt: 0,
    uptimeMs: 0,
    sampledAt: 0,
    cpuUserUs: 0,
    cpuSystemUs: 0,
    rssBytes: 0,
    heapUsedBytes: 0,
    deadLetters: 0,
    rowsDropped: 0,
    rows: full,
  };
}

describe('DepartedAsks', () => {
  it('keeps what an asker that left (or whose row started over) had counted, while the actor is there', () => {
    const departed = new DepartedAsks();
    const actor = processWith(1, [{ name: 'svc', kind: 'actor' }]);
    const group = (...askers: ProcessCounters[]): GroupCounters => ({ prefix: 'p', readAt: 0, processes: [actor, ...askers] });
    const asks = (pid: number, n: number): ProcessCounters => processWith(pid, [{ name: 'svc', kind: 'asks', asks: n, askFailed: 1 }]);
    const total = (g: GroupCounters): number => actorViews(g, departed.update(g)).find((a) => a.name === 'svc')!.asks;
    expect(total(group(asks(2, 300), asks(3, 1000)))).toBe(1300);
    expect(total(group(asks(2, 310)))).toBe(1310); // pid 3 left
    expect(total(group(asks(2, 5)))).toBe(1315); // pid 2's row was freed and taken again
    expect(actorViews(group(asks(2, 5)), departed.update(group(asks(2, 5))))[0]!.askFailed).toBe(3);
    // the actor gone (its askers free their rows of it): its series ends, and what was kept for it is dropped
    const noActor: GroupCounters = { prefix: 'p', readAt: 0, processes: [processWith(2, [])] };
    expect(departed.update(noActor).size).toBe(0);
  });

  it('an actor started anew in another process (a restarted pool child) is a series of its own: it does not start with the asks of its predecessor', () => {
    const departed = new DepartedAsks();
    const actorIn = (pid: number): ProcessCounters => processWith(pid, [{ name: 'w-1', kind: 'actor' }]);
    const asker = (n: number | undefined): ProcessCounters => processWith(2, n === undefined ? [] : [{ name: 'w-1', kind: 'asks', asks: n, askFailed: 1 }]);
    const view = (g: GroupCounters): { pid: number; asks: number } => {
      const a = actorViews(g, departed.update(g)).find((x) => x.name === 'w-1')!;
      return { pid: a.pid, asks: a.asks };
    };
    const group = (...processes: ProcessCounters[]): GroupCounters => ({ prefix: 'p', readAt: 0, processes });
    expect(view(group(actorIn(10), asker(11)))).toEqual({ pid: 10, asks: 11 });
    // killed, and started again as pid 20: the asker freed its row of the name when it went
    expect(view(group(actorIn(20), asker(undefined)))).toEqual({ pid: 20, asks: 0 });
    expect(view(group(actorIn(20), asker(3)))).toEqual({ pid: 20, asks: 3 });
  });

  it('keeps them for an actor on another host while a process of the group still asks it', () => {
    const departed = new DepartedAsks();
    const asks = (pid: number, n: number): ProcessCounters => processWith(pid, [{ name: 'far', kind: 'asks', asks: n }]);
    const group = (...askers: ProcessCounters[]): GroupCounters => ({ prefix: 'p', readAt: 0, processes: askers });
    const total = (g: GroupCounters): number | undefined => remoteAskViews(g, departed.update(g)).find((a) => a.name === 'far')?.asks;
    expect(total(group(asks(2, 300), asks(3, 1000)))).toBe(1300);
    expect(total(group(asks(2, 310)))).toBe(1310); // pid 3 left
    // no process asks it any more: no longer shown, nothing kept
    expect(total(group(processWith(2, [])))).toBeUndefined();
    expect(departed.update(group(processWith(2, []))).size).toBe(0);
    // a name a local actor holds is not remote
    expect(remoteAskViews(group(asks(2, 1), processWith(4, [{ name: 'far', kind: 'actor' }])))).toEqual([]);
    // nor one with a mailbox in the group and no actor: a router of another process (its
    // process counts the asks it relays under the workers that answer them)
    expect(remoteAskViews(group(asks(2, 1), processWith(4, [{ name: 'far', kind: 'mailbox' }])))).toEqual([]);
    expect(actorViews(group(asks(2, 1), processWith(4, [{ name: 'far', kind: 'mailbox' }])))).toEqual([]);
  });
});
