/**
 * The host's part of a cluster node id (src/cluster/cluster-transport.ts): short enough that the
 * actor system's reply address, `$reply.<node id>`, fits the group registry's 63 bytes whatever
 * the hostname (a Kubernetes pod's is up to 63 characters), and still tells hosts apart. Pure,
 * no NATS.
 */
import { describe, expect, it } from 'vitest';
import { MAX_NAME_BYTES } from '../../src/bus/registry.js';
import { hostPart } from '../../src/cluster/cluster-transport.js';

describe("a cluster node id's host part", () => {
  it('a short hostname is itself', () => {
    expect(hostPart('vm')).toBe('vm');
    expect(hostPart('web-7.example.org')).toBe('web-7.example.org');
  });

  it("a long one is its start and a hash: the reply address of the longest node id fits the registry's names", () => {
    const pod = 'orders-service-deployment-7d9f8b6c5d-x2k4p.internal.cluster.local';
    const part = hostPart(pod);
    expect(part).toMatch(/^orders-service-~[0-9a-f]{8}$/);
    expect(hostPart(pod)).toBe(part);
    // slot, a 7-digit pid, counters of five digits: `<slot>.<pid>.<n>` of the group's transport, then `.<n>`
    const reply = `$reply.${part}.127.4194304.99999.99999`;
    expect(Buffer.byteLength(reply)).toBeLessThanOrEqual(MAX_NAME_BYTES);
  });

  it('hosts whose long names share their start get different parts; a name of multi-byte characters is cut on a character', () => {
    expect(hostPart('orders-service-deployment-7d9f8b6c5d-aaaaa')).not.toBe(hostPart('orders-service-deployment-7d9f8b6c5d-bbbbb'));
    for (const host of ['ñandú'.repeat(10), 'a🦤'.repeat(10)]) {
      const part = hostPart(host);
      expect(Buffer.byteLength(part)).toBeLessThanOrEqual(24);
      expect(Buffer.from(part).toString()).toBe(part); // no lone surrogate
      expect(host.startsWith(part.slice(0, part.indexOf('~')))).toBe(true);
    }
  });
});
