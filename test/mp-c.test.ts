/**
 * The rte_mp bus with a plain C DPDK program in the group (test/c/mp_peer.c, built here): raw
 * payloads both ways, and garbage from C that must end on errors$, never in a crash.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MpEnvelopeKind, writeEnvelope } from '../src/bus/envelope.js';
import type { MpBusOptions } from '../src/bus/types.js';
import type { Agent } from './harness/group.js';
import { repoRoot } from './harness/paths.js';
import { answered, fixture } from './harness/fixtures.js';
import { stopProcess } from './harness/stop.js';
import { useTestGroups } from './harness/use-groups.js';

const mp = fixture('mp');
let buildDir = '';
let binary = '';

beforeAll(() => {
  buildDir = mkdtempSync(join(tmpdir(), 'mpbus-mpc-'));
  binary = join(buildDir, 'mp_peer');
  const flags = execFileSync('pkg-config', ['--cflags', '--libs', 'libdpdk'], { encoding: 'utf8' }).trim().split(/\s+/);
  execFileSync('cc', ['-O2', '-Wall', join(repoRoot, 'test', 'c', 'mp_peer.c'), '-o', binary, ...flags], { stdio: 'pipe' });
}, 120_000);
afterAll(() => {
  if (buildDir) rmSync(buildDir, { recursive: true, force: true });
});

/** The C program as a command line: one command in, one result line out. */
class CMpPeer {
  private readonly pending: ((line: string) => void)[] = [];
  private readonly output: string[] = [];
  readonly exited: Promise<void>;
  constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const waiter = this.pending.shift();
      if (waiter) waiter(line);
      else this.output.push(line);
    });
    child.stderr!.on('data', (d: Buffer) => this.output.push(d.toString()));
    this.exited = new Promise((resolve) => child.on('exit', () => resolve()));
  }

  /** Next output line (the READY line, or the result of a command). */
  line(timeoutMs = 30_000): Promise<string> {
    const ready = this.output.find((l) => /^(READY|SENT|REPLY)/.test(l));
    if (ready) {
      this.output.splice(this.output.indexOf(ready), 1);
      return Promise.resolve(ready);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`C peer silent; it said:\n${this.output.join('\n')}`)), timeoutMs);
      this.pending.push((l) => {
        clearTimeout(timer);
        resolve(l);
      });
    });
  }

  command(cmd: string, name: string, bytes: Uint8Array): Promise<string> {
    this.child.stdin!.write(`${cmd} ${name} ${Buffer.from(bytes).toString('hex')}\n`);
    return this.line();
  }

  /** Stops the C program (SIGSTOP), once every one of its threads has stopped. */
  stop(): Promise<void> {
    return stopProcess(this.child.pid!);
  }

  /** Resumes the C program (SIGCONT). */
  resume(): void {
    process.kill(this.child.pid!, 'SIGCONT');
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) process.kill(this.child.pid!, 'SIGKILL');
  }
}

// Registered before the peers' afterEach: after hooks run last-registered first, so peers end before the groups are cleaned.
const group = useTestGroups();
const peers: CMpPeer[] = [];
afterEach(async () => {
  for (const p of peers) p.kill();
  await Promise.all(peers.splice(0).map((p) => p.exited));
});

/** A Node primary with its bus open, and the C program as a secondary. */
async function start(label: string, busOptions: MpBusOptions = {}): Promise<{ primary: Agent; c: CMpPeer }> {
  const g = group(label);
  const primary = await g.startAgent({ procType: 'primary' });
  await primary.use(mp).open(busOptions);
  const c = new CMpPeer(
    spawn(binary, ['--proc-type=secondary', `--file-prefix=${g.prefix}`, '--lcores=100@(0-1)', '--no-pci', '--no-telemetry', '--log-level=error'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    }),
  );
  peers.push(c);
  expect(await c.line()).toBe('READY');
  return { primary, c };
}

describe('the rte_mp bus with a C program', () => {
  it('a C message using the whole 256-byte param arrives as raw bytes, unchanged', async () => {
    const { primary, c } = await start('craw');
    await primary.use(mp).subscribe('c-news');
    const payload = Uint8Array.from({ length: 256 }, (_, i) => (i * 7) & 0xff);
    const got = primary.next<{ raw: boolean; value: number[]; pid?: number }>('msg');
    expect(await c.command('send', 'c-news', payload)).toBe('SENT 0');
    const msg = await got;
    expect(msg.raw).toBe(true);
    expect(msg.value).toEqual(Array.from(payload));
    expect(msg.pid).toBeUndefined();
  });

  it("a C program's raw request gets a Node handler's raw reply, and Node's raw request gets the C handler's", async () => {
    const { primary, c } = await start('creq');
    await primary.use(mp).handle('node-rev', 'rawEcho');
    expect(await c.command('request', 'node-rev', Uint8Array.of(1, 2, 3, 4))).toBe('REPLY 0 1 1 04030201');
    const r = answered(
      await primary.use(mp).request('c-echo', null, {
        raw: true,
        rawBytes: [9, 8, 7],
      }),
    );
    expect(r.sent).toBe(1);
    expect(r.replies[0]).toMatchObject({ raw: true, value: [7, 8, 9] });
  });

  it('raw requests queued behind one to a C program that stopped answering settle at their own timeout, not when its name stops resting', async () => {
    // A name whose request timed out rests quarantineMs before it carries another: those queued
    // behind waited for that, then failed all at once, up to 4x their timeout with the default
    // second (a user's control plane, SIGSTOPping its C primary).
    const { primary, c } = await start('csilent', { quarantineMs: 5_000 });
    await c.stop();
    try {
      const settled = await primary.use(mp).requestRawTimed('c-echo', 3, 300);
      expect(settled.map((s) => s.outcome)).toEqual(['resolved 1/0', 'ETIMEDOUT', 'ETIMEDOUT']);
      for (const s of settled) expect(s.ms, JSON.stringify(settled)).toBeLessThan(2_500);
    } finally {
      c.resume();
    }
  });

  it('garbage from C on registered and internal names is reported on errors$; nothing crashes', async () => {
    const { primary, c } = await start('cgarbage');
    await primary.use(mp).subscribe('c-news');
    await primary.use(mp).handle('node-rev', 'rawEcho');
    // The mpbus magic followed by nonsense, as a message on a subscribed name.
    const malformed = primary.next<{ code: string }>('mp-error', 20_000, (e) => e.code === 'MALFORMED_MESSAGE');
    expect(await c.command('send', 'c-news', Uint8Array.of(0x6d, 0x70, 0x42, 0x01, 0xff, 0xff, 0xff))).toBe('SENT 0');
    await malformed;
    // A header that points a "large value" at memory that holds no mpbus buffer.
    const forged = writeEnvelope(
      { kind: MpEnvelopeKind.request, role: 'secondary', pid: 1, correlationId: 7, deadlineMs: 1e12, target: Buffer.from('node-rev') },
      { address: 0x600000001000, length: 4096, token: 5 },
    );
    const reply = await c.command('request', 'mpbus:lane:3', forged);
    expect(reply).toMatch(/^REPLY 0 1 1 6d704201/); // an mpbus error reply, not a crash or a read
    // Bytes without header on an internal lane name: reported, no reply (C times out after 5 s).
    const foreign = primary.next<{ code: string }>('mp-error', 20_000, (e) => e.code === 'MALFORMED_MESSAGE');
    expect(await c.command('request', 'mpbus:lane:0', Uint8Array.of(1, 2, 3))).toMatch(/^REPLY -1 1 0/);
    await foreign;
    // Still serving.
    expect(await c.command('request', 'node-rev', Uint8Array.of(5, 6))).toBe('REPLY 0 1 1 0605');
  });
});
