/**
 * `mpbus top <prefix>`: a live view of a group, refreshed every second: per actor its depth,
 * rates, ask latency p50/p99 and dead letters; per process its CPU and RSS. Sortable (keys or
 * `--sort`), `q` quits. Reads the group's files only, like `ps` (nothing attaches to the group).
 */
import { isFilePrefix } from '../validation.js';
import { averageCpuPercent, readGroupView, type ActorRow, type GroupView } from '../obs/group-view.js';
import { notAPrefix, type Command } from './command.js';
import { amount, formatTable, latency } from './format.js';
import { processTable } from './ps.js';

/** Sort keys: the key pressed, and how actors are ordered by it. */
const SORTS: Record<string, { key: string; compare: (a: ActorRow, b: ActorRow) => number }> = {
  name: { key: 'n', compare: (a, b) => a.name.localeCompare(b.name) },
  depth: { key: 'd', compare: (a, b) => b.depth - a.depth },
  rate: { key: 'r', compare: (a, b) => (b.receivedPerSec ?? 0) - (a.receivedPerSec ?? 0) },
  p99: { key: 'p', compare: (a, b) => (b.p99Ms ?? -1) - (a.p99Ms ?? -1) },
  dead: { key: 'x', compare: (a, b) => b.deadLettered - a.deadLettered },
};
const sortHelp = Object.entries(SORTS)
  .map(([name, s]) => `${s.key} ${name}`)
  .join(', ');

const help = `Usage: npx mpbus top <prefix> [--sort name|depth|rate|p99|dead] [--interval ms] [-n count] [--json]

A live view of a group, refreshed every second (--interval): its processes (CPU, RSS) and its
actors (mailbox depth, messages received and processed per second, ask latency p50/p99 over
every ask made to it so far, dead letters). Keys: ${sortHelp} sort the actors; q quits.
-n stops after that many refreshes. --json prints one JSON object per refresh instead.
Reads the group's files only: nothing attaches to it (see 'mpbus ps').`;

interface TopOptions {
  prefix: string;
  sort: string;
  intervalMs: number;
  count: number;
  json: boolean;
}

function parse(args: string[]): TopOptions | string {
  const o: TopOptions = { prefix: '', sort: 'depth', intervalMs: 1000, count: Infinity, json: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = (): string | undefined => args[++i];
    if (a === '--json') o.json = true;
    else if (a === '--sort') o.sort = value() ?? '';
    else if (a === '--interval') o.intervalMs = Number(value());
    else if (a === '-n') o.count = Number(value());
    else if (a.startsWith('-') || o.prefix !== '') return `unexpected argument '${a}'`;
    else o.prefix = a;
  }
  if (o.prefix === '') return "give one group prefix ('mpbus ls' lists them)";
  if (!isFilePrefix(o.prefix)) return notAPrefix(o.prefix);
  if (!Object.hasOwn(SORTS, o.sort)) return `--sort takes ${Object.keys(SORTS).join(', ')}, got '${o.sort}'`;
  if (!Number.isInteger(o.intervalMs) || o.intervalMs < 100 || o.intervalMs > 3_600_000) return '--interval takes 100 to 3600000 ms';
  if (o.count !== Infinity && (!Number.isInteger(o.count) || o.count < 1)) return '-n takes a positive integer';
  return o;
}

/** One screen of the view. */
export function renderTop(view: GroupView, sort: string, rows: number): string {
  const actors = [...view.actors].sort(SORTS[sort]!.compare);
  const processes = processTable(view);
  const head = `mpbus top - group ${view.prefix} (${view.state}) - ${new Date(view.readAt).toISOString().slice(11, 19)} UTC - ${view.processes.length} processes, ${view.actors.length} actors - sort: ${sort}`;
  const room = Math.max(1, rows - processes.split('\n').length - 7);
  const shown = actors.slice(0, room);
  const table = formatTable(
    ['ACTOR', 'PID', 'DEPTH', 'RECV/S', 'PROC/S', 'P50', 'P99', 'DEAD', 'FAILED', 'RESTARTS'],
    shown.map((a) => [
      a.name,
      String(a.pid),
      amount(a.depth),
      a.receivedPerSec === undefined ? '-' : amount(Math.round(a.receivedPerSec)),
      a.processedPerSec === undefined ? '-' : amount(Math.round(a.processedPerSec)),
      latency(a.p50Ms),
      latency(a.p99Ms),
      amount(a.deadLettered),
      amount(a.failed),
      amount(a.restarts),
    ]),
  );
  const more = actors.length > shown.length ? `\n(${actors.length - shown.length} more actors)` : '';
  const remote = view.remoteAsks.length > 0 ? `\n(asks to ${view.remoteAsks.length} actors on other hosts: 'mpbus ps ${view.prefix}' lists them)` : '';
  return `${head}\n\n${processes}\n\n${actors.length > 0 ? table : '(no actors)'}${more}${remote}\n\nkeys: ${sortHelp} (sort); q quits`;
}

export const top: Command = {
  summary: 'live view of a group: actor depths, rates, p50/p99, dead letters; process CPU and RSS',
  help,
  run(args) {
    const o = parse(args);
    if (typeof o === 'string') {
      console.error(`mpbus top: ${o}\n\n${help}`);
      return 2;
    }
    return loop(o);
  },
};

function loop(o: TopOptions): Promise<number> {
  const out = process.stdout;
  const screen = !o.json && out.isTTY;
  const stdin = process.stdin;
  const keys = stdin.isTTY && !o.json;
  let sort = o.sort;
  let view: GroupView | undefined;
  let timer: NodeJS.Timeout | undefined;
  let shown = 0;
  return new Promise<number>((resolve) => {
    let finished = false;
    const finish = (code: number, message?: string): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      // (the error listener stays: the last screen's write may fail after this, when the reader
      // went away meanwhile, and an 'error' with no listener would end the command with a stack)
      if (keys) {
        stdin.setRawMode(false);
        stdin.pause();
      }
      if (screen) out.write('\x1b[?25h\x1b[?1049l');
      if (message) console.error(message);
      resolve(code);
    };
    // A reader that went away (`mpbus top ... | head`) ends the view quietly, as procps's top does.
    const onOutputError = (err: NodeJS.ErrnoException): void =>
      finish(err.code === 'EPIPE' ? 0 : 1, err.code === 'EPIPE' ? undefined : `mpbus top: ${err.message}`);
    out.on('error', onOutputError);
    const refresh = (): void => {
      if (finished) return;
      const next = readGroupView(o.prefix, view);
      if (!next || (next.processes.length === 0 && next.state === 'dead')) {
        if (view) finish(0, `mpbus top: group '${o.prefix}' is gone`);
        else if (next)
          finish(
            1,
            `mpbus top: group '${o.prefix}' is dead: no process of it runs ('mpbus ps ${o.prefix}' shows what it left, 'mpbus clean ${o.prefix}' removes its files)`,
          );
        else finish(1, `mpbus top: no group '${o.prefix}' on this machine ('mpbus ls' lists them)`);
        return;
      }
      for (const p of next.processes) p.cpuPercent ??= averageCpuPercent(p, next.readAt);
      view = next;
      if (o.json) out.write(`${JSON.stringify(view)}\n`);
      else out.write(`${screen ? '\x1b[H\x1b[2J' : shown > 0 ? '\n' : ''}${renderTop(view, sort, out.rows ?? 40)}\n`);
      if (++shown >= o.count) finish(0);
      else timer = setTimeout(refresh, o.intervalMs);
    };
    if (screen) out.write('\x1b[?1049h\x1b[?25l');
    if (keys) {
      stdin.setRawMode(true);
      stdin.resume();
      stdin.on('data', (data: Buffer) => {
        const key = data.toString();
        if (key === 'q' || key === '\x03') return finish(0);
        const chosen = Object.entries(SORTS).find(([, s]) => s.key === key);
        if (chosen && view) {
          sort = chosen[0];
          out.write(`\x1b[H\x1b[2J${renderTop(view, sort, out.rows ?? 40)}\n`);
        }
      });
    }
    refresh();
  });
}
