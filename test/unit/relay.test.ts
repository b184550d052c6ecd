/**
 * The interrupt relay's ordering logic (src/interrupts/relay.ts, control.ts, relay-client.ts), with the rte_mp bus replaced by
 * an in-process link that can lose broadcasts: the primary's side (serveRelay: batches, history,
 * beacons, replays) talks to a secondary's side (RelayClient: seq order, gap detection, replay,
 * losses) as it does over DPDK. The same paths run for real in test/interrupts-relay.test.ts.
 */
import { pino } from 'pino';
import { Subject, type Observable } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { MpBus, MpMessage, MpMessageOptions } from '../../src/bus/index.js';
import { MpBusError } from '../../src/errors.js';
import type { PrimarySources } from '../../src/interrupts/primary.js';
import { BEACON_INTERVAL_MS, CONTROL_NAME, EVENT_NAME, HISTORY_LIMIT, type ControlRequest } from '../../src/interrupts/relay-protocol.js';
import { serveRelay, type RelayServer } from '../../src/interrupts/control.js';
import { RelayClient } from '../../src/interrupts/relay-client.js';
import { Interrupts } from '../../src/interrupts/interrupts.js';
import type { EventLoss, InterruptEvent } from '../../src/interrupts/types.js';
import { until } from '../harness/wait.js';

const silent = pino({ level: 'silent' });
const PRIMARY_PID = 100;
const SECONDARY_PID = 200;

/**
 * The bus between one primary and one secondary: a broadcast reaches the secondary (after a
 * microtask, like a datagram) unless the link is down, and `onSent` tells the primary whether it
 * did, as the bus's sender thread does; the secondary's control requests reach the relay server.
 */
class Link {
  up = true;
  readonly events = new Subject<MpMessage<unknown>>();
  readonly errors = new Subject<MpBusError>();
  readonly requests: ControlRequest[] = [];
  server: RelayServer | undefined;

  /** The primary's bus: broadcasts only. */
  readonly primaryBus = {
    broadcast: (name: string, value: unknown, options: MpMessageOptions = {}): void => {
      expect(name).toBe(EVENT_NAME);
      // The bus encodes what it sends: the secondary gets a copy, never the primary's objects.
      const copy = structuredClone(value);
      const delivered = this.up;
      queueMicrotask(() => {
        if (delivered) this.events.next({ name, value: copy, raw: false, pid: PRIMARY_PID, role: 'primary', fds: [] });
        options.onSent?.(delivered ? undefined : new MpBusError('SEND_FAILED', 'a secondary did not read'));
      });
    },
  } as unknown as MpBus;

  /** The secondary's bus: the event stream, errors, and requests to the primary. */
  readonly secondaryBus = {
    messages$: (name: string): Observable<MpMessage<unknown>> => {
      expect(name).toBe(EVENT_NAME);
      return this.events.asObservable();
    },
    errors$: this.errors.asObservable(),
    requestAll: async (name: string, request: ControlRequest): Promise<unknown[]> => {
      expect(name).toBe(CONTROL_NAME);
      this.requests.push(request);
      try {
        return [{ ok: true, value: structuredClone(await this.server!.handle(request, SECONDARY_PID)) }];
      } catch (err) {
        return [{ ok: false, code: (err as MpBusError).code, message: (err as Error).message }];
      }
    },
  } as unknown as MpBus;

  replays(): number[] {
    return this.requests.flatMap((r) => (r.op === 'replay' ? [r.from] : []));
  }
}

interface Setup {
  link: Link;
  emit(count: number): void;
  server: RelayServer;
  client: RelayClient;
  seen: number[];
  losses: EventLoss[];
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function setup(): Setup {
  const link = new Link();
  const events$ = new Subject<InterruptEvent>();
  let seq = 0;
  const emit = (count: number): void => {
    for (let i = 0; i < count; i++) {
      seq += 1;
      events$.next({ type: 'alarm', seq, timestamp: Date.now(), source: { alarm: 'tick' }, details: { periodic: true, delayMs: 1 } });
    }
  };
  const server = serveRelay({ events$ } as unknown as PrimarySources, link.primaryBus, silent);
  link.server = server;
  const client = new RelayClient(link.secondaryBus, silent);
  const seen: number[] = [];
  const losses: EventLoss[] = [];
  client.events$.subscribe((e) => seen.push(e.seq));
  client.losses$.subscribe((l) => losses.push(l));
  cleanups.push(() => {
    client.close();
    server.stop();
  });
  return { link, emit, server, client, seen, losses };
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('interrupt relay', () => {
  it('delivers events in order, one broadcast in flight and the rest batched into the next', async () => {
    const { emit, server, seen, link } = setup();
    emit(1);
    emit(9); // while the first broadcast is in flight
    await until('10 events', () => seen.length === 10);
    expect(seen).toEqual(range(1, 10));
    expect(server.stats()).toMatchObject({ batches: 2, events: 10, largestBatch: 9, failed: 0, replays: 0 });
    expect(link.requests).toEqual([]);
  });

  it('a secondary that joins late starts from the events after it joined, without asking for history', async () => {
    const { emit, link, seen } = setup();
    emit(1);
    await until('1', () => seen.length === 1);
    link.up = false;
    emit(3); // 2..4: missed by the first client, before the late one existed
    await settle();
    link.up = true;
    const late = new RelayClient(link.secondaryBus, silent);
    cleanups.push(() => late.close());
    const lateSeen: number[] = [];
    late.events$.subscribe((e) => lateSeen.push(e.seq));
    emit(1);
    await until('the late client sees 5', () => lateSeen.length === 1);
    await until('the first client catches up', () => seen.length === 5);
    expect(lateSeen).toEqual([5]);
    expect(seen).toEqual(range(1, 5));
    expect(link.replays()).toEqual([2]); // the first client's only
  });

  it('sees a gap in the seqs, asks for a replay, and delivers the missed events before the newer ones', async () => {
    const { emit, link, seen, server } = setup();
    emit(2);
    await until('1..2', () => seen.length === 2);
    link.up = false;
    emit(3); // 3..5 lost on the way
    await settle();
    link.up = true;
    emit(2); // 6..7 arrive: 3..5 are missing
    await until('1..7', () => seen.length === 7);
    expect(seen).toEqual(range(1, 7));
    expect(link.replays()).toEqual([3]);
    // 3 went alone, 4..5 in the batch after it: both broadcasts missed the secondary.
    expect(server.stats()).toMatchObject({ failed: 2, replays: 1, lossesReported: 0 });
  });

  it('beacons its latest seq after a lost broadcast, so a secondary that missed the last events asks for them', async () => {
    const { emit, link, seen, server } = setup();
    emit(1);
    await until('1', () => seen.length === 1);
    link.up = false;
    emit(2); // 2..3 lost, and nothing comes after them
    await settle();
    link.up = true;
    await until('the beacon brings 2..3', () => seen.length === 3, 10 * BEACON_INTERVAL_MS);
    expect(seen).toEqual([1, 2, 3]);
    expect(server.stats().beacons).toBeGreaterThanOrEqual(1);
    expect(link.replays()).toEqual([2]);
  });

  it('reports what the history no longer has as a loss, then delivers the rest in order', async () => {
    const { emit, link, seen, losses } = setup();
    emit(1);
    await until('1', () => seen.length === 1);
    link.up = false;
    emit(HISTORY_LIMIT + 10); // 2..4107: the primary keeps the last 4096
    await settle();
    link.up = true;
    emit(1); // 4108
    const latest = HISTORY_LIMIT + 12;
    await until('the last event', () => seen.at(-1) === latest);
    expect(losses).toEqual([{ from: 2, to: latest - HISTORY_LIMIT, reason: expect.stringContaining(`keeps only the last ${HISTORY_LIMIT}`) }]);
    expect(seen).toEqual([1, ...range(latest - HISTORY_LIMIT + 1, latest)]);
  });

  it('asks for a replay when a batch expired in shared memory before it was read (PAYLOAD_GONE)', async () => {
    const { emit, link, seen } = setup();
    emit(1);
    await until('1', () => seen.length === 1);
    link.up = false;
    emit(2); // the batch "expired": the bus reports PAYLOAD_GONE instead of delivering it
    await settle();
    link.up = true;
    link.errors.next(new MpBusError('PAYLOAD_GONE', 'expired'));
    await until('2..3', () => seen.length === 3);
    expect(seen).toEqual([1, 2, 3]);
    expect(link.replays()).toEqual([2]);
  });

  it('ignores duplicates and events that are not events', async () => {
    const { emit, link, seen } = setup();
    emit(2);
    await until('1..2', () => seen.length === 2);
    const again = { events: [{ type: 'alarm', seq: 2, timestamp: 0, source: { alarm: 'tick' }, details: {} }] };
    link.events.next({ name: EVENT_NAME, value: again, raw: false, pid: PRIMARY_PID, role: 'primary', fds: [] });
    link.events.next({ name: EVENT_NAME, value: { events: [{ type: 'bogus', seq: 3 }] }, raw: false, pid: PRIMARY_PID, role: 'primary', fds: [] });
    link.events.next({
      name: EVENT_NAME,
      value: { events: [{ type: 'alarm', seq: 3, timestamp: 0, source: {}, details: {} }] },
      raw: false,
      pid: 300,
      role: 'secondary',
      fds: [],
    });
    await settle();
    expect(seen).toEqual([1, 2]);
    emit(1);
    await until('3', () => seen.length === 3);
    expect(seen).toEqual([1, 2, 3]);
    expect(link.replays()).toEqual([]);
  });

  it('answers a replay from any seq with what the history has, and refuses a seq that is not one', async () => {
    const { emit, server } = setup();
    emit(5);
    await settle();
    const reply = (await server.handle({ op: 'replay', from: 3 }, SECONDARY_PID)) as { events: InterruptEvent[]; lost?: unknown };
    expect(reply.events.map((e) => e.seq)).toEqual([3, 4, 5]);
    expect(reply.lost).toBeUndefined();
    const beyond = (await server.handle({ op: 'replay', from: 6 }, SECONDARY_PID)) as { events: InterruptEvent[] };
    expect(beyond.events).toEqual([]);
    for (const from of [0, -1, 1.5, Number.NaN]) {
      await expect(server.handle({ op: 'replay', from }, SECONDARY_PID)).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    }
  });
  it('a primary that no longer handles the relay (it has begun to close) fails a call with PRIMARY_LOST, a closing code (it was ENOTREADY)', async () => {
    const { link, client } = setup();
    // what the bus rejects with when the primary unregistered the relay's action
    link.secondaryBus.requestAll = async () => {
      throw new MpBusError('NO_HANDLER', `pid ${PRIMARY_PID} (primary) has no handler for '${CONTROL_NAME}'`);
    };
    await expect(client.linkSnapshot(0)).rejects.toMatchObject({ code: 'PRIMARY_LOST', cause: { code: 'NO_HANDLER' } });
  });

  it("a stream subscribed just as the primary begins to close does not fail: it ends with this process's runtime (a subscriber without an error callback printed the failure's stack)", async () => {
    const { link, client } = setup();
    link.secondaryBus.requestAll = async () => {
      throw new MpBusError('NO_HANDLER', `pid ${PRIMARY_PID} (primary) has no handler for '${CONTROL_NAME}'`);
    };
    const intr = new Interrupts(client, undefined);
    const outcomes: string[] = [];
    for (const stream of [intr.linkState$(0), intr.link$(0), intr.ports$()] as Observable<unknown>[]) {
      stream.subscribe({ next: () => outcomes.push('next'), error: (e: MpBusError) => outcomes.push(e.code), complete: () => outcomes.push('complete') });
    }
    await settle();
    await settle();
    expect(outcomes).toEqual([]);
    client.close(); // what the runtime's close does to the relay
    await until('completed', () => outcomes.length === 3);
    expect(outcomes).toEqual(['complete', 'complete', 'complete']);
  });
});
