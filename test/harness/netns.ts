/**
 * Hosts as network namespaces, for cluster tests: one bridge in the test's namespace (where
 * nats-server listens on the bridge's address) and, per host, a namespace joined to the bridge by
 * a veth pair, so each host reaches NATS over a network link of its own rather than loopback.
 * Needs root and `ip`; {@link HostNetwork.create} says why when it cannot.
 */
import { execFileSync } from 'node:child_process';

let counter = 0;

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export class HostNetwork {
  private readonly links: string[] = [];
  readonly namespaces: string[] = [];

  private constructor(
    /** Short unique tag of this network (interface names are limited to 15 bytes). */
    readonly tag: string,
    /** The bridge's address: where nats-server listens. */
    readonly serverAddress: string,
    private readonly subnet: string,
  ) {}

  /** Makes a bridge and `hosts` namespaces on it; returns the reason instead when the machine does not allow it. */
  static create(hosts: number): HostNetwork | { reason: string } {
    if (process.getuid?.() !== 0) return { reason: 'not root' };
    const tag = `${(process.pid % 46656).toString(36)}${(++counter).toString(36)}`;
    // a /24 no interface of this machine uses yet
    const used = ip('-o', '-4', 'addr', 'show');
    let subnet = '';
    for (let tries = 0; tries < 50 && !subnet; tries++) {
      const candidate = `10.${200 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 256)}`;
      if (!used.includes(` ${candidate}.`)) subnet = candidate;
    }
    if (!subnet) return { reason: 'no free 10.x.y.0/24 subnet' };
    const net = new HostNetwork(tag, `${subnet}.1`, subnet);
    try {
      const bridge = `mpb${tag}`;
      ip('link', 'add', bridge, 'type', 'bridge');
      net.links.push(bridge);
      ip('addr', 'add', `${subnet}.1/24`, 'dev', bridge);
      ip('link', 'set', bridge, 'up');
      for (let k = 1; k <= hosts; k++) net.addHost(k, bridge);
      return net;
    } catch (err) {
      net.cleanup();
      return { reason: `ip netns/veth failed: ${String((err as { stderr?: string }).stderr ?? (err as Error).message).trim()}` };
    }
  }

  private addHost(k: number, bridge: string): void {
    const ns = `mpns${this.tag}h${k}`;
    const outside = `mpv${this.tag}h${k}`;
    const inside = `mpi${this.tag}h${k}`;
    ip('netns', 'add', ns);
    this.namespaces.push(ns);
    ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', inside);
    this.links.push(outside);
    ip('link', 'set', inside, 'netns', ns);
    ip('link', 'set', outside, 'master', bridge);
    ip('link', 'set', outside, 'up');
    ip('-n', ns, 'addr', 'add', `${this.subnet}.${k + 1}/24`, 'dev', inside);
    ip('-n', ns, 'link', 'set', inside, 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  }

  /** Removes the namespaces, the veth pairs and the bridge (processes in the namespaces must be gone first). */
  cleanup(): void {
    for (const ns of this.namespaces.splice(0)) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // already gone
      }
    }
    for (const link of this.links.splice(0).reverse()) {
      try {
        ip('link', 'del', link);
      } catch {
        // a veth goes with its peer's namespace
      }
    }
  }
}
