/**
 * Specification of DPDK telemetry in an mpbus group, read with Debian's `dpdk-telemetry.py`
 * (package dpdk) as an operator would: on by default, DPDK's own commands and mpbus's
 * (/mpbus/processes, /mpbus/actors, /mpbus/mailboxes) answer for the whole group; with
 * `telemetry: false` there is no socket.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixture } from './harness/fixtures.js';
import { useTestGroups } from './harness/use-groups.js';
import { poll } from './harness/wait.js';

const group = useTestGroups();
const actors = fixture('actors');

/** Sends each command to the group's telemetry socket through dpdk-telemetry.py; one parsed answer per command. */
function telemetry(prefix: string, commands: string[]): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const child = execFile('dpdk-telemetry.py', ['-f', prefix], { timeout: 10_000 }, (err, stdout) => {
      if (err) reject(new Error(`dpdk-telemetry.py failed: ${err.message}`, { cause: err }));
      else
        resolve(
          stdout
            .trim()
            .split('\n')
            .filter((l) => l.startsWith('{'))
            .map((l) => JSON.parse(l) as Record<string, unknown>),
        );
    });
    child.stdin!.end(`${commands.join('\n')}\n`);
  });
}

describe('DPDK telemetry', () => {
  it("is on by default: dpdk-telemetry.py sees DPDK's commands and mpbus's, answered for every process of the group", async () => {
    const g = group('tel');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    await p.use(actors).startSystem();
    await s.use(actors).startSystem();
    await p.use(actors).spawnTestActor('echo-1');
    await s.use(actors).spawnTestActor('other');
    for (let i = 0; i < 12; i++) await s.use(actors).ask('echo-1', 'echo', i);

    const [list, processes, all, one, mailboxes, params] = await telemetry(g.prefix, [
      '/',
      '/mpbus/processes',
      '/mpbus/actors',
      '/mpbus/actors,echo-1',
      '/mpbus/mailboxes',
      '/eal/params',
    ]);
    expect(list!['/']).toEqual(expect.arrayContaining(['/eal/params', '/ethdev/list', '/mpbus/processes', '/mpbus/actors', '/mpbus/mailboxes']));
    const proc = processes!['/mpbus/processes'] as Record<string, unknown[]>;
    expect(proc.pid).toEqual([p.pid, s.pid]);
    expect(proc.role).toEqual(['primary', 'secondary']);
    expect(proc.lcore).toEqual([0, 1]);
    expect(proc.actors).toEqual([1, 1]);
    for (const rss of proc.rss_bytes as number[]) expect(rss).toBeGreaterThan(10 * 2 ** 20);
    expect((all!['/mpbus/actors'] as Record<string, unknown[]>).name).toEqual(['echo-1', 'other']);
    const echo = one!['/mpbus/actors'] as Record<string, unknown[]>;
    expect(echo).toMatchObject({ name: ['echo-1'], pid: [p.pid], received: [12], processed: [12], asks: [12], ask_failed: [0] });
    expect((echo.ask_p99_us as number[])[0]).toBeGreaterThanOrEqual((echo.ask_p50_us as number[])[0]!);
    expect((echo.ask_p50_us as number[])[0]).toBeGreaterThan(0);
    // Mailbox depths are gauges, written every SAMPLE_INTERVAL_MS (500 ms): a mailbox opened just
    // before the first query may not have its row yet, so ask again until every one is there.
    const wanted = (answer: Record<string, unknown> | undefined): boolean => {
      const names = (answer?.['/mpbus/mailboxes'] as Record<string, unknown[]> | undefined)?.name ?? [];
      return names.includes('echo-1') && names.includes('other') && names.some((n) => String(n).startsWith('$reply.'));
    };
    const answer = wanted(mailboxes) ? mailboxes : await poll(async () => (await telemetry(g.prefix, ['/mpbus/mailboxes']))[0], wanted, 5_000, 200);
    const boxes = (answer?.['/mpbus/mailboxes'] ?? {}) as Record<string, unknown[]>;
    // the actors' mailboxes, and each actor system's reply mailbox
    expect(boxes.name).toEqual(expect.arrayContaining(['echo-1', 'other', expect.stringMatching(/^\$reply\./)]));
    expect(boxes.capacity!.every((c) => (c as number) > 0)).toBe(true);
    expect(params!['/eal/params']).toEqual(expect.arrayContaining([`--file-prefix=${g.prefix}`, '--proc-type=primary']));
    expect(params!['/eal/params']).not.toContain('--no-telemetry');
  });

  it('answers stay valid JSON whatever the actor names, and with more rows than 16 KiB holds rows are left out and counted, not columns', async () => {
    const g = group('telodd');
    const p = await g.startAgent({ procType: 'primary' });
    await p.use(actors).startSystem();
    // (a name is any 1-63 bytes: a byte of 0x80 or more made DPDK print invalid JSON, which dpdk-telemetry.py could not read)
    for (const name of ['ünï😀', 'a"b', 'new\nline', '50%']) await p.use(actors).spawnTestActor(name);
    const [all, byName, byShown] = await telemetry(g.prefix, ['/mpbus/actors', '/mpbus/actors,a"b', '/mpbus/actors,%C3%BCn%C3%AF%F0%9F%98%80']);
    expect((all!['/mpbus/actors'] as Record<string, unknown[]>).name).toEqual(['%C3%BCn%C3%AF%F0%9F%98%80', 'a%22b', 'new%0Aline', '50%25']);
    expect((byName!['/mpbus/actors'] as Record<string, unknown[]>).name).toEqual(['a%22b']);
    expect((byShown!['/mpbus/actors'] as Record<string, unknown[]>).name).toEqual(['%C3%BCn%C3%AF%F0%9F%98%80']);

    // past 16 KiB DPDK dropped whole columns (names and pids first), without error
    await p.use(actors).spawnMany('m', 450);
    const [many] = await telemetry(g.prefix, ['/mpbus/actors']);
    const columns = many!['/mpbus/actors'] as Record<string, unknown>;
    const names = columns.name as string[];
    for (const column of [
      'name',
      'pid',
      'received',
      'processed',
      'failed',
      'dead_lettered',
      'restarts',
      'depth',
      'asks',
      'ask_failed',
      'ask_timeouts',
      'ask_p50_us',
      'ask_p99_us',
    ])
      expect([column, (columns[column] as unknown[] | undefined)?.length]).toEqual([column, names.length]);
    expect(names.length).toBeGreaterThan(100);
    expect(columns.rows_left_out).toBe(454 - names.length);
  });

  it('telemetry: false starts no telemetry socket', async () => {
    const g = group('notel');
    await g.startAgent({ procType: 'primary', telemetry: false });
    expect(existsSync(join(g.runtimeDir, 'mpbus_settings.json'))).toBe(true);
    expect(existsSync(join(g.runtimeDir, 'dpdk_telemetry.v2'))).toBe(false);
  });
});
