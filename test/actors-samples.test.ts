/**
 * The samples, run as a user runs them (compiled, as child processes): each must succeed and
 * leave no runtime dir or hugepage file behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeGroupFiles } from './harness/group.js';
import { repoRoot } from './harness/paths.js';
import { poll, sleep } from './harness/wait.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  pid: number;
}

/** Runs a compiled guide script (samples/guide/<name>.js). */
function runGuide(name: string): Promise<Run> {
  return runSample('guide', [], 20_000, `${name}.js`);
}

/** Samples still running: a test that timed out or failed before its sample ended leaves none behind. */
const running = new Set<ChildProcess>();
afterEach(async () => {
  const left = [...running].filter((c) => c.exitCode === null && c.signalCode === null);
  running.clear();
  for (const child of left) child.kill('SIGKILL');
  // (its workers see their primary die and leave by themselves: the last one removes the group's files)
  await Promise.all(
    left.map((child) => new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once('exit', resolve)))),
  );
  if (left.length > 0) await sleep(3000);
});

/**
 * Runs a compiled sample; stops it with SIGINT (and so its children, which exit when it goes)
 * after `timeoutMs`, which is less than the test's own timeout: a sample that hangs then fails
 * its test with what it printed, and does not outlive it.
 */
function runSample(sample: string, args: string[], timeoutMs = 45_000, script = 'main.js'): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(repoRoot, 'dist', 'samples', sample, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, pid: child.pid! });
    });
  });
}

/** Files left by groups whose prefix starts with `prefix` (and removes them, so a failure does not leak). */
function leftovers(prefix: string): string[] {
  const left = [
    ...readdirSync('/var/run/dpdk').filter((d) => d.startsWith(prefix)),
    ...(existsSync('/dev/hugepages') ? readdirSync('/dev/hugepages').filter((f) => f.startsWith(prefix)) : []),
  ];
  for (const dir of new Set(left.map((f) => f.replace(/map_\d+$/, '')))) removeGroupFiles(dir);
  return left;
}

describe('samples', () => {
  it('simple: two peers exchange messages and leave nothing behind', async () => {
    const r = await runSample('simple', ['--messages', '3']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("got 'hello 3 from the primary'");
    expect(r.stdout).toMatch(/ping 3 -> 'pong 3 from pid \d+'/);
    expect(r.stdout).toContain('done: both peers left the group, nothing left behind');
    expect(leftovers(`mpbus_simple_${r.pid}`)).toEqual([]);
  });

  it('symmetric: N peers do the same work and agree on the result', async () => {
    const r = await runSample('symmetric', ['--peers', '3', '--numbers', '3000']);
    expect(r.code).toBe(0);
    expect(r.stdout.match(/sum of squares 1\.\.3000 from 3 peers = 9004500500 \(correct\)/g)).toHaveLength(3);
    expect(r.stdout).toContain('done: 3 peers did the same work and left');
    expect(leftovers(`mpbus_symmetric_${r.pid}`)).toEqual([]);
  });

  it('groups: two groups side by side, same actor name, nothing shared', async () => {
    const r = await runSample('groups', []);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('its counter says 3 (expected 3); sees only-in-blue: true, sees only-in-green: false');
    expect(r.stdout).toContain('its counter says 5 (expected 5); sees only-in-green: true, sees only-in-blue: false');
    expect([...leftovers(`mpbus_groups_blue_${r.pid}`), ...leftovers(`mpbus_groups_green_${r.pid}`)]).toEqual([]);
  });

  it('interrupts: every process prints the events and the group leaves nothing behind', async () => {
    const r = await runSample('interrupts', []);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('done: every process saw the interrupts, and the group left nothing behind');
    expect(leftovers(`mpbus_intr_${r.pid}`)).toEqual([]);
  });

  it('interrupts: SIGINT while the primary hotplugs ends every process with no stack trace, the launcher with 130 once they have ended', async () => {
    // (a hotplug the close cut short failed with EPERM, which the sample printed with its stack
    // before it exited 1; the launcher gave the shell back while its processes still ran)
    const child = spawn(process.execPath, [join(repoRoot, 'dist', 'samples', 'interrupts', 'main.js')], { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await poll(
      () => stdout,
      (out) => /then a virtio_user frontend/.test(out),
      60_000,
    );
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stdout).toContain('SIGINT: stopped; every process has ended');
    expect(stderr).toBe('');
    expect(leftovers(`mpbus_intr_${child.pid}`)).toEqual([]);
    expect(existsSync(`/tmp/mpbus_intr_${child.pid}.sock`)).toBe(false);
  });

  it('flagship --help explains the options', async () => {
    const r = await runSample('flagship', ['--help']);
    expect(r.code).toBe(0);
    for (const option of ['--jobs', '--workers', '--payload', '--strategy', '--warmup', '--kill-one-worker', '--json']) expect(r.stdout).toContain(option);
  });

  it('flagship: a worker SIGKILLed mid-run loses no job, comes back (its pool restarts it) and takes jobs again; every job is answered exactly once', async () => {
    const r = await runSample('flagship', ['--jobs', '4000', '--workers', '2', '--kill-one-worker', '--json']);
    expect(r.code).toBe(0);
    const last = r.stdout.trim().split('\n').at(-1)!;
    const summary = JSON.parse(last) as Record<string, unknown>;
    // the pool restarted the killed worker in its slot, under its name, in a new process
    expect(summary).toMatchObject({
      jobs: 4000,
      answered: 4000,
      lost: 0,
      duplicates: 0,
      workers: 2,
      killedWorker: 'worker-1',
      restartedWorker: 'worker-1',
      leftovers: [],
    });
    for (const key of ['perWorker', 'throughputJobsPerSec', 'latencyP50Us', 'latencyP99Us', 'cpuPerJobUs']) expect(summary).toHaveProperty(key);
    const perWorker = summary.perWorker as Record<string, number>;
    expect(Object.values(perWorker).reduce((a, b) => a + b, 0)).toBe(4000);
    expect(summary.restartedJobs).toBeGreaterThan(0);
    expect(leftovers(`mpbus_flagship_${r.pid}`)).toEqual([]);
  });

  it('flagship with a strategy and a payload prints a progress line and a summary', async () => {
    const r = await runSample('flagship', ['--jobs', '2000', '--warmup', '500', '--workers', '2', '--strategy', 'least-loaded', '--payload', '1024']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('warming up: 500 jobs, not counted');
    expect(r.stdout).toMatch(/CPU per job: this process \d+\.\d us, the workers \d+\.\d us together/);
    expect(r.stdout).toMatch(/\] 100% 2,000 answered/);
    expect(r.stdout).toContain('every job answered exactly once');
    expect(r.stdout).toMatch(/latency p50 \d+ us, p99 \d+ us/);
    expect(r.stdout).toContain('cleanup: no worker process, runtime dir or hugepage file left behind');
  });

  it.each(['SIGINT', 'SIGTERM'] as const)(
    "flagship: %s mid-run ends it and its workers within 1 s, with the signal's exit code, leaving nothing",
    async (signal) => {
      const child = spawn(process.execPath, [join(repoRoot, 'dist', 'samples', 'flagship', 'main.js'), '--jobs', '100000000', '--workers', '2'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      try {
        expect(
          await poll(
            () => stdout,
            (out) => /answered/.test(out),
            60_000,
          ),
        ).toMatch(/answered/); // jobs are flowing
        const t0 = performance.now();
        child.kill(signal);
        const code = await exited;
        expect(performance.now() - t0).toBeLessThan(1000);
        expect(code).toBe(signal === 'SIGINT' ? 130 : 143);
        expect(stdout).toContain(`${signal}: stopping the workers`);
        expect(leftovers(`mpbus_flagship_${child.pid}`)).toEqual([]);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    },
  );

  it("the guide's snippets (docs/actors.md) run and print what the guide says", async () => {
    expect((await runGuide('01-first-actor')).stdout).toContain('total = 5');
    const classActor = await runGuide('02-class-actor');
    expect(classActor.stdout).toMatch(/hello Ada, it is [\d:]+ \(from greeter\)/);
    expect(classActor.stdout).toContain('greeter stopped after 1 greetings');
    const supervision = await runGuide('03-supervision');
    expect(supervision.stdout).toContain('the asker gets the error');
    expect(supervision.stdout).toContain('after the restart, calls = 1');
    expect(supervision.stdout).toContain('timed out: true');
    expect(supervision.stdout).toContain("dead letter: 'hello' to 'nobody' (unknown-actor)");
    const across = await runGuide('04-across-processes');
    expect(across.code).toBe(0);
    expect(across.stdout).toContain('{ ok: true, left: 7 }');
    expect(across.stdout).toContain('inventory stopped: stopped');
    expect(leftovers(`guide_${across.pid}`)).toEqual([]);
    const router = await runGuide('05-router');
    expect(router.code).toBe(0);
    expect(router.stdout).toContain('all 30 answered: true');
    expect(router.stdout).toContain('slot 0 now runs sq-1 after 1 restart'); // the same name, in a new process
    expect(router.stdout).toContain('after scale(2): sq-1, sq-2');
    expect(leftovers(`guide_router_${router.pid}`)).toEqual([]);
  });
});
