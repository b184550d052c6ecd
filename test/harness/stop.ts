/** SIGSTOP a process and wait until every one of its threads is stopped (the stall tests). */
import { readdirSync, readFileSync } from 'node:fs';
import { sleep } from './wait.js';

/** A thread's state letter from /proc (R, S, D, T...), or undefined once the thread is gone. */
function taskState(pid: number, tid: string): string | undefined {
  try {
    // The state follows the command name in parentheses, which may itself hold spaces or ')'.
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

/**
 * Sends SIGSTOP and resolves once the kernel shows every thread stopped. kill() only queues the
 * signal: a thread busy in the kernel (a page fault on a hugepage, an uninterruptible wait) runs on
 * until it returns, and on a loaded machine may still answer a message sent right after.
 */
export async function stopProcess(pid: number, timeoutMs = 5_000): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const states = readdirSync(`/proc/${pid}/task`).map((tid) => taskState(pid, tid));
    if (states.every((s) => s === undefined || s === 'T' || s === 't')) return;
    if (Date.now() > deadline) throw new Error(`pid ${pid} did not stop within ${timeoutMs} ms: thread states ${states.join('')}`);
    await sleep(5);
  }
}
