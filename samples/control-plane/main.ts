/**
 * A Node control plane beside a C DPDK application: this process joins the group of a running C
 * primary (testpmd here) as a secondary, and shows the primary's ports — their info, link state
 * and counters — as observables and a small live view. A C primary relays no interrupt events,
 * so the ports are polled by this process itself (`PolledPorts`).
 *
 * Start the C side first (see README.md), then:
 *   node dist/samples/control-plane/main.js --file-prefix cp_demo [--lcore 5] [--interval 1000] [--duration 10]
 */
import { auditTime, combineLatest, map, type Observable } from 'rxjs';
import { PolledPorts, Runtime, type LinkState, type PolledPortInfo, type PortStats } from '../../src/index.js';
import { intFlag, sampleArgs, stringFlag } from '../lib/args.js';

interface Args {
  filePrefix: string;
  lcore: number;
  intervalMs: number;
  durationS?: number;
}

const usage = `mpbus control-plane: a Node secondary showing a C primary's ports (start the C side first: README.md)

usage: node dist/samples/control-plane/main.js [--file-prefix P] [--lcore N] [--interval MS] [--duration S]
  --file-prefix P   the C primary's --file-prefix (default cp_demo)
  --lcore N         an lcore ID the C primary does not use (0-127, default 5)
  --interval MS     how often the ports are polled (10-60000, default 1000)
  --duration S      leave after S seconds (1-86400; default: at Ctrl-C)
  --help            this text`;

function parseArgs(): Args {
  const flag = { type: 'string' } as const;
  const { values } = sampleArgs(usage, { 'file-prefix': flag, lcore: flag, interval: flag, duration: flag });
  return {
    filePrefix: stringFlag(usage, 'file-prefix', values['file-prefix'], 'cp_demo'),
    lcore: intFlag(usage, 'lcore', values.lcore, 5, 0, 127),
    intervalMs: intFlag(usage, 'interval', values.interval, 1000, 10, 60_000),
    ...(values.duration !== undefined ? { durationS: intFlag(usage, 'duration', values.duration, 0, 1, 86_400) } : {}),
  };
}

type PortView = { info: PolledPortInfo; link: LinkState; stats: PortStats & { rxPps: number; txPps: number } };

/** One line per port: what the live view prints. */
function render(ports: PortView[]): string {
  const rows = ports.map(({ info, link, stats }) =>
    [
      `port ${info.portId}`.padEnd(8),
      info.device.padEnd(12),
      info.driver.padEnd(10),
      `link ${link.status}`.padEnd(10),
      `${link.speedMbps} Mbps`.padEnd(12),
      `rx ${stats.ipackets}`.padEnd(18),
      `tx ${stats.opackets}`.padEnd(18),
      `rx ${Math.round(stats.rxPps)} pps`.padEnd(16),
      `tx ${Math.round(stats.txPps)} pps`.padEnd(16),
      `missed ${stats.imissed} nombuf ${stats.rxNoMbuf}`,
    ].join(' '),
  );
  return `${new Date().toISOString()}  ${ports.length} port(s)\n${rows.join('\n')}`;
}

async function main(): Promise<void> {
  const args = parseArgs();
  // A C primary: mpbus cannot know its lcores, so this secondary's lcore is given explicitly.
  const rt = await Runtime.start({ filePrefix: args.filePrefix, procType: 'secondary', lcore: args.lcore });
  const polled = new PolledPorts(rt, { intervalMs: args.intervalMs });
  const ports = polled.ports();
  console.log(`joined group '${rt.filePrefix}' as a secondary (lcore ${rt.lcoreId}); the primary's ports: ${ports.join(', ') || 'none'}`);

  // Each port as an observable of its view; all ports together for the live view.
  const views: Observable<PortView>[] = ports.map((p) => {
    const info = polled.info(p);
    return combineLatest([polled.linkState$(p), polled.stats$(p)]).pipe(map(([link, stats]) => ({ info, link, stats })));
  });
  const links = ports.map((p) => polled.linkState$(p).subscribe((l) => console.log(`port ${p}: link ${l.status} (${l.speedMbps} Mbps ${l.duplex})`)));
  const tty = process.stdout.isTTY;
  // (auditTime: one view per poll, not one per port's update)
  const live = combineLatest(views)
    .pipe(auditTime(20))
    .subscribe({
      next: (all) => process.stdout.write(`${tty ? '\x1b[2J\x1b[H' : ''}${render(all)}\n`),
      error: (err: Error) => {
        console.error(`polling stopped: ${err.message}`);
        void rt.close();
      },
    });

  const unsubscribe = (): void => {
    live.unsubscribe();
    for (const s of links) s.unsubscribe();
  };
  // Ctrl-C (or the primary going away) closes the runtime: stop polling first.
  rt.onClose(unsubscribe);
  if (args.durationS !== undefined) setTimeout(() => void rt.close(), args.durationS * 1000);
}

main().catch((err: Error & { code?: string }) => {
  console.error(`control-plane: ${err.code ?? ''} ${err.message}`);
  process.exitCode = 1;
});
