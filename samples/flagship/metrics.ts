/** The flagship's `--metrics-port`: the group's Prometheus metrics over HTTP at /metrics. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { groupMetrics } from '../../src/index.js';

/** Serves `GET /metrics` for the group `filePrefix` on 127.0.0.1:`port`; resolves with the server and its port. */
export async function serveMetrics(filePrefix: string, port: number): Promise<{ server: Server; port: number }> {
  const registry = groupMetrics({ filePrefix });
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/metrics') {
      res.writeHead(404).end('see /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500).end(`${String(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}
