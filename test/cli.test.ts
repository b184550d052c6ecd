/**
 * Specification of the `mpbus` bin's group commands, run as a user runs them: `ls` lists a
 * group from its files without disturbing it, `clean` refuses a live group and removes a dead
 * one's files.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixture } from './harness/fixtures.js';
import { useTestGroups } from './harness/use-groups.js';
import type { GroupSurvey } from '../src/runtime/group-survey.js';
import { mpbus } from './harness/cli.js';
import { repoRoot } from './harness/paths.js';
import { startShutdownTargetAsPid1 } from './harness/script.js';

const group = useTestGroups();

async function survey(prefix: string): Promise<GroupSurvey | undefined> {
  const r = await mpbus('ls', '--json');
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as GroupSurvey[]).find((g) => g.prefix === prefix);
}

describe('mpbus ls and clean', () => {
  it('ls shows a live group and leaves it undisturbed; clean refuses it; once its processes are killed, ls shows it dead and clean removes its files', async () => {
    const g = group('cli');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    await s.use(fixture('mailbox')).open('inbox');

    const live = await survey(g.prefix);
    expect(live).toMatchObject({ state: 'alive', primaryPid: p.pid, mpbusPrimary: true, secondaryPids: [s.pid] });
    expect(live!.hugepageBytes).toBeGreaterThan(0);
    expect((await mpbus('ls')).stdout).toMatch(new RegExp(`^${g.prefix}\\s+alive\\s+${p.pid}\\s+2\\s+\\d+ MiB$`, 'm'));

    const refused = await mpbus('clean', g.prefix);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(new RegExp(`still has live processes \\(pids ${p.pid}, ${s.pid}\\)`));
    // the group is undisturbed: its members still talk, and a third joins
    expect(await p.use(fixture('mailbox')).send('inbox', { hello: 1 })).toBe('sent');
    await s.use(fixture('mailbox')).waitFor('inbox', 1);
    expect(await s.use(fixture('mailbox')).received('inbox')).toEqual([{ hello: 1 }]);
    expect(existsSync(g.runtimeDir)).toBe(true);

    p.kill('SIGKILL');
    s.kill('SIGKILL');
    await Promise.all([p.exited, s.exited]);
    expect(await survey(g.prefix)).toMatchObject({ state: 'dead', primaryPid: null, secondaryPids: [] });
    // ps names the killed processes and what to do; top says the group is dead (not that there is none)
    const ps = await mpbus('ps', g.prefix);
    expect(ps.stdout).toContain(`pids ${p.pid}, ${s.pid}`); // in lcore order: the primary's is 0
    expect(ps.stdout).toContain(`'mpbus clean ${g.prefix}' removes its files`);
    const top = await mpbus('top', g.prefix, '-n', '1');
    expect({ code: top.code, err: top.stderr }).toMatchObject({ code: 1, err: expect.stringContaining(`group '${g.prefix}' is dead`) });
    expect(top.stderr).toContain(`mpbus clean ${g.prefix}`);
    const removed = await mpbus('clean', g.prefix, '--json');
    expect({ code: removed.code, out: JSON.parse(removed.stdout) }).toMatchObject({ code: 0, out: { prefix: g.prefix, removed: true } });
    expect(g.leftovers()).toEqual([]);
    expect(await survey(g.prefix)).toBeUndefined();
    expect((await mpbus('clean', g.prefix)).code).toBe(1);
  });

  it('a group whose primary runs in another PID namespace (another container): ls and ps say so, and ps names no process as killed', async () => {
    const g = group('clins');
    const p = await startShutdownTargetAsPid1(g);
    expect(await survey(g.prefix)).toMatchObject({ state: 'alive', otherPidNamespace: expect.stringMatching(/^pid:\[\d+\]$/) });
    expect((await mpbus('ls')).stdout).toMatch(new RegExp(`^${g.prefix}\\s+alive\\s+\\d+ \\(another PID namespace\\)`, 'm'));
    const ps = await mpbus('ps', g.prefix);
    expect(ps.stdout).toContain('the group runs in another PID namespace');
    expect(ps.stdout).not.toContain('killed');
    p.child.kill('SIGKILL'); // --kill-child: the primary goes with it
    await p.ended;
  });

  it('usage errors exit 2 and name what is wrong; --version prints the version', async () => {
    expect((await mpbus('clean')).code).toBe(2);
    expect((await mpbus('ls', '--bogus')).code).toBe(2);
    // (once: "give one group prefix" for an option it does not know)
    for (const command of ['ps', 'clean']) {
      const r = await mpbus(command, 'some-group', '--bogus');
      expect({ code: r.code, first: r.stderr.split('\n')[0] }).toEqual({ code: 2, first: `mpbus ${command}: unknown option '--bogus'` });
    }
    const version = await mpbus('--version');
    expect({ code: version.code, out: version.stdout.trim() }).toEqual({
      code: 0,
      out: JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version,
    });
  });

  it('a prefix that is a path is refused (exit 2) by clean, ps and top, and nothing is removed', async () => {
    // (once, `clean ../../../tmp/x` removed that directory, and `clean .` the runtime dir of every group)
    const victim = mkdtempSync(join(tmpdir(), 'mpbus-cli-victim-'));
    writeFileSync(join(victim, 'keep.txt'), 'keep');
    try {
      for (const prefix of [`../../..${victim}`, '.', '..', '', 'a/b']) {
        const r = await mpbus('clean', prefix);
        expect({ prefix, code: r.code }).toEqual({ prefix, code: 2 });
        expect(r.stderr).toContain('is not a group prefix');
      }
      expect((await mpbus('ps', '..')).code).toBe(2);
      expect((await mpbus('top', '../x', '-n', '1')).code).toBe(2);
      expect(existsSync(join(victim, 'keep.txt'))).toBe(true);
      expect(existsSync('/var/run/dpdk')).toBe(true);
    } finally {
      rmSync(victim, { recursive: true, force: true });
    }
  });
});
