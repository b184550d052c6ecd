/**
 * Specification of exit notices (src/runtime/process-exits.ts over native/proc_exits.cc): a
 * watched process that ends is reported once to each of its listeners, SIGKILL included; a
 * process already gone is reported on the next turn; an unwatched one is not reported. No DPDK
 * is needed: the watched processes are plain `sleep`s this test starts and ends by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { ProcessExits } from '../src/runtime/process-exits.js';
import { sleep, until } from './harness/wait.js';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function sleeper(): ChildProcess & { pid: number } {
  const c = spawn('sleep', ['60'], { stdio: 'ignore' });
  children.push(c);
  return c as ChildProcess & { pid: number };
}

describe('exit notices', () => {
  const exits = ProcessExits.shared();

  it('are available on this kernel (pidfd_open)', () => {
    expect(exits).toBeDefined();
  });

  it('report a SIGKILLed process once to each listener, and only the watched one', async () => {
    const [a, b, c] = [sleeper(), sleeper(), sleeper()];
    const seen: string[] = [];
    exits!.watch(a.pid, (pid) => seen.push(`first ${pid}`));
    exits!.watch(a.pid, (pid) => seen.push(`second ${pid}`));
    const stopB = exits!.watch(b.pid, (pid) => seen.push(`b ${pid}`));
    exits!.watch(c.pid, (pid) => seen.push(`c ${pid}`));
    stopB();
    a.kill('SIGKILL');
    b.kill('SIGKILL');
    await until('the exit of the watched process', () => seen.length >= 2, 5000);
    await sleep(200); // anything more would come by now
    expect(seen.sort()).toEqual([`first ${a.pid}`, `second ${a.pid}`]);
    c.kill('SIGTERM');
    await until('the exit of a process ended by SIGTERM', () => seen.length === 3, 5000);
    expect(seen[2]).toBe(`c ${c.pid}`);
  });

  it('refuse a process they cannot watch without throwing (the callers check periodically)', async () => {
    let reported = 0;
    const stop = exits!.watch(-1, () => reported++); // the kernel refuses it: EINVAL
    stop();
    await sleep(50);
    expect(reported).toBe(0);
  });

  it('report a process that is already gone on the next turn', async () => {
    const a = sleeper();
    a.kill('SIGKILL');
    await new Promise((resolve) => a.once('exit', resolve)); // waited for: no such pid any more
    let reported = 0;
    exits!.watch(a.pid, () => reported++);
    expect(reported).toBe(0);
    await until('the report of a gone process', () => reported === 1, 1000);
  });
});
