/**
 * `mpbus ls`: the DPDK groups on this machine, read from their files (nothing attaches to them):
 * prefix, state, primary pid, members, hugepage memory. `--json` for scripts.
 */
import { surveyGroups, type GroupSurvey } from '../runtime/group-survey.js';
import type { Command } from './command.js';
import { formatTable, mib } from './format.js';

const help = `Usage: npx mpbus ls [--json]

Lists the DPDK process groups on this machine (mpbus or not), from their runtime dirs and
hugepage files; no group is attached to or disturbed. For each: its file prefix, its state
(alive: its primary runs; orphaned: secondaries run without a primary; dead: only files are
left, 'mpbus clean <prefix>' removes them), the primary's pid, the live members, and the
hugepage memory its files hold.`;

function table(groups: GroupSurvey[]): string {
  const rows = groups.map((g) => [
    g.prefix,
    g.state,
    g.primaryPid === null ? '-' : `${g.primaryPid}${g.otherPidNamespace !== undefined ? ' (another PID namespace)' : g.mpbusPrimary ? '' : ' (not mpbus)'}`,
    String((g.primaryPid === null ? 0 : 1) + g.secondaryPids.length),
    mib(g.hugepageBytes),
  ]);
  return formatTable(['PREFIX', 'STATE', 'PRIMARY', 'MEMBERS', 'HUGEPAGES'], rows);
}

export const ls: Command = {
  summary: 'list the DPDK groups on this machine: state, primary, members, hugepage memory',
  help,
  run(args) {
    const unknown = args.filter((a) => a !== '--json');
    if (unknown.length > 0) {
      console.error(`mpbus ls: unknown argument '${unknown[0]}'\n\n${help}`);
      return 2;
    }
    const groups = surveyGroups();
    if (args.includes('--json')) console.log(JSON.stringify(groups));
    else console.log(groups.length === 0 ? 'no DPDK group on this machine' : table(groups));
    return 0;
  },
};
