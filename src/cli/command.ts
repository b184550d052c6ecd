/** The shape of one `mpbus` subcommand, so the dispatcher (main.ts) can list and run any of them, and the arguments most take. */
import { isFilePrefix } from '../validation.js';

/** One subcommand of the `mpbus` bin. */
export interface Command {
  /** One line for `mpbus --help`. */
  readonly summary: string;
  /** The full text of `mpbus <command> --help`. */
  readonly help: string;
  /** Runs the command with the arguments after its name (`--help` is the dispatcher's); resolves with the exit code. */
  run(args: string[]): Promise<number> | number;
}

/**
 * The arguments of a command that takes one group prefix and `--json` (`ps`, `clean`): those,
 * or undefined after printing what is wrong with them and the command's help (exit code 2).
 */
export function prefixArguments(command: string, help: string, args: readonly string[]): { prefix: string; json: boolean } | undefined {
  const problem = (message: string): undefined => {
    console.error(`mpbus ${command}: ${message}\n\n${help}`);
    return undefined;
  };
  const json = args.includes('--json');
  const rest = args.filter((a) => a !== '--json');
  const option = rest.find((a) => a.startsWith('-'));
  if (option !== undefined) return problem(`unknown option '${option}'`);
  if (rest.length !== 1) return problem(rest.length === 0 ? "give a group prefix ('mpbus ls' lists them)" : `give one group prefix, not ${rest.length}`);
  if (!isFilePrefix(rest[0])) return problem(notAPrefix(rest[0]!));
  return { prefix: rest[0], json };
}

/** What is wrong with an argument that should be a group prefix and is not. */
export function notAPrefix(value: string): string {
  return `'${value}' is not a group prefix (1-48 characters of [A-Za-z0-9_.-], not starting with '.'; 'mpbus ls' lists them)`;
}
