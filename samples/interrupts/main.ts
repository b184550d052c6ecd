/**
 * Interrupts reach every process: a primary with ports (net_null0, net_vhost0, and net_tap0 when
 * this machine can create it) and two secondaries subscribed to `rt.interrupts$` and to a
 * port's `linkState$`. The primary then triggers real events — a vdev hotplugged and removed
 * (ethdev NEW/DESTROY), an EAL alarm, a user eventfd on the EAL interrupt thread, a link status
 * interrupt from net_vhost when a virtio_user frontend starts and leaves, and a net_tap link
 * toggled with `ip link` — and a secondary asks the primary for an alarm of its own. Each
 * process prints what it saw.
 *
 * Run: node dist/samples/interrupts/main.js
 */
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Runtime, type InterruptEvent } from '../../src/index.js';
import { leftovers, onSignalEnd, start, verdict, waitAll } from '../lib/processes.js';

type Command = 'go' | 'bye';

function describe(e: InterruptEvent): string {
  switch (e.type) {
    case 'lsc':
      return `link ${e.details.status} on port ${e.source.portId} (${e.source.device}, ${e.details.speedMbps} Mbps ${e.details.duplex}, via ${e.details.via})`;
    case 'new':
    case 'destroy':
    case 'removal':
      return `${e.type} port ${e.source.portId} (${e.source.device})`;
    case 'alarm':
      return `alarm '${e.source.alarm}' after ${e.details.delayMs} ms`;
    case 'fd':
      return `fd source '${e.source.fd}' counter ${e.details.value ?? 0}`;
  }
}

function say(role: string, text: string): void {
  console.log(`[${role.padEnd(11)} pid ${process.pid}] ${text}`);
}

/** Why net_tap cannot be used here, or undefined. */
function tapUnavailable(): string | undefined {
  if (!existsSync('/dev/net/tun')) return 'no /dev/net/tun';
  if (process.getuid?.() !== 0) return 'not root';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return "no 'ip' command";
  }
  return undefined;
}

const nextMessage = (): Promise<Command> => new Promise((resolve) => process.once('message', (m: Command) => resolve(m)));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function primary(prefix: string, vhostSock: string, tapIface: string): Promise<number> {
  const vdevs = ['net_null0', `net_vhost0,iface=${vhostSock},queues=1`];
  if (tapIface) vdevs.push(`net_tap0,iface=${tapIface}`);
  const rt = await Runtime.start({ filePrefix: prefix, procType: 'primary', vdevs });
  const intr = rt.interrupts; // the primary serves secondaries from Runtime.start on; this opens its own view
  rt.interrupts$.subscribe((e) => say('primary', `#${e.seq} ${describe(e)}`));
  const ports = intr.ports$().subscribe();
  process.send?.('up');
  await nextMessage(); // 'go': the secondaries are subscribed

  say('primary', 'hotplug net_null1, then remove it');
  await intr.attach('net_null1');
  await intr.detach('net_null1');

  const alarm = intr.alarm$('coffee', 50).subscribe();
  const bell = intr.eventSource('doorbell');
  bell.signal(3);

  say('primary', 'start net_vhost0, then a virtio_user frontend that connects to it');
  await intr.startPort(1);
  const vhostLsc = intr.link$(1).subscribe();
  await intr.attach(`net_virtio_user0,path=${vhostSock},queues=1`);
  const virtio = (await intr.ports()).find((p) => p.device === 'net_virtio_user0')!;
  await intr.startPort(virtio.portId);
  await sleep(300);
  await intr.detach('net_virtio_user0');

  if (tapIface) {
    say('primary', `toggle ${tapIface} with ip link (net_tap's link events come through netlink)`);
    const tap = (await intr.ports()).find((port) => port.device === 'net_tap0')!;
    await intr.startPort(tap.portId);
    const tapLsc = intr.link$(tap.portId).subscribe();
    await sleep(100);
    execFileSync('ip', ['link', 'set', tapIface, 'down']);
    await sleep(200);
    execFileSync('ip', ['link', 'set', tapIface, 'up']);
    await sleep(200);
    tapLsc.unsubscribe();
  }
  await sleep(500);
  for (const s of [ports, alarm, vhostLsc]) s.unsubscribe();
  bell.close();
  process.send?.('done');
  await nextMessage(); // 'bye'
  await rt.close();
  return 0;
}

async function secondary(prefix: string, name: string, askAlarm: boolean): Promise<number> {
  const rt = await Runtime.start({ filePrefix: prefix, procType: 'secondary' });
  let seen = 0;
  rt.interrupts$.subscribe((e) => {
    seen += 1;
    say(name, `#${e.seq} ${describe(e)}`);
  });
  rt.linkState$(1).subscribe((link) => say(name, `linkState$(1): net_vhost0 is ${link.status}`));
  if (askAlarm) {
    // a secondary asks the primary to set an EAL alarm; every process sees it fire
    rt.interrupts.alarm$(`${name}-alarm`, 200).subscribe();
  }
  process.send?.('up');
  await nextMessage(); // 'bye'
  say(name, `saw ${seen} events`);
  await rt.close();
  return 0;
}

async function launch(): Promise<number> {
  const script = fileURLToPath(import.meta.url);
  const prefix = `mpbus_intr_${process.pid}`;
  const vhostSock = `/tmp/${prefix}.sock`;
  const why = tapUnavailable();
  const tapIface = why ? '' : `mpbi${process.pid % 100000}`;
  if (why) console.log(`(net_tap left out: ${why})`);
  // the vhost backend's socket: a primary that ends on a signal within its deadline may not get to DPDK's cleanup, which removes it
  onSignalEnd(() => rmSync(vhostSock, { force: true }));
  const p = start(script, ['primary', prefix, vhostSock, tapIface]);
  await new Promise<void>((resolve) => p.child.once('message', () => resolve()));
  const secondaries = [start(script, ['secondary', prefix, 'secondary-1', '1']), start(script, ['secondary', prefix, 'secondary-2', '0'])];
  await Promise.all(secondaries.map((s) => new Promise<void>((resolve) => s.child.once('message', () => resolve()))));
  p.child.send('go');
  await new Promise<void>((resolve) => p.child.once('message', () => resolve()));
  for (const s of secondaries) s.child.send('bye');
  const secondariesOk = await waitAll(secondaries);
  p.child.send('bye');
  const primaryOk = await waitAll([p]);
  rmSync(vhostSock, { force: true });
  const left = leftovers(prefix);
  const ok = secondariesOk && primaryOk && left.length === 0;
  return verdict(ok, 'done: every process saw the interrupts, and the group left nothing behind', `FAILED${left.length ? ` (left: ${left.join(', ')})` : ''}`);
}

const [role, ...args] = process.argv.slice(2);
// (a call that fails because Ctrl-C closed the runtime, CLOSED, is mpbus's to drop: not caught here)
const run = role === 'primary' ? primary(args[0]!, args[1]!, args[2] ?? '') : role === 'secondary' ? secondary(args[0]!, args[1]!, args[2] === '1') : launch();
process.exit(await run);
