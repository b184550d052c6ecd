/**
 * `mpbus clean <prefix>`: removes what a dead group left (its hugepage files and runtime dir);
 * refuses while any of its processes lives.
 */
import { isFilePrefix } from '../validation.js';
import { MpBusError } from '../errors.js';
import { cleanGroup } from '../runtime/group-survey.js';
import type { Command } from './command.js';
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
    const json = args.includes('--json');
    const rest = args.filter((a) => a !== '--json');
    if (rest.length !== 1 || rest[0]!.startsWith('-')) {
      console.error(`mpbus clean: give one group prefix ('mpbus ls' lists them)\n\n${help}`);
      return 2;
    }
    if (!isFilePrefix(rest[0])) {
      console.error(`mpbus clean: '${rest[0]}' is not a group prefix (1-48 characters of [A-Za-z0-9_.-], not starting with '.'; 'mpbus ls' lists them)`);
      return 2;
    }
    const prefix = rest[0];
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
