/**
 * Specification of worker processes as supervised children (`system.launch()`), with real
 * processes on real hugepages: each readiness kind; a child failing at start-up (a typed error
 * with its exit code and stderr); crash restarts with backoff and a restart intensity that gives
 * up; scale up and down, a SIGKILLed child and a rolling replacement, all under load through a
 * router, every ask answered exactly once; the primary's death or close ends every child; nothing
 * is left behind (no runtime dir, no hugepage file, no child alive).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { processAlive, type TestGroup } from './harness/group.js';
import { fixturePath } from './harness/paths.js';
import { useTestGroups } from './harness/use-groups.js';
import { until } from './harness/wait.js';
import type { LaunchScenario } from './fixtures/launch-primary.js';

const group = useTestGroups();

interface Primary {
  child: ChildProcess;
  lines: () => Array<Record<string, unknown>>;
  stdout: () => string;
  stderr: () => string;
  ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs launch-primary.js with `scenario`, under the Node flags `nodeFlags`. */
function primary(g: TestGroup, scenario: Omit<LaunchScenario, 'prefix'>, nodeFlags: string[] = [], env: Record<string, string> = {}): Primary {
  const child = g.track(
    spawn(process.execPath, [...nodeFlags, fixturePath('launch-primary'), JSON.stringify({ prefix: g.prefix, ...scenario })], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    }),
  );
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const lines = (): Array<Record<string, unknown>> =>
    stdout
      .split('\n')
      .filter((l) => l.startsWith('{') && !l.startsWith('{"level"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { child, lines, stdout: () => stdout, stderr: () => stderr, ended };
}

/** Runs a scenario to its end: exit code 0, and nothing of the group left. */
async function run(g: TestGroup, scenario: Omit<LaunchScenario, 'prefix'>, nodeFlags: string[] = []): Promise<Array<Record<string, unknown>>> {
  const p = primary(g, scenario, nodeFlags);
  const { code } = await p.ended;
  expect(code, p.stderr()).toBe(0);
  const lines = p.lines();
  expect(lines.at(-1)).toEqual({ closed: true });
  expectNothingLeft(
    g,
    lines.flatMap((l) => (Array.isArray(l.pids) ? (l.pids as number[]) : [])),
  );
  return lines;
}

/** A file the children of a test append their exit codes to (WORKER_EXIT_LOG), removed after the test. */
function exitLogFile(): string {
  const path = join(tmpdir(), `mpbus-exits-${process.pid}-${Math.random().toString(36).slice(2)}`);
  onTestFinished(() => rmSync(path, { force: true }));
  return path;
}

function expectNothingLeft(g: TestGroup, pids: number[]): void {
  expect(g.leftovers()).toEqual([]);
  expect(pids.filter(processAlive)).toEqual([]);
}

describe('system.launch(): worker processes as supervised children', () => {
  it("readiness: 'joined', 'signal', { actors }, { group }; children join as secondaries on their own lcores; launch() in a secondary is PRIMARY_ONLY; children get the parent's module-loading flags only", async () => {
    // `--import` as a TypeScript loader (tsx) gives it; a heap size the parent's own
    const importFlags = ['--import', pathToFileURL(fixturePath('import-marker')).href];
    const [r] = await run(group('sup_ready'), { scenario: 'ready' }, [...importFlags, '--max-old-space-size=300']);
    expect(r).toMatchObject({
      joinedStates: ['ready', 'ready'],
      sameName: 'INVALID_OPTION', // a second open pool of one name: its children's names would clash
      signalled: [true],
      actorsRegistered: [true, true],
      inGroup: [true, true],
      names: ['joined-1', 'joined-2', 'signal-1', 'actors-1', 'actors-2', 'group-1', 'group-2'],
      indices: [0, 1, 0, 0, 1, 0, 1],
      fromSecondary: 'PRIMARY_ONLY',
      marked: [true, true, true, true, true, true, true],
      nodeFlags: importFlags,
    });
    const lcores = r!.lcores as number[];
    expect(new Set(lcores).size).toBe(7);
    expect(lcores).not.toContain(0); // the primary's
  });

  it('a child that dies while starting rejects launch with CHILD_FAILED, its exit code and stderr; one that hangs, after startTimeoutMs; bad options are INVALID_OPTION', async () => {
    const [r] = await run(group('sup_fail'), { scenario: 'fail-start' });
    expect(r!.crashed).toMatchObject({ code: 'CHILD_FAILED', name: 'ChildFailedError', exitCode: 3, signal: null });
    expect(r!.crashed).toHaveProperty('stderrTail', expect.stringContaining('cannot start: the configuration is missing'));
    expect((r!.crashed as { message: string }).message).toMatch(/exit code 3.*\n.*cannot start/s);
    expect(r!.hung).toMatchObject({ code: 'CHILD_FAILED', exitCode: null, signal: 'SIGKILL' });
    // what it did not do, in the words of `ready` (it said only "did not get ready")
    expect((r!.hung as { message: string }).message).toContain('did not get ready within 1500 ms (killed): it never joined the group');
    expect((r!.elsewhere as { message: string }).message).toMatch(
      /it joined the group, but none of its actors joined group 'no-such-group' \(ready: \{ group \}\); it spawned '/,
    );
    expect(r!.hungMs).toBeLessThan(10_000);
    expect(r!.invalid).toEqual(Array(20).fill('INVALID_OPTION'));
  });

  it("a child whose program ends by itself (it closed its system: exit code 0) is reported 'exited', not crashed, and restarted", async () => {
    const [r] = await run(group('sup_closes'), { scenario: 'closes-itself' });
    expect(r!.events).toEqual([{ type: 'exited', reason: 'exited', code: 0, signal: null }, { type: 'restarted' }]);
  });

  it('a child that keeps crashing is restarted with doubling backoff, then the pool gives up (POOL_FAILED); with restart: false it is not restarted', async () => {
    const [r, s, once] = await run(group('sup_crash'), { scenario: 'crash' });
    const events = r!.events as Array<{ type: string; reason?: string; code?: number; delayMs?: number; state?: string }>;
    expect(events.filter((e) => e.type === 'restarted').map((e) => e.delayMs)).toEqual([100, 200, 300]);
    expect(events.filter((e) => e.type === 'exited').map((e) => [e.reason, e.code, e.state])).toEqual(Array(4).fill(['crashed', 7, 'exited']));
    expect(events.at(-1)).toEqual({ type: 'gave-up' });
    expect(r).toMatchObject({ state: 'failed', slots: [{ starts: 4, restarts: 3, lastExit: 7 }] });
    expect(s).toEqual({ scaleError: 'POOL_FAILED' });
    expect(once).toEqual({ onceEvents: ['exited'], onceSize: 0, onceState: 'running' }); // restart: false
  });

  it("a child whose actor's supervision gave up ends with code 70, and its pool starts it anew (it stayed alive serving nothing)", async () => {
    const [r] = await run(group('sup_gaveup'), { scenario: 'gave-up' });
    expect(r).toEqual({ failures: ['HANDLER_FAILED', 'HANDLER_FAILED'], exits: [70], state: 'running', served: true });
  });

  it('a restarted child that does not get ready in time: the pool says why (its exit looked like any crash)', async () => {
    const mark = exitLogFile();
    const p = primary(group('sup_rehang'), { scenario: 'restart-hangs', mark });
    expect((await p.ended).code, p.stderr()).toBe(0);
    expect(p.lines()[0]).toEqual({ state: 'failed' });
    expect(p.stderr()).toContain("child 0 of pool 'hangs', restarted, did not get ready within 4000 ms (killed): it never joined the group");
  });

  it('under load through a router: scale up and down, a SIGKILLed child restarted, a rolling replace with a new module; every ask answered exactly once', async () => {
    const [r] = await run(group('sup_load'), { scenario: 'load' });
    expect(r).toMatchObject({ workersAtLaunch: 2, lost: 0, duplicates: 0, failureCount: 0 });
    expect(r!.sent as number).toBeGreaterThan(1000);
    const steps = r!.steps as Array<{ step: string; size: number }>;
    expect(steps.map((s) => s.size)).toEqual([4, 1, 3, 3, 3]);
    // the replacements run the new module and took work
    expect(r!.v2After as number).toBeGreaterThan(0);
    const events = r!.events as string[];
    expect(events).toContain('exited:crashed:SIGKILL');
    expect(r!.killedLeftSocket).toBe(false);
    // children asked to stop (scale down, replaced) drained and exited 0 by themselves, none was killed
    const requested = events.filter((e) => e.startsWith('exited:requested'));
    expect(requested.length).toBeGreaterThanOrEqual(5);
    expect(
      requested.every((e) => e === 'exited:requested:0'),
      requested.join(),
    ).toBe(true);
    expect(events).toContain('restarted');
    const slots = r!.slots as Array<{ starts: number; restarts: number }>;
    expect(slots.reduce((n, s) => n + s.restarts, 0)).toBe(1);
    // every worker that served took work; the restarted and the replacing ones too
    const perWorker = r!.perWorker as Record<string, number>;
    for (const name of r!.servedAfterReplace as string[]) expect(perWorker[name], name).toBeGreaterThan(0);
  }, 120_000);

  it.each(['SIGKILL', 'SIGTERM'] as const)('the primary ended by %s: every child is gone and nothing is left', async (signal) => {
    const g = group('sup_hold');
    const exitLog = exitLogFile();
    // SIGTERM: with thousands of asks in flight, so that the children are busy when told to stop
    const p = primary(g, { scenario: 'hold', count: 3, ...(signal === 'SIGTERM' ? { inFlight: 10_000 } : {}) }, [], { WORKER_EXIT_LOG: exitLog });
    await until('the pool', () => p.stdout().includes('ready') || p.child.exitCode !== null, 60_000);
    const pids = p.lines()[0]!.pids as number[];
    expect(pids).toHaveLength(3);
    expect(pids.every(processAlive)).toBe(true);
    if (signal === 'SIGTERM') await new Promise((resolve) => setTimeout(resolve, 1000)); // under load
    const signalledAt = Date.now();
    p.child.kill(signal);
    await p.ended;
    await until('every child to end', () => !pids.some(processAlive), 10_000);
    await until('the group files to go', () => g.leftovers().length === 0, 10_000);
    expectNothingLeft(g, pids);
    // a child whose primary died exits as a secondary then does (69); one asked to stop, 0. A
    // child SIGKILLed at the end of the SIGTERM's bound (below) writes no line: the file exists
    // only if one child ended by itself.
    const codes = existsSync(exitLog)
      ? readFileSync(exitLog, 'utf8')
          .trim()
          .split('\n')
          .map((l) => Number(l.split(' ')[1]))
      : [];
    if (signal === 'SIGKILL') expect(new Set(codes)).toEqual(new Set([69]));
    // the primary asked its workers all along, through the router and straight: every ask cut
    // off by the SIGTERM failed as SYSTEM_CLOSED
    if (signal === 'SIGTERM') {
      // Each child stopped and exited by itself, or, still closing, was killed only once the
      // signal's 200 ms grace and the 400 ms reserve after it had passed (ProcessPool.
      // closeForPrimary). Killed at the end of the grace itself, while they still closed and
      // left DPDK, children of this test were SIGKILLed in 6 of 20 runs on a quiet machine, about
      // 200 ms after the signal. Beside two other integration test files, about one run in ten
      // still has a child too starved of CPU to be gone by 600 ms: that kill is the bound working.
      // On a machine that loaded the primary may itself end, at the signal's 750 ms, before it
      // hears of a child's exit: that child has no line (every child is gone all the same, above).
      const exits = p.lines().filter((l) => 'exited' in l) as Array<{ code: number | null; signal: string | null; at: number }>;
      expect(exits.length).toBeLessThanOrEqual(3);
      expect(codes.every((code) => code === 0)).toBe(true);
      expect(codes.length).toBeGreaterThanOrEqual(exits.filter((e) => e.signal === null).length);
      for (const e of exits) {
        expect(e).toMatchObject({ reason: 'primary-closing' });
        if (e.signal === null) expect(e.code).toBe(0);
        else expect({ signal: e.signal, afterSignalMs: e.at - signalledAt >= 590 }).toEqual({ signal: 'SIGKILL', afterSignalMs: true });
      }
      const failures = p.lines().filter((l) => 'askError' in l);
      expect(failures.map((l) => l.askError).filter((code) => code !== 'SYSTEM_CLOSED')).toEqual([]);
    }
  });

  it('the primary SIGKILLed while its children start: they exit 69 (not going on as what they would be without a parent), removing what it left', async () => {
    const g = group('sup_orphan');
    const exitLog = exitLogFile();
    const p = primary(g, { scenario: 'starting' }, [], { WORKER_EXIT_LOG: exitLog });
    await until('launching', () => p.lines().some((l) => l.launching === true), 30_000);
    await new Promise((resolve) => setTimeout(resolve, 500)); // forked, still starting
    p.child.kill('SIGKILL');
    await p.ended;
    await until('both children to exit', () => existsSync(exitLog) && readFileSync(exitLog, 'utf8').trim().split('\n').length === 2, 10_000);
    expect(
      readFileSync(exitLog, 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.split(' ')[1]),
    ).toEqual(['69', '69']);
    // and they removed what the primary left: no process of the group was left to do it
    expect(g.leftovers()).toEqual([]);
  });

  it("the application's close with more asks than its pool can answer by then: each is answered or fails with SYSTEM_CLOSED", async () => {
    // Before, asks still waiting in this process for room in a child's mailbox failed with
    // ACTOR_NOT_FOUND ("spawn it first") when the pool stopped the child, and asks the child
    // held when it went with ACTOR_STOPPED.
    const lines = await run(group('sup_backlog'), { scenario: 'backlog' });
    const r = lines.find((l) => 'answered' in l)!;
    const failed = Object.values(r.codes as Record<string, number>).reduce((a, b) => a + b, 0);
    expect(Object.keys(r.codes as object)).toEqual(['SYSTEM_CLOSED']);
    expect((r.answered as number) + failed).toBe(18_000);
    expect(r.answered).toBeGreaterThan(0);
  });

  it('a close with 300,000 asks waiting for room in the caller fails each once, one dead letter each, while the event loop keeps turning', async () => {
    // Before, a worker stopped by the close gave the asks it was to take back to the router, which
    // gave them to the other stopping worker, then found none: 2-3 dead letters per ask (the last
    // 'no-workers'), all in one turn of the event loop, as were the rejections: a million asks
    // kept it 2-9 s, past the close's deadline and past the exit Ctrl-C schedules.
    const lines = await run(group('sup_deep'), { scenario: 'deep-backlog', asks: 300_000 });
    const r = lines.find((l) => 'answered' in l)!;
    const codes = r.codes as Record<string, number>;
    expect(Object.keys(codes)).toEqual(['SYSTEM_CLOSED']);
    expect((r.answered as number) + codes.SYSTEM_CLOSED!).toBe(300_000);
    // ('late-reply': an answer that came once its ask had failed)
    expect(Object.keys(r.deadLetters as object).filter((reason) => reason !== 'late-reply')).toEqual(['closed']);
    expect((r.deadLetters as Record<string, number>).closed).toBeLessThanOrEqual(codes.SYSTEM_CLOSED!);
    expect(r.longestGapMs).toBeLessThan(1000);
  }, 60_000);

  it("the application's close while tells to a slow child still wait in it for room: they go first, and the child handles every one before it stops", async () => {
    // Before, the pool stopped the child at once: it refused what came after, and the tells
    // still waiting here were dead letters ('unknown-actor' once its name went) ~200 ms into a
    // 5 s close.
    const handledLog = exitLogFile();
    const lines = await run(group('sup_tells'), { scenario: 'tell-backlog', mark: handledLog });
    const r = lines.find((l) => 'told' in l)!;
    expect(r.deadLetters).toEqual({});
    await until('the child to exit', () => existsSync(handledLog), 10_000);
    expect(readFileSync(handledLog, 'utf8').trim().split(' ')[1]).toBe('600');
  });

  it("the same close with a deadline too short for them: the tells that never went are dead letters with reason 'closed'", async () => {
    // Before, 'unknown-actor' (the pool had stopped the child, and its name had gone).
    const lines = await run(group('sup_tells_short'), { scenario: 'tell-backlog', mark: exitLogFile(), closeTimeoutMs: 100 });
    const r = lines.find((l) => 'told' in l)!;
    expect(Object.keys(r.deadLetters as object)).toEqual(['closed']);
  });

  it('a primary busy past its signal deadline kills its stuck children and ends in one turn: it waits for them to end, and removes the group files', async () => {
    const g = group('sup_stuck');
    // Before: the primary found its killed children still being torn down (holding their locks,
    // their main thread a zombie already) and left the files; they removed nothing. A CI run hit it.
    const p = primary(g, { scenario: 'hold', count: 2, inFlight: 2, stuck: true });
    await until('the pool', () => p.stdout().includes('ready') || p.child.exitCode !== null, 60_000);
    const pids = p.lines()[0]!.pids as number[];
    expect(await p.ended).toEqual({ code: null, signal: 'SIGTERM' });
    await until('every child to end', () => !pids.some(processAlive), 10_000);
    await until('the group files to go', () => g.leftovers().length === 0, 3000).catch(() => undefined);
    expectNothingLeft(g, pids);
  });
});
