/**
 * Exit notices for other processes of this host, without polling: the addon's watcher thread
 * (native/proc_exits.cc) sleeps on a pidfd per watched process and calls back when one ends,
 * SIGKILL included. Listeners per pid are counted here; a pid is watched natively while any
 * listener wants it. Where the kernel has no pidfd_open (before Linux 5.3, or a seccomp filter
 * that refuses it), {@link ProcessExits.shared} is undefined and callers keep polling.
 */
import { addon } from '../native/addon.js';
import { logger } from '../log.js';

/** Called once, when the watched process has ended. */
export type ExitListener = (pid: number) => void;

let shared: ProcessExits | null | undefined;

/** This process's watcher of other processes' exits. */
export class ProcessExits {
  private readonly listeners = new Map<number, Set<ExitListener>>();
  private readonly log = logger('process-exits');

  private constructor() {}

  /** The watcher, started on first use; undefined where exits cannot be watched (poll instead). */
  static shared(): ProcessExits | undefined {
    if (shared !== undefined) return shared ?? undefined;
    const watcher = new ProcessExits();
    try {
      addon().procExitsOpen((pid) => watcher.exited(pid));
      shared = watcher;
    } catch (err) {
      watcher.log.info({ err }, 'process exits cannot be watched here: membership polls more often instead');
      shared = null;
    }
    return shared ?? undefined;
  }

  /**
   * Calls `listener` once when process `pid` ends; returns the function that stops watching.
   * A process already gone is reported on the next turn; one that cannot be watched (no file
   * descriptor left) is logged and not reported: callers keep a periodic check for that.
   */
  watch(pid: number, listener: ExitListener): () => void {
    let set = this.listeners.get(pid);
    if (set === undefined) {
      let watched: boolean;
      try {
        watched = addon().procExitsWatch(pid);
      } catch (err) {
        // out of file descriptors, say: this process is not watched, and its end is found by
        // the caller's periodic check instead (membership's scan, the primary's lock test)
        this.log.warn({ err, watchedPid: pid }, 'cannot watch a process for its exit: it is checked periodically instead');
        return () => undefined;
      }
      if (!watched) {
        setImmediate(() => listener(pid));
        return () => undefined;
      }
      this.listeners.set(pid, (set = new Set()));
    }
    set.add(listener);
    return () => {
      if (!set.delete(listener) || set.size > 0 || this.listeners.get(pid) !== set) return;
      this.listeners.delete(pid);
      addon().procExitsUnwatch(pid);
    };
  }

  private exited(pid: number): void {
    const set = this.listeners.get(pid);
    if (set === undefined) return;
    this.listeners.delete(pid);
    addon().procExitsUnwatch(pid);
    for (const listener of set) {
      try {
        listener(pid);
      } catch (err) {
        this.log.error({ err, watchedPid: pid }, 'a process exit listener threw');
      }
    }
  }
}
