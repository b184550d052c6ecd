/**
 * An actor's preStart and postStop around stops, restarts and the system's close, in one
 * process: postStop runs once per incarnation, after its preStart, and only if that succeeded;
 * a hook that hangs does not keep the close from ending by its deadline, but the messages left
 * queued are all dropped first, over several turns; a stopped actor's context spawns no children.
 */
import { describe, expect, it } from 'vitest';
import 'reflect-metadata';
import { Actor, ActorSystem, Handle, type ActorContext } from '../../src/index.js';
import { checkSupervision, restartDelay } from '../../src/actors/supervision.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe("an actor's hooks", () => {
  it('a postStop that never ends does not keep close({ timeoutMs }) from ending soon after its deadline', async () => {
    const system = new ActorSystem();
    await system.spawn('hangs', { ping: () => 'pong' }, { postStop: () => new Promise<void>(() => undefined) });
    const t0 = performance.now();
    await system.close({ timeoutMs: 200 });
    expect(performance.now() - t0).toBeLessThan(1500);
  });

  it('a close with 30,000 asks queued at an actor busy past the deadline: each is a dead letter and fails before the close ends, over several turns, then postStop runs', async () => {
    const system = new ActorSystem();
    const log: string[] = [];
    const ref = await system.spawn('deep', { wait: () => new Promise<void>(() => undefined) }, { postStop: () => void log.push('postStop') });
    let letters = 0;
    system.deadLetters$.subscribe((l) => {
      if (l.reason === 'closed') letters++;
    });
    const count = 30_000;
    const asked = Array.from({ length: count }, () => ref.ask('wait').catch((e: unknown) => (e as { code?: string }).code));
    // What each turn of the event loop saw of the dead letters while the close ran.
    const seen: number[] = [];
    let watching = true;
    const watch = (): void => {
      seen.push(letters);
      if (watching) setImmediate(watch);
    };
    setImmediate(watch);
    await system.close({ timeoutMs: 50 });
    watching = false;
    expect(letters).toBe(count);
    expect(log).toEqual(['postStop']);
    expect(new Set(await Promise.all(asked))).toEqual(new Set(['SYSTEM_CLOSED']));
    expect(seen.some((n) => n > 0 && n < count)).toBe(true);
  });

  it('postStop runs once for an incarnation stopped while it waits to restart', async () => {
    const system = new ActorSystem();
    const log: string[] = [];
    const ref = await system.spawn(
      'restarts',
      { crash: () => Promise.reject(new Error('x')) },
      { supervision: { strategy: 'restart', backoffMs: 1000 }, postStop: () => void log.push('postStop') },
    );
    await ref.ask('crash').catch(() => undefined);
    await sleep(20);
    await system.close({ timeoutMs: 300 });
    expect(log).toEqual(['postStop']);
  });

  it('a stop while preStart runs waits for it: postStop comes after preStart', async () => {
    const system = new ActorSystem();
    const log: string[] = [];
    const spawned = system
      .spawn(
        'slow-start',
        { ping: () => 'pong' },
        {
          preStart: async () => {
            log.push('preStart begin');
            await sleep(100);
            log.push('preStart end');
          },
          postStop: () => void log.push('postStop'),
        },
      )
      .catch((err: { code?: string }) => err.code);
    await sleep(20);
    await system.close({ timeoutMs: 500 });
    expect(await spawned).toBe('SYSTEM_CLOSED');
    expect(log).toEqual(['preStart begin', 'preStart end', 'postStop']);
  });

  it('a preStart that throws: the spawn fails ACTOR_START_FAILED with what it threw as cause; no postStop for that incarnation, no events', async () => {
    const system = new ActorSystem();
    let postStops = 0;
    const dbDown = Object.assign(new Error('db down'), { code: 'DB_DOWN' });
    const events: string[] = [];
    system.events$.subscribe((e) => events.push(e.type));
    const failed = await system
      .spawn('bad-start', { ping: () => 'pong' }, { preStart: () => Promise.reject(dbDown), postStop: () => void postStops++ })
      .catch((err: unknown) => err);
    expect(failed).toMatchObject({ code: 'ACTOR_START_FAILED', message: "actor 'bad-start' failed to start: its preStart threw: db down", cause: dbDown });
    expect(system.has('bad-start')).toBe(false);
    expect(postStops).toBe(0);
    expect(events, "an actor that never started is neither 'spawned' nor 'stopped'").toEqual([]);
    await system.close();
  });

  it('a class actor compiled without constructor parameter types (tsx, esbuild): INVALID_ACTOR says how to give them', async () => {
    class Service {
      readonly x = 1;
    }
    // decorated by calls, not by decorator syntax: no design:paramtypes is recorded, as under tsx
    class NeedsService {
      constructor(private readonly service: Service) {}
      x(): number {
        return this.service.x;
      }
    }
    Handle('x')(NeedsService.prototype, 'x', Object.getOwnPropertyDescriptor(NeedsService.prototype, 'x')!);
    Actor('needs-service')(NeedsService);
    const system = new ActorSystem();
    await expect(system.spawn(NeedsService)).rejects.toMatchObject({
      code: 'INVALID_ACTOR',
      message: expect.stringContaining('emitDecoratorMetadata (tsc with that option; tsx and esbuild record none: there, give each parameter @inject(Type))'),
    });
    await system.close();
  });

  it("a stopped actor's context spawns no children (they would outlive it, unseen by the close)", async () => {
    const system = new ActorSystem();
    let kept: ActorContext | undefined;
    const parent = await system.spawn('parent', { ping: () => 'pong' }, { preStart: (ctx) => void (kept = ctx) });
    await system.stop(parent);
    await expect(kept!.spawn('orphan', { hi: () => 'hi' })).rejects.toMatchObject({ code: 'ACTOR_STOPPED' });
    expect(system.has('orphan')).toBe(false);
    await system.close();
  });
});

describe('restart backoff', () => {
  it('a backoffMs above the default cap is waited in full; one above an explicit maxBackoffMs is refused', async () => {
    expect(restartDelay({ strategy: 'restart', backoffMs: 3000 }, 1)).toBe(3000);
    expect(restartDelay({ strategy: 'restart', backoffMs: 3000 }, 2)).toBe(3000);
    expect(restartDelay({ strategy: 'restart', backoffMs: 100 }, 5)).toBe(1000);
    expect(() => checkSupervision({ strategy: 'restart', backoffMs: 3000, maxBackoffMs: 1000 }, 'supervision')).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', message: expect.stringContaining('above its maxBackoffMs') }),
    );
  });
});

describe('spawn options that would be ignored', () => {
  it('are refused: a name for a function actor, hooks given in the options of a class actor', async () => {
    const system = new ActorSystem();
    await expect(system.spawn('named', { ping: () => 'pong' }, { name: 'other' })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    @Actor('classy')
    class Classy {
      @Handle('ping') ping(): string {
        return 'pong';
      }
    }
    await expect(system.spawn(Classy, { preStart: () => undefined })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: expect.stringContaining('give the class a preStart() method'),
    });
    expect(system.has('named') || system.has('other') || system.has('classy')).toBe(false);
    await system.close();
  });
});
