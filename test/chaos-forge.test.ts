/**
 * A chaos scenario of issue 13 kept as a test at a size CI affords: forged descriptors injected
 * into a receiver's inbox during checked traffic (no wrong answer, the receiver keeps serving).
 * The cases of the threat model one by one are in mailbox-ownership.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { useTestGroups } from './harness/use-groups.js';
import { fixture } from './harness/fixtures.js';
import { pollUntil, sleep } from './harness/wait.js';

const group = useTestGroups();
const mb = fixture('mailbox');
const own = fixture('ownership');

describe('chaos: forged descriptors', () => {
  it('forged descriptors injected into a receiver every few ms during checked traffic: no wrong answer, refused ones reported, the receiver keeps serving', async () => {
    const g = group('chaos-forge');
    const receiver = await g.startAgent({ procType: 'primary' });
    const client = await g.startAgent({ procType: 'secondary' });
    const forger = await g.startAgent({ procType: 'secondary' });
    const slot = await receiver.use(own).serveEcho('echo', 'victim');
    await client.use(own).startTraffic('echo', 16);
    const victimId = (await forger.use(mb).addressOf('victim'))!.id;
    await forger.use(own).startInjecting(slot, victimId, 5);
    await sleep(3000);
    const injected = await forger.use(own).stopInjecting();
    const t = await client.use(own).stopTraffic();
    expect(t.failures).toEqual([]);
    expect(t.wrong).toBe(0);
    expect(t.duplicates).toBe(0);
    expect(t.answered).toBe(t.sent);
    expect(t.answered).toBeGreaterThan(100);
    expect(injected).toBeGreaterThan(50);
    const errors = await receiver.use(mb).errors();
    expect(errors.length).toBeGreaterThan(0);
    expect(new Set(errors.map((e) => e.code))).toEqual(new Set(['BAD_DESCRIPTOR']));
    console.log(`chaos-forge: ${injected} forged descriptors, ${errors.length} refused, ${t.answered} checked answers`);
    await forger.use(own).sendText('victim', 'after the storm');
    await pollUntil(
      'the receiver to serve again',
      () => receiver.use(own).victimSeen(),
      (seen) => seen['after the storm'] === 1,
    );
  }, 60_000);
});
