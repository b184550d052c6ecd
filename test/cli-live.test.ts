/**
 * Specification of `mpbus ps` and `mpbus top` on a live group, run as a user runs them (`top` in
 * a real terminal: tmux, its screen read with capture-pane): they show the group's processes
 * and actors, `top` sorts on a key and quits on `q`, and reading never disturbs the group: no
 * file appears in its runtime dir, its members and traffic are unchanged, and when its
 * processes leave while `top` reads, the last of them still removes every file.
 */
import { execFile } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { fixture } from './harness/fixtures.js';
import { useTestGroups } from './harness/use-groups.js';
import type { GroupView } from '../src/obs/group-view.js';
import { pollUntil, until } from './harness/wait.js';
import { cliScript, mpbus } from './harness/cli.js';

const group = useTestGroups();
const actors = fixture('actors');
const run = promisify(execFile);
/** A tmux server of this test file only (its socket removed at the end). */
const socket = join(tmpdir(), `mpbt_top_${process.pid}.tmux`);

const tmux = (...args: string[]): Promise<{ stdout: string }> => run('tmux', ['-S', socket, ...args]);
const screen = async (): Promise<string> => (await tmux('capture-pane', '-p', '-t', 'top')).stdout;
const running = (): Promise<boolean> =>
  tmux('has-session', '-t', 'top').then(
    () => true,
    () => false,
  );

/** How often a test reads the terminal (each read runs tmux). */
const SCREEN_POLL_MS = 100;

afterAll(async () => {
  await tmux('kill-server').catch(() => undefined);
  rmSync(socket, { force: true });
});

describe('mpbus ps and top', () => {
  it('show the processes and actors of a live group, top sorts and quits on q, and neither disturbs the group', async () => {
    const g = group('top');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    await p.use(actors).startSystem();
    await s.use(actors).startSystem();
    await p.use(actors).spawnTestActor('alpha');
    await s.use(actors).spawnTestActor('zulu');
    for (let i = 0; i < 10; i++) await s.use(actors).ask('alpha', 'echo', i);
    const files = readdirSync(g.runtimeDir).sort();

    const ps = await mpbus('ps', g.prefix, '--json');
    const view = JSON.parse(ps.stdout) as GroupView;
    expect(view.processes.map((x) => [x.pid, x.role, x.lcore, x.actors])).toEqual([
      [p.pid, 'primary', 0, ['alpha']],
      [s.pid, 'secondary', 1, ['zulu']],
    ]);
    expect(view.actors.find((a) => a.name === 'alpha')).toMatchObject({ pid: p.pid, received: 10, processed: 10, asks: 10 });
    // Depths are gauges, sampled every 500 ms (src/actors/counters.ts): a sample taken while the
    // tenth ask was being handled still shows 1 until the next one. Read until a later sample.
    const alphaRow = new RegExp(`^alpha\\s+${p.pid}\\s+10\\s+10\\s+0\\s+0\\s+0\\s+0\\s+10\\s+\\S+\\s+\\S+$`, 'm');
    const table = await pollUntil(
      'ps to show alpha with depth 0',
      async () => (await mpbus('ps', g.prefix)).stdout,
      (text) => alphaRow.test(text),
      3000,
      100,
    );
    expect(table).toMatch(alphaRow);

    // a reader that stops early (`| head`) ends top quietly: once, an unhandled EPIPE and code 1;
    // with -n 2, the last screen's write failed after top had finished, with the same stack
    for (const n of [5, 2]) {
      const piped = await run('bash', [
        '-c',
        `set -o pipefail; ${process.execPath} ${cliScript} top ${g.prefix} --json -n ${n} --interval 100 | head -c 10 > /dev/null`,
      ]).then(
        (r) => ({ n, code: 0, stderr: r.stderr }),
        (err: { code: number; stderr: string }) => ({ n, code: err.code, stderr: err.stderr }),
      );
      expect(piped).toEqual({ n, code: 0, stderr: '' });
    }
    // the first screen shows CPU as a percentage too (each process's average since it started;
    // it showed seconds of CPU there, and percentages from the second screen on)
    const first = await mpbus('top', g.prefix, '-n', '1');
    const cpuColumn = first.stdout
      .split('\n')
      .filter((l) => new RegExp(`^(${p.pid}|${s.pid}) `).test(l))
      .map((l) => l.split(/\s+/)[4]);
    expect(cpuColumn).toHaveLength(2);
    for (const cpu of cpuColumn) expect(cpu).toMatch(/^\d+\.\d%$/);

    await tmux('new-session', '-d', '-s', 'top', '-x', '160', '-y', '30', `${process.execPath} ${cliScript} top ${g.prefix} --sort depth`);
    await until(
      'top to show both actors',
      async () => /mpbus top - group .* sort: depth/.test(await screen()) && /zulu/.test(await screen()),
      10_000,
      SCREEN_POLL_MS,
    );
    // traffic goes on while top reads, and top shows it
    for (let i = 0; i < 20; i++) expect((await s.use(actors).ask('alpha', 'echo', i)).value).toBe(i);
    const shown = await pollUntil(
      'top to show 30 asks answered',
      screen,
      (text) => /^alpha\s+\d+\s+0\s+\d+\s+\d+\s+\S+\s+\S+\s+0\s+0\s+0$/m.test(text),
      10_000,
      SCREEN_POLL_MS,
    );
    expect(shown).toMatch(new RegExp(`^${p.pid}\\s+primary\\s+0\\s+\\d+s\\s+[\\d.]+%\\s+\\d+ MiB`, 'm'));
    await tmux('send-keys', '-t', 'top', 'n');
    await until(
      'the sort by name',
      async () => {
        const text = await screen();
        return /sort: name/.test(text) && text.indexOf('\nalpha') < text.indexOf('\nzulu');
      },
      10_000,
      SCREEN_POLL_MS,
    );
    // the reader added nothing to the group: no file (rte_mp socket, lcore lock), no member
    expect(readdirSync(g.runtimeDir).sort()).toEqual(files);
    const ls = JSON.parse((await mpbus('ls', '--json')).stdout) as Array<{ prefix: string; secondaryPids: number[] }>;
    expect(ls.find((x) => x.prefix === g.prefix)?.secondaryPids).toEqual([s.pid]);
    await tmux('send-keys', '-t', 'top', 'q');
    await until('top to quit on q', async () => !(await running()), 5000, SCREEN_POLL_MS);

    // The group leaves while top reads it: the last process still removes every file, and top ends.
    await tmux('new-session', '-d', '-s', 'top', '-x', '160', '-y', '30', `${process.execPath} ${cliScript} top ${g.prefix}`);
    await until('top to start', async () => /mpbus top - group/.test(await screen()), 10_000, SCREEN_POLL_MS);
    await s.close();
    await p.close();
    expect(g.leftovers()).toEqual([]);
    await until('top to end with its group', async () => !(await running()), 5000, SCREEN_POLL_MS);
    expect((await mpbus('ps', g.prefix)).code).toBe(1);
  });

  it('usage errors exit 2', async () => {
    expect((await mpbus('ps')).code).toBe(2);
    expect((await mpbus('top', 'x', '--sort', 'bogus')).code).toBe(2);
    expect((await mpbus('top', 'x', '--interval', '5')).code).toBe(2);
  });
});
