/**
 * The rte_mp bus's requests on lanes (src/bus/mp-requests.ts) above a stand-in for the addon's
 * rte_mp calls that records what would go to DPDK and lets the test complete it as DPDK would:
 * requests take free lanes in order, completions and replies are matched to their request by
 * correlation id (stale ones are dropped, late replies reported), a lane whose request timed out
 * rests, a request that waited past its deadline never starts, and closing settles them all. The
 * bookkeeping alone is test/unit/request-slots.test.ts; over real DPDK, test/mp.test.ts.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MpEnvelopeKind, encodeValue, readEnvelope, writeEnvelope, type MpEnvelopeHead } from '../../src/bus/envelope.js';
import { resolveBusOptions } from '../../src/bus/mp-checks.js';
import { LargePayloads, type Body } from '../../src/bus/mp-large.js';
import { MpRequests, type RequestHost } from '../../src/bus/mp-requests.js';
import { MpErrorCodes, type MpBusOptions, type MpRequestResult } from '../../src/bus/types.js';
import type { MpBinding, NativeReply } from '../../src/native/mp.js';
import { sleep } from '../harness/wait.js';

const SELF_PID = 200;
const PRIMARY_PID = 100;

/** A request as the addon was asked to send it. */
interface Sent {
  name: string;
  param: Buffer;
  timeoutMs: number;
}

/** MpRequests of a secondary over a recording stand-in of the addon's rte_mp calls. */
function bus(lanes: number, options: MpBusOptions = {}) {
  const sent: Sent[] = [];
  const registered: string[] = [];
  const reported: Array<{ code?: string; message: string }> = [];
  const native = {
    mpLimits: { maxNameBytes: 63, maxParamBytes: 256, maxFds: 8, largeHeaderBytes: 16 },
    mpRegister: (name: string) => registered.push(name),
    mpUnregister: (name: string) => registered.splice(registered.indexOf(name), 1),
    mpRequestAsync: (name: string, param: Uint8Array | undefined, _fds: number[] | undefined, timeoutMs: number) =>
      sent.push({ name, param: Buffer.from(param!), timeoutMs }),
    mpLargeRelease: () => true,
  } as unknown as MpBinding;
  const resolved = resolveBusOptions(options);
  const host: RequestHost = {
    role: 'secondary',
    runtimeDir: '/nonexistent',
    options: () => resolved,
    closed: () => false,
    assertOpen: () => undefined,
    envelope: (head: Omit<MpEnvelopeHead, 'role' | 'pid'>, body: Body) => writeEnvelope({ ...head, role: 'secondary', pid: SELF_PID }, body),
    report: (err: unknown) => reported.push(err as { code?: string; message: string }),
  };
  const requests = new MpRequests(native, new LargePayloads(native, () => resolved), host);
  requests.useLanes(lanes);
  return { requests, sent, registered, reported };
}

/** The primary's reply to the request `to` (a reply envelope with its correlation id, or `correlationId`). */
function reply(to: Sent, value: unknown, kind = MpEnvelopeKind.reply, correlationId = readEnvelope(to.param).correlationId): NativeReply {
  const head = { kind, role: 'primary', pid: PRIMARY_PID, correlationId, deadlineMs: 0 } as const;
  return { param: writeEnvelope(head, encodeValue(value)), fds: [] };
}

/** What DPDK reports when the request `req` completed: `sent` peers, these replies. */
function done(req: Sent, replies: NativeReply[], sent = 1) {
  return { kind: 'requestDone' as const, name: req.name, requestParam: req.param, sent, received: replies.length, replies };
}

/** Settles pending microtasks (the lanes pump on one after a completion). */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A request's outcome once settled, without awaiting it. */
function track<T>(p: Promise<MpRequestResult<T>>): { result?: MpRequestResult<T>; error?: { code?: string; message: string } } {
  const out: { result?: MpRequestResult<T>; error?: { code?: string; message: string } } = {};
  p.then(
    (r) => (out.result = r),
    (e: unknown) => (out.error = e as { code?: string; message: string }),
  );
  return out;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('rte_mp requests on lanes', () => {
  it('registers its lanes; fewer lanes stop using the extra ones but keep them registered', () => {
    const { requests, registered } = bus(3);
    expect(registered).toEqual(['mpbus:lane:0', 'mpbus:lane:1', 'mpbus:lane:2']);
    requests.useLanes(1);
    expect(registered).toHaveLength(3); // a peer still using lane 2 is answered
    requests.unregisterLanes();
    expect(registered).toEqual([]);
  });

  it('a request goes on a free lane with its handler name, correlation id and deadline; its reply resolves it', async () => {
    const { requests, sent } = bus(2);
    const before = Date.now();
    const p = requests.start('greet', { hello: 'world' }, { timeoutMs: 3000 });
    expect(sent).toHaveLength(1);
    const env = readEnvelope(sent[0]!.param);
    expect(sent[0]).toMatchObject({ name: 'mpbus:lane:0' });
    expect(sent[0]!.timeoutMs).toBeGreaterThan(2900);
    expect(env).toMatchObject({ kind: MpEnvelopeKind.request, target: 'greet', pid: SELF_PID, role: 'secondary' });
    expect(env.correlationId).toBeGreaterThan(0);
    requests.onRequestDone(done(sent[0]!, [reply(sent[0]!, { echo: 'world' })]));
    const r = await p;
    expect(r).toMatchObject({ sent: 1, received: 1, complete: true });
    expect(r.replies[0]).toMatchObject({ ok: true, value: { echo: 'world' }, pid: PRIMARY_PID, role: 'primary', raw: false });
    expect(Date.now() - before).toBeLessThan(3000);
  });

  it('more requests than lanes wait in order, and start as lanes come free', async () => {
    const { requests, sent } = bus(2);
    const outcomes = [1, 2, 3, 4].map((n) => track(requests.start('work', n, {})));
    expect(sent.map((s) => s.name)).toEqual(['mpbus:lane:0', 'mpbus:lane:1']);
    requests.onRequestDone(done(sent[1]!, [reply(sent[1]!, 'two')]));
    await turn();
    expect(sent.map((s) => s.name)).toEqual(['mpbus:lane:0', 'mpbus:lane:1', 'mpbus:lane:1']);
    expect(readEnvelope(sent[2]!.param).correlationId).toBe(readEnvelope(sent[1]!.param).correlationId + 1); // the third, in order
    requests.onRequestDone(done(sent[0]!, [reply(sent[0]!, 'one')]));
    await turn();
    expect(sent).toHaveLength(4);
    expect(outcomes[0]!.result?.replies[0]?.value).toBe('one');
    expect(outcomes[1]!.result?.replies[0]?.value).toBe('two');
    expect(outcomes[2]!.result).toBeUndefined();
  });

  it("a completion that carries another request's param on the lane (a stale one) is ignored", async () => {
    const { requests, sent } = bus(1);
    const first = track(requests.start('work', 1, {}));
    const stale = {
      ...sent[0]!,
      param: writeEnvelope({ kind: MpEnvelopeKind.request, role: 'secondary', pid: SELF_PID, correlationId: 999, deadlineMs: 0 }, encodeValue(0)),
    };
    requests.onRequestDone(done(stale, [reply(stale, 'not yours')]));
    await turn();
    expect(first.result).toBeUndefined();
    requests.onRequestDone(done(sent[0]!, [reply(sent[0]!, 'yours')]));
    await turn();
    expect(first.result?.replies.map((r) => r.value)).toEqual(['yours']);
  });

  it('a reply that answers another request is dropped and reported as a late reply; the rest are counted', async () => {
    const { requests, sent, reported } = bus(1);
    const p = requests.start('work', 1, {});
    const late = reply(sent[0]!, 'for an earlier request', MpEnvelopeKind.reply, 7);
    requests.onRequestDone(done(sent[0]!, [late, reply(sent[0]!, 'mine')], 2));
    const r = await p;
    expect(r).toMatchObject({ sent: 2, received: 1, complete: false });
    expect(r.replies.map((x) => x.value)).toEqual(['mine']);
    expect(reported).toEqual([expect.objectContaining({ code: MpErrorCodes.lateReply })]);
  });

  it("a peer without the handler, and a handler that failed, are failed replies with the peer's pid", async () => {
    const { requests, sent } = bus(2);
    const p1 = requests.start('missing', null, {});
    const p2 = requests.start('fragile', null, {});
    requests.onRequestDone(done(sent[0]!, [reply(sent[0]!, null, MpEnvelopeKind.noHandler)]));
    requests.onRequestDone(done(sent[1]!, [reply(sent[1]!, { code: 'OUT_OF_STOCK', message: 'no tea' }, MpEnvelopeKind.errorReply)]));
    const [r1, r2] = await Promise.all([p1, p2]);
    expect(r1.replies[0]).toMatchObject({ ok: false, pid: PRIMARY_PID, error: { code: MpErrorCodes.noHandler } });
    expect(r2.replies[0]).toMatchObject({ ok: false, pid: PRIMARY_PID, error: { code: MpErrorCodes.remoteError, remoteCode: 'OUT_OF_STOCK' } });
    expect(r2.replies[0]!.error!.message).toContain('no tea');
  });

  it('a lane whose request timed out rests: the next request takes another lane', async () => {
    const { requests, sent } = bus(2, { quarantineMs: 60_000 });
    const p = requests.start('slow', 1, {});
    requests.onRequestDone(done(sent[0]!, [])); // sent 1, received 0: timed out
    expect(await p).toMatchObject({ sent: 1, received: 0, complete: false });
    await turn();
    track(requests.start('next', 2, {}));
    const after = track(requests.start('after', 3, {}));
    expect(sent.slice(1).map((s) => s.name)).toEqual(['mpbus:lane:1']); // lane 0 rests; 'after' waits
    requests.close();
    await turn();
    expect(after.error).toMatchObject({ code: MpErrorCodes.closed });
  });

  it('a request that waited for a lane past its deadline never starts: ETIMEDOUT, counted with those queued', async () => {
    const { requests, sent } = bus(1);
    const busy = track(requests.start('busy', 0, {}));
    const short = track(requests.start('short', 1, { timeoutMs: 1 }));
    await sleep(5);
    requests.onRequestDone(done(sent[0]!, [reply(sent[0]!, 'ok')]));
    await turn();
    expect(busy.result?.complete).toBe(true);
    expect(short.error).toMatchObject({ code: MpErrorCodes.timeout, message: expect.stringContaining('no request slot came free') });
    expect(sent).toHaveLength(1);
  });

  it('a request DPDK never completes is settled by mpbus after its timeout and a grace, and reported', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { requests, reported } = bus(1);
    const p = track(requests.start('lost', 1, { timeoutMs: 1000 }));
    await vi.advanceTimersByTimeAsync(1000);
    expect(p.result).toBeUndefined(); // DPDK calls back at the timeout: its grace is not over
    await vi.advanceTimersByTimeAsync(2100);
    expect(p.result).toMatchObject({ sent: 0, received: 0, complete: false });
    expect(reported).toEqual([expect.objectContaining({ code: MpErrorCodes.timeout, message: expect.stringContaining('DPDK never completed') })]);
  });

  it('closing settles every request in flight or waiting with CLOSED', async () => {
    const { requests } = bus(1);
    const inFlight = track(requests.start('a', 1, {}));
    const waiting = track(requests.start('b', 2, {}));
    requests.close();
    await turn();
    expect(inFlight.error).toMatchObject({ code: MpErrorCodes.closed });
    expect(waiting.error).toMatchObject({ code: MpErrorCodes.closed });
  });

  it('refuses a bad timeout or mode, and a reserved name, before anything is sent', () => {
    const { requests, sent } = bus(1);
    expect(() => requests.start('x', 1, { timeoutMs: 0 })).toThrow(expect.objectContaining({ code: MpErrorCodes.invalidOption }));
    expect(() => requests.start('x', 1, { timeoutMs: 3_600_001 })).toThrow(expect.objectContaining({ code: MpErrorCodes.invalidOption }));
    expect(() => requests.start('x', 1, { mode: 'later' as never })).toThrow(expect.objectContaining({ code: MpErrorCodes.invalidOption }));
    expect(() => requests.start('mpbus:lane:0', 1, {})).toThrow(expect.objectContaining({ code: MpErrorCodes.invalidName }));
    expect(sent).toEqual([]);
  });
});
