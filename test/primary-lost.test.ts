/**
 * Specification of a lost primary: when the primary dies (SIGKILL) while its secondaries are
 * busy, every secondary learns it within a second (runtime.primaryLost$, an actor-system event),
 * its pending asks fail with PRIMARY_LOST, it leaves the group and exits (code 69 by default; the
 * application's own code when it handles the loss itself), nothing of the group is left, and a
 * new primary of the same name starts at once. A script that asks in a loop catching nothing
 * ends as the loss says too, whether the primary died or closed, with nothing on stderr but
 * mpbus's own warning that the primary died.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { TestGroup } from './harness/group.js';
import { besidesMpbusLogs } from './harness/logs.js';
import { fixturePath } from './harness/paths.js';
import { startScript } from './harness/script.js';
import { useTestGroups } from './harness/use-groups.js';
import type { BusyMember } from './fixtures/busy-member.js';
import { poll, sleep } from './harness/wait.js';
import { fixture } from './harness/fixtures.js';
import { join } from 'node:path';

const group = useTestGroups();

interface Member {
  child: ChildProcess;
  ended: Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    report: { answers: number; failures: Record<string, number>; lostEvent: boolean; interruptsEnded?: string } | undefined;
    stdout: string;
    stderr: string;
  }>;
  stdout: () => string;
}

async function member(g: TestGroup, options: Omit<BusyMember, 'prefix'>): Promise<Member> {
  const s = await startScript(g, fixturePath('busy-member'), { prefix: g.prefix, ...options });
  // the member prints one JSON report as its last line when it exits
  const ended = s.ended.then((e) => {
    const last = e.stdout.trim().split('\n').at(-1);
    return { ...e, report: last?.startsWith('{') ? JSON.parse(last) : undefined };
  });
  return { child: s.child, ended, stdout: s.stdout };
}

describe('a lost primary', () => {
  it('SIGKILLed under load: every secondary is gone within 2 s with PRIMARY_LOST, no file is left, a new primary starts', async () => {
    const g = group('plost');
    const primary = await member(g, { role: 'primary' });
    const secondaries = [];
    for (let i = 0; i < 3; i++) secondaries.push(await member(g, { role: 'secondary' }));
    await sleep(300); // busy for a while
    const t0 = performance.now();
    primary.child.kill('SIGKILL');
    const ends = await Promise.all(secondaries.map((s) => s.ended));
    const ms = performance.now() - t0;
    for (const e of ends) {
      expect({ code: e.code, lostEvent: e.report?.lostEvent }, e.stderr).toEqual({ code: 69, lostEvent: true });
      expect(e.report!.answers).toBeGreaterThan(0);
      // every ask pending when the primary died failed with PRIMARY_LOST, or found the primary's actor gone
      expect(
        Object.keys(e.report!.failures).every((c) => c === 'PRIMARY_LOST' || c === 'ACTOR_NOT_FOUND' || c === 'ACTOR_STOPPED'),
        JSON.stringify(e.report),
      ).toBe(true);
      expect(e.stderr, 'the log says why').toMatch(/primary of group .* died/);
    }
    expect(ms).toBeLessThan(2000);
    expect(g.leftovers()).toEqual([]);

    const again = await member(g, { role: 'primary' });
    again.child.kill('SIGTERM');
    expect((await again.ended).signal).toBe('SIGTERM');
    expect(existsSync(g.runtimeDir)).toBe(false);
  });

  it("onPrimaryLost 'ignore' leaves it to the application, which exits with its own code; 'close' leaves the group and lets the process live", async () => {
    const g = group('plign');
    const primary = await member(g, { role: 'primary' });
    const ignoring = await member(g, { role: 'secondary', policy: 'ignore' });
    const closing = await member(g, { role: 'secondary', policy: 'close' });
    primary.child.kill('SIGKILL');
    const e = await ignoring.ended;
    // (its interrupt streams once went quiet for good: an alarm$ subscriber waited forever)
    expect({ code: e.code, lostEvent: e.report?.lostEvent, interruptsEnded: e.report?.interruptsEnded }, e.stderr).toEqual({
      code: 5,
      lostEvent: true,
      interruptsEnded: 'PRIMARY_LOST',
    });
    // 'close': the group is left (its files are gone) but the process lives on
    expect(
      await poll(
        () => existsSync(g.runtimeDir),
        (exists) => !exists,
        3000,
      ),
    ).toBe(false);
    expect(closing.child.exitCode).toBeNull();
    closing.child.kill('SIGTERM');
    expect((await closing.ended).signal).toBe('SIGTERM');
  });

  it("a primary that lost DPDK's lock on config (a descriptor of it closed in the primary) is not taken for dead while it lives", async () => {
    const g = group('pllock');
    const p = await g.startAgent({ procType: 'primary' });
    // 'ignore': it stays to be asked what it saw (by default it exits 69 once its primary is lost)
    const s = await g.startAgent({ procType: 'secondary', onPrimaryLost: 'ignore' });
    await s.use(fixture('runtime')).recordPrimaryLost();
    // closing any descriptor of `config` drops the primary's POSIX lock on it (its secondaries exited 69, "the primary died")
    await p.use(fixture('runtime')).readFileOnce(join(g.runtimeDir, 'config'));
    await sleep(2500); // more than two of the secondary's looks at its primary (every second)
    expect(await s.use(fixture('runtime')).primaryLostSeen()).toBeNull();
    expect((await s.use(fixture('runtime')).ping()).started).toBe(true);
    // its death is still seen: the mpbus primary's own flock goes with it
    p.kill('SIGKILL');
    await p.exited;
    expect(
      await poll(
        () => s.use(fixture('runtime')).primaryLostSeen(),
        (v) => v !== null,
        5000,
      ),
    ).toMatchObject({ reason: 'died' });
  });

  it('a primary that closes cleanly: its secondaries close too and exit 0, and the last one out removes the files', async () => {
    const g = group('plclean');
    const primary = await member(g, { role: 'primary' });
    const secondaries = [await member(g, { role: 'secondary' }), await member(g, { role: 'secondary' })];
    primary.child.kill('SIGTERM');
    expect((await primary.ended).signal).toBe('SIGTERM');
    for (const s of secondaries) {
      const e = await s.ended;
      expect({ code: e.code, lostEvent: e.report?.lostEvent }, e.stderr).toEqual({ code: 0, lostEvent: true });
    }
    expect(g.leftovers()).toEqual([]);
  });

  // An ask that fails because the primary went is the primary's loss, a closing failure (exit
  // code 69 or 0, nothing on stderr but mpbus's log lines), not a missing actor or a closed system that crashes the script.
  it.each([
    { what: 'its primary is SIGKILLed', primary: {}, signal: 'SIGKILL', code: 69 },
    { what: 'its primary is stopped (SIGTERM)', primary: {}, signal: 'SIGTERM', code: 0 },
    { what: 'its primary closes its actor system', primary: { closeAfterAnswers: 200 }, signal: undefined, code: 0 },
    { what: "its primary's router over worker processes, the primary stopped", primary: { pool: true }, signal: 'SIGTERM', code: 0 },
  ] as const)('a secondary asking in a loop that catches nothing, when $what: exits with code $code, no stack trace', async ({ primary, signal, code }) => {
    const g = group('plloop');
    const p = await member(g, { role: 'primary', ...primary });
    const asker = await member(g, { role: 'secondary', unguarded: true });
    await sleep(300);
    if (signal) p.child.kill(signal);
    const e = await asker.ended;
    expect({ code: e.code, lostEvent: e.report?.lostEvent, stderr: besidesMpbusLogs(e.stderr) }).toEqual({ code, lostEvent: true, stderr: '' });
    expect(e.report!.answers).toBeGreaterThan(0);
    await p.ended;
    expect(g.leftovers()).toEqual([]);
  });
});
