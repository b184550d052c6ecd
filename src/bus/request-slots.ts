/**
 * Which rte_mp request name carries which request, and when: the bookkeeping of the bus's
 * request lanes, without DPDK, timers or clock (the caller passes `now`).
 *
 * DPDK keeps one pending request per (peer, name) and refuses a second with EEXIST, so each
 * name is a "slot" that carries one request at a time: the bus's lanes (`mpbus:lane:N`) for
 * mpbus requests, and one slot per name for raw requests to C peers. Requests wait in FIFO
 * order for a free slot; a slot whose request timed out rests until `quarantinedUntil`, so the
 * late reply DPDK may still deliver on it finds no request; and lane requests carry a
 * correlation id, so a completion or a reply is only ever taken as its own request's.
 */
import { MpEnvelopeKind, correlationIdOf, type MpEnvelope } from './envelope.js';

/** What the slots need to know of a request. */
export interface SlotRequest {
  /** Its correlation id (see {@link CorrelationIds}). */
  readonly id: number;
  /** CLOCK_MONOTONIC ms after which nobody waits for it. */
  readonly deadlineMs: number;
}

/** A DPDK request name that can carry one request at a time (DPDK's (peer, name) rule). */
export interface RequestSlot<R extends SlotRequest> {
  readonly name: string;
  /** One of the bus's lanes (requests carry an envelope with their correlation id), or a raw name. */
  readonly lane: boolean;
  readonly pool: RequestSlotPool<R>;
  /** The request it carries now. */
  busy?: R;
  /** Resting after a timeout until then (CLOCK_MONOTONIC ms). */
  quarantinedUntil: number;
}

/** Slots that serve one queue of waiting requests (the lanes, or one raw name). */
export interface RequestSlotPool<R extends SlotRequest> {
  slots: RequestSlot<R>[];
  waiting: R[];
  /** The owner's timer for the next slot that stops resting. */
  wakeTimer?: NodeJS.Timeout;
}

/**
 * Starts waiting requests, oldest first, on slots that are free and not resting. `start` must
 * occupy the slot (set `busy`) before it returns. A request whose deadline passed while it
 * waited goes to `expire` instead, with the number of requests that were queued from it on,
 * itself included: whether a slot is free or not, so it fails at its own timeout rather than
 * when a slot comes free (a raw name rests a second after a request that timed out). Returns
 * when to look again, if requests are left waiting: when the first resting free slot can take
 * one, or the first of their deadlines (Infinity when none is left).
 */
export function startWaiting<R extends SlotRequest>(
  pool: RequestSlotPool<R>,
  now: number,
  start: (slot: RequestSlot<R>, req: R, now: number) => void,
  expire: (req: R, queued: number) => void,
): number {
  let nextWake = Infinity;
  while (pool.waiting.length > 0) {
    const slot = pool.slots.find((s) => !s.busy && s.quarantinedUntil <= now);
    if (!slot) {
      for (const s of pool.slots) if (!s.busy) nextWake = Math.min(nextWake, s.quarantinedUntil);
      break;
    }
    const req = pool.waiting.shift()!;
    if (req.deadlineMs <= now) {
      expire(req, pool.waiting.length + 1);
      continue;
    }
    start(slot, req, now);
  }
  if (pool.waiting.length > 0) {
    const waiting = pool.waiting;
    pool.waiting = [];
    waiting.forEach((req, i) => {
      if (req.deadlineMs <= now) expire(req, waiting.length - i);
      else {
        pool.waiting.push(req);
        nextWake = Math.min(nextWake, req.deadlineMs);
      }
    });
  }
  return nextWake;
}

/**
 * True when DPDK's completion of a request on `slot` (which hands back the request's param) is
 * that of `req`, the request the slot carries now. A lane's completion names its request by
 * correlation id; any other completion on a lane is stale (a request that timed out).
 */
export function completes<R extends SlotRequest>(slot: RequestSlot<R>, req: R, requestParam: Buffer): boolean {
  return !slot.lane || correlationIdOf(requestParam) === req.id;
}

/** True when a reply envelope answers the request `id` (a late reply to an earlier request on the same lane does not). */
export function answers(reply: MpEnvelope, id: number): boolean {
  return reply.correlationId === id && reply.kind >= MpEnvelopeKind.reply;
}

/** Correlation ids of one bus's requests: 1 to 2^32-1, then 1 again (0 marks "no request" in an envelope). */
export class CorrelationIds {
  private next = 1;

  take(): number {
    const id = this.next;
    this.next = id >= 0xffffffff ? 1 : id + 1;
    return id;
  }
}
