/**
 * Where the 64-byte mailbox runs spend their time (docs/benchmarks.md, "What bounds the three
 * that are missed"): starts the mailbox bench's processes (bench/peers/mailbox-peer.ts, with
 * --perf-basic-prof so JS frames resolve), runs one of them under `perf record -g` + `perf stat`
 * for the sender and the receiver, and prints each side's top symbols.
 *
 * Run (after tsc): node dist/bench/profile-mailbox.js <enc|raw|rtt> [seconds=2] [batch=64]
 * It needs `perf` and writes only to a temporary directory it deletes (and node's /tmp/perf-<pid>.map files, deleted too).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GroupFiles } from '../src/runtime/group.js';
import { Peer, throughput } from './suites/mailbox.js';

const mode = (process.argv[2] ?? 'enc') as 'enc' | 'raw' | 'rtt';
const seconds = Number(process.argv[3] ?? 2);
const batch = Number(process.argv[4] ?? 64);
const dir = mkdtempSync(join(tmpdir(), 'mbx-prof-'));

/**
 * V8 reuses code addresses after GC, and perf resolves an address to the first /tmp/perf-<pid>.map
 * entry that covers it, so a hot function can show up under the name of long-dead startup code.
 * Keeps, for each address, only the newest entry (the map is appended in time order).
 */
function dedupePerfMap(pid: number): void {
  const file = `/tmp/perf-${pid}.map`;
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const kept: Array<{ start: bigint; end: bigint; line: string }> = [];
  for (let i = lines.length - 1; i >= 0; i--) {
    const [addr, size] = lines[i]!.split(' ', 2) as [string, string];
    const start = BigInt(`0x${addr}`);
    const end = start + BigInt(`0x${size}`);
    if (!kept.some((k) => start < k.end && k.start < end)) kept.push({ start, end, line: lines[i]! });
  }
  writeFileSync(
    file,
    kept
      .reverse()
      .map((k) => k.line)
      .join('\n') + '\n',
  );
}

/** Starts perf stat and perf record on `pid`; stop() ends both and returns their outputs. */
function profile(pid: number, role: string): { stop: () => Promise<{ stat: string; callers: string; top: string[]; byStage: string[] }> } {
  const data = join(dir, `${role}.data`);
  const stat = spawn(
    'perf',
    ['stat', '-e', 'task-clock,context-switches,raw_syscalls:sys_enter,syscalls:sys_enter_sched_yield,syscalls:sys_enter_futex', '-p', String(pid)],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const rec = spawn('perf', ['record', '-q', '-g', '-F', '1999', '-p', String(pid), '-o', data], { stdio: 'ignore' });
  let statOut = '';
  stat.stderr.on('data', (d: Buffer) => (statOut += d.toString()));
  const end = async (p: ChildProcess): Promise<void> => {
    const exited = once(p, 'exit');
    p.kill('SIGINT');
    await exited;
  };
  return {
    stop: async () => {
      await Promise.all([end(stat), end(rec)]);
      dedupePerfMap(pid);
      const read = (args: string[]): string[] =>
        execFileSync('perf', ['report', '-i', data, '--no-children', '--stdio', '-g', 'none', ...args], {
          encoding: 'utf8',
          maxBuffer: 64 << 20,
          stdio: ['ignore', 'pipe', 'ignore'],
        })
          .split('\n')
          .filter((l) => l.trim() !== '' && !l.startsWith('#'));
      const top = read(['--sort', 'dso,sym']);
      const byStage = read(['--sort', 'parent', '-p', STAGES.map(([, re]) => re).join('|')]);
      // PROFILE_CALLERS=sym1,sym2: also print who calls these symbols (e.g. V8 builtins).
      let callers = '';
      for (const sym of (process.env.PROFILE_CALLERS ?? '').split(',').filter(Boolean)) {
        const graph = execFileSync('perf', ['report', '-i', data, '--no-children', '--stdio', '-S', sym, '-G', '--percent-limit', '0.3'], {
          encoding: 'utf8',
          maxBuffer: 64 << 20,
          stdio: ['ignore', 'pipe', 'ignore'],
        });
        callers +=
          graph
            .split('\n')
            .filter((l) => l.trim() !== '' && !l.startsWith('#'))
            .slice(0, 40)
            .join('\n') + '\n';
      }
      // PROFILE_ANNOTATE=symbol: the hottest instructions of a native symbol (e.g. the atomics of MbxSend).
      const annotate = process.env.PROFILE_ANNOTATE;
      if (annotate) {
        const lines = execFileSync('perf', ['annotate', '-i', data, '--stdio', '-s', annotate], {
          encoding: 'utf8',
          maxBuffer: 64 << 20,
          stdio: ['ignore', 'pipe', 'ignore'],
        }).split('\n');
        const hot = lines.filter((l) => /^\s+[\d.]+\s+:/.test(l) && Number(l.trim().split(/\s+/)[0]) >= 2);
        callers += `hottest instructions of ${annotate}:\n${hot.slice(0, 20).join('\n')}\n`;
      }
      return { stat: statOut, callers, top, byStage };
    },
  };
}

/**
 * Stages, each named by the frames that anchor it. A sample is charged to the first anchor
 * found walking its call chain up from the leaf (`perf report --sort parent`), so a V8 inline
 * cache or a memmove counts for the pack, unpack or native call that ran it.
 */
const STAGES: Array<[string, string]> = [
  ['kernel: syscalls and interrupts (futex, sched_yield, epoll, scheduling)', 'entry_SYSCALL_64|asm_sysvec|asm_common_interrupt|irqentry'],
  ['mpbus native: send (MbxSend / MbxSendMany: pool get, copy, enqueue, doorbell)', 'MbxSend'],
  ['mpbus native: drain (MbxDrain, descriptor Check, element return, park)', 'mpbus::'],
  ['pack (msgpackr pack.js)', 'msgpackr/pack\\.js'],
  ['decode (msgpackr unpack.js + native string extractor, its napi_create_string_*)', 'msgpackr/unpack\\.js|extractStrings|napi_create_string'],
  ['N-API calls (napi_*: create Buffer / array, get typed array info)', 'napi_'],
  ['N-API crossing (callback wrapper, argument checks)', 'v8impl::|FunctionCallbackWrapper|CallApiCallback'],
  ['JS Buffer / TypedArray creation and copies (subarray, set, .buffer)', 'CreateTypedArray|TypedArrayPrototype|JSTypedArray|BufferPrototype|buffer\\.js'],
  ['mailbox JS (src/bus)', 'dist/src/bus'],
  ['subscribers and the bench loop (rxjs Subject, bench/peers/mailbox-peer.ts)', 'rxjs|mailbox-peer'],
];

/** Sums a `--sort parent` report's lines into STAGES; samples under no anchor go to 'other'. */
function stages(report: string[]): Map<string, number> {
  const out = new Map<string, number>([...STAGES.map(([name]) => [name, 0] as [string, number]), ['other (event loop, GC, libuv, timers)', 0]]);
  for (const line of report) {
    const m = /^\s*([\d.]+)%\s+(.*)$/.exec(line);
    if (!m) continue;
    const stage = STAGES.find(([, re]) => new RegExp(re).test(m[2]!))?.[0] ?? 'other (event loop, GC, libuv, timers)';
    out.set(stage, out.get(stage)! + Number(m[1]));
  }
  return out;
}

async function main(): Promise<void> {
  const prefix = `mpbench_prof_${process.pid}`;
  // --perf-basic-prof also turns on V8's log (isolate-*.log in the working directory): keep it in `dir`.
  const argv = ['--perf-basic-prof', '--no-logfile-per-isolate', `--logfile=${join(dir, 'v8.log')}`];
  const peers: Peer[] = [];
  try {
    for (const t of ['primary', 'secondary', 'secondary'] as const) peers.push(await Peer.spawn(prefix, t, argv));
    const [, a, b] = peers as [Peer, Peer, Peer];
    const raw = mode === 'raw';
    let run: () => Promise<string>;
    if (mode === 'rtt') {
      await b.call({ op: 'open', mode: 'echo', name: 'echo', replyTo: 'pong' });
      // the echo answers to 'pong'; each rtt run opens (and closes) that mailbox
      run = async () => JSON.stringify(await a.call({ op: 'rtt', me: 'pong', to: 'echo', bytes: 64, raw: false, rounds: 1_000_000, seconds }));
    } else {
      await b.call({ op: 'open', mode: process.env.PROFILE_BURSTS === '1' ? 'countBursts' : 'count', names: ['sink'] });
      run = async () => JSON.stringify(await throughput(a, b, ['sink'], 64, raw, seconds, batch));
    }
    console.log(`warm-up: ${await run()}`);
    const pa = profile(a.child.pid!, 'sender');
    const pb = profile(b.child.pid!, 'receiver');
    await new Promise((r) => setTimeout(r, 300)); // perf attached
    const result = await run();
    console.log(`profiled run (${mode}, ${seconds} s, batch ${batch}): ${result}`);
    const [ra, rb] = await Promise.all([pa.stop(), pb.stop()]);
    const parsed = JSON.parse(result) as { count?: number; n?: number };
    const msgs = parsed.count ?? parsed.n ?? 0;
    for (const [role, r] of [
      ['sender (a)', ra],
      ['receiver / echo (b)', rb],
    ] as const) {
      const cpuMs = Number(/([\d.,]+) msec task-clock/.exec(r.stat)?.[1]?.replace(/,/g, '') ?? 0);
      console.log(`\n=== ${role}: ${cpuMs.toFixed(0)} ms CPU, ${msgs} messages, ${((cpuMs * 1e6) / msgs).toFixed(0)} ns CPU/msg\n${r.stat.trim()}`);
      for (const [stage, pct] of stages(r.byStage))
        if (pct > 0) console.log(`  ${pct.toFixed(1).padStart(5)}%  ${(((pct / 100) * (cpuMs * 1e6)) / msgs).toFixed(0).padStart(5)} ns/msg  ${stage}`);
      console.log(`anchor frames (perf report --sort parent):\n${r.byStage.slice(0, 12).join('\n')}\ntop symbols:\n${r.top.slice(0, 25).join('\n')}`);
      if (r.callers) console.log(r.callers);
    }
  } finally {
    const pids = peers.map((p) => p.child.pid);
    await Promise.all(peers.map((p) => p.stop()));
    const group = new GroupFiles(prefix);
    if (!group.primaryAlive()) group.removeLeftovers(false);
    rmSync(dir, { recursive: true, force: true });
    for (const pid of pids) rmSync(`/tmp/perf-${pid}.map`, { force: true });
  }
}

await main();
