/**
 * `mpbus ps <prefix>`: a group's processes (pid, role, lcore, uptime, CPU, RSS, command) and
 * its actors (counters, depth, ask latencies), read from its files without attaching to it.
 */
import { readGroupView, type GroupView } from '../obs/group-view.js';
import { prefixArguments, type Command } from './command.js';
import { amount, duration, formatTable, latency, mib } from './format.js';
import { ROWS } from '../runtime/counters-layout.js';

const help = `Usage: npx mpbus ps <prefix> [--json]

Shows a group's processes, their actors and their mailboxes, from the counters every mpbus process keeps in
the group's runtime dir (read with plain file reads: the group is not attached to, no lcore is
taken, nothing is sent to its processes). Members that keep no counters (C DPDK programs) are
listed without figures. Exit code 1 when there is no such group.`;

/** The processes table and the actors table of a view, as `ps` and `top` print them. */
export function processTable(view: GroupView): string {
  return formatTable(
    ['PID', 'ROLE', 'LCORE', 'UPTIME', 'CPU', 'RSS', 'HEAP', 'DEAD', 'ACTORS', 'COMMAND'],
    view.processes.map((p) => [
      String(p.pid),
      p.role,
      p.lcore === null ? '-' : String(p.lcore),
      p.mpbus ? duration(p.uptimeMs) : '-',
      !p.mpbus ? '-' : p.cpuPercent !== undefined ? `${p.cpuPercent.toFixed(1)}%` : `${(p.cpuUs / 1e6).toFixed(1)}s`,
      p.mpbus ? mib(p.rssBytes) : '-',
      p.mpbus ? mib(p.heapUsedBytes) : '-',
      p.mpbus ? amount(p.deadLetters) : '-',
      String(p.actors.length),
      p.command,
    ]),
  );
}

export const ps: Command = {
  summary: "show a group's processes and actors (counters, depths, ask latencies)",
  help,
  run(args) {
    const parsed = prefixArguments('ps', help, args);
    if (parsed === undefined) return 2;
    const { prefix, json } = parsed;
    const view = readGroupView(prefix);
    if (!view) {
      if (json) console.log(JSON.stringify({ prefix, found: false }));
      else console.error(`mpbus ps: no group '${prefix}' on this machine ('mpbus ls' lists them)`);
      return 1;
    }
    if (json) {
      console.log(JSON.stringify(view));
      return 0;
    }
    const actors = formatTable(
      ['ACTOR', 'PID', 'RECEIVED', 'PROCESSED', 'FAILED', 'DEAD', 'RESTARTS', 'DEPTH', 'ASKS', 'P50', 'P99'],
      view.actors.map((a) => [
        a.name,
        String(a.pid),
        amount(a.received),
        amount(a.processed),
        amount(a.failed),
        amount(a.deadLettered),
        amount(a.restarts),
        amount(a.depth),
        amount(a.asks),
        latency(a.p50Ms),
        latency(a.p99Ms),
      ]),
    );
    const remote = formatTable(
      ['ASKED ON OTHER HOSTS', 'ASKS', 'FAILED', 'TIMEOUTS', 'P50', 'P99'],
      view.remoteAsks.map((a) => [a.name, amount(a.asks), amount(a.askFailed), amount(a.askTimeouts), latency(a.p50Ms), latency(a.p99Ms)]),
    );
    const mailboxes = formatTable(
      ['MAILBOX', 'PID', 'DEPTH', 'CAPACITY'],
      view.mailboxes.map((b) => [b.name, String(b.pid), amount(b.depth), amount(b.capacity)]),
    );
    // Rows that did not fit: what ps shows of those processes is incomplete, and says so.
    const dropped = view.processes
      .filter((p) => p.rowsDropped > 0)
      .map(
        (p) =>
          `\n\npid ${p.pid} had more actors, mailboxes and asked names than its ${ROWS} counter rows: ${amount(p.rowsDropped)} could not be counted since it started (what is shown of it may miss some)`,
      )
      .join('');
    // What killed processes left: their pids, and how to remove the files of a dead group.
    const left =
      view.deadPids.length > 0 || view.state === 'dead'
        ? `\n\n${view.deadPids.length > 0 ? `killed, their counters left behind: pids ${view.deadPids.join(', ')}\n` : ''}${view.state === 'dead' ? `no process of the group runs: 'mpbus clean ${view.prefix}' removes its files` : ''}`.trimEnd()
        : '';
    const elsewhere =
      view.otherPidNamespace === undefined
        ? ''
        : `\n\nthe group runs in another PID namespace (${view.otherPidNamespace}, another container): what its counters say of its processes is out of sight here; run 'npx mpbus ps ${view.prefix}' inside it (docker exec, kubectl exec)`;
    console.log(
      `group ${view.prefix}: ${view.state}, ${view.processes.length} processes, ${view.actors.length} actors\n\n${processTable(view)}\n\n${view.actors.length > 0 ? actors : '(no actors)'}${view.remoteAsks.length > 0 ? `\n\n${remote}` : ''}${view.mailboxes.length > 0 ? `\n\n${mailboxes}` : ''}${dropped}${left}${elsewhere}`,
    );
    return 0;
  },
};
