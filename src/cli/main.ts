#!/usr/bin/env node
/**
 * The `mpbus` bin (`npx mpbus <command>`): a dispatcher of subcommands. Each command is a
 * {@link Command} in its own file, registered in `commands` below; `mpbus --help` lists them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../package-root.js';
import type { Command } from './command.js';
import { clean } from './clean.js';
import { ls } from './ls.js';
import { ps } from './ps.js';
import { setup } from './setup.js';
import { top } from './top.js';

const commands: Record<string, Command> = { setup, ls, ps, top, clean };

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((name) => name.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `Usage: npx mpbus <command> [options]\n\nCommands:\n${lines.join('\n')}\n\n'npx mpbus <command> --help' explains a command; 'npx mpbus --version' prints mpbus's version.`;
}

/** mpbus's version, from its package.json. */
function version(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return 0;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    console.log(version());
    return 0;
  }
  const command = name === undefined ? undefined : Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (command === undefined) {
    console.error(`${name === undefined ? 'mpbus: no command given' : `mpbus: unknown command '${name}'`}\n\n${usage()}`);
    return 2;
  }
  // every command's own --help, in one place
  if (args.includes('--help') || args.includes('-h')) {
    console.log(command.help);
    return 0;
  }
  return command.run(args);
}

process.exitCode = await main(process.argv.slice(2));
