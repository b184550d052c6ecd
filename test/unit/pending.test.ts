/**
 * The pending asks of an actor system (src/actors/pending.ts): the table by id that replaced a
 * `Map` (a slot per `id & mask`, an overflow for an older ask still in the slot, growth at half
 * full) and an ask's settling, made here (its promise) or relayed by a router (an answer to the
 * caller's envelope), after which it holds nothing of its payload.
 */
import { describe, expect, it } from 'vitest';
import { PendingAsk, PendingTable, type Replier } from '../../src/actors/pending.js';
import { ActorErrorCodes, ActorHandlerError, AskTimeoutError, actorGone, fromWireError, toWireError } from '../../src/actors/errors.js';
import { ErrorCodes, MpBusError } from '../../src/errors.js';
import { EnvelopeKind, type Envelope } from '../../src/actors/transport.js';

/** An ask made here, with its promise. */
function ask(id: number): PendingAsk & { promise: Promise<unknown> } {
  let resolve: (value: unknown) => void = () => undefined;
  const promise = new Promise<unknown>((r) => (resolve = r));
  return Object.assign(new PendingAsk(id, 'to', 'act', 1000, 0, resolve, undefined), { promise });
}

const ids = (table: PendingTable): number[] =>
  table
    .values()
    .map((p) => p.id)
    .sort((a, b) => a - b);

describe('PendingTable', () => {
  it('finds, counts and removes asks by id; a missing id is not found and not removed', () => {
    const t = new PendingTable();
    for (const id of [1, 2, 3]) t.set(ask(id));
    expect(t.size).toBe(3);
    expect(t.get(2)?.id).toBe(2);
    expect(t.get(4)).toBeUndefined();
    expect(t.delete(2)).toBe(true);
    expect(t.delete(2)).toBe(false);
    expect(t.get(2)).toBeUndefined();
    expect(t.size).toBe(2);
    expect(ids(t)).toEqual([1, 3]);
  });

  it('an id whose slot an older ask still holds goes to the overflow, and both are found and removed', () => {
    const t = new PendingTable();
    const old = ask(5);
    t.set(old);
    // 256 is the first capacity: 5 + 256 lands on the old ask's slot
    t.set(ask(5 + 256));
    expect(t.get(5)).toBe(old);
    expect(t.get(5 + 256)?.id).toBe(5 + 256);
    expect(t.get(5 + 512)).toBeUndefined(); // same slot, not there
    expect(t.delete(5)).toBe(true);
    expect(t.get(5 + 256)?.id).toBe(5 + 256); // still in the overflow after its slot came free
    expect(t.delete(5 + 256)).toBe(true);
    expect(t.size).toBe(0);
    expect(t.values()).toEqual([]);
  });

  it('grows past half full and keeps every ask, also those that were in the overflow', () => {
    const t = new PendingTable();
    const all: number[] = [];
    // Some asks settled early, and the slot of id 1 held while ids go round the first capacity
    for (let id = 1; id <= 3000; id++) {
      t.set(ask(id));
      all.push(id);
      if (id % 7 === 0 && t.delete(id - 3)) all.splice(all.indexOf(id - 3), 1);
    }
    expect(t.size).toBe(all.length);
    expect(ids(t)).toEqual(all);
    expect(all.every((id) => t.get(id)?.id === id)).toBe(true);
  });

  it('ids handed out in sequence with a bounded number pending stay in the slots (the overflow stays empty)', () => {
    const t = new PendingTable();
    for (let id = 1; id <= 100_000; id++) {
      t.set(ask(id));
      if (id > 64) t.delete(id - 64);
    }
    expect(t.size).toBe(64);
    expect(new Set(ids(t)).size).toBe(64);
    expect((t as unknown as { overflow: Map<number, PendingAsk> }).overflow.size).toBe(0);
  });

  it('values() is a copy: settling asks while going through it is safe', () => {
    const t = new PendingTable();
    for (let id = 1; id <= 10; id++) t.set(ask(id));
    for (const p of t.values()) t.delete(p.id);
    expect(t.size).toBe(0);
  });

  it('select() and some() look at every ask, in the slots and in the overflow, without copying the others', () => {
    const t = new PendingTable();
    for (let id = 1; id <= 10; id++) t.set(ask(id));
    t.set(Object.assign(ask(1 + 256), { worker: 'w' })); // in the overflow: id 1 holds its slot
    t.get(4)!.worker = 'w';
    expect(
      t
        .select((p) => p.worker === 'w')
        .map((p) => p.id)
        .sort((a, b) => a - b),
    ).toEqual([4, 257]);
    expect(t.some((p) => p.id === 257)).toBe(true);
    expect(t.some((p) => p.worker === 'x')).toBe(false);
    expect(t.select(() => false)).toEqual([]);
  });
});

describe('PendingAsk', () => {
  it('an ask made here settles its promise once with the value or the error, then lets go of them', async () => {
    const ok = ask(1);
    ok.payload = { big: 'payload' };
    ok.resolve('v');
    await expect(ok.promise).resolves.toBe('v');
    expect(ok.isRelay).toBe(false);
    expect(ok.payload).toBeUndefined();
    const failed = ask(2);
    const err = new Error('no');
    failed.reject(err);
    await expect(failed.promise).rejects.toBe(err);
    // released: a second settle finds no callbacks (the system never settles twice; this shows nothing is held)
    expect(() => ok.resolve('again')).toThrow();
  });

  it('a rejection goes through no promise left unhandled meanwhile (Node tracks each such promise)', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const failed = ask(3);
      const err = new Error('no');
      failed.reject(err);
      await expect(failed.promise).rejects.toBe(err);
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('a relayed ask answers the envelope the router received, a failure as a wire error, and drops it', () => {
    const replies: Array<{ envelope: Envelope; kind: number; payload: unknown }> = [];
    const replier: Replier = { reply: (envelope, kind, payload) => replies.push({ envelope, kind, payload }) };
    const origin = { kind: EnvelopeKind.ask, action: 'work', payload: { big: 'payload' }, id: 9, replyTo: 'caller' } as Envelope;
    const relayed = new PendingAsk(7, 'workers', 'work', 1000, 0, undefined, replier);
    expect(relayed.isRelay).toBe(true);
    relayed.origin = origin;
    relayed.resolve(42);
    expect(replies).toEqual([{ envelope: origin, kind: EnvelopeKind.reply, payload: 42 }]);
    expect(relayed.origin).toBeUndefined();

    const failing = new PendingAsk(8, 'workers', 'work', 1000, 0, undefined, replier);
    failing.origin = origin;
    failing.reject(Object.assign(new Error('out of stock'), { code: 'OUT_OF_STOCK' }));
    expect(replies[1]).toMatchObject({ envelope: origin, kind: EnvelopeKind.failure, payload: { code: 'OUT_OF_STOCK', message: 'out of stock' } });
    expect(failing.origin).toBeUndefined();
  });

  it('a worker that stopped, was never there or whose system closed did not take the ask; other failures are answers', () => {
    const wire = (code: string, thrown?: boolean): Parameters<typeof actorGone>[0] => ({ name: 'E', code, message: 'm', ...(thrown ? { thrown } : {}) });
    expect(actorGone(wire(ActorErrorCodes.actorStopped))).toBe(true);
    expect(actorGone(wire(ActorErrorCodes.actorNotFound))).toBe(true);
    expect(actorGone(wire(ActorErrorCodes.systemClosed))).toBe(true);
    expect(actorGone(wire(ActorErrorCodes.handlerFailed))).toBe(false);
    expect(actorGone(wire('OUT_OF_STOCK'))).toBe(false);
    // A handler's own error with such a code (a nested ask's) is its answer: the actor is there.
    for (const code of [ActorErrorCodes.actorStopped, ActorErrorCodes.actorNotFound, ActorErrorCodes.systemClosed])
      expect(actorGone(wire(code, true))).toBe(false);
  });

  it("a handler's error keeps its code and is an ActorHandlerError, whatever the code", () => {
    const nested = Object.assign(new Error("no actor named 'catalog'"), { code: ActorErrorCodes.actorNotFound });
    const err = fromWireError('lookup', 'get', toWireError(nested, true));
    expect(err).toBeInstanceOf(ActorHandlerError);
    expect(err).toMatchObject({ code: ActorErrorCodes.actorNotFound, actor: 'lookup', remote: { message: "no actor named 'catalog'" } });
    // the system's own word that the actor is not there
    expect(fromWireError('lookup', 'get', toWireError(nested))).toMatchObject({ name: 'ActorNotFoundError' });
  });

  it("the answering system's own failures keep their class: a router's worker timeout is an AskTimeoutError, other codes an MpBusError (not a handler's error)", () => {
    const timedOut = fromWireError('squares', 'square', toWireError(new AskTimeoutError('worker-2', 'square', 250)));
    expect(timedOut).toBeInstanceOf(AskTimeoutError);
    expect(timedOut).toMatchObject({ code: ActorErrorCodes.askTimeout, actor: 'worker-2', action: 'square', timeoutMs: 250 });
    const unsendable = Object.assign(new MpBusError(ErrorCodes.encodeFailed, 'the answer could not be sent: a function'), { path: 'reply.cb' });
    for (const [sent, code] of [
      [unsendable, ErrorCodes.encodeFailed],
      [new MpBusError(ErrorCodes.messageTooLarge, 'larger than max_payload'), ErrorCodes.messageTooLarge],
      [new MpBusError(ActorErrorCodes.noHandler, "no handler for 'other'"), ActorErrorCodes.noHandler],
    ] as const) {
      const err = fromWireError('far', 'get', toWireError(sent));
      expect(err).not.toBeInstanceOf(ActorHandlerError);
      expect(err).toBeInstanceOf(MpBusError);
      expect(err).toMatchObject({ code, message: sent.message });
    }
    expect(fromWireError('far', 'get', toWireError(unsendable))).toMatchObject({ path: 'reply.cb' });
  });
});
