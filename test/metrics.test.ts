/**
 * Specification of the Prometheus exposition: a group's processes and actors as prom-client
 * metrics, named and labelled by Prometheus conventions, read by any process (here the test,
 * outside the group); and the flagship's `--metrics-port`, scraped over HTTP while it runs.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './harness/paths.js';
import { fixture } from './harness/fixtures.js';
import { removeGroupFiles, groupHugepageFiles, dpdkRuntimeRoot } from './harness/group.js';
import { useTestGroups } from './harness/use-groups.js';
import { groupMetrics, groupMetricsText } from '../src/obs/prometheus.js';
import { freePort } from '../samples/lib/nats.js';
import { sleep } from './harness/wait.js';

const group = useTestGroups();
const actors = fixture('actors');

/** Sample lines of an exposition: `name{labels} value`, by name. */
function samples(text: string): Map<string, Array<{ labels: Record<string, string>; value: number }>> {
  const out = new Map<string, Array<{ labels: Record<string, string>; value: number }>>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)\{(.*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
    out.set(m[1]!, [...(out.get(m[1]!) ?? []), { labels, value: Number(m[3]) }]);
  }
  return out;
}

describe('Prometheus metrics', () => {
  it("expose a group's processes and actors, with conventional names and labels, to a reader outside the group", async () => {
    const g = group('prom');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    await p.use(actors).startSystem();
    await s.use(actors).startSystem();
    await p.use(actors).spawnTestActor('echo');
    for (let i = 0; i < 30; i++) await s.use(actors).ask('echo', 'echo', i);
    await s.use(actors).ask('echo', 'fail', 'bad');

    const text = await groupMetricsText({ filePrefix: g.prefix });
    expect(text).toContain('# TYPE mpbus_actor_messages_received_total counter');
    expect(text).toContain('# TYPE mpbus_actor_ask_duration_seconds histogram');
    const m = samples(text);
    const actor = { group: g.prefix, actor: 'echo', pid: String(p.pid) };
    expect(m.get('mpbus_actor_messages_received_total')).toEqual([{ labels: actor, value: 31 }]);
    expect(m.get('mpbus_actor_messages_processed_total')).toEqual([{ labels: actor, value: 30 }]);
    expect(m.get('mpbus_actor_messages_failed_total')).toEqual([{ labels: actor, value: 1 }]);
    expect(m.get('mpbus_actor_asks_total')).toEqual([{ labels: actor, value: 31 }]);
    expect(m.get('mpbus_actor_ask_failures_total')).toEqual([{ labels: actor, value: 1 }]);
    const buckets = m.get('mpbus_actor_ask_duration_seconds_bucket')!;
    expect(buckets.at(-1)).toEqual({ labels: { ...actor, le: '+Inf' }, value: 31 });
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
    expect(m.get('mpbus_actor_ask_duration_seconds_count')).toEqual([{ labels: actor, value: 31 }]);
    expect(m.get('mpbus_actor_ask_duration_seconds_sum')![0]!.value).toBeGreaterThan(0);
    expect(m.get('mpbus_process_info')!.map((x) => x.labels)).toEqual([
      { group: g.prefix, pid: String(p.pid), role: 'primary', lcore: '0', command: expect.stringMatching(/^node /) },
      { group: g.prefix, pid: String(s.pid), role: 'secondary', lcore: '1', command: expect.stringMatching(/^node /) },
    ]);
    expect(m.get('mpbus_group_up')).toEqual([{ labels: { group: g.prefix }, value: 1 }]);
    // one registry takes one group (prom-client takes each metric name once): a typed error
    const shared = groupMetrics({ filePrefix: g.prefix });
    expect(() => groupMetrics({ filePrefix: `${g.prefix}-other`, registry: shared })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    // a group that does not run (a typo, or stopped) says so, where its metrics were only empty
    const none = samples(await groupMetricsText({ filePrefix: `${g.prefix}-none` }));
    expect(none.get('mpbus_group_up')).toEqual([{ labels: { group: `${g.prefix}-none` }, value: 0 }]);
    expect(none.get('mpbus_process_info')).toBeUndefined();
    expect(m.get('mpbus_process_cpu_seconds_total')!.map((x) => x.labels.mode)).toEqual(['user', 'system', 'user', 'system']);
    for (const x of m.get('mpbus_process_resident_memory_bytes')!) expect(x.value).toBeGreaterThan(10 * 2 ** 20);
    // the same registry reads the group anew at each scrape
    const registry = groupMetrics({ filePrefix: g.prefix });
    await s.use(actors).ask('echo', 'echo', 'again');
    await sleep(150);
    expect(samples(await registry.metrics()).get('mpbus_actor_messages_received_total')![0]!.value).toBe(32);
  });

  it('a group whose processes were all SIGKILLed is down (mpbus_group_up 0), though its counters file stays', async () => {
    const g = group('metricskill');
    const p = await g.startAgent({ procType: 'primary' });
    await p.use(actors).startSystem();
    await p.use(actors).spawnTestActor('echo');
    expect(samples(await groupMetricsText({ filePrefix: g.prefix })).get('mpbus_group_up')).toEqual([{ labels: { group: g.prefix }, value: 1 }]);
    p.kill('SIGKILL');
    await p.exited;
    expect(existsSync(join(dpdkRuntimeRoot(), g.prefix, 'mpbus_counters'))).toBe(true);
    expect(samples(await groupMetricsText({ filePrefix: g.prefix })).get('mpbus_group_up')).toEqual([{ labels: { group: g.prefix }, value: 0 }]);
  });

  it('the flagship serves /metrics on --metrics-port while it runs', async () => {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [join(repoRoot, 'dist', 'samples', 'flagship', 'main.js'), '--seconds', '6', '--workers', '2', '--metrics-port', String(port), '--json'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const prefix = `mpbus_flagship_${child.pid}`;
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      let scraped = new Map<string, Array<{ labels: Record<string, string>; value: number }>>();
      for (const end = Date.now() + 20_000; Date.now() < end;) {
        const res = await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined);
        if (res?.ok) {
          expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
          scraped = samples(await res.text());
          // both workers have answered asks (received alone may be ahead of the first answer)
          if ((scraped.get('mpbus_actor_ask_duration_seconds_count') ?? []).filter((x) => x.value > 0).length === 2) break;
        }
        await sleep(200);
      }
      expect(
        scraped
          .get('mpbus_actor_messages_received_total')!
          .map((x) => x.labels.actor)
          .sort(),
      ).toEqual(['worker-1', 'worker-2']);
      expect(scraped.get('mpbus_process_info')!.map((x) => x.labels.role)).toEqual(['primary', 'secondary', 'secondary']);
      expect(scraped.get('mpbus_actor_ask_duration_seconds_count')!.every((x) => x.value > 0)).toBe(true);
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
      await exited;
      const left = existsSync(join(dpdkRuntimeRoot(), prefix)) || groupHugepageFiles(prefix).length > 0;
      removeGroupFiles(prefix);
      expect(left).toBe(false);
    }
  });
});
