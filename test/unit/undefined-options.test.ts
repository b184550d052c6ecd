/**
 * An option given as `undefined` is an option not given, in every layer's options (as
 * `exactOptionalPropertyTypes` projects write `{ filePrefix: process.env.GROUP }`): the same
 * defaults, and no INVALID_OPTION. No DPDK: the checks that run before it starts.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ActorSystem, type LaunchOptions, type RouterOptions, type SpawnOptions } from '../../src/index.js';
import { resolveOptions, RUNTIME_OPTION_KEYS } from '../../src/runtime/options.js';
import { resolveBusOptions } from '../../src/bus/mp-checks.js';
import { checkSystemOptions, MAILBOX_SYSTEM_OPTION_KEYS } from '../../src/bus/mailbox-system.js';
import { clusterSettings } from '../../src/cluster/cluster-transport.js';
import { resolveLaunchOptions } from '../../src/actors/process-pool.js';

/** Every key of `keys` as undefined. */
const allUndefined = <T>(keys: readonly string[]): T => Object.fromEntries(keys.map((k) => [k, undefined])) as T;

describe('options given as undefined', () => {
  it('of the runtime, the rte_mp bus, the mailboxes and the cluster: the defaults', () => {
    expect(resolveOptions(allUndefined(RUNTIME_OPTION_KEYS))).toEqual(resolveOptions({}));
    const bus = ['lanes', 'maxPayloadBytes', 'largePayloadTtlMs', 'quarantineMs', 'spinMaxUs', 'spinWindowUs'];
    expect(resolveBusOptions(allUndefined(bus))).toEqual(resolveBusOptions({}));
    expect(() => checkSystemOptions(allUndefined(MAILBOX_SYSTEM_OPTION_KEYS))).not.toThrow();
    const cluster = ['heartbeatMs', 'nodeTimeoutMs', 'whileDisconnected', 'exported', 'engine', 'nats'];
    const given = { name: 'c', servers: 'nats://127.0.0.1:4222' };
    const settings = clusterSettings({ ...allUndefined(cluster), ...given });
    expect({ ...settings, exported: undefined }).toEqual({ ...clusterSettings(given), exported: undefined });
  });

  it('of launch(): the defaults', () => {
    const keys = ['count', 'name', 'args', 'env', 'execArgv', 'ready', 'restart', 'startTimeoutMs', 'stopTimeoutMs', 'placement'];
    const module = fileURLToPath(import.meta.url); // a module file that is there
    const child = { index: 0, serial: 1, pool: 'p', name: 'p-1' };
    const resolved = (options: LaunchOptions): object => {
      const r = resolveLaunchOptions(module, options);
      return { ...r, args: r.args(child) }; // (a function of the child)
    };
    expect(resolved(allUndefined<LaunchOptions>(keys))).toEqual(resolved({}));
    // a variable given as undefined, and a restart policy's fields
    expect(resolved({ env: { DEBUG: undefined } })).toEqual(resolved({}));
    const policy = allUndefined<NonNullable<LaunchOptions['restart']>>(['maxRestarts', 'withinMs', 'backoffMs', 'maxBackoffMs']);
    expect(resolved({ restart: policy })).toEqual(resolved({}));
  });

  it('of an actor system, spawn, ask, a router and close: accepted', async () => {
    const system = new ActorSystem({ transport: undefined, container: undefined, askTimeoutMs: undefined, goneGraceMs: undefined, checkValues: undefined });
    const spawnOptions: SpawnOptions = { name: undefined, supervision: undefined, groups: undefined, preStart: undefined, postStop: undefined };
    const ref = await system.spawn('echo', { echo: (v: number) => v }, spawnOptions);
    const supervision = { strategy: 'restart' as const, maxRestarts: undefined, withinMs: undefined, backoffMs: undefined, maxBackoffMs: undefined };
    await system.spawn('restarts', { echo: (v: number) => v }, { supervision });
    expect(await ref.ask('echo', 1, { timeoutMs: undefined, signal: undefined })).toBe(1);
    const routerOptions: RouterOptions = allUndefined(['strategy', 'group', 'key', 'maxRedeliveries', 'workerTimeoutMs', 'virtualNodes', 'stallMs', 'onStall']);
    const router = system.router('echoes', { ...routerOptions, workers: ['echo'] });
    expect(await router.ref.ask('echo', 2)).toBe(2);
    await system.close({ timeoutMs: undefined });
  });
});
