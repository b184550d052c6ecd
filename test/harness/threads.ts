/** Where a process's threads may run, read from /proc (the placement tests). */
import { readdirSync, readFileSync } from 'node:fs';

const cpusOfTask = (pid: number, tid: string | number): string | undefined =>
  /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))?.[1];

/** The CPUs of a process's JS thread (its main thread), and the distinct lists of all its threads. */
export function threadCpus(pid: number): { js: string | undefined; all: string[] } {
  const lists = readdirSync(`/proc/${pid}/task`).map((tid) => cpusOfTask(pid, tid));
  return { js: cpusOfTask(pid, pid), all: [...new Set(lists)].filter((l): l is string => l !== undefined).sort() };
}
