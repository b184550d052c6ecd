/**
 * What a message can hold, across real processes of a DPDK group (the mailbox transport): the
 * table of docs/actors.md ("What a message can hold"), checked in the process a value arrives in;
 * values that cannot cross fail at the sender naming where; handler errors keep their code and
 * fields, and their stack names the process that threw.
 */
import { describe, expect, it } from 'vitest';
import { useTestGroups } from './harness/use-groups.js';
import { fixture } from './harness/fixtures.js';

const group = useTestGroups();
const values = fixture('values');

describe('actors: values across processes', () => {
  it("a message whose value the receiving process cannot decode: the asker gets DECODE_FAILED at once, a tell is a 'decode-failed' dead letter, an answer fails its ask", async () => {
    const g = group('undecodable');
    const p = await g.startAgent({ procType: 'primary' });
    await p.use(values).start();
    const r = await p.use(values).undecodableValues();
    expect(r.failure).toMatchObject([3, 'act', { code: 'DECODE_FAILED', message: expect.stringContaining("'strict' could not decode the message 'act'") }, 7]);
    expect(r.letters).toEqual([
      { to: 'strict', action: 'act', reason: 'decode-failed', kind: 'tell' },
      { to: 'strict', action: 'act', reason: 'decode-failed', kind: 'ask' },
    ]);
    expect(r.answer).toMatchObject({ code: 'DECODE_FAILED', message: expect.stringContaining("the answer to 'never' could not be decoded") });
    expect(r.after).toBe('handled');
  });

  it('arrive as the documented rule says, both ways; what cannot cross fails at the sender', async () => {
    const g = group('values');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    await p.use(values).start();
    await s.use(values).start();
    await s.use(values).spawnInspector();
    const r = await p.use(values).crossAll();
    const all = {
      map: true,
      set: true,
      date: true,
      regexp: true,
      bigint: true,
      typed: true,
      error: true,
      point: true,
      shared: true,
      cycle: true,
      undefinedField: true,
      bytes: true,
    };
    expect(r.there).toEqual({ pid: s.pid, ...all });
    expect(r.back).toEqual({ pid: p.pid, ...all });
    expect(r.fail).toMatchObject({ isError: true, code: 'OUT_OF_STOCK', item: 'tea', left: 0 });
    expect(r.fail.stack).toContain(`in process ${s.pid}`);
    expect(r.fail.stack).toContain('no stock');
    expect(r.failTyped).toEqual({ isMpBusError: true, code: 'MY_CODE' });
    expect(r.badReply).toMatchObject({ code: 'ENCODE_FAILED', path: 'reply.then.cb', message: expect.stringContaining('reply.then.cb') });
    // a handler that returns undefined answers undefined (not null)
    expect(r.nothing).toEqual({ isUndefined: true });
    // an error whose field throws when read still reaches the asker; the process lives on
    expect(r.badGetter).toEqual({ code: 'GETTER', bad: '[a field whose getter threw]', after: undefined });
    expect(r.badReply.ms).toBeLessThan(5000);
    expect(r.unsendable).toEqual({
      fn: { code: 'ENCODE_FAILED', path: 'msg.items[3].cb', message: expect.stringContaining('function') },
      symbol: { code: 'ENCODE_FAILED', path: 'msg.tag', message: expect.stringContaining('symbol') },
      instance: { code: 'ENCODE_FAILED', path: 'msg.obj', message: expect.stringContaining('registerClass') },
    });
    expect(r.deep).toEqual({ code: 'ENCODE_FAILED', message: expect.stringContaining('nested too deeply') });
    // Tells sent together at the end of a turn (a batched tell's envelope head is written once
    // per action): every kind of payload and action arrives, in order; one that does not encode
    // is a dead letter and the others still go.
    const told = await p.use(values).tellsInOneTurn();
    const seen = { map: true, set: true, date: true, regexp: true, bigint: true, typed: true, error: true, point: true, shared: true, cycle: true };
    expect(told.notes).toEqual([
      { action: 'note', v: { i: 0 } },
      { action: 'note', v: { i: 1, s: 'x'.repeat(100) } },
      { action: 'note', seen: { ...seen, undefinedField: true, bytes: true } },
      { action: 'note', v: 'undefined' },
      { action: 'long', v: { i: 4 } },
      { action: 'nöte', v: { i: 5 } },
      { action: 'note', v: [7, 'seven'] },
    ]);
    expect(told.deadLetters).toEqual([{ action: 'note', reason: 'encode-failed' }]);
  });
});
