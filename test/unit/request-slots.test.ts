/**
 * The rte_mp bus's request lanes as bookkeeping: requests wait in order for a free slot, a slot
 * that timed out rests, a request that waited past its deadline never starts, and completions and
 * replies are matched to their request by correlation id (src/bus/request-slots.ts).
 */
import { describe, expect, it } from 'vitest';
import { MpEnvelopeKind, readEnvelope, writeEnvelope, type MpEnvelopeHead } from '../../src/bus/envelope.js';
import { CorrelationIds, answers, completes, startWaiting, type RequestSlot, type RequestSlotPool } from '../../src/bus/request-slots.js';

interface Req {
  id: number;
  deadlineMs: number;
}

function pool(lanes: number): RequestSlotPool<Req> {
  const p: RequestSlotPool<Req> = { slots: [], waiting: [] };
  for (let i = 0; i < lanes; i++) p.slots.push({ name: `mpbus:lane:${i}`, lane: true, pool: p, quarantinedUntil: 0 });
  return p;
}

/** Runs startWaiting and records what it started and expired. */
function run(p: RequestSlotPool<Req>, now: number) {
  const started: Array<[string, number]> = [];
  const expired: Array<[number, number]> = [];
  const wake = startWaiting(
    p,
    now,
    (slot, req) => {
      slot.busy = req;
      started.push([slot.name, req.id]);
    },
    (req, queued) => expired.push([req.id, queued]),
  );
  return { started, expired, wake };
}

const req = (id: number, deadlineMs = 1_000): Req => ({ id, deadlineMs });

describe('request slots', () => {
  it('start waiting requests oldest first, one per free slot; the rest wait for a slot to come free', () => {
    const p = pool(2);
    p.waiting.push(req(1), req(2), req(3));
    const first = run(p, 0);
    expect(first.started).toEqual([
      ['mpbus:lane:0', 1],
      ['mpbus:lane:1', 2],
    ]);
    expect(first.wake).toBe(1_000); // nothing rests: a completion starts the next, or it expires at its deadline
    expect(p.waiting.map((r) => r.id)).toEqual([3]);

    p.slots[1]!.busy = undefined;
    expect(run(p, 1).started).toEqual([['mpbus:lane:1', 3]]);
    expect(p.waiting).toEqual([]);
  });

  it('skip a slot resting after a timeout, and say when the first one stops resting', () => {
    const p = pool(3);
    p.slots[0]!.busy = req(9);
    p.slots[1]!.quarantinedUntil = 500;
    p.slots[2]!.quarantinedUntil = 300;
    p.waiting.push(req(1));
    const resting = run(p, 100);
    expect(resting.started).toEqual([]);
    expect(resting.wake).toBe(300);

    const later = run(p, 300);
    expect(later.started).toEqual([['mpbus:lane:2', 1]]);
  });

  it('never start a request that waited past its deadline: it expires, counted with those behind it', () => {
    const p = pool(1);
    p.waiting.push(req(1, 50), req(2, 50), req(3, 500));
    const { started, expired } = run(p, 50);
    expect(expired).toEqual([
      [1, 3],
      [2, 2],
    ]);
    expect(started).toEqual([['mpbus:lane:0', 3]]);
  });

  it('expire a request at its own deadline while no slot is free (busy, or resting after a timeout), and wake for the first deadline', () => {
    const p = pool(1);
    p.slots[0]!.busy = req(9, 10_000); // a request to a peer that stopped answering
    p.waiting.push(req(1, 300), req(2, 200), req(3, 900));
    const before = run(p, 100);
    expect(before).toEqual({ started: [], expired: [], wake: 200 });
    const at = run(p, 300);
    expect(at.expired).toEqual([
      [1, 3],
      [2, 2],
    ]);
    expect(at.wake).toBe(900);
    expect(p.waiting.map((r) => r.id)).toEqual([3]);

    p.slots[0]!.busy = undefined;
    p.slots[0]!.quarantinedUntil = 1_300; // it timed out: it rests past the last deadline
    const resting = run(p, 400);
    expect(resting).toEqual({ started: [], expired: [], wake: 900 });
    expect(run(p, 900).expired).toEqual([[3, 1]]);
    expect(p.waiting).toEqual([]);
  });

  it('match a lane completion to its request by the correlation id in the request param', () => {
    const p = pool(1);
    const slot = p.slots[0]!;
    const head: MpEnvelopeHead = { kind: MpEnvelopeKind.request, role: 'secondary', pid: 42, correlationId: 7, deadlineMs: 1 };
    const param = writeEnvelope({ ...head, target: Buffer.from('add') }, Buffer.from([0xc0]));
    expect(completes(slot, req(7), param)).toBe(true);
    expect(completes(slot, req(8), param)).toBe(false); // the late completion of a request that timed out
    expect(completes(slot, req(7), Buffer.from('raw bytes'))).toBe(false);

    // A raw name carries requests without an envelope: its one request is the one DPDK completes.
    const raw: RequestSlot<Req> = { name: 'c_peer_action', lane: false, pool: p, quarantinedUntil: 0 };
    expect(completes(raw, req(7), Buffer.from('raw bytes'))).toBe(true);
  });

  it('take a reply as the answer to a request only when its correlation id matches and it is a reply', () => {
    const reply = (kind: MpEnvelopeKind, correlationId: number) =>
      readEnvelope(writeEnvelope({ kind, role: 'primary', pid: 1, correlationId, deadlineMs: 0 }, Buffer.from([0xc0])));
    expect(answers(reply(MpEnvelopeKind.reply, 5), 5)).toBe(true);
    expect(answers(reply(MpEnvelopeKind.errorReply, 5), 5)).toBe(true);
    expect(answers(reply(MpEnvelopeKind.noHandler, 5), 5)).toBe(true);
    expect(answers(reply(MpEnvelopeKind.reply, 4), 5)).toBe(false);
    expect(answers(reply(MpEnvelopeKind.request, 5), 5)).toBe(false);
    expect(answers(reply(MpEnvelopeKind.message, 5), 5)).toBe(false);
  });

  it('hand out correlation ids from 1, wrapping past 2^32-1 to 1 (0 means "no request")', () => {
    const ids = new CorrelationIds();
    expect([ids.take(), ids.take(), ids.take()]).toEqual([1, 2, 3]);
    // Four billion requests later:
    (ids as unknown as { next: number }).next = 0xfffffffe;
    expect([ids.take(), ids.take(), ids.take()]).toEqual([0xfffffffe, 0xffffffff, 1]);
  });
});
