/**
 * What `mpbus ps` and `mpbus top` show of a group: its survey (files and locks, group-survey.ts)
 * joined with its counters (group-counters.ts): every live process (members without counters,
 * such as C programs, included), every actor, and, given the previous view, rates and CPU
 * percentages. Reads only; see group-counters.ts.
 */
import { surveyGroup, type GroupSurvey } from '../runtime/group-survey.js';
import { groupAskViews, readGroupCounters, type ActorView, type RemoteAskView } from './group-counters.js';

/** One live process of the group. */
export interface ProcessView {
  pid: number;
  role: 'primary' | 'secondary';
  /** Its lcore ID; null for a member without counters. */
  lcore: number | null;
  /** False for a member that writes no counters (a C DPDK program, an older mpbus). */
  mpbus: boolean;
  command: string;
  uptimeMs: number;
  /** CPU time used so far, µs, as of `sampledAt`. */
  cpuUs: number;
  /** When the process last wrote its gauges (ms since the epoch). */
  sampledAt: number;
  /** CPU use between the last two samples, percent of one CPU (top only; see {@link averageCpuPercent}). */
  cpuPercent?: number;
  rssBytes: number;
  heapUsedBytes: number;
  deadLetters: number;
  /** Rows it could not count in its slot (more actors, mailboxes and asked names than 512 at once): those are not shown. */
  rowsDropped: number;
  /** Its actors' names. */
  actors: string[];
}

/** One actor, with rates since the previous view (top only). */
export interface ActorRow extends ActorView {
  receivedPerSec?: number;
  processedPerSec?: number;
}

/** One open mailbox of the group (an actor's, or one opened with `MailboxSystem.open`). */
export interface MailboxView {
  name: string;
  pid: number;
  /** Messages sent to it and not yet handled (sampled every 500 ms). */
  depth: number;
  capacity: number;
}

/** A group at one instant. */
export interface GroupView {
  prefix: string;
  state: GroupSurvey['state'];
  readAt: number;
  processes: ProcessView[];
  actors: ActorRow[];
  /** What the group asked of actors it does not hold (on other hosts of its cluster). */
  remoteAsks: RemoteAskView[];
  mailboxes: MailboxView[];
  /** Processes that were killed and left counters behind (their lcore not taken again yet). */
  deadPids: number[];
  /** The group's PID namespace when it is not this process's (see `GroupSurvey.otherPidNamespace`). */
  otherPidNamespace?: string | undefined;
}

/** Reads a group now; `previous` (a view read earlier) gives rates. Undefined when there is no such group. */
export function readGroupView(prefix: string, previous?: GroupView): GroupView | undefined {
  const survey = surveyGroup(prefix);
  const counters = readGroupCounters(prefix);
  if (!counters && survey.state === 'dead' && survey.hugepageBytes === 0 && survey.primaryPid === null) return undefined;
  const processes: ProcessView[] = [];
  const { actors, remote }: { actors: ActorRow[]; remote: RemoteAskView[] } = counters ? groupAskViews(counters) : { actors: [], remote: [] };
  const seconds = previous ? (Date.now() - previous.readAt) / 1000 : 0;
  for (const p of counters?.processes ?? []) {
    if (p.state !== 'alive') continue;
    const before = previous?.processes.find((x) => x.pid === p.pid);
    const cpuUs = p.cpuUserUs + p.cpuSystemUs;
    const view: ProcessView = {
      pid: p.pid,
      role: p.role,
      lcore: p.lcore,
      mpbus: true,
      command: p.command,
      uptimeMs: p.uptimeMs,
      cpuUs,
      sampledAt: p.sampledAt,
      rssBytes: p.rssBytes,
      heapUsedBytes: p.heapUsedBytes,
      deadLetters: p.deadLetters,
      rowsDropped: p.rowsDropped,
      actors: actors.filter((a) => a.pid === p.pid).map((a) => a.name),
    };
    if (before) {
      const percent = cpuPercent(before, view);
      if (percent !== undefined) view.cpuPercent = percent;
    }
    processes.push(view);
  }
  const known = new Set(processes.map((p) => p.pid));
  for (const pid of [survey.primaryPid, ...survey.secondaryPids]) {
    if (pid === null || known.has(pid)) continue;
    const role = pid === survey.primaryPid ? 'primary' : 'secondary';
    processes.push({
      pid,
      role,
      lcore: null,
      mpbus: false,
      command: '(no counters)',
      uptimeMs: 0,
      cpuUs: 0,
      sampledAt: 0,
      rssBytes: 0,
      heapUsedBytes: 0,
      deadLetters: 0,
      rowsDropped: 0,
      actors: [],
    });
  }
  processes.sort((a, b) => (a.role === b.role ? (a.lcore ?? 1e9) - (b.lcore ?? 1e9) : a.role === 'primary' ? -1 : 1));
  if (previous && seconds > 0) {
    for (const a of actors) {
      const before = previous.actors.find((x) => x.name === a.name && x.pid === a.pid);
      if (!before) continue;
      a.receivedPerSec = Math.max(0, a.received - before.received) / seconds;
      a.processedPerSec = Math.max(0, a.processed - before.processed) / seconds;
    }
  }
  return {
    prefix,
    state: survey.state,
    readAt: Date.now(),
    processes,
    actors,
    remoteAsks: remote,
    mailboxes: (counters?.processes ?? [])
      .filter((p) => p.state === 'alive')
      .flatMap((p) => p.rows.filter((r) => r.kind === 'mailbox').map((r) => ({ name: r.name, pid: p.pid, depth: r.depth, capacity: r.capacity })))
      .sort((a, b) => a.name.localeCompare(b.name)),
    // (from another PID namespace, a live process's pid is another's, or none, here)
    deadPids: survey.otherPidNamespace !== undefined ? [] : (counters?.processes ?? []).filter((p) => p.state === 'dead').map((p) => p.pid),
    ...(survey.otherPidNamespace !== undefined ? { otherPidNamespace: survey.otherPidNamespace } : {}),
  };
}

/**
 * A process's CPU use on average since it started, percent of one CPU: what `top` shows for a
 * process it has one sample of (its first screen, a process that just joined), where the figure
 * between two samples is not known yet. Undefined for a member without counters.
 */
export function averageCpuPercent(p: ProcessView, readAt: number): number | undefined {
  const ms = p.uptimeMs - Math.max(0, readAt - p.sampledAt);
  if (!p.mpbus || p.sampledAt === 0 || ms <= 0) return undefined;
  return p.cpuUs / ms / 10;
}

/** CPU percent of one CPU between two samples of a process (the same sample: the earlier figure). */
function cpuPercent(before: ProcessView, now: ProcessView): number | undefined {
  const ms = now.sampledAt - before.sampledAt;
  if (ms <= 0) return before.cpuPercent;
  return Math.max(0, now.cpuUs - before.cpuUs) / ms / 10;
}
