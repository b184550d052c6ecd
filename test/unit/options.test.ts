/**
 * Every public numeric and enumerated option of the actor layer, walked with bad values: each is
 * INVALID_OPTION naming the option, before anything is started (no DPDK needed: the checks run
 * first). Timeouts have one meaning: a number of ms from 1 to 2^31-1; grace periods may be 0.
 * Also what JavaScript callers can pass where the types say otherwise (a string for options, a
 * number for an action, handlers that are not functions), and spawns that fail part way.
 */
import { describe, expect, it } from 'vitest';
import { Subject } from 'rxjs';
import {
  ActorSystem,
  ClusterTransport,
  InProcessHub,
  MailboxSystem,
  MailboxTransport,
  MpBus,
  MpBusError,
  Runtime,
  startActorSystem,
  type AnyContract,
  type Handlers,
  type RouterOptions,
  type SpawnOptions,
  type SupervisionStrategy,
  groupMetrics,
} from '../../src/index.js';
import type { ClusterEngine } from '../../src/cluster/engine.js';

const notNumbers: unknown[] = [NaN, Infinity, -Infinity, '5', true, 10n];
const badTimeouts: unknown[] = [...notNumbers, 0, -1, 2 ** 31, 3e9];
const badGraces: unknown[] = [...notNumbers, -1, 2 ** 31];
const badInts = (min: number, max: number): unknown[] => [...notNumbers, min - 1, max + 1, min + 0.5];

function refuses(name: string, make: () => unknown): void {
  let thrown: unknown;
  try {
    make();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, `${name} was accepted`).toMatchObject({ code: 'INVALID_OPTION', message: expect.stringContaining(name) });
}

async function refusesAsync(name: string, make: () => Promise<unknown>): Promise<void> {
  await expect(make(), name).rejects.toMatchObject({ code: 'INVALID_OPTION', message: expect.stringContaining(name) });
}

const system = (options: ConstructorParameters<typeof ActorSystem>[0] = {}): ActorSystem =>
  new ActorSystem({ transport: new InProcessHub().connect(), ...options });

describe('actor system options', () => {
  it('askTimeoutMs and goneGraceMs', () => {
    for (const v of badTimeouts) refuses('askTimeoutMs', () => system({ askTimeoutMs: v as number }));
    for (const v of badGraces) refuses('goneGraceMs', () => system({ goneGraceMs: v as number }));
    expect(() => system({ goneGraceMs: 0, askTimeoutMs: 2 ** 31 - 1 })).not.toThrow();
  });

  it("an ask's timeoutMs, and close's", async () => {
    const s = system();
    const ref = await s.spawn('echo', { echo: (m: unknown) => m });
    for (const v of badTimeouts) await refusesAsync('ask timeoutMs', () => ref.ask('echo', 1, { timeoutMs: v as number }));
    await expect(ref.ask('echo', 1, { timeoutMs: 2 ** 31 - 1 })).resolves.toBe(1);
    await expect(ref.ask('echo', 2, { timeoutMs: 0.5 + 1 })).resolves.toBe(2);
    // rejected, not thrown: `await system.close(...)` is how it is called
    for (const v of badGraces) await refusesAsync('close timeoutMs', () => s.close({ timeoutMs: v as number }));
    await s.close({ timeoutMs: 0 });
  });

  it('supervision and groups of spawn', async () => {
    const s = system();
    await refusesAsync('strategy', () => s.spawn('a', { x: () => 1 }, { supervision: { strategy: 'retry' as 'stop' } }));
    for (const v of badInts(0, 1_000_000))
      await refusesAsync('maxRestarts', () => s.spawn('b', { x: () => 1 }, { supervision: { strategy: 'restart', maxRestarts: v as number } }));
    for (const v of badTimeouts)
      await refusesAsync('withinMs', () => s.spawn('c', { x: () => 1 }, { supervision: { strategy: 'restart', withinMs: v as number } }));
    for (const v of badGraces)
      await refusesAsync('backoffMs', () => s.spawn('d', { x: () => 1 }, { supervision: { strategy: 'restart', backoffMs: v as number } }));
    await expect(s.spawn('e', { x: () => 1 }, { groups: 'workers' as unknown as string[] })).rejects.toMatchObject({ code: 'INVALID_ACTOR' });
    await refusesAsync("actor 'f' supervision", () => s.spawn('f', { x: () => 1 }, { supervision: 'restart' as unknown as SupervisionStrategy }));
    await refusesAsync("spawn('g') options", () => s.spawn('g', { x: () => 1 }, 'fast' as unknown as SpawnOptions));
    await refusesAsync("spawn('g') options", () => s.spawn('g', { x: () => 1 }, null as unknown as SpawnOptions));
    await s.close();
  });

  it('spawn: a name, and handlers that are functions (an object, or what a function returns)', async () => {
    const s = system();
    const invalidActor = (message: string): unknown => expect.objectContaining({ code: 'INVALID_ACTOR', message: expect.stringContaining(message) });
    await expect(s.spawn('', { x: () => 1 })).rejects.toEqual(invalidActor('must not be empty'));
    await expect(s.spawn('h', { a: 1 } as unknown as Handlers<AnyContract>)).rejects.toEqual(invalidActor("the handler of 'a' must be a function"));
    await expect(s.spawn('h', [() => 1] as unknown as Handlers<AnyContract>)).rejects.toEqual(invalidActor('an array'));
    await expect(s.spawn('h', () => ({ a: 'x' }) as unknown as Handlers<AnyContract>)).rejects.toEqual(invalidActor("the handler of 'a' must be a function"));
    // none of them is left behind: the name is free
    expect(s.has('h')).toBe(false);
    await expect(s.spawn('h', { a: () => 1 })).resolves.toBeDefined();
    await s.close();
  });

  it('a spawn whose groups cannot be joined leaves nothing: the name is free and no group keeps it', async () => {
    const s = system();
    const hub = new InProcessHub();
    const transport = hub.connect();
    const join = transport.join.bind(transport);
    const t = new ActorSystem({
      transport: Object.assign(transport, {
        join: (g: string, n: string) =>
          g === 'bad'
            ? (() => {
                throw new MpBusError('INVALID_ACTOR', 'group too long');
              })()
            : join(g, n),
      }),
    });
    await expect(t.spawn('j', { x: () => 1 }, { groups: ['good', 'bad'] })).rejects.toMatchObject({ code: 'INVALID_ACTOR' });
    expect(t.has('j')).toBe(false);
    expect(transport.members('good')).toEqual([]);
    await expect(t.spawn('j', { x: () => 1 }, { groups: ['good'] })).resolves.toBeDefined();
    await Promise.all([s.close(), t.close()]);
  });

  it('a spawn that was still starting when its system closed rejects with SYSTEM_CLOSED', async () => {
    const s = system();
    const spawning = s.spawn('late', { x: () => 1 }, { preStart: () => new Promise((r) => setTimeout(r, 100)) });
    await new Promise((r) => setTimeout(r, 10));
    await s.close();
    await expect(spawning).rejects.toMatchObject({ code: 'SYSTEM_CLOSED' });
  });

  it('ask and tell: an action that is not a string, options that are not an object', async () => {
    const s = system();
    const ref = s.ref('anyone');
    const untyped = ref as unknown as { ask(a: unknown, m?: unknown, o?: unknown): Promise<unknown>; tell(a: unknown, m?: unknown): void };
    await expect(untyped.ask(42, null)).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringContaining('action as a string') });
    expect(() => untyped.tell(undefined)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    await refusesAsync('ask options', () => untyped.ask('x', 1, 'fast'));
    await refusesAsync('ask options', () => untyped.ask('x', 1, null));
    await refusesAsync('close options', () => s.close(null as unknown as { timeoutMs: number }));
    await s.close();
  });

  it('router options', async () => {
    const s = system();
    refuses('router strategy', () => s.router('r1', { strategy: 'random' as 'round-robin' }));
    for (const v of badInts(0, 1000)) refuses('router maxRedeliveries', () => s.router('r2', { maxRedeliveries: v as number }));
    for (const v of badTimeouts) refuses('router workerTimeoutMs', () => s.router('r3', { workerTimeoutMs: v as number }));
    for (const v of badInts(1, 4096)) refuses('router virtualNodes', () => s.router('r4', { virtualNodes: v as number }));
    refuses('router key', () => s.router('r5', { key: 'id' as unknown as () => string }));
    refuses('router workers', () => s.router('r6', { workers: 'w1' as unknown as string[] }));
    refuses('router group', () => s.router('r7', { group: '' }));
    refuses("router 'r8' options", () => s.router('r8', null as unknown as RouterOptions));
    await s.close();
  });
});

describe('transport options', () => {
  it('mailbox transport: mailboxCapacity, pollMs and idlePollMs, checked before anything is attached', () => {
    for (const v of badInts(1, 0x7fffffff)) refuses('mailboxCapacity', () => new MailboxTransport({ mailboxCapacity: v as number }));
    for (const v of badTimeouts) refuses('pollMs', () => new MailboxTransport({ pollMs: v as number }));
    for (const v of badTimeouts) refuses('idlePollMs', () => new MailboxTransport({ idlePollMs: v as number }));
    // the longest wait may not be shorter than the shortest, given or by default (800)
    refuses('idlePollMs (100) must be at least pollMs (200)', () => new MailboxTransport({ pollMs: 200, idlePollMs: 100 }));
    refuses('idlePollMs (800) must be at least pollMs (1000)', () => new MailboxTransport({ pollMs: 1000, idlePollMs: 800 }));
  });

  it('cluster: heartbeatMs, nodeTimeoutMs, whileDisconnected, exported', () => {
    const local = new InProcessHub().connect();
    const engine = {} as ClusterEngine; // never reached: the options are refused first
    const cluster = (o: Record<string, unknown>): ClusterTransport => new ClusterTransport(local, { servers: 'nats://127.0.0.1:1', name: 'c', engine, ...o });
    for (const v of badTimeouts) refuses('cluster.heartbeatMs', () => cluster({ heartbeatMs: v }));
    for (const v of badTimeouts) refuses('cluster.nodeTimeoutMs', () => cluster({ nodeTimeoutMs: v }));
    refuses('cluster.nodeTimeoutMs', () => cluster({ heartbeatMs: 1000, nodeTimeoutMs: 500 }));
    refuses('cluster.whileDisconnected', () => cluster({ whileDisconnected: 'queue' }));
    refuses('cluster.exported', () => cluster({ exported: ['a'] }));
  });

  it("cluster: its name, servers, the NATS client's options and the engine (a negative ping interval pinged without pause)", () => {
    const local = new InProcessHub().connect();
    const cluster = (o: Record<string, unknown>): ClusterTransport => new ClusterTransport(local, { servers: 'nats://127.0.0.1:1', name: 'c', ...o });
    refuses('cluster.name is required', () => cluster({ name: undefined }));
    refuses('(got 5, a number)', () => cluster({ name: 5 }));
    refuses("(got 'no spaces')", () => cluster({ name: 'no spaces' }));
    for (const servers of [[], '', [''], 5, ['nats://a:1', 7]]) refuses('cluster.servers must name at least one NATS server', () => cluster({ servers }));
    for (const v of badGraces) refuses('cluster.nats.reconnectTimeWaitMs', () => cluster({ nats: { reconnectTimeWaitMs: v } }));
    for (const v of badInts(-1, 2 ** 31 - 1)) refuses('cluster.nats.maxReconnectAttempts', () => cluster({ nats: { maxReconnectAttempts: v } }));
    for (const v of badTimeouts) refuses('cluster.nats.connectTimeoutMs', () => cluster({ nats: { connectTimeoutMs: v } }));
    for (const v of [...badTimeouts, 99])
      refuses('cluster.nats.pingIntervalMs must be a number of milliseconds from 100', () => cluster({ nats: { pingIntervalMs: v } }));
    for (const v of ['', 5]) refuses('cluster.nats.connectionName', () => cluster({ nats: { connectionName: v } }));
    // An address the client would take only to fail once DPDK had started, or read otherwise than written.
    for (const servers of ['not a url at all', 'nats://127.0.0.1:99999', 'nats://h:0', 'nats://h:1/path', 'h:abc', ['nats://a:1', 'nats://:2']])
      refuses('is not a NATS server address', () => cluster({ servers }));
    refuses('uses http://: write nats://host:port', () => cluster({ servers: 'http://127.0.0.1:4222' }));
    refuses('"ws://***@h:1" uses ws://', () => cluster({ servers: 'ws://u:secret@h:1' })); // (the password not shown)
    for (const tls of [5, 'yes', null, [], { caFile: 5 }, { handshakeFirst: 'no' }, { certFile: '/etc/hostname' }, { verify: true }])
      refuses('cluster.nats.tls', () => cluster({ nats: { tls } }));
    refuses('cluster.nats.tls.caFile: no file at', () => cluster({ nats: { tls: { caFile: '/nonexistent/ca.pem' } } }));
    refuses('cluster.nats.tls is false, but cluster.servers has a tls:// address', () => cluster({ servers: 'tls://h:1', nats: { tls: false } }));
    for (const [nats, why] of [
      [{ user: 'u' }, 'cluster.nats.user needs cluster.nats.pass'],
      [{ pass: 'p' }, 'cluster.nats.pass needs cluster.nats.user'],
      [{ user: 'u', pass: 'p', token: 't' }, 'token and user/pass exclude each other'],
      [{ token: 5 }, 'cluster.nats.token must be a non-empty string'],
      [{ authenticator: 'creds' }, 'cluster.nats.authenticator must be a function'],
      [{ authenticator: [() => ({}), 5] }, 'cluster.nats.authenticator must be a function'],
    ] as const)
      refuses(why, () => cluster({ nats }));
    refuses('credentials in a URL and cluster.nats has them too', () => cluster({ servers: 'nats://u:p@h:1', nats: { token: 't' } }));
    refuses('different credentials in different URLs', () => cluster({ servers: ['nats://u:p@h:1', 'nats://u:q@h:2'] }));
    refuses('cluster.engine must be a ClusterEngine', () => cluster({ engine: {} }));
    refuses('flush(), close()', () => cluster({ engine: { connect: () => Promise.resolve(), status$: new Subject() } }));
    refuses('cluster.engine must be a ClusterEngine', () => cluster({ engine: 'nats' }));
  });
});

describe('groupMetrics', () => {
  it('refuses a file prefix that is not a group name (it read as a group that is down), and options it does not have', () => {
    for (const prefix of ['../dpdk/x', 'a/b', '.hidden', 'x'.repeat(49), '', 5])
      refuses('groupMetrics filePrefix must be', () => groupMetrics({ filePrefix: prefix as string }));
    refuses("groupMetrics options has no option 'prefix'", () => groupMetrics({ prefix: 'x' } as never));
  });
});

describe('options that do not exist', () => {
  /** Refused as INVALID_OPTION naming where, the key given and the option meant. */
  const misspelled = (where: string, key: string, meant: string): unknown =>
    expect.objectContaining({ code: 'INVALID_OPTION', message: expect.stringContaining(`${where} has no option '${key}' (did you mean '${meant}'?)`) });
  const untyped = <T>(o: Record<string, unknown>): T => o as T;

  it('are refused where they are given, naming the closest option (a typo would leave a default in force unseen)', async () => {
    expect(() => system(untyped({ askTimeout: 500 }))).toThrow(misspelled('ActorSystem options', 'askTimeout', 'askTimeoutMs'));
    const s = system();
    const ref = await s.spawn('echo', { echo: (m: unknown) => m });
    await expect(ref.ask('echo', 1, untyped({ timeout: 50 }))).rejects.toEqual(misspelled('ask options', 'timeout', 'timeoutMs'));
    // one options object shared by several asks (its keys are checked at its first use); another object is checked again
    const shared = { timeoutMs: 1000 };
    await expect(Promise.all([ref.ask('echo', 1, shared), ref.ask('echo', 2, shared)])).resolves.toEqual([1, 2]);
    await expect(ref.ask('echo', 1, untyped({ timeoutMs: 1000, sigal: undefined }))).rejects.toEqual(misspelled('ask options', 'sigal', 'signal'));
    await expect(s.spawn('x', { x: () => 1 }, untyped({ group: ['g'] }))).rejects.toEqual(misspelled("spawn('x') options", 'group', 'groups'));
    await expect(s.spawn('x', { x: () => 1 }, { supervision: untyped({ strategy: 'restart', maxRestart: 1 }) })).rejects.toEqual(
      misspelled("actor 'x' supervision", 'maxRestart', 'maxRestarts'),
    );
    await expect(s.spawn('x', { x: () => 1 }, { supervision: untyped({ strategy: 'stop', maxRestarts: 1 }) })).rejects.toMatchObject({
      message: expect.stringContaining("has no option 'maxRestarts'"),
    });
    expect(() => s.router('r', untyped<RouterOptions>({ strategey: 'least-loaded' }))).toThrow(misspelled("router 'r' options", 'strategey', 'strategy'));
    await expect(s.close(untyped({ timeout: 0 }))).rejects.toEqual(misspelled('close options', 'timeout', 'timeoutMs'));
    await s.close();
  });

  it('of the runtime, the mailboxes, the rte_mp bus and the cluster, before anything is started or attached', async () => {
    await expect(Runtime.start(untyped({ filePrefx: 'x' }))).rejects.toEqual(misspelled('Runtime.start options', 'filePrefx', 'filePrefix'));
    await expect(startActorSystem(untyped({ filePrefx: 'x' }))).rejects.toEqual(misspelled('startActorSystem options', 'filePrefx', 'filePrefix'));
    // set by startActorSystem itself: not options of it
    await expect(startActorSystem(untyped({ afterClose: () => {} }))).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: expect.stringContaining("no option 'afterClose'"),
    });
    await expect(startActorSystem({ mailboxes: untyped({ mailboxCapcity: 8 }) })).rejects.toEqual(
      misspelled('startActorSystem mailboxes', 'mailboxCapcity', 'mailboxCapacity'),
    );
    expect(() => new MailboxTransport(untyped({ spinUS: 0 }))).toThrow(misspelled('MailboxTransport options', 'spinUS', 'spinUs'));
    expect(() => MailboxSystem.open(untyped({ pollMs: 100 }))).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', message: expect.stringContaining("MailboxSystem.open options has no option 'pollMs'") }),
    );
    expect(() => MpBus.open(untyped({ lane: 4 }))).toThrow(misspelled('MpBus.open options', 'lane', 'lanes'));
    const local = new InProcessHub().connect();
    const engine = {} as ClusterEngine;
    expect(() => new ClusterTransport(local, untyped({ servers: 'nats://127.0.0.1:1', name: 'c', engine, heartbeatMS: 10 }))).toThrow(
      misspelled('cluster', 'heartbeatMS', 'heartbeatMs'),
    );
    expect(() => new ClusterTransport(local, { servers: 'nats://127.0.0.1:1', name: 'c', engine, nats: untyped({ pingInterval: 10 }) })).toThrow(
      misspelled('cluster.nats', 'pingInterval', 'pingIntervalMs'),
    );
  });
});
