/**
 * Nothing holds the process open after close: a program builds something (actors up to a full
 * registry, function or class ones, spawned one by one or all at once; routers with asks in
 * flight; watches; asks pending at close; spawns still under way at close; the cluster bridge; all of it on a runtime of its own,
 * or in a secondary), awaits
 * system.close() and returns. It must end by itself, with code 0, within a few seconds of the
 * close: no process.exit anywhere (test/fixtures/close-exits.ts). And a program that closes
 * nothing and returns (test/fixtures/loop-ends.ts) ends with code 0 too, its group left.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { useNatsServer } from './harness/nats.js';
import { fixturePath } from './harness/paths.js';
import { startScript } from './harness/script.js';
import { useTestGroups } from './harness/use-groups.js';
import type { CloseExits } from './fixtures/close-exits.js';
import type { LoopEnds } from './fixtures/loop-ends.js';
import { poll } from './harness/wait.js';

const group = useTestGroups();
const natsServer = useNatsServer();
const script = fixturePath('close-exits');

/** Runs the program; resolves with how long it lived after printing `closed`. */
async function closesAndExits(label: string, arg: Omit<CloseExits, 'prefix'>, withPrimary = false): Promise<{ afterCloseMs: number; stdout: string }> {
  const g = group(label);
  if (withPrimary) await g.startAgent({ procType: 'primary' });
  const s = await startScript(g, script, { prefix: g.prefix, ...arg }, 120_000);
  await poll(s.stdout, (out) => out.includes('closed') || s.child.exitCode !== null, 60_000, 20);
  const closedAt = Date.now();
  const exited = await Promise.race([s.ended, new Promise<undefined>((r) => setTimeout(() => r(undefined), 5000))]);
  expect(exited, `${label}: still running 5 s after close; stdout: ${s.stdout()}`).toBeDefined();
  expect(exited!.code, exited!.stderr).toBe(0);
  expect(exited!.stdout).toContain('closed');
  return { afterCloseMs: Date.now() - closedAt, stdout: exited!.stdout };
}

describe('a program ends by itself after system.close(), whatever it made', () => {
  it('a registry filled to ENOSPC by function actors, by class actors, by spawns all at once', async () => {
    for (const scenario of ['fill-function', 'fill-class', 'fill-concurrent'] as const) {
      const r = await closesAndExits(scenario, { scenario, registryEntries: 1024 });
      expect(r.stdout).toMatch(/\d+ actors, then ENOSPC/);
    }
  });

  it('routers with asks in flight, watches, asks pending at close', async () => {
    for (const scenario of ['routers', 'watches', 'asks-pending', 'close-while-spawning'] as const) await closesAndExits(scenario, { scenario });
  });

  it('the cluster bridge', async () => {
    await closesAndExits('cluster', { scenario: 'cluster', natsUrl: natsServer().url });
  });

  it('all of it, on a Runtime the program started itself (system.close() leaves it open: it holds nothing)', async () => {
    await closesAndExits('ownRuntime', { scenario: 'everything', registryEntries: 1024, ownRuntime: true });
  });

  it('all of it, in a secondary of a primary that stays', async () => {
    const r = await closesAndExits('secondary', { scenario: 'everything', registryEntries: 1024, secondary: true }, true);
    expect(r.stdout).toMatch(/ENOSPC/);
  });
});

describe('a program that returns without closing anything', () => {
  it('ends with code 0 when its event loop is empty, a started port and interrupt watches included, and leaves the group', async () => {
    const g = group('loopends');
    const child = g.track(
      spawn(process.execPath, [fixturePath('loop-ends'), JSON.stringify({ prefix: g.prefix } satisfies LoopEnds)], { stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = await Promise.race([
      new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))),
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 20_000)),
    ]);
    expect(exited, `still running after 20 s: ${output}`).toBeDefined();
    // (events still on their way to JavaScript as Node tore down once aborted the process: code 134, "terminate called")
    expect({ ...exited, output: output.trim() }).toEqual({ code: 0, signal: null, output: 'returning' });
    expect(existsSync(`/var/run/dpdk/${g.prefix}`)).toBe(false);
  });
});
