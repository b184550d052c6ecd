/**
 * mpbus's own log lines (src/log.ts) as a user meets them: on stderr, quiet by default, and an
 * MPBUS_LOG value pino does not know (an empty one, as containers set) warns instead of stopping
 * the import. Runs the built module in a plain Node process (no DPDK), and an application that
 * gives mpbus its own pino logger (a primary of a group of its own).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixturePath, repoRoot } from './harness/paths.js';
import { isMpbusLog } from './harness/logs.js';
import { startScript } from './harness/script.js';
import { useTestGroups } from './harness/use-groups.js';

const group = useTestGroups();

const logModule = join(repoRoot, 'dist', 'src', 'log.js');

/** Imports the logger with MPBUS_LOG set to `level` (unset: undefined), logs one info and one warn line. */
function logWith(level: string | undefined): { status: number | null; stdout: string; stderr: string[] } {
  const env = { ...process.env };
  if (level === undefined) delete env.MPBUS_LOG;
  else env.MPBUS_LOG = level;
  const script = `const { logger } = await import(${JSON.stringify(logModule)}); logger('test').info('an info line'); logger('test').warn('a warn line'); console.log('the app');`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.trim().split('\n').filter(Boolean) };
}

const messages = (lines: string[]): string[] => lines.map((l) => (JSON.parse(l) as { msg: string }).msg);

describe("mpbus's log lines", () => {
  it('go to stderr as JSON, at warn by default; MPBUS_LOG sets the level in any case', () => {
    const quiet = logWith(undefined);
    expect(quiet).toMatchObject({ status: 0, stdout: 'the app\n' });
    expect(messages(quiet.stderr)).toEqual(['a warn line']);
    expect(JSON.parse(quiet.stderr[0]!)).toMatchObject({ name: 'mpbus', component: 'test', pid: expect.any(Number) });
    expect(messages(logWith('INFO').stderr)).toEqual(['an info line', 'a warn line']);
    expect(logWith('silent').stderr).toEqual([]);
  });

  it('an empty or unknown MPBUS_LOG keeps the default: an unknown one says so', () => {
    expect(messages(logWith('').stderr)).toEqual(['a warn line']);
    const unknown = logWith('verbose');
    expect(unknown.status).toBe(0);
    expect(messages(unknown.stderr)).toEqual([expect.stringContaining('MPBUS_LOG="verbose" is not a log level'), 'a warn line']);
    // (like every line: name, pid and component)
    expect(JSON.parse(unknown.stderr[0]!)).toMatchObject({ name: 'mpbus', component: 'log', pid: expect.any(Number) });
  });

  it('a postStop that does not end during a restart is said (warn) after 5 s: the actor answers nothing meanwhile', () => {
    const index = join(repoRoot, 'dist', 'src', 'index.js');
    const script = [
      `const { ActorSystem } = await import(${JSON.stringify(index)});`,
      'const system = new ActorSystem();',
      "const ref = await system.spawn('stuck', { crash: () => { throw new Error('on purpose'); } }, { postStop: () => new Promise(() => {}) });",
      "ref.tell('crash');",
      'setTimeout(() => process.exit(0), 5600);',
    ].join('\n');
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, MPBUS_LOG: 'warn' } });
    expect(r.status).toBe(0);
    const lines = r.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; actor?: string; hook?: string });
    expect(lines).toContainEqual(
      expect.objectContaining({ actor: 'stuck', hook: 'postStop', msg: expect.stringContaining("postStop of actor 'stuck' has not ended after 5000 ms") }),
    );
  });
});

describe("the application's logger (the runtime option logger)", () => {
  type Line = { name?: string; lib?: string; component?: string; actor?: string; msg?: string; who?: string; level?: number };

  /** Runs the application (test/fixtures/app-logger.ts): its own lines on stdout, what it printed, its stderr. */
  async function runApp(label: string, mpbusLog?: string): Promise<{ lines: Line[]; result: Record<string, unknown>; stderr: string }> {
    const g = group(label);
    const s = await startScript(g, fixturePath('app-logger'), { prefix: g.prefix, ...(mpbusLog ? { mpbusLog } : {}) }, 60_000);
    const end = await s.ended;
    expect(end.code, end.stderr).toBe(0);
    const out = end.stdout.trim().split('\n');
    const lines = out.filter((l) => l.startsWith('{"level"')).map((l) => JSON.parse(l) as Line);
    const result = JSON.parse(out.find((l) => l.startsWith('{"answer"'))!) as Record<string, unknown>;
    return { lines, result, stderr: end.stderr };
  }

  it("carries mpbus's lines and the actors' ctx.log, at its level; mpbus writes nothing of its own; a later start may not change it", async () => {
    const { lines, result, stderr } = await runApp('applog');
    expect(lines).toContainEqual(expect.objectContaining({ name: 'app', lib: 'mpbus', component: 'runtime', msg: 'joined group' }));
    expect(lines).toContainEqual(expect.objectContaining({ name: 'app', lib: 'mpbus', component: 'actor', actor: 'greeter', who: 'Ada', msg: 'greeting' }));
    expect(lines).toContainEqual(expect.objectContaining({ name: 'app', lib: 'mpbus', component: 'runtime', msg: 'left group' }));
    expect(stderr.split('\n').filter(isMpbusLog)).toEqual([]);
    expect(result.answer).toBe('hello Ada');
    expect(result.other).toMatchObject({ code: 'INVALID_OPTION', message: expect.stringContaining('already runs with another logger') });
    expect(result.bad).toMatchObject({ code: 'INVALID_OPTION', message: expect.stringMatching(/logger must be a pino logger .* without child, fatal/) });
  });

  it('MPBUS_LOG, when set, sets the level of its lines', async () => {
    const { lines, result } = await runApp('applogwarn', 'warn');
    expect(result.answer).toBe('hello Ada');
    expect(lines.filter((l) => l.lib === 'mpbus' && l.level! < 40)).toEqual([]);
  });
});
