/**
 * The cluster bridge against a real nats-server, with each "host" an actor system on its own
 * in-process hub inside this test process (their names are invisible to each other except
 * through NATS). Real processes in separate DPDK groups are in cluster-groups.test.ts.
 */
import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack, unpack } from 'msgpackr';
import { firstValueFrom, interval, take, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ActorNotFoundError,
  ActorStoppedError,
  ActorSystem,
  AskAbortedError,
  AskTimeoutError,
  ClusterUnavailableError,
  InProcessHub,
  type DeadLetter,
} from '../src/actors/index.js';
import { NatsEngine, type ClusterEngine, type ClusterOptions, type EngineMessage, type PublishOptions, type SubscribeOptions } from '../src/cluster/index.js';
import { NatsServer, useNatsServer } from './harness/nats.js';
import { sleep, until } from './harness/wait.js';

const natsServer = useNatsServer();

const systems: ActorSystem[] = [];
afterEach(async () => {
  await Promise.all(systems.splice(0).map((s) => s.close({ timeoutMs: 500 })));
});

/** An engine that counts what this host publishes, by subject. */
class CountingEngine implements ClusterEngine {
  readonly kind = 'nats-counting';
  readonly published = new Map<string, number>();
  readonly headers = new Map<string, Record<string, string>>();
  constructor(private readonly inner: ClusterEngine) {}
  get status$() {
    return this.inner.status$;
  }
  get connected() {
    return this.inner.connected;
  }
  connect() {
    return this.inner.connect();
  }
  inboxPrefix() {
    return this.inner.inboxPrefix();
  }
  subscribe(subject: string, options: SubscribeOptions, handler: (m: EngineMessage) => void) {
    return this.inner.subscribe(subject, options, handler);
  }
  publish(subject: string, data: Uint8Array, options?: PublishOptions) {
    this.published.set(subject, (this.published.get(subject) ?? 0) + 1);
    if (options?.headers) this.headers.set(subject, { ...options.headers });
    this.inner.publish(subject, data, options);
  }
  /** Messages published to a name's subject, its queue group's or one host's own (`<subject>.@<node>`). */
  sentTo(nameSubject: string): number {
    let count = 0;
    for (const [subject, n] of this.published) if (subject === nameSubject || subject.startsWith(`${nameSubject}.@`)) count += n;
    return count;
  }
  /** The headers of the last message published to one of a name's subjects. */
  headersTo(nameSubject: string): Record<string, string> | undefined {
    let last: Record<string, string> | undefined;
    for (const [subject, h] of this.headers) if (subject === nameSubject || subject.startsWith(`${nameSubject}.@`)) last = h;
    return last;
  }
  flush() {
    return this.inner.flush();
  }
  close() {
    return this.inner.close();
  }
}

/**
 * An engine that can fail as a dying or stopped process does, its connection still open: `deaf`
 * drops what comes to it (a process killed with messages unread in its socket); `mute` also
 * drops what it would send (a stopped process). `dropped` counts the asks dropped.
 */
class FaultyEngine extends CountingEngine {
  deaf = false;
  mute = false;
  dropped = 0;
  droppedTells = 0;
  override subscribe(subject: string, options: SubscribeOptions, handler: (m: EngineMessage) => void) {
    return super.subscribe(subject, options, (m) => {
      if (!this.deaf && !this.mute) handler(m);
      else if (m.headers['Mpbus-Kind'] === 'ask') this.dropped++;
      else if (m.headers['Mpbus-Kind'] === 'tell') this.droppedTells++;
    });
  }
  override publish(subject: string, data: Uint8Array, options?: PublishOptions) {
    if (!this.mute) super.publish(subject, data, options);
  }
}

/** An engine whose node announces itself as an older mpbus (or a peer in another language) does: no inbox, no subject of its own per name. */
class LegacyEngine extends CountingEngine {
  override publish(subject: string, data: Uint8Array, options?: PublishOptions) {
    if (!subject.endsWith('.$dir')) return super.publish(subject, data, options);
    const { inbox: _inbox, direct: _direct, ...announcement } = unpack(data) as Record<string, unknown>;
    super.publish(subject, pack(announcement), options);
  }
}

let clusterSeq = 0;
function clusterName(): string {
  return `t${process.pid}_${++clusterSeq}`;
}

/** Two hosts of a new cluster on a nats-server of their own (the test may stop and restart it), with `options`. */
async function onOwnServer(options: Partial<ClusterOptions>, test: (a: ActorSystem, b: ActorSystem, server: NatsServer) => Promise<void>): Promise<void> {
  const server = await NatsServer.start();
  try {
    const cluster = clusterName();
    const a = await host(cluster, { servers: server.url, ...options });
    const b = await host(cluster, { servers: server.url, ...options });
    await test(a, b, server);
  } finally {
    await server.cleanup();
  }
}

/** A host: an actor system on its own hub, joined to `cluster`. */
async function host(cluster: string, options: Partial<ClusterOptions> = {}, checkValues?: boolean): Promise<ActorSystem> {
  const system = new ActorSystem({
    transport: new InProcessHub().connect(),
    cluster: { servers: natsServer().url, name: cluster, heartbeatMs: 200, ...options },
    askTimeoutMs: 10_000,
    ...(checkValues === undefined ? {} : { checkValues }),
  });
  systems.push(system);
  await system.ready();
  return system;
}

/** A host whose engine can fail as a dying or stopped process does (see {@link FaultyEngine}). */
async function faultyHost(cluster: string, options: Partial<ClusterOptions> = {}): Promise<[ActorSystem, FaultyEngine]> {
  const engine = new FaultyEngine(new NatsEngine({ servers: options.servers ?? natsServer().url }));
  return [await host(cluster, { ...options, engine }), engine];
}

describe('cluster over a real nats-server (hosts in one process)', () => {
  it('ask and tell reach an actor on another host by the same name, with typed contracts kept', async () => {
    const cluster = clusterName();
    const a = await host(cluster);
    const b = await host(cluster);
    interface Counter {
      add: { msg: { n: number; tags: string[]; at: Date }; reply: { total: number; tags: string[]; at: Date } };
      total: { msg: void; reply: number };
    }
    let total = 0;
    await b.spawn<Counter>('counter', {
      add: (m) => ({ total: (total += m.n), tags: m.tags, at: m.at }),
      total: () => total,
    });
    await until('counter on b seen by a', () => a.has('counter'));
    const counter = a.ref<Counter>('counter');
    const at = new Date(1_700_000_000_000);
    const reply = await counter.ask('add', { n: 2, tags: ['x', 'y'], at });
    expect(reply).toEqual({ total: 2, tags: ['x', 'y'], at });
    counter.tell('add', { n: 3, tags: [], at });
    await until('tell handled', () => total === 5);
    expect(await counter.ask('total')).toBe(5);
  });

  it('once ready() resolved, the names other hosts serve are known: has() sees them and a tell goes', async () => {
    const cluster = clusterName();
    const b = await host(cluster);
    const seen: unknown[] = [];
    await b.spawn('early', { note: (m: unknown) => void seen.push(m) });
    const a = await host(cluster); // ready() awaited
    expect(a.has('early')).toBe(true);
    const letters: DeadLetter[] = [];
    a.deadLetters$.subscribe((l) => letters.push(l));
    a.ref('early').tell('note', 1);
    await until('the tell arrived', () => seen.length === 1);
    expect(letters).toEqual([]);
  });

  it('a name on no host fails at once with ActorNotFoundError, as locally', async () => {
    const a = await host(clusterName());
    const t0 = Date.now();
    const err = await a
      .ref('nobody')
      .ask('hello', 1, { timeoutMs: 30_000 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ActorNotFoundError);
    expect(err).toMatchObject({ code: 'ACTOR_NOT_FOUND' });
    // "at once": far from the 30 s timeout (the bound only tells an answer from a wait)
    expect(Date.now() - t0).toBeLessThan(15_000);
  });

  it('a handler error on the other host comes back typed, with its code; an answer that cannot be encoded as from this host', async () => {
    const cluster = clusterName();
    const a = await host(cluster);
    // (values not checked in its own process, as in production: its cluster transport encodes the answer)
    const b = await host(cluster, {}, false);
    await b.spawn('picky', {
      only: () => 1,
      fail: () => {
        throw Object.assign(new Error('nope'), { code: 'E_PICKY' });
      },
      unsendable: () => ({ f: () => 1 }),
    });
    await until('picky seen', () => a.has('picky'));
    await expect(a.ref('picky').ask('fail', null)).rejects.toMatchObject({ code: 'E_PICKY', message: expect.stringContaining('nope') });
    // as from a process of this host: where in the answer, and what it was
    await expect(a.ref('picky').ask('unsendable', null)).rejects.toMatchObject({
      code: 'ENCODE_FAILED',
      path: 'reply.f',
      message: expect.stringContaining('the answer could not be sent: reply.f is a function'),
    });
    await expect(a.ref('picky').ask('other', null)).rejects.toMatchObject({ code: 'NO_HANDLER' });
  });

  it("a message or answer over the server's max_payload (1 MiB) fails at once with MESSAGE_TOO_LARGE, not a timeout", async () => {
    const cluster = clusterName();
    const a = await host(cluster);
    const b = await host(cluster);
    await b.spawn('big', { echo: (m: unknown) => m, make: (n: number) => 'y'.repeat(n) });
    await until('big seen', () => a.has('big'));
    const letters: DeadLetter[] = [];
    a.deadLetters$.subscribe((l) => letters.push(l));
    const t0 = Date.now();
    await expect(a.ref('big').ask('echo', 'x'.repeat(2_000_000), { timeoutMs: 20_000 })).rejects.toMatchObject({ code: 'MESSAGE_TOO_LARGE' });
    await expect(a.ref('big').ask('make', 2_000_000, { timeoutMs: 20_000 })).rejects.toMatchObject({
      code: 'MESSAGE_TOO_LARGE',
      message: expect.stringContaining('max_payload'),
    });
    expect(Date.now() - t0).toBeLessThan(10_000);
    a.ref('big').tell('echo', 'x'.repeat(2_000_000));
    expect(letters.map((l) => [l.to, l.reason])).toEqual([['big', 'encode-failed']]);
    // and what fits still goes
    expect(await a.ref('big').ask('make', 500_000)).toHaveLength(500_000);
  });

  it('close stops what exportTo publishes (a timer as its source would keep the process alive)', async () => {
    const a = await host(clusterName());
    const exported = a.cluster!.exportTo(interval(10), 'ticks');
    await a.close({ timeoutMs: 500 });
    expect(exported.closed).toBe(true);
  });

  it('a host whose event loop was blocked for longer than nodeTimeoutMs does not take the others for gone (their heartbeats wait unread)', async () => {
    const cluster = clusterName();
    const a = await host(cluster, { heartbeatMs: 100 });
    const b = await host(cluster, { heartbeatMs: 100 });
    await b.spawn('steady', { ping: () => 'pong' });
    await until('steady seen', () => a.has('steady'));
    const gone: string[] = [];
    a.transport.gone$.subscribe((g) => gone.push(g.name));
    // as a large value's encoding does: nothing of this process runs for 1.5 s (5x nodeTimeoutMs)
    const blockedUntil = Date.now() + 1500;
    while (Date.now() < blockedUntil);
    await sleep(250);
    expect(gone).toEqual([]);
    expect(await a.ref('steady').ask('ping', null)).toBe('pong');
  });

  it('local names never take a NATS hop', async () => {
    const cluster = clusterName();
    const engine = new CountingEngine(new NatsEngine({ servers: natsServer().url }));
    const a = await host(cluster, { engine });
    const b = await host(cluster);
    // the same name on both hosts: a's own must win, without NATS
    await a.spawn('echo', { echo: (m: string) => `a:${m}` });
    await b.spawn('echo', { echo: (m: string) => `b:${m}` });
    for (let i = 0; i < 20; i++) expect(await a.ref('echo').ask('echo', String(i))).toBe(`a:${i}`);
    a.ref('echo').tell('echo', 'x');
    const echoSubject = `mpbus.${cluster}.echo`;
    expect(engine.sentTo(echoSubject)).toBe(0);
    // while a name of another host does go through NATS
    await b.spawn('only-b', { echo: (m: string) => `b:${m}` });
    await until('only-b seen', () => a.has('only-b'));
    expect(await a.ref('only-b').ask('echo', 'y')).toBe('b:y');
    expect(engine.sentTo(`mpbus.${cluster}.only-b`)).toBe(1);
  });

  it('the same name on several hosts is a queue group: each message to exactly one of them', async () => {
    const cluster = clusterName();
    const caller = await host(cluster);
    const seen = new Map<string, number[]>();
    for (const label of ['w1', 'w2']) {
      const h = await host(cluster);
      seen.set(label, []);
      await h.spawn('pool', {
        job: (id: number) => {
          seen.get(label)!.push(id);
          return label;
        },
      });
    }
    await until('pool on two hosts', () => caller.cluster!.directory.holdersOf('pool').length === 2);
    const ids = [...Array(200).keys()];
    const answers = await Promise.all(ids.map((id) => caller.ref('pool').ask('job', id)));
    const handled = [...seen.values()].flat().sort((x, y) => x - y);
    expect(handled).toEqual(ids);
    for (const list of seen.values()) expect(list.length).toBeGreaterThan(0);
    expect(answers.filter((x) => x === 'w1').length).toBe(seen.get('w1')!.length);
  });

  it('a name also served by a host that does not announce subjects of its own (an older mpbus): asks to it go to the queue group, spread over both', async () => {
    const cluster = clusterName();
    const engine = new CountingEngine(new NatsEngine({ servers: natsServer().url }));
    const caller = await host(cluster, { engine });
    const legacy = await host(cluster, { engine: new LegacyEngine(new NatsEngine({ servers: natsServer().url })) });
    const current = await host(cluster);
    await legacy.spawn('pool', { job: () => 'legacy' });
    await current.spawn('pool', { job: () => 'current' });
    await current.spawn('solo', { job: () => 'current' });
    await until('pool on two hosts', () => caller.cluster!.directory.holdersOf('pool').length === 2 && caller.has('solo'));
    const answers = await Promise.all(Array.from({ length: 100 }, () => caller.ref('pool').ask('job', null)));
    expect(new Set(answers)).toEqual(new Set(['legacy', 'current']));
    const poolSubject = `mpbus.${cluster}.pool`;
    expect(engine.published.get(poolSubject)).toBe(100);
    expect(engine.sentTo(poolSubject)).toBe(100);
    // a name only hosts with subjects of their own serve: asks go there
    expect(await caller.ref('solo').ask('job', null)).toBe('current');
    expect(engine.published.get(`mpbus.${cluster}.solo`) ?? 0).toBe(0);
    expect(engine.sentTo(`mpbus.${cluster}.solo`)).toBe(1);
  });

  it('a nested ask on the other host does not outlive its caller', async () => {
    const cluster = clusterName();
    const a = await host(cluster);
    const b = await host(cluster);
    const c = await host(cluster);
    let innerError: { code?: string; timeoutMs?: number } | undefined;
    await c.spawn('slow', {
      work: async () => {
        await sleep(3000);
        return 'late';
      },
    });
    await b.spawn('outer', {
      work: async (_: null, ctx) => {
        try {
          // asks with a generous timeout of its own: the caller's deadline must bound it
          return await ctx.ref('slow').ask('work', null, { timeoutMs: 60_000 });
        } catch (err) {
          innerError = err as { code?: string; timeoutMs?: number };
          return 'inner failed';
        }
      },
    });
    await until('slow and outer seen', () => a.has('outer') && b.has('slow'));
    const outcome = await a
      .ref('outer')
      .ask('work', null, { timeoutMs: 400 })
      .catch((e: unknown) => e);
    // the caller times out, or (timers of the two sides racing) hears of the inner timeout just in time
    if (outcome !== 'inner failed') expect(outcome).toBeInstanceOf(AskTimeoutError);
    await until('inner ask ended', () => innerError !== undefined, 10_000);
    expect(innerError).toMatchObject({ code: 'ASK_TIMEOUT' });
    expect(innerError!.timeoutMs).toBeLessThanOrEqual(400);
  });

  it('trace and correlation ids travel in headers, and a handler passes its trace on', async () => {
    const cluster = clusterName();
    const aEngine = new CountingEngine(new NatsEngine({ servers: natsServer().url }));
    const bEngine = new CountingEngine(new NatsEngine({ servers: natsServer().url }));
    const a = await host(cluster, { engine: aEngine });
    const b = await host(cluster, { engine: bEngine });
    const c = await host(cluster);
    await b.spawn('relay', { go: async (_: null, ctx) => ctx.ref('sink').ask('take', null) });
    await c.spawn('sink', { take: () => 'ok' });
    await until('relay and sink seen', () => a.has('relay') && b.has('sink'));
    expect(await a.ref('relay').ask('go', null)).toBe('ok');
    const first = aEngine.headersTo(`mpbus.${cluster}.relay`)!;
    const nested = bEngine.headersTo(`mpbus.${cluster}.sink`)!;
    expect(first['Mpbus-Trace']).toMatch(/^[0-9a-f]+$/);
    expect(nested['Mpbus-Trace']).toBe(first['Mpbus-Trace']);
    expect(first['Mpbus-Ask-Id']).toMatch(/^\d+$/);
    expect(Number(nested['Mpbus-Timeout-Ms'])).toBeLessThanOrEqual(Number(first['Mpbus-Timeout-Ms']));
  });

  it('a host that closes cleanly leaves the queue group as its close begins: asks keep going to the other host serving the name, none refused', async () => {
    const cluster = clusterName();
    const caller = await host(cluster);
    const served = new Map<string, number>();
    const hosts: ActorSystem[] = [];
    for (const label of ['stays', 'leaves']) {
      const h = await host(cluster);
      hosts.push(h);
      served.set(label, 0);
      // async: the leaving host has asks in hand and queued when its close begins, so the close lasts
      await h.spawn('pool', {
        job: async () => {
          await sleep(2);
          served.set(label, served.get(label)! + 1);
          return label;
        },
      });
    }
    await until('pool on two hosts', () => caller.cluster!.directory.holdersOf('pool').length === 2);
    const failures: unknown[] = [];
    let answered = 0;
    let stop = false;
    const loop = async (): Promise<void> => {
      while (!stop) {
        await caller
          .ref('pool')
          .ask('job', null)
          .then(
            () => answered++,
            (err: unknown) => failures.push(err),
          );
      }
    };
    const loops = Array.from({ length: 16 }, loop);
    await until('both hosts serve', () => served.get('leaves')! > 20 && served.get('stays')! > 20);
    const leftAt = served.get('leaves')!;
    await hosts[1]!.close({ timeoutMs: 5000 });
    const atClose = answered;
    await until('asks go on after the close', () => answered > atClose + 200);
    stop = true;
    await Promise.all(loops);
    expect(failures).toEqual([]);
    // what it had taken in was answered, by it, during its close
    expect(served.get('leaves')!).toBeGreaterThanOrEqual(leftAt);
    expect(caller.cluster!.directory.holdersOf('pool')).toHaveLength(1);
  });

  it('a host that goes silent, its connection open (a stopped process): after nodeTimeoutMs its names vanish from the others and asks it held fail with a typed error', async () => {
    const cluster = clusterName();
    const a = await host(cluster);
    const [b, bEngine] = await faultyHost(cluster);
    await b.spawn('stuck', { work: () => new Promise(() => undefined) });
    await until('stuck seen', () => a.has('stuck'));
    const gone = firstValueFrom(a.watch('stuck'));
    const pending = a
      .ref('stuck')
      .ask('work', null, { timeoutMs: 60_000 })
      .catch((e: unknown) => e);
    await sleep(200);
    // b says nothing more and hears nothing, its connection open: as if its process were stopped
    bEngine.mute = true;
    expect(await gone).toMatchObject({ name: 'stuck', reason: 'process-exited' });
    expect(await pending).toMatchObject({
      code: 'ACTOR_STOPPED',
      message: "actor 'stuck' went away with its host (no heartbeat from it within nodeTimeoutMs) before it answered 'work'",
    });
    expect(a.has('stuck')).toBe(false);
  });

  it("a host taken for gone that answers after all (it was stopped, and goes on): the answer to the ask that failed is a 'late-reply' dead letter at the asker, and the host is known again", async () => {
    const cluster = clusterName();
    const a = await host(cluster);
    const [b, bEngine] = await faultyHost(cluster);
    // (its answer comes well after b is taken for gone: 600 ms of silence)
    await b.spawn('slow', { work: async () => sleep(3000).then(() => 'done'), ping: () => 'pong' });
    await until('slow seen', () => a.has('slow'));
    const letters: DeadLetter[] = [];
    a.deadLetters$.subscribe((l) => letters.push(l));
    const pending = a
      .ref('slow')
      .ask('work', null, { timeoutMs: 60_000 })
      .catch((e: unknown) => e);
    await sleep(200);
    bEngine.mute = true;
    expect(await pending).toMatchObject({ code: 'ACTOR_STOPPED' });
    bEngine.mute = false;
    await until('the late answer', () => letters.length > 0, 5000);
    expect(letters).toEqual([expect.objectContaining({ reason: 'late-reply', kind: 'reply', action: 'work', payload: 'done' })]);
    await until('b known again', () => a.has('slow'));
    expect(await a.ref('slow').ask('ping', null)).toBe('pong');
  });

  it('a host of a pool killed with asks unread: the asks it held, acknowledged or not, fail with ActorStoppedError as soon as its connection is gone, not after nodeTimeoutMs; the rest go on to the other host', async () => {
    const cluster = clusterName();
    // silence alone would take 30 s to count, and the asks' own timeout 20 s
    const options = { nodeTimeoutMs: 30_000 };
    const caller = await host(cluster, options);
    const [dying, dyingEngine] = await faultyHost(cluster, options);
    const stays = await host(cluster, options);
    const handled = new Map<string, number[]>([
      ['dying', []],
      ['stays', []],
    ]);
    for (const [label, h] of [
      ['dying', dying],
      ['stays', stays],
    ] as const) {
      await h.spawn('pool', {
        job: (n: number) => {
          handled.get(label)!.push(n);
          return label;
        },
      });
    }
    // one acknowledged ask it holds for good, besides those it never reads
    await dying.spawn('held', { work: () => new Promise(() => undefined) });
    await until('pool on two hosts', () => caller.cluster!.directory.holdersOf('pool').length === 2 && caller.has('held'));
    const heldAsk = caller
      .ref('held')
      .ask('work', null, { timeoutMs: 20_000 })
      .catch((e: unknown) => e);
    const answers: Array<{ n: number; by: unknown }> = [];
    const failures: Array<Error & { code?: string }> = [];
    let next = 0;
    let stop = false;
    const lane = async (): Promise<void> => {
      while (!stop) {
        const n = next++;
        await caller
          .ref('pool')
          .ask('job', n, { timeoutMs: 20_000 })
          .then(
            (by: unknown) => answers.push({ n, by }),
            (err: Error & { code?: string }) => failures.push(err),
          );
      }
    };
    const lanes = Array.from({ length: 8 }, lane);
    await until('both hosts answer', () => handled.get('dying')!.length > 20 && handled.get('stays')!.length > 20);
    // the process dies: what reaches it from now on is never read, then its connection closes
    dyingEngine.deaf = true;
    await until('every lane waits on the dying host', () => dyingEngine.dropped >= 8 && failures.length === 0, 5000);
    await dyingEngine.close();
    // (well within the 20 s of the asks and the 30 s of silence)
    await until('the lanes ended on the dying host', () => failures.length >= 8, 10_000);
    const answeredThen = answers.length;
    await until('asks go on with the host that stays', () => answers.length > answeredThen + 100);
    stop = true;
    await Promise.all(lanes);
    for (const err of failures) {
      expect(err).toBeInstanceOf(ActorStoppedError);
      expect(err.message).toBe(
        "actor 'pool' went away with its host (its connection to the cluster closed; it had not acknowledged the ask) before it answered 'job'",
      );
    }
    expect(failures.length).toBe(dyingEngine.dropped);
    expect(await heldAsk).toMatchObject({
      code: 'ACTOR_STOPPED',
      message: "actor 'held' went away with its host (its connection to the cluster closed) before it answered 'work'",
    });
    // each answered ask was handled once, where it says
    for (const { n, by } of answers) expect(handled.get(by as string)!.filter((m) => m === n)).toHaveLength(1);
    expect(caller.has('held')).toBe(false);
    expect(caller.cluster!.directory.holdersOf('pool')).toHaveLength(1);
  });

  it('a host of a pool that stops, its connection open (a stopped or hung process): once forgotten after nodeTimeoutMs, no ask or tell goes to it any more; the asks it held fail with ActorStoppedError', async () => {
    const cluster = clusterName();
    const caller = await host(cluster);
    const [stopped, stoppedEngine] = await faultyHost(cluster);
    const stays = await host(cluster);
    let notes = 0;
    await stopped.spawn('pool', { job: () => 'stopped', note: () => undefined });
    await stays.spawn('pool', { job: () => 'stays', note: () => void notes++ });
    await until('pool on two hosts', () => caller.cluster!.directory.holdersOf('pool').length === 2);
    const answers = new Map<unknown, number>();
    const failures: Array<Error & { code?: string }> = [];
    let stop = false;
    const lane = async (): Promise<void> => {
      while (!stop) {
        await caller
          .ref('pool')
          .ask('job', null, { timeoutMs: 20_000 })
          .then(
            (by: unknown) => answers.set(by, (answers.get(by) ?? 0) + 1),
            (err: Error & { code?: string }) => failures.push(err),
          );
      }
    };
    const lanes = Array.from({ length: 8 }, lane);
    await until('both hosts answer', () => (answers.get('stopped') ?? 0) > 20 && (answers.get('stays') ?? 0) > 20);
    stoppedEngine.mute = true;
    // (NATS would go on handing it its share of the name's queue group: every lane would wait on it in turn)
    await until(
      'the stopped host is forgotten, and the asks it held ended',
      () => caller.cluster!.directory.holdersOf('pool').length === 1 && failures.length === stoppedEngine.dropped,
      10_000,
    );
    const failed = failures.length;
    const answered = answers.get('stays')!;
    await until('asks go on with the host that stays', () => answers.get('stays')! > answered + 200);
    stop = true;
    await Promise.all(lanes);
    expect(failed).toBeGreaterThan(0);
    expect(failures.length).toBe(failed);
    for (const err of failures) expect(err).toMatchObject({ code: 'ACTOR_STOPPED' });
    // tells too: NATS would hand it its share of them, lost, until the server closed its connection
    for (let i = 0; i < 200; i++) caller.ref('pool').tell('note', i);
    await until('every tell reached the host that stays', () => notes === 200, 5000);
    expect(stoppedEngine.droppedTells).toBe(0);
  });

  it('broadcast topics fan out to every listening host', async () => {
    const cluster = clusterName();
    const a = await host(cluster);
    const b = await host(cluster);
    const c = await host(cluster);
    const atB = firstValueFrom(b.cluster!.topic$<{ link: string }>('links').pipe(take(2), toArray()));
    const atC = firstValueFrom(c.cluster!.topic$<{ link: string }>('links').pipe(take(2), toArray()));
    await sleep(200);
    await a.cluster!.engine.flush();
    a.cluster!.broadcast('links', { link: 'up' });
    a.cluster!.broadcast('links', { link: 'down' });
    for (const got of [await atB, await atC]) expect(got.map((g) => g.payload.link)).toEqual(['up', 'down']);
  });

  it("an answer that comes after its asker on another host stopped waiting is a 'late-reply' dead letter where it was made", async () => {
    const cluster = clusterName();
    const a = await host(cluster);
    const b = await host(cluster);
    await b.spawn('sleepy', { nap: async (ms: number) => (await sleep(ms), ms) });
    await until('sleepy seen', () => a.has('sleepy'));
    const letters: DeadLetter[] = [];
    b.deadLetters$.subscribe((l) => letters.push(l));
    await expect(a.ref('sleepy').ask('nap', 1600, { timeoutMs: 100 })).rejects.toBeInstanceOf(AskTimeoutError);
    await until('the late answer', () => letters.length > 0, 5000);
    expect(letters.map((l) => [l.action, l.reason])).toEqual([['nap', 'late-reply']]);
  });

  it('a host serving more names than one NATS message holds announces them in parts: the others know and reach them all, and keep the host', async () => {
    const cluster = clusterName();
    const a = await host(cluster);
    const b = await host(cluster);
    const count = 40_000; // ~1.2 MB of names: over the server's 1 MiB max_payload in one message
    const handlers = { who: function (this: unknown) {} };
    for (let i = 0; i < count; i++) await b.spawn(`session-with-a-longish-name-${i}`, handlers);
    await until('all seen', () => a.has(`session-with-a-longish-name-${count - 1}`) && a.has('session-with-a-longish-name-0'), 10_000);
    await b.spawn('echo', { echo: (m: number) => m });
    await until('echo seen', () => a.has('echo'));
    expect(await a.ref('echo').ask('echo', 5)).toBe(5);
    await sleep(1000); // five heartbeats of b: still known (each refreshes it)
    expect(a.cluster!.directory.snapshot().find((n) => n.names.includes('echo'))?.names).toHaveLength(count + 1);
  });

  it("whileDisconnected 'retry': an ask made while the server is away is sent once it is back, and answered", async () => {
    await onOwnServer({ whileDisconnected: 'retry' }, async (a, b, server) => {
      await b.spawn('echo', { echo: (m: number) => m });
      await until('echo seen', () => a.has('echo'));
      await server.stop();
      await until('a notices', () => !a.cluster!.connected);
      const asked = a.ref('echo').ask('echo', 9, { timeoutMs: 60_000 });
      await sleep(300);
      await server.run();
      expect(await asked).toBe(9);
    });
  });

  it("whileDisconnected 'retry': tells made while the server is away arrive once it is back, in order with asks; those still held at close are dead letters", async () => {
    await onOwnServer({ whileDisconnected: 'retry' }, async (a, b, server) => {
      const got: unknown[] = [];
      await b.spawn('log', { note: (m: number) => void got.push(m), ask: (m: number) => (got.push(`ask ${m}`), m) });
      await until('log seen', () => a.has('log'));
      await server.stop();
      await until('a notices', () => !a.cluster!.connected);
      const log = a.ref('log');
      log.tell('note', 1);
      const asked = log.ask('ask', 2, { timeoutMs: 60_000 });
      log.tell('note', 3);
      await sleep(300);
      await server.run();
      expect(await asked).toBe(2);
      await until('the tells arrive', () => got.length === 3, 20_000);
      expect(got).toEqual([1, 'ask 2', 3]);

      const letters: DeadLetter[] = [];
      a.deadLetters$.subscribe((l) => letters.push(l));
      await server.stop();
      await until('a notices again', () => !a.cluster!.connected);
      log.tell('note', 4);
      await a.close();
      expect(letters.map((l) => [l.to, l.reason])).toEqual([['log', 'closed']]);
      expect(got).toEqual([1, 'ask 2', 3]);
    });
  });

  it("whileDisconnected 'retry': an ask aborted during an outage is not sent once the cluster is back, neither one made then nor one sent before it", async () => {
    await onOwnServer({ whileDisconnected: 'retry' }, async (a, b, server) => {
      const handled: number[] = [];
      let started = 0;
      let release: () => void = () => {};
      const held = new Promise<void>((resolve) => (release = resolve));
      const slow = async (m: number): Promise<number> => {
        started++;
        await held;
        handled.push(m);
        return m;
      };
      await b.spawn('log', { note: (m: number) => (handled.push(m), m), slow });
      await until('log seen', () => a.has('log'));
      const letters: DeadLetter[] = [];
      a.deadLetters$.subscribe((l) => letters.push(l));
      const log = a.ref('log');
      const sentBefore = new AbortController();
      // Sent and taken in before the outage; its answer is what the outage may lose, so 'retry' would send it again.
      const first = log.ask('slow', 1, { timeoutMs: 60_000, signal: sentBefore.signal });
      await until('b has it', () => started === 1);
      await server.stop();
      await until('a notices', () => !a.cluster!.connected);
      const madeMeanwhile = new AbortController();
      const second = log.ask('note', 2, { timeoutMs: 60_000, signal: madeMeanwhile.signal });
      const kept = log.ask('note', 3, { timeoutMs: 60_000 });
      sentBefore.abort();
      madeMeanwhile.abort();
      await expect(first).rejects.toBeInstanceOf(AskAbortedError);
      await expect(second).rejects.toBeInstanceOf(AskAbortedError);
      await sleep(300);
      await server.run();
      await until('both back', () => a.cluster!.connected && b.cluster!.connected);
      release(); // (the actor takes one message at a time: 3 waits behind 1)
      expect(await kept).toBe(3);
      await sleep(500);
      // 1 once (taken in before the outage and not again), 2 never
      expect(handled.sort()).toEqual([1, 3]);
      // the answer to 1 still came: a late reply where it was asked, as for an ask failed there
      await until('the late answer', () => letters.length > 0, 5000);
      expect(letters.map((l) => [l.action, l.reason])).toEqual([['slow', 'late-reply']]);
    });
  });

  it("whileDisconnected 'retry': asks held during an outage for a host that died meanwhile go to another host serving the name once the cluster is back", async () => {
    const server = await NatsServer.start();
    try {
      const cluster = clusterName();
      const options = { servers: server.url, whileDisconnected: 'retry' as const };
      const a = await host(cluster, options);
      const [dies, diesEngine] = await faultyHost(cluster, options);
      const stays = await host(cluster, options);
      await dies.spawn('pool', { who: () => 'dies' });
      await stays.spawn('pool', { who: () => 'stays' });
      await until('pool on two hosts', () => a.cluster!.directory.holdersOf('pool').length === 2);
      await server.stop();
      await until('a notices', () => !a.cluster!.connected);
      await diesEngine.close(); // it never comes back
      const asked = Array.from({ length: 20 }, () => a.ref('pool').ask('who', null, { timeoutMs: 60_000 }));
      await sleep(200);
      await server.run();
      expect(await Promise.all(asked)).toEqual(Array.from({ length: 20 }, () => 'stays'));
    } finally {
      await server.cleanup();
    }
  });

  it('asks while the server is away fail with ClusterUnavailableError; after it is back they succeed', async () => {
    await onOwnServer({}, async (a, b, server) => {
      await b.spawn('echo', { echo: (m: number) => m });
      await until('echo seen', () => a.has('echo'));
      const letters: DeadLetter[] = [];
      a.deadLetters$.subscribe((l) => letters.push(l));
      await server.stop();
      await until('a notices', () => !a.cluster!.connected);
      await expect(a.ref('echo').ask('echo', 1)).rejects.toBeInstanceOf(ClusterUnavailableError);
      // A loop that asks again at once on each failure still lets timers and I/O run (once, the
      // failures came in microtasks: the loop starved the NATS client's reconnect for good).
      let ticked = false;
      setTimeout(() => (ticked = true), 10);
      const giveUpAt = Date.now() + 1000;
      while (!ticked && Date.now() < giveUpAt)
        await a
          .ref('echo')
          .ask('echo', 1)
          .catch(() => undefined);
      expect(ticked).toBe(true);
      await server.run();
      await until('a reconnects', () => a.cluster!.connected && b.cluster!.connected, 20_000);
      // b re-subscribed and re-announced by itself
      let value: unknown;
      for (let i = 0; i < 100 && value !== 7; i++)
        value = await a
          .ref('echo')
          .ask('echo', 7, { timeoutMs: 2000 })
          .catch(() => undefined);
      expect(value).toBe(7);
    });
  });
});

/** A CA and a server certificate signed by it for 127.0.0.1 and localhost (the client checks a server given by IP address against "localhost"), made with openssl in `dir`. */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const at = (f: string): string => join(dir, f);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  execFileSync('openssl', ['req', '-x509', ...ec, '-keyout', at('ca.key'), '-out', at('ca.pem'), '-days', '1', '-subj', '/CN=mpbus test CA'], {
    stdio: 'ignore',
  });
  execFileSync('openssl', ['req', ...ec, '-keyout', at('server.key'), '-out', at('server.csr'), '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
  writeFileSync(at('san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  execFileSync(
    'openssl',
    [
      'x509',
      '-req',
      '-in',
      at('server.csr'),
      '-CA',
      at('ca.pem'),
      '-CAkey',
      at('ca.key'),
      '-CAcreateserial',
      '-out',
      at('server.pem'),
      '-days',
      '1',
      '-extfile',
      at('san.ext'),
    ],
    { stdio: 'ignore' },
  );
  return { ca: at('ca.pem'), cert: at('server.pem'), key: at('server.key') };
}

/** An actor system joined to `cluster` with `options` whose start is expected to fail: its error. */
async function failedHost(cluster: string, options: Partial<ClusterOptions>): Promise<Error & { code?: string }> {
  const system = new ActorSystem({ transport: new InProcessHub().connect(), cluster: { servers: natsServer().url, name: cluster, ...options } });
  systems.push(system);
  return system.ready().then(
    () => {
      throw new Error('the host joined the cluster');
    },
    (err: Error & { code?: string }) => err,
  );
}

describe('cluster: credentials and TLS on the NATS connection', () => {
  it('a server that requires a user and password is reached with cluster.nats.user and pass, or user:pass@ in the URL; a wrong password fails naming the credentials, without showing them', async () => {
    const server = await NatsServer.start('127.0.0.1', ['--user', 'mp', '--pass', 's3cret']);
    try {
      const cluster = clusterName();
      const a = await host(cluster, { servers: server.url, nats: { user: 'mp', pass: 's3cret' } });
      const b = await host(cluster, { servers: `nats://mp:s3cret@127.0.0.1:${server.port}` });
      await b.spawn('echo', { echo: (n: number) => n });
      await until('echo on b seen by a', () => a.has('echo'));
      expect(await a.ref('echo').ask('echo', 3)).toBe(3);
      const wrong = await failedHost(cluster, { servers: `nats://mp:nope@127.0.0.1:${server.port}` });
      expect(wrong.code).toBe('CLUSTER_UNAVAILABLE');
      expect(wrong.message).toMatch(/credentials the servers require/);
      expect(wrong.message).not.toContain('nope');
      const none = await failedHost(cluster, { servers: server.url });
      expect(none.message).toMatch(/credentials the servers require/);
    } finally {
      await server.cleanup();
    }
  });

  it('TLS: hosts reach a server that requires it with its CA (tls:// or cluster.nats.tls); without the CA, or asked of a server without TLS, the start fails and nothing goes in plaintext', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mpbus-tls-'));
    const { ca, cert, key } = makeCertificates(dir);
    const server = await NatsServer.start('127.0.0.1', ['--tls', '--tlscert', cert, '--tlskey', key]);
    try {
      const cluster = clusterName();
      const a = await host(cluster, { servers: `tls://127.0.0.1:${server.port}`, nats: { tls: { caFile: ca } } });
      const b = await host(cluster, { servers: server.url, nats: { tls: { ca: readFileSync(ca, 'utf8') } } });
      await b.spawn('echo', { echo: (n: number) => n });
      await until('echo on b seen by a', () => a.has('echo'));
      expect(await a.ref('echo').ask('echo', 4)).toBe(4);
      const noCa = await failedHost(cluster, { servers: `tls://127.0.0.1:${server.port}` });
      expect(noCa.code).toBe('CLUSTER_UNAVAILABLE');
      expect(noCa.message).toMatch(/caFile/);
      // The file's own server has no TLS: tls:// is refused there, not used in plaintext.
      const plain = await failedHost(cluster, { servers: natsServer().url.replace('nats://', 'tls://') });
      expect(plain.code).toBe('CLUSTER_UNAVAILABLE');
      expect(plain.message).toMatch(/offers no TLS/);
    } finally {
      await server.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
