/**
 * `mpbus clean <prefix>`: removes what a dead group left (its hugepage files and runtime dir);
 * refuses while any of its processes lives.
 */
import { MpBusError } from '../errors.js';
import { cleanGroup } from '../runtime/group-survey.js';
import { prefixArguments, type Command } from './command.js';
import { mib } from './format.js';

const help = `Usage: npx mpbus clean <prefix> [--json]

Removes the hugepage files and the runtime dir a dead DPDK group left behind (a group whose
processes were all killed: DPDK's own cleanup never removes them, and they hold hugepages).
Refused while any process of the group lives: stop them first (the last one out removes the
files itself). Exit code 0 when removed, 1 when refused or not found.`;

export const clean: Command = {
  summary: "remove a dead group's hugepage files and runtime dir (refused while it lives)",
  help,
  run(args) {
    const parsed = prefixArguments('clean', help, args);
    if (parsed === undefined) return 2;
    const { prefix, json } = parsed;
    try {
      const survey = cleanGroup(prefix);
      if (json) console.log(JSON.stringify({ prefix, removed: true, hugepageBytes: survey.hugepageBytes }));
      else console.log(`removed group '${prefix}': its runtime dir and ${mib(survey.hugepageBytes)} of hugepage files`);
      return 0;
    } catch (err) {
      if (!(err instanceof MpBusError)) throw err;
      if (json) console.log(JSON.stringify({ prefix, removed: false, code: err.code, message: err.message }));
      else console.error(`mpbus clean: ${err.message}`);
      return 1;
    }
  },
};
