/**
 * DPDK's own C programs as test peers: builds the multi-process examples Debian ships in
 * dpdk-doc (compiled at test time with `cc $(pkg-config --cflags --libs libdpdk)`, never copied
 * into the repository) and runs C programs as processes of a test group, read line by line,
 * driven through stdin and ended by PID.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestGroup } from './group.js';

/** Where dpdk-doc installs DPDK's example sources (scripts/setup.sh installs the package). */
export const examplesDir = '/usr/share/dpdk/examples';

/** The flags every C peer is built with: Debian's shared DPDK libraries, as the addon links them. */
export function dpdkFlags(): string[] {
  return execFileSync('pkg-config', ['--cflags', '--libs', 'libdpdk'], { encoding: 'utf8' }).trim().split(/\s+/);
}

/** A temp dir for one test file's builds; `remove()` in afterAll. */
export class CBuild {
  readonly dir = mkdtempSync(join(tmpdir(), 'mpbus-cex-'));

  /** Compiles C sources (the .c files of `sources`, which may be directories) into `name`. */
  compile(name: string, sources: string[], extra: string[] = []): string {
    const files = sources.flatMap((s) =>
      s.endsWith('.c')
        ? [s]
        : readdirSync(s)
            .filter((f) => f.endsWith('.c'))
            .map((f) => join(s, f)),
    );
    const out = join(this.dir, name);
    execFileSync('cc', ['-O2', '-DALLOW_EXPERIMENTAL_API', ...extra, ...files, '-o', out, ...dpdkFlags()], { stdio: 'pipe' });
    return out;
  }

  /** Builds an example of dpdk-doc's multi_process directory, e.g. `simple_mp` or `client_server_mp/mp_client`. */
  multiProcessExample(name: string, path: string): string {
    const base = join(examplesDir, 'multi_process');
    if (!existsSync(base)) throw new Error(`DPDK's examples are missing (${base}): run bash scripts/setup.sh, which installs dpdk-doc`);
    return this.compile(name, [join(base, path)], [`-I${join(base, 'client_server_mp', 'shared')}`]);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A running C program of a group: its output lines (stdout and stderr), stdin, and its end. */
export class CProgram {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  readonly pid: number;
  private partial = '';
  private waiters: Array<() => void> = [];

  constructor(
    group: TestGroup,
    readonly binary: string,
    readonly args: string[],
  ) {
    const child = group.track(spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'] }));
    this.pid = child.pid!;
    this.stdin = child.stdin!;
    const onData = (d: Buffer): void => {
      this.partial += d.toString();
      const parts = this.partial.split('\n');
      this.partial = parts.pop()!;
      this.lines.push(...parts);
      this.wake();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    this.exited = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        if (this.partial) this.lines.push(this.partial);
        this.lines.push(`<exit ${code ?? signal}>`);
        this.wake();
        resolve(code);
      }),
    );
  }

  readonly stdin: NodeJS.WritableStream;

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Output so far, including an unfinished last line (a prompt). */
  get output(): string {
    return [...this.lines, this.partial].join('\n');
  }

  /** Waits for a line matching `pattern` (from the start of the output) and returns it. */
  async waitFor(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.lines.find((l) => pattern.test(l));
      if (line !== undefined) return line;
      if (Date.now() > deadline || this.lines.some((l) => l.startsWith('<exit'))) {
        throw new Error(`${this.binary}: no line matching ${pattern}; output:\n${this.output}`);
      }
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }

  /** Writes a line to the program's stdin (its command prompt, for cmdline programs). */
  send(line: string): void {
    this.stdin.write(`${line}\n`);
  }
}
