/**
 * The package as a user gets it: `npm pack` of the repository (from a copy without dist/, like a
 * clean clone), `npm install` of the tarball into a fresh project with its own tsconfig.json,
 * `npx mpbus setup`, then the README's primary + worker program compiled with tsc against the
 * installed types and run as two processes, and the guide's programs (docs/actors.md) compiled
 * as printed. The project's files come from the README's and the guide's code blocks, so the
 * docs cannot drift from what is tested. Slow by nature (the install builds the addon, about a
 * minute), so all of it is one test.
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { codeBlocks, section } from './harness/markdown.js';
import { repoRoot } from './harness/paths.js';
import { useTestGroups } from './harness/use-groups.js';

const group = useTestGroups();
const work = mkdtempSync(join(tmpdir(), 'mpbus-package-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The environment of a user's shell: none of the npm_* variables of the `npm test` around us. */
const userEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_|^INIT_CWD$/i.test(k)));

function run(cmd: string, args: string[], cwd: string, timeout = 240_000): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env: userEnv, encoding: 'utf8', timeout });
  if (r.error) throw r.error;
  return r;
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  if (r.status !== 0) throw new Error(`${what} failed (${r.signal ?? r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout + r.stderr;
}

/** Version of a package in the repository's node_modules: the install then comes from the warm cache. */
function installedVersion(name: string): string {
  return (JSON.parse(readFileSync(join(repoRoot, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

/** A copy of the checkout as a clean clone has it (no dist/, build/ or node_modules/), sharing the dev tools. */
function cleanCopy(): string {
  const dir = join(work, 'mpbus');
  const skip = new Set(['node_modules', 'dist', 'build', '.git', '.vitest-report.json', join('test', '.tmp'), join('bench', '.tmp')]);
  cpSync(repoRoot, dir, { recursive: true, filter: (src) => !skip.has(relative(repoRoot, src)) && !src.endsWith('.tsbuildinfo') });
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

/** PIDs of the children of `pid` (from /proc), e.g. the worker a primary forked. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Writes every code block of `markdown` that starts with `// <path>` to that path in `dir`. */
function writeBlocks(markdown: string, dir: string): string[] {
  const files = codeBlocks(markdown).filter((b) => b.path !== undefined);
  for (const b of files) {
    mkdirSync(dirname(join(dir, b.path!)), { recursive: true });
    writeFileSync(join(dir, b.path!), b.code);
  }
  return files.map((b) => b.path!);
}

describe('the package', () => {
  it('packs, installs into a fresh project, sets up, and runs the README program as printed', { timeout: 420_000 }, async () => {
    // npm pack from a clean checkout: prepack compiles src, `files` keeps what a user needs.
    const copy = cleanCopy();
    ok(run('npm', ['pack', '--pack-destination', work, '--loglevel=error'], copy), 'npm pack');
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
    expect(tarball).toBeDefined();
    const files = ok(run('tar', ['tzf', join(work, tarball!)], work), 'tar')
      .trim()
      .split('\n')
      .map((f) => f.replace(/^package\//, ''));
    for (const needed of [
      'package.json',
      'README.md',
      'binding.gyp',
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/src/cli/main.js',
      'native/eal.cc',
      'native/common.h',
      'scripts/build-native.mjs',
      'scripts/setup-machine.sh',
      'docs/actors.md',
    ]) {
      expect(files).toContain(needed);
    }
    const unwanted = files.filter(
      (f) =>
        /^(test|bench|samples|\.ci|build|dist\/(?!src\/))/.test(f) ||
        f.endsWith('.map') ||
        (f.endsWith('.ts') && !f.endsWith('.d.ts')) ||
        f === 'scripts/setup.sh',
    );
    expect(unwanted).toEqual([]);

    // A fresh project, with the README's tsconfig.json and program and the guide's programs.
    const app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), `${JSON.stringify({ name: 'mpbus-user', version: '1.0.0', private: true, type: 'module' }, null, 2)}\n`);
    const readme = section(readFileSync(join(repoRoot, 'README.md'), 'utf8'), 'Use mpbus in your project');
    expect(writeBlocks(readme, app).sort()).toEqual(['src/primary.ts', 'src/worker.ts', 'tsconfig.json']);
    const guide = codeBlocks(readFileSync(join(repoRoot, 'docs', 'actors.md'), 'utf8')).filter((b) => b.lang === 'ts');
    expect(guide.length).toBeGreaterThanOrEqual(5);
    mkdirSync(join(app, 'src', 'guide'));
    for (const [i, b] of guide.entries()) writeFileSync(join(app, 'src', 'guide', `snippet-${i + 1}.ts`), b.code);

    // npm install, as the README says (its two installs in one, to save a minute of npm), with the
    // tarball standing in for `mpbus`; the other packages at the repository's versions, so npm's
    // warm cache serves them.
    const deps = ['tsyringe', 'reflect-metadata', 'typescript', '@types/node'].map((d) => `${d}@${installedVersion(d)}`);
    const install = ok(run('npm', ['install', join(work, tarball!), ...deps, '--prefer-offline', '--no-audit', '--no-fund'], app), 'npm install');
    expect(install).not.toContain('EBADENGINE');
    const installed = join(app, 'node_modules', 'mpbus');
    expect(existsSync(join(installed, 'build', 'Release', 'mpbus.node')), 'the install script built the addon').toBe(true);
    expect(existsSync(join(app, 'node_modules', '@nats-io')), 'the NATS client is an optional peer: not installed').toBe(false);
    // No OpenTelemetry SDK comes with mpbus (its API does, through prom-client): the README program
    // below runs without one, making no spans.
    expect(existsSync(join(app, 'node_modules', '@opentelemetry', 'sdk-trace-base')), 'no OpenTelemetry SDK is installed with mpbus').toBe(false);

    // The bin: a dispatcher; setup finds this machine ready and the addon built.
    const help = run('npx', ['mpbus', '--help'], app);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^ {2}setup {2}/m);
    const unknown = run('npx', ['mpbus', 'frobnicate'], app);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("mpbus: unknown command 'frobnicate'");
    expect(ok(run('npx', ['mpbus', 'setup'], app), 'npx mpbus setup')).toContain('mpbus setup: this machine is ready for mpbus');

    // tsc against the installed types: the README's program and every guide program, as printed.
    ok(run(join(app, 'node_modules', '.bin', 'tsc'), ['-p', '.'], app), 'tsc');
    // And in a project that sets exactOptionalPropertyTypes, options whose values may be undefined.
    writeFileSync(
      join(app, 'src', 'maybe-options.ts'),
      [
        "import { startActorSystem, type AskOptions, type LaunchOptions, type RouterOptions } from 'mpbus';",
        'const fromEnv = (name: string): string | undefined => process.env[name];',
        "export const start = (): ReturnType<typeof startActorSystem> => startActorSystem({ filePrefix: fromEnv('GROUP'), procType: undefined });",
        "export const ask: AskOptions = { timeoutMs: Number(fromEnv('TIMEOUT')) || undefined, signal: undefined };",
        "export const router: RouterOptions = { group: fromEnv('WORKERS'), key: undefined };",
        "export const launch: LaunchOptions = { count: undefined, name: fromEnv('POOL') };",
        '',
      ].join('\n'),
    );
    ok(run(join(app, 'node_modules', '.bin', 'tsc'), ['-p', '.', '--noEmit', '--exactOptionalPropertyTypes', 'true'], app), 'tsc, exactOptionalPropertyTypes');

    // The program: a primary that forks its worker; answers, exit and nothing left behind.
    const g = group('package');
    const primary = g.track(
      spawn(process.execPath, [join(app, 'dist', 'primary.js'), g.prefix], { cwd: app, env: userEnv, stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    let stdout = '';
    let stderr = '';
    primary.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    primary.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      // A hang: end the primary's worker and the primary by PID (cleanup knows only the primary).
      const hang = setTimeout(() => {
        for (const pid of childrenOf(primary.pid!)) process.kill(pid, 'SIGKILL');
        primary.kill('SIGKILL');
      }, 120_000);
      primary.once('exit', (exitCode) => {
        clearTimeout(hang);
        resolve(exitCode);
      });
    });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    const answers = lines.map((l) => /^hello (\w+), from greeter-(\d+) \(pid (\d+)\)$/.exec(l));
    expect(answers.map((m) => m?.[1])).toEqual(['Ada', 'Grace']);
    const workerPid = Number(answers[0]![2]);
    expect(answers.every((m) => m![2] === m![3] && Number(m![2]) === workerPid)).toBe(true);
    expect(() => process.kill(workerPid, 0), 'the worker process is gone').toThrow();
    expect(g.leftovers(), 'no runtime dir, no hugepage files').toEqual([]);

    // The bridge without its optional client: a typed error that names the install command.
    const nats = run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "import { NatsEngine } from 'mpbus'; await new NatsEngine({ servers: 'nats://127.0.0.1:1' }).connect().catch((e) => console.log(e.code, e.message));",
      ],
      app,
    );
    expect(nats.stdout).toContain('CLUSTER_UNAVAILABLE');
    expect(nats.stdout).toContain('npm install @nats-io/transport-node');
  });
});
