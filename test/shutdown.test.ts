/**
 * Specification of how a program using mpbus ends, as its user sees it: every entry point (a bare
 * Runtime, startActorSystem, startActorSystem with the cluster bridge) under every load (idle,
 * 1,000 asks in flight, a timer keeping the loop alive) ends on the first SIGINT, SIGTERM, SIGHUP or SIGUSR2
 * within a second, killed by that signal, leaving no group files, whenever it comes (during the
 * start too); the application's own listener gets the first signal, and a second one still ends
 * the process, but SIGHUP and SIGUSR2 stay the application's while it listens to them; runtime.close() and
 * system.close() in any order never wait for themselves.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TestGroup } from './harness/group.js';
import { useNatsServer } from './harness/nats.js';
import { fixturePath } from './harness/paths.js';
import { startScript, startShutdownTargetAsPid1, type ScriptEnd } from './harness/script.js';
import { useTestGroups } from './harness/use-groups.js';
import type { ShutdownTarget } from './fixtures/shutdown-target.js';
import type { CloseOrder } from './fixtures/close-order.js';
import type { SignalMoment } from './fixtures/signal-moment.js';
import { pollUntil, sleep } from './harness/wait.js';

const group = useTestGroups();
const natsServer = useNatsServer();

type Ended = ScriptEnd;

/** Starts `script` with `arg` as a tracked process of `g`; resolves once it printed `ready`. */
async function launch(g: TestGroup, script: string, arg: unknown): Promise<{ child: ChildProcess; ended: Promise<Ended>; out: () => string }> {
  const s = await startScript(g, script, arg);
  return { child: s.child, ended: s.ended, out: s.stdout };
}

/** Starts the shutdown-target program in `g` with `target`; resolves once it is ready. */
function launchTarget(g: TestGroup, target: Omit<ShutdownTarget, 'prefix'>): ReturnType<typeof launch> {
  return launch(g, fixturePath('shutdown-target'), { prefix: g.prefix, ...target } satisfies ShutdownTarget);
}

/** Sends `signal`, resolves with how it ended and how long that took (ms). */
async function signalAndWait(p: { child: ChildProcess; ended: Promise<Ended> }, signal: NodeJS.Signals): Promise<Ended & { ms: number }> {
  const t0 = performance.now();
  p.child.kill(signal);
  const ended = await p.ended;
  return { ...ended, ms: performance.now() - t0 };
}

/** Runs the tasks, `n` at a time (the exit-time bound is about mpbus, not about a crowded 2-CPU machine). */
async function atMostAtOnce(n: number, tasks: (() => Promise<void>)[]): Promise<void> {
  const queue = [...tasks];
  await Promise.all(
    Array.from({ length: n }, async () => {
      for (let task = queue.shift(); task; task = queue.shift()) await task();
    }),
  );
}

const entries = ['runtime', 'actors', 'cluster'] as const;
const loads = ['idle', 'asks', 'timer'] as const;
/** (SIGUSR2: how nodemon stops a program's whole process tree to restart it) */
const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR2'] as const;
/** The signals an application listens to for its own graceful shutdown. */
const shutdownSignals = ['SIGINT', 'SIGTERM'] as const;

describe('the first SIGINT, SIGTERM, SIGHUP or SIGUSR2 ends the process within 1 s, as the signal means, leaving nothing', () => {
  for (const entry of entries) {
    it(`${entry}: ${signals.join(', ')} x ${loads.join(', ')}`, async () => {
      const cases = signals.flatMap((signal) => loads.map((load) => ({ signal, load })));
      await atMostAtOnce(
        2,
        cases.map(({ signal, load }) => async () => {
          const g = group(`sd${entry.slice(0, 2)}`);
          const target: ShutdownTarget = { prefix: g.prefix, entry, load, natsUrl: natsServer().url };
          const p = await launch(g, fixturePath('shutdown-target'), target);
          const r = await signalAndWait(p, signal);
          expect({ load, signal: r.signal, code: r.code }, r.stderr).toEqual({ load, signal, code: null });
          // (as on any exit Node makes, which a death by signal is not)
          expect(r.stdout.match(/exit listener \d+/g), "the application's exit listener ran once").toEqual([
            `exit listener ${128 + constants.signals[signal]}`,
          ]);
          expect(r.ms, `${entry}/${load}/${signal} took ${Math.round(r.ms)} ms`).toBeLessThan(1000);
          expect(g.leftovers()).toEqual([]);
        }),
      );
    });
  }
});

describe('as PID 1 of its PID namespace (a container whose command is node)', () => {
  // PID 1 is not killed by a signal it has no handler for: the signal mpbus sends itself once
  // the group is closed did nothing, and the process lived on, its timers keeping it alive.
  it.each(shutdownSignals)('%s closes the group and ends the process with status 128 + the signal number', async (signal) => {
    const g = group('sdpid1');
    // (PID 1 inside: the one a container's runtime signals)
    const p = await startShutdownTargetAsPid1(g);
    process.kill(p.pid1, signal);
    const r = await Promise.race([p.ended, sleep(5000).then(() => 'still running' as const)]);
    expect(r === 'still running' ? r : { code: r.code, signal: r.signal }).toEqual({ code: 128 + constants.signals[signal], signal: null });
    expect(p.stdout().match(/exit listener \d+/g)).toEqual([`exit listener ${128 + constants.signals[signal]}`]);
    expect(g.leftovers()).toEqual([]);
  });
});

describe("beside signal-exit (a dependency of ora, execa, write-file-atomic, tmp), whose listeners are not the application's", () => {
  // signal-exit listens to every ending signal and ends the process only when no other listener
  // is there: taken for the application's, its listener kept the first signal from mpbus, and
  // nothing ended the process (SIGHUP never).
  it.each(['SIGINT', 'SIGTERM', 'SIGHUP'] as const)(
    'the first %s closes and ends the process as the signal means; its exit handler runs once',
    async (signal) => {
      const g = group('sdsigexit');
      const p = await launchTarget(g, { entry: 'actors', load: 'timer', signalExit: true });
      const r = await signalAndWait(p, signal);
      expect({ signal: r.signal, code: r.code }, r.stderr).toEqual({ signal, code: null });
      expect(r.ms).toBeLessThan(1000);
      expect(r.stdout.match(/signal-exit handler/g)).toHaveLength(1);
      expect(g.leftovers()).toEqual([]);
    },
  );
});

describe('when the application listens to the signal', () => {
  it.each(shutdownSignals)('%s: its listener runs its own graceful shutdown and chooses the exit code', async (signal) => {
    const g = group('sdapp');
    const p = await launchTarget(g, { entry: 'actors', load: 'asks', appListener: 'graceful' });
    const r = await signalAndWait(p, signal);
    expect(r.stdout).toContain('app-listener');
    expect({ code: r.code, signal: r.signal }, r.stderr).toEqual({ code: 0, signal: null });
    expect(r.stdout.match(/exit listener \d+/g)).toEqual(['exit listener 0']);
    expect(g.leftovers()).toEqual([]);
  });

  it.each(['SIGHUP', 'SIGUSR2'] as const)("%s, which it uses to reload: every one is the application's, and the process lives on", async (signal) => {
    const g = group('sdhup');
    const p = await launchTarget(g, { entry: 'actors', load: 'asks', appListener: 'reload' });
    for (let i = 0; i < 3; i++) {
      p.child.kill(signal);
      await sleep(200);
    }
    expect(p.child.exitCode).toBeNull();
    expect(p.out().match(new RegExp(`reloaded on ${signal}`, 'g'))).toHaveLength(3);
    const r = await signalAndWait(p, 'SIGTERM');
    expect({ code: r.code, signal: r.signal }, r.stderr).toEqual({ code: null, signal: 'SIGTERM' });
    expect(g.leftovers()).toEqual([]);
  });

  it.each([
    ['--report-on-signal', '--report-directory', /^report\..*\.json$/],
    ['--heapsnapshot-signal=SIGUSR2', '--diagnostic-dir', /\.heapsnapshot$/],
  ] as const)("SIGUSR2 that Node itself answers (%s): Node's file is written and the process lives on", async (flag, dirFlag, file) => {
    const g = group('sdusr2');
    const dir = mkdtempSync(join(tmpdir(), 'mpbus-diag-'));
    try {
      const env = ['env', `NODE_OPTIONS=${flag} ${dirFlag}=${dir}`];
      const s = await startScript(
        g,
        fixturePath('shutdown-target'),
        { prefix: g.prefix, entry: 'actors', load: 'asks' } satisfies ShutdownTarget,
        30_000,
        false,
        env,
      );
      s.child.kill('SIGUSR2');
      await pollUntil(
        "Node's file",
        () => readdirSync(dir),
        (names) => names.some((n) => file.test(n)),
      );
      await sleep(200);
      expect(s.child.exitCode).toBeNull();
      const r = await signalAndWait(s, 'SIGTERM');
      expect({ code: r.code, signal: r.signal }, r.stderr).toEqual({ code: null, signal: 'SIGTERM' });
      expect(g.leftovers()).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each(shutdownSignals)(
    "%s delivered twice a few ms apart (npm forwarding the terminal's Ctrl-C to the script it runs) is one: the application's shutdown runs to its end",
    async (signal) => {
      const g = group('sdtwice');
      const p = await launchTarget(g, { entry: 'actors', load: 'asks', appListener: 'graceful' });
      p.child.kill(signal);
      await sleep(5);
      p.child.kill(signal);
      const r = await p.ended;
      // (before, the second was taken as the user's "now": the process ended by the signal, its own shutdown cut short)
      expect({ code: r.code, signal: r.signal }, r.stderr).toEqual({ code: 0, signal: null });
      expect(p.out()).toContain('app-listener');
      expect(g.leftovers()).toEqual([]);
    },
  );

  it('a second signal during a shutdown that hangs still closes, ends the process and leaves nothing', async () => {
    const g = group('sdhang');
    const p = await launchTarget(g, { entry: 'actors', load: 'timer', appListener: 'hangs' });
    p.child.kill('SIGTERM');
    await sleep(300);
    expect(p.child.exitCode).toBeNull();
    expect(p.out()).toContain('app-listener');
    const r = await signalAndWait(p, 'SIGINT');
    expect({ code: r.code, signal: r.signal }, r.stderr).toEqual({ code: null, signal: 'SIGINT' });
    expect(r.ms).toBeLessThan(1000);
    expect(g.leftovers()).toEqual([]);
  });
});

describe('a signal at any moment, to a program that guards nothing', () => {
  // As Ctrl-C in a terminal sends it: to the whole process group, the pool's children too.
  const moments: SignalMoment['moment'][] = ['starting', 'launching', 'asking', 'retrying', 'watching'];
  it(`${moments.join(', ')}: ends as the signal means, with no stack trace, leaving nothing`, async () => {
    await atMostAtOnce(
      2,
      moments.flatMap((moment) =>
        signals.map((signal) => async () => {
          const g = group('sdmom');
          const p = await startScript(g, fixturePath('signal-moment'), { prefix: g.prefix, moment } satisfies SignalMoment, 30_000, true);
          const t0 = performance.now();
          process.kill(-p.child.pid!, signal);
          const r = { ...(await p.ended), ms: performance.now() - t0 };
          expect({ moment, code: r.code, signal: r.signal, stderr: r.stderr }).toEqual({ moment, code: null, signal, stderr: '' });
          expect(r.ms, `${moment}/${signal} took ${Math.round(r.ms)} ms`).toBeLessThan(1000);
          expect(g.leftovers()).toEqual([]);
        }),
      ),
    );
  });
});

/**
 * Sends `signal` to `pid` unless it has ended already: on a loaded machine the test's loop can be
 * held between two kills long enough for the primary to close on its signal and stop a child of
 * its pool (a CI run failed so, with ESRCH). What follows checks that every one of them ended.
 */
function signalIfThere(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** The pids of `pid`'s descendants, children first. */
function descendants(pid: number): number[] {
  let children: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`))
      children = children.concat(readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
  } catch {
    return [];
  }
  return children.concat(children.flatMap(descendants));
}

describe("every process of the program signalled at once (systemd's stop, nodemon's and pm2's kill of the process tree)", () => {
  // The pool's children are in process groups of their own (a terminal's Ctrl-C reaches the
  // primary only), but these reach each process: each closes itself while the primary stops its pool.
  const moments: SignalMoment['moment'][] = ['asking', 'naming', 'watching'];
  it(`${moments.join(', ')}: each ends as the signal means, with no stack trace, leaving nothing`, async () => {
    await atMostAtOnce(
      2,
      moments.flatMap((moment) =>
        signals.map((signal) => async () => {
          const g = group('sdtree');
          const p = await startScript(g, fixturePath('signal-moment'), { prefix: g.prefix, moment } satisfies SignalMoment, 30_000, true);
          // (the loops of asks run a while first, as a service's do when it is stopped: an ask to a
          // name this process never reached, gone by the time it is first asked, fails as
          // ACTOR_NOT_FOUND, whatever signal is on its way)
          await sleep(300);
          const tree = descendants(p.child.pid!);
          expect(tree.length, `${moment}: the pool's children`).toBeGreaterThanOrEqual(2);
          const t0 = performance.now();
          for (const pid of [p.child.pid!, ...tree]) signalIfThere(pid, signal);
          const r = { ...(await p.ended), ms: performance.now() - t0 };
          expect({ moment, code: r.code, signal: r.signal, stderr: r.stderr }).toEqual({ moment, code: null, signal, stderr: '' });
          expect(r.ms, `${moment}/${signal} took ${Math.round(r.ms)} ms`).toBeLessThan(1500);
          await pollUntil(
            `${moment}/${signal}: its children gone`,
            () => tree.filter((pid) => existsSync(`/proc/${pid}`)),
            (left) => left.length === 0,
            3000,
          );
          expect(g.leftovers()).toEqual([]);
        }),
      ),
    );
  });
});

describe('an error of the application itself while a signal ends the process', () => {
  it("ends it as Node's default does: code 1 and the error's stack, leaving nothing", async () => {
    const g = group('sdbug');
    const p = await startScript(g, fixturePath('signal-moment'), { prefix: g.prefix, moment: 'asking', ownBug: true } satisfies SignalMoment);
    const r = await signalAndWait(p, 'SIGINT');
    expect({ code: r.code, signal: r.signal }, r.stderr).toEqual({ code: 1, signal: null });
    expect(r.stderr).toMatch(/TypeError: own bug during the shutdown\n\s+at .*signal-moment\.js/);
    expect(r.stderr, 'the report points at the program, not at mpbus').not.toContain('process-end');
    expect(g.leftovers()).toEqual([]);
  });
});

describe('a program that asks again at once whenever an ask fails', () => {
  it('closing its own system: the close finishes (the failing asks let the event loop turn)', async () => {
    const g = group('sdretry');
    const p = await startScript(g, fixturePath('signal-moment'), { prefix: g.prefix, moment: 'retrying', closeItself: true } satisfies SignalMoment);
    const r = await p.ended;
    expect({ code: r.code, out: r.stdout.trim().split('\n').at(-1) }, r.stderr).toEqual({ code: 0, out: 'closed' });
    expect(g.leftovers()).toEqual([]);
  });
});

describe('runtime.close() and system.close() in any order, never waiting for themselves', () => {
  const orders: CloseOrder['order'][] = ['runtime-first', 'system-first', 'concurrent', 'twice-each', 'from-handler', 'from-close-hook', 'unowned-runtime'];
  it(orders.join(', '), async () => {
    await atMostAtOnce(
      3,
      orders.map((order) => async () => {
        const g = group('sdord');
        const p = await launch(g, fixturePath('close-order'), { prefix: g.prefix, order } satisfies CloseOrder);
        const r = await p.ended;
        expect({ order, code: r.code, out: r.stdout.trim().split('\n').at(-1) }, r.stderr).toEqual({ order, code: 0, out: 'closed' });
        expect(g.leftovers()).toEqual([]);
      }),
    );
  });
});
