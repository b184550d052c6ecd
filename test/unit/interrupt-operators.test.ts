/**
 * The interrupt operators (`ofType`, `ofPort`, `ofAlarm`, `ofFd`) on plain events: what they
 * keep, and the element type they give (checked by tsc: docs/interrupts.md's own example,
 * `ofType('new', 'destroy')`, once typed its events as `never`). No DPDK needed.
 */
import { from, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { ofAlarm, ofFd, ofPort, ofType, type InterruptEvent, type InterruptEventOf, type LinkEvent, type PortEvent } from '../../src/index.js';

const base = { timestamp: 0 };
const events: InterruptEvent[] = [
  { ...base, seq: 1, type: 'new', source: { portId: 0, device: 'net_null0' }, details: {} },
  {
    ...base,
    seq: 2,
    type: 'lsc',
    source: { portId: 0, device: 'net_null0' },
    details: { status: 'up', speedMbps: 10000, duplex: 'full', autoneg: true, via: 'port-control' },
  },
  { ...base, seq: 3, type: 'alarm', source: { alarm: 'tick' }, details: { periodic: true, delayMs: 10 } },
  { ...base, seq: 4, type: 'destroy', source: { portId: 1, device: 'net_null1' }, details: {} },
  { ...base, seq: 5, type: 'fd', source: { fd: 'wake' }, details: { value: 1 } },
  { ...base, seq: 6, type: 'removal', source: { portId: 1, device: 'net_null1' }, details: {} },
];

const seqs = (e: Array<{ seq: number }>): number[] => e.map((x) => x.seq);

describe('interrupt operators', () => {
  it('ofType keeps the types given, typed as those events with their type narrowed', async () => {
    const ports = await lastValueFrom(from(events).pipe(ofType('new', 'destroy'), toArray()));
    expect(seqs(ports)).toEqual([1, 4]);
    expectTypeOf(ports[0]!.type).toEqualTypeOf<'new' | 'destroy'>();
    expectTypeOf(ports[0]!.source.device).toEqualTypeOf<string>();
    expectTypeOf<InterruptEventOf<'new' | 'destroy'>>().toMatchTypeOf<PortEvent>();
    const mixed = await lastValueFrom(from(events).pipe(ofType('lsc', 'removal'), toArray()));
    expect(seqs(mixed)).toEqual([2, 6]);
    expectTypeOf(mixed[0]!.type).toEqualTypeOf<'lsc' | 'removal'>();
    const links = await lastValueFrom(from(events).pipe(ofType('lsc'), toArray()));
    expectTypeOf(links[0]!).toEqualTypeOf<LinkEvent & { type: 'lsc' }>();
    expect(links[0]!.details.status).toBe('up');
  });

  it('ofPort, ofAlarm and ofFd keep the events of one source', async () => {
    expect(seqs(await lastValueFrom(from(events).pipe(ofPort(1), toArray())))).toEqual([4, 6]);
    const ticks = await lastValueFrom(from(events).pipe(ofAlarm('tick'), toArray()));
    expect(seqs(ticks)).toEqual([3]);
    expectTypeOf(ticks[0]!.details.delayMs).toEqualTypeOf<number>();
    expect(seqs(await lastValueFrom(from(events).pipe(ofFd('wake'), toArray())))).toEqual([5]);
  });
});
