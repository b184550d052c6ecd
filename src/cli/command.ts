/** The shape of one `mpbus` subcommand, so the dispatcher (main.ts) can list and run any of them. */

/** One subcommand of the `mpbus` bin. */
export interface Command {
  /** One line for `mpbus --help`. */
  readonly summary: string;
  /** The full text of `mpbus <command> --help`. */
  readonly help: string;
  /** Runs the command with the arguments after its name (`--help` is the dispatcher's); resolves with the exit code. */
  run(args: string[]): Promise<number> | number;
}
