import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { useTestGroups } from './harness/use-groups.js';
import { fixture } from './harness/fixtures.js';

const shm = fixture('shm');
const group = useTestGroups();

describe('rings', () => {
  it('a ring created by the primary is found by name in secondaries, and values cross processes in order', async () => {
    const g = group('ring');
    const p = await g.startAgent({ procType: 'primary' });
    const s1 = await g.startAgent({ procType: 'secondary' });
    const s2 = await g.startAgent({ procType: 'secondary' });
    expect(await p.use(shm).ringCreate('r1', { size: 16 })).toEqual({ name: 'r1', size: 16, capacity: 15, producer: 'multi', consumer: 'multi' });
    const big = (2n ** 64n - 1n).toString();
    expect(await s1.use(shm).ringEnqueue('r1', ['1', '2', big], 'single')).toBe(3);
    expect(await s2.use(shm).ringLookup('r1')).toMatchObject({ count: 3, freeCount: 12, capacity: 15 });
    expect(await s2.use(shm).ringDequeue('r1', 10, 'single')).toEqual(['1', '2', big]);
    // secondary -> secondary, bursts
    const values = Array.from({ length: 20 }, (_, i) => String(0x600000000000 + i * 64));
    expect(await s2.use(shm).ringEnqueue('r1', values, 'burst')).toBe(15); // only 15 fit
    expect(await s1.use(shm).ringDequeue('r1', 32, 'burst')).toEqual(values.slice(0, 15));
    // bulk: all or nothing
    expect(await s1.use(shm).ringEnqueue('r1', values, 'bulk')).toBe(0);
    expect(await s1.use(shm).ringEnqueue('r1', values.slice(0, 4), 'bulk')).toBe(4);
    expect(await p.use(shm).ringDequeue('r1', 5, 'bulk')).toEqual([]);
    expect(await p.use(shm).ringDequeue('r1', 4, 'bulk')).toEqual(values.slice(0, 4));
  });

  it('names, sizes and modes are validated with clear codes', async () => {
    const g = group('ringval');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    expect(await p.use(shm).ringCreate('odd', { size: 1000 })).toMatchObject({
      code: 'EINVAL',
      message: expect.stringMatching(/power of two.*1024.*exactSize/),
    });
    expect(await p.use(shm).ringCreate('exact', { size: 1000, exactSize: true })).toMatchObject({ capacity: 1000 });
    expect(await p.use(shm).ringCreate('x'.repeat(29), { size: 8 })).toMatchObject({ code: 'ENAMETOOLONG' });
    expect(await p.use(shm).ringCreate('x'.repeat(28), { size: 8 })).toMatchObject({ capacity: 7 });
    expect(await p.use(shm).ringCreate('', { size: 8 })).toMatchObject({ code: 'EINVAL' });
    expect(await p.use(shm).ringCreate('sp', { size: 8, producer: 'one' as never } /* invalid on purpose */)).toMatchObject({ code: 'EINVAL' });
    expect(await p.use(shm).ringCreate('typo', { size: 1000, exactsize: true } as never /* misspelled on purpose */)).toMatchObject({
      code: 'EINVAL',
      message: expect.stringContaining("Ring.create options has no option 'exactsize' (did you mean 'exactSize'?)"),
    });
    expect(await p.use(shm).ringCreate('sp', { size: 8, producer: 'single', consumer: 'multi-rts' })).toMatchObject({
      producer: 'single',
      consumer: 'multi-rts',
    });
    expect(await s.use(shm).ringCreate('sp', { size: 8 })).toMatchObject({ code: 'EEXIST', message: expect.stringMatching(/Ring\.lookup\('sp'\)/) });
    expect(await s.use(shm).ringLookup('missing')).toMatchObject({ code: 'ENOENT' });
    // A name free for rings whose memzone name (RG_<name>) another object has: not "use Ring.lookup", which finds nothing.
    expect(await p.use(shm).memzoneReserve('RG_clash', { size: 64 })).toMatchObject({ name: 'RG_clash' });
    expect(await p.use(shm).ringCreate('clash', { size: 8 })).toMatchObject({ code: 'EEXIST', message: expect.stringContaining("under the name 'RG_clash'") });
    expect(await p.use(shm).memzoneReserve('MP_clash', { size: 64 })).toMatchObject({ name: 'MP_clash' });
    expect(await p.use(shm).mempoolCreate('clash', { size: 15, elementSize: 64 })).toMatchObject({
      code: 'EEXIST',
      message: expect.stringContaining("under the name 'MP_clash'"),
    });
    expect(await s.use(shm).ringCreate('fromsec', { size: 4, consumer: 'single' })).toMatchObject({ capacity: 3, consumer: 'single' });
    expect(await p.use(shm).ringLookup('fromsec')).toMatchObject({ capacity: 3 });
    expect(await p.use(shm).ringCreate('tiny', { size: 2 })).toMatchObject({ capacity: 1 });
    expect(await p.use(shm).ringCreate('big', { size: 2 ** 16, exactSize: true })).toMatchObject({ capacity: 2 ** 16 });
    expect(await s.use(shm).ringBadValues('big')).toEqual({
      negative: expect.objectContaining({ code: 'EINVAL' }),
      fraction: expect.objectContaining({ code: 'EINVAL' }),
      tooBig: expect.objectContaining({ code: 'EINVAL' }),
      string: expect.objectContaining({ code: 'EINVAL' }),
      inArray: expect.objectContaining({ code: 'EINVAL' }),
      burstPastEnd: expect.objectContaining({ code: 'ERANGE' }),
      // counted in values (it said "(4 bytes)" of an array of 4 values)
      dequeuePastEnd: expect.objectContaining({ code: 'ERANGE', message: 'dequeueBurst: values [0, 5) are outside the array of 4 values' }),
      count: 0,
    });
    expect(await p.use(shm).ringFreeThenUse('fromsec')).toMatchObject({ afterFree: { code: 'FREED' }, lookup: { code: 'ENOENT' } });
  });
});

describe('rings and a process killed inside an operation', () => {
  it('an operation left unfinished on a multi-process side fails the next one there with RING_STUCK after 2 s, not a wait for good; the other side and single-process sides go on', async () => {
    const g = group('ringstuck');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    expect(await p.use(shm).ringCreate('stk', { size: 16 })).toMatchObject({ producer: 'multi', consumer: 'multi' });
    expect(await p.use(shm).ringCreate('stkrts', { size: 16, producer: 'multi-hts', consumer: 'multi-rts' })).toMatchObject({ producer: 'multi-hts' });
    expect(await p.use(shm).ringCreate('stksp', { size: 16, producer: 'single', consumer: 'single' })).toMatchObject({ producer: 'single' });
    expect(await s.use(shm).ringEnqueue('stk', ['1', '2'], 'burst')).toBe(2);
    // A healthy ring does not wait.
    expect(await s.use(shm).ringTry('stk', 'enqueue')).toMatchObject({ result: true });
    await p.use(shm).ringForgeUnfinished('stk', 'producers', 3);
    const stuck = (await s.use(shm).ringTry('stk', 'enqueue')) as { result: { code: string; message: string }; ms: number };
    expect(stuck.result).toMatchObject({
      code: 'RING_STUCK',
      message: expect.stringMatching(/'stk': an enqueue of another process has not finished .*3 slots/),
    });
    expect(stuck.ms).toBeGreaterThanOrEqual(1900);
    expect(await s.use(shm).ringTry('stk', 'enqueueBurst')).toMatchObject({ result: { code: 'RING_STUCK' } });
    // The consumers' side is not stuck: what was enqueued before is taken.
    expect(await s.use(shm).ringDequeue('stk', 8, 'burst')).toEqual(['1', '2', '7']);
    await p.use(shm).ringForgeUnfinished('stk', 'consumers', 1);
    expect(await s.use(shm).ringTry('stk', 'dequeue')).toMatchObject({ result: { code: 'RING_STUCK', message: expect.stringContaining('a dequeue') } });
    // The other sync modes of a multi-process side, likewise.
    await p.use(shm).ringForgeUnfinished('stkrts', 'producers', 1);
    expect(await s.use(shm).ringTry('stkrts', 'enqueue')).toMatchObject({ result: { code: 'RING_STUCK' } });
    // A single-producer side waits for no one.
    await p.use(shm).ringForgeUnfinished('stksp', 'producers', 1);
    expect(await s.use(shm).ringTry('stksp', 'enqueue')).toMatchObject({ result: true });
    // A mempool's own ring (MP_<pool>), which a get or put past the lcore's cache goes to (no cache here).
    expect(await p.use(shm).mempoolCreate('stkpool', { size: 15, elementSize: 64, cacheSize: 0 })).toMatchObject({ size: 15 });
    expect(await s.use(shm).mempoolTryGet('stkpool')).toBe('got one');
    await p.use(shm).ringForgeUnfinished('MP_stkpool', 'consumers', 1);
    expect(await s.use(shm).mempoolTryGet('stkpool')).toMatchObject({ code: 'RING_STUCK', message: expect.stringContaining("mempool 'stkpool': a dequeue") });
    // Both processes still answer, and close as usual.
    expect(await p.use(shm).ringLookup('stk')).toMatchObject({ name: 'stk' });
  });
});

describe('handles in other processes', () => {
  it('a ring, memzone or mempool freed by another process fails with FREED there, also when another object took its memory', async () => {
    const g = group('stale');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    const old = { ring: 'st_ring_a', zone: 'st_zone_a', pool: 'st_pool_a' };
    const fresh = { ring: 'st_ring_b', zone: 'st_zone_b', pool: 'st_pool_b' };
    expect(await p.use(shm).ringCreate(old.ring, { size: 16 })).toMatchObject({ capacity: 15 });
    expect(await p.use(shm).memzoneReserve(old.zone, { size: 512 })).toMatchObject({ length: 512 });
    expect(await p.use(shm).mempoolCreate(old.pool, { size: 63, elementSize: 64 })).toMatchObject({ size: 63 });
    await s.use(shm).holdObjects(old);
    expect(await s.use(shm).useHeld()).toEqual({ enqueue: true, write: undefined, available: 63 });
    // (once, the secondary's old handles wrote into the new ring and zone: count 1, bytes 1,2,3,4)
    expect(await p.use(shm).freeAndReplace(old, fresh)).toEqual({ ringCount: 0, zoneBytes: [0, 0, 0, 0] });
    expect(await s.use(shm).useHeld()).toEqual({ enqueue: 'FREED', write: 'FREED', available: 'FREED' });
    expect(await p.use(shm).ringLookup(fresh.ring)).toMatchObject({ count: 0 });
    expect(await p.use(shm).memzoneRead(fresh.zone, 16, 4)).toMatchObject({ text: '\0\0\0\0' });
    // a lookup by name in the secondary gets a working handle to what is there now
    expect(await s.use(shm).ringLookup(fresh.ring)).toMatchObject({ count: 0 });
  });

  it('also when new objects of other sizes took the same names (and, often, the same memory): the old handles fail with FREED, a lookup gets the new ones', async () => {
    const g = group('renamed');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    const names = { ring: 'sn_ring', zone: 'sn_zone', pool: 'sn_pool' };
    await p.use(shm).ringCreate(names.ring, { size: 32 });
    await p.use(shm).memzoneReserve(names.zone, { size: 4096 });
    await p.use(shm).mempoolCreate(names.pool, { size: 15, elementSize: 256 });
    await s.use(shm).holdObjects(names);
    expect(await s.use(shm).useHeld()).toEqual({ enqueue: true, write: undefined, available: 15 });
    const now = { capacity: 15, length: 2048, elementSize: 64 };
    // (the new mempool's header takes the old one's memory: only its sizes tell it apart)
    expect(await p.use(shm).freeAndRemakeSameNames(names)).toEqual(now);
    expect(await s.use(shm).useHeld()).toEqual({ enqueue: 'FREED', write: 'FREED', available: 'FREED' });
    expect(await s.use(shm).lookUpShapes(names)).toEqual(now);
  });
});

describe('memzones', () => {
  it('bytes written by one process are read by another, by copy and through zero-copy views', async () => {
    const g = group('mz');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    const made = (await p.use(shm).memzoneReserve('zone1', { size: 4096 })) as { length: number; address: string };
    expect(made.length).toBe(4096);
    expect(await p.use(shm).memzoneWrite('zone1', 100, 'hello from primary')).toBe(true);
    expect(await s.use(shm).memzoneRead('zone1', 100, 18)).toEqual({ text: 'hello from primary', address: made.address, length: 4096 });
    expect(await s.use(shm).memzoneViewWrite('zone1', 2000, 'via a view')).toBe(4096);
    expect(await p.use(shm).memzoneViewRead('zone1', 2000, 10)).toEqual({ byteLength: 4096, text: 'via a view' });
    expect(await p.use(shm).memzoneRead('zone1', 4090, 10)).toMatchObject({ code: 'ERANGE' });
    expect(await p.use(shm).memzoneWrite('zone1', -1, 'x')).toMatchObject({ code: 'ERANGE' });
    expect(await s.use(shm).memzoneReserve('zone1', { size: 64 })).toMatchObject({ code: 'EEXIST' });
    expect(await s.use(shm).memzoneRead('nozone', 0, 1)).toMatchObject({ code: 'ENOENT' });
    expect(await s.use(shm).memzoneReserve('z'.repeat(32), { size: 64 })).toMatchObject({ code: 'ENAMETOOLONG' });
    expect(await s.use(shm).memzoneReserve('zero', { size: 0 })).toMatchObject({ code: 'EINVAL' });
    expect(await s.use(shm).memzoneReserve('badalign', { size: 64, align: 48 })).toMatchObject({ code: 'EINVAL' });
    expect(await s.use(shm).memzoneReserve('typo', { size: 64, pagesize: '2MB' } as never /* misspelled on purpose */)).toMatchObject({
      code: 'EINVAL',
      message: expect.stringContaining("did you mean 'pageSize'?"),
    });
    expect(await s.use(shm).memzoneReserve('notbool', { size: 64, iovaContiguous: 'yes' as never })).toMatchObject({ code: 'EINVAL' });
    // a socket the machine does not have is named as such (DPDK alone says it found no memory)
    expect(await s.use(shm).memzoneReserve('nosocket', { size: 64, socketId: 1023 })).toMatchObject({
      code: 'EINVAL',
      message: expect.stringContaining('socketId 1023 is no NUMA socket of this machine'),
    });
    expect(await s.use(shm).ringCreate('nosocket', { size: 4, socketId: 1023 })).toMatchObject({ code: 'EINVAL' });
    // more than every hugepage of the machine: ENOMEM at once (DPDK mapped and zeroed every free page first, up to 3 s)
    for (const made of [
      await s.use(shm).memzoneReserve('toolarge', { size: 2 ** 40 }),
      await s.use(shm).mempoolCreate('toolarge', { size: 2 ** 20, elementSize: 2 ** 20 }),
      await s.use(shm).ringCreate('toolarge', { size: 2 ** 30 }),
    ]) {
      expect(made).toMatchObject({
        code: 'ENOMEM',
        message: expect.stringMatching(/named 'toolarge' this large \(at least (1048576|8192)\.0 MiB\): this machine reserves/),
      });
    }
    // memory of a page size the machine has none of: the message says which size was asked
    const gigaPages = '/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages';
    if (!existsSync(gigaPages) || Number(readFileSync(gigaPages, 'utf8')) === 0) {
      expect(await s.use(shm).memzoneReserve('gigapage', { size: 64, pageSize: '1GB' })).toMatchObject({
        code: 'ENOMEM',
        message: expect.stringContaining('in 1GB pages'),
      });
    }
  });

  it('views are detached when the zone is freed and when the runtime closes, so nothing reads unmapped memory', async () => {
    const g = group('mzview');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    await p.use(shm).memzoneReserve('kept', { size: 256 });
    await p.use(shm).memzoneReserve('freed', { size: 256 });
    expect(await s.use(shm).memzoneViewWrite('kept', 0, 'k')).toBe(256);
    expect(await s.use(shm).memzoneViewWrite('freed', 0, 'f')).toBe(256);
    expect(await s.use(shm).memzoneFree('freed')).toEqual({ viewLength: 0, afterFree: { code: 'FREED', message: expect.any(String) } });
    expect(await s.use(shm).keptViewLength('kept')).toBe(256);
    await s.close();
    expect(await s.use(shm).keptViewLength('kept')).toBe(0);
    expect(await p.use(shm).memzoneViewRead('kept', 0, 1)).toMatchObject({ text: 'k' });
  });
});

describe('mempools', () => {
  it('a secondary fills pool objects and passes their addresses through a ring; another process reads and returns them', async () => {
    const g = group('mp');
    const p = await g.startAgent({ procType: 'primary' });
    const s1 = await g.startAgent({ procType: 'secondary' });
    const s2 = await g.startAgent({ procType: 'secondary' });
    expect(await p.use(shm).mempoolCreate('pool1', { size: 63, elementSize: 128 })).toEqual({
      name: 'pool1',
      size: 63,
      elementSize: 128,
      cacheSize: 0,
      available: 63,
    });
    await p.use(shm).ringCreate('ptrs', { size: 64 });
    await s1.use(shm).sendThroughPool('pool1', 'ptrs', ['one', 'two', 'three']);
    expect(await s2.use(shm).mempoolLookup('pool1')).toMatchObject({ available: 60, inUse: 3 });
    expect(await s2.use(shm).receiveThroughPool('pool1', 'ptrs', 10)).toEqual(['one', 'two', 'three']);
    expect(await p.use(shm).mempoolLookup('pool1')).toMatchObject({ available: 63, inUse: 0 });
  });

  it('addresses that are not objects of the pool are refused, and byte ranges are checked', async () => {
    const g = group('mpchk');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    await p.use(shm).mempoolCreate('pool2', { size: 31, elementSize: 64 });
    await p.use(shm).ringCreate('garbage', { size: 8 });
    // garbage on the ring: an address inside an object but not its start, and a wild one
    const [obj] = await p.use(shm).sendThroughPool('pool2', 'garbage', ['ok']);
    await p.use(shm).ringEnqueue('garbage', [String(BigInt(obj!) + 3n), '4096'], 'burst');
    const received = await s.use(shm).receiveThroughPool('pool2', 'garbage', 8);
    expect(received[0]).toBe('ok');
    for (const bad of received.slice(1)) expect(bad).toMatchObject({ read: { code: 'NOT_IN_POOL' }, put: { code: 'NOT_IN_POOL' } });
    const checks = (await s.use(shm).mempoolChecks('pool2')) as Record<string, unknown>;
    expect(checks).toMatchObject({
      objectAtIndex: true,
      insideObject: false,
      negative: false,
      notANumber: false,
      readPastEnd: { code: 'ERANGE' },
      writePastEnd: { code: 'ERANGE' },
      readForeign: { code: 'NOT_IN_POOL' },
      putForeign: { code: 'NOT_IN_POOL' },
      putBulkWithOneForeign: { code: 'NOT_IN_POOL' },
      getBulkPastEnd: { code: 'ERANGE', message: 'getBulk: values [12, 10) are outside the array of 10 values' },
      inUseAfterBadPuts: 1,
      viaChunk: 'zero-copy',
      viaObjectView: 'zero-copy',
      tooMany: false,
      exact: true,
      emptyGet: null,
      availableAfter: 31,
    });
  });

  it('names, sizes and cache sizes are validated with clear codes', async () => {
    const g = group('mpval');
    // --socket-limit: the 2 GiB pool below fails at the limit. (Without it DPDK grows the heap
    // page by page until the machine has none free, then gives them back: other test files
    // starting groups meanwhile failed with HUGEPAGES_NOT_RESERVED.)
    const p = await g.startAgent({ procType: 'primary', extraEalArgs: ['--socket-limit', '256'] });
    expect(await p.use(shm).mempoolCreate('n'.repeat(26), { size: 7, elementSize: 8 })).toMatchObject({ code: 'ENAMETOOLONG' });
    expect(await p.use(shm).mempoolCreate('n'.repeat(25), { size: 7, elementSize: 8 })).toMatchObject({ size: 7 });
    expect(await p.use(shm).mempoolCreate('cache', { size: 100, elementSize: 8, cacheSize: 80 })).toMatchObject({
      code: 'EINVAL',
      message: expect.stringMatching(/at most 66/),
    });
    expect(await p.use(shm).mempoolCreate('cache', { size: 100, elementSize: 8, cacheSize: 66 })).toMatchObject({ cacheSize: 66 });
    expect(await p.use(shm).mempoolCreate('cache', { size: 100, elementSize: 8 })).toMatchObject({ code: 'EEXIST' });
    expect(await p.use(shm).mempoolCreate('zero', { size: 0, elementSize: 8 })).toMatchObject({ code: 'EINVAL' });
    expect(await p.use(shm).mempoolCreate('mode', { size: 7, elementSize: 8, put: 'many' as never } /* invalid on purpose */)).toMatchObject({
      code: 'EINVAL',
    });
    expect(await p.use(shm).mempoolCreate('typo', { size: 7, elementSize: 8, cachesize: 4 } as never /* misspelled on purpose */)).toMatchObject({
      code: 'EINVAL',
      message: expect.stringContaining("Mempool.create options has no option 'cachesize' (did you mean 'cacheSize'?)"),
    });
    expect(await p.use(shm).mempoolLookup('nopool')).toMatchObject({ code: 'ENOENT' });
    // a pool's own ring (DPDK's MP_<pool>) is not a way round the pool's checks
    expect(await p.use(shm).ringLookup('MP_cache')).toMatchObject({
      code: 'EINVAL',
      message: expect.stringContaining("ring 'MP_cache' is mempool 'cache''s own"),
    });
    expect(await p.use(shm).ringLookup('MP_nopool')).toMatchObject({ code: 'ENOENT' });
    // more than the ring of a pool can hold (a ring of 2^31 is over DPDK's limit)
    expect(await p.use(shm).mempoolCreate('ringmax', { size: 2 ** 30, elementSize: 8 })).toMatchObject({
      code: 'EINVAL',
      message: expect.stringContaining('from 1 to 1073741823'),
    });
    // objects larger than the group's memory holds in one piece: DPDK says ENOMEM past the
    // limit (without one, ENOENT, which is not "no such pool" on a create: it said "create it
    // first"); either way the message says what to do
    const huge = (await p.use(shm).mempoolCreate('huge', { size: 2, elementSize: 2 ** 30 })) as { code: string; message: string };
    expect(huge.code).toBe('ENOMEM');
    expect(huge.message).toMatch(/cannot create a Mempool named 'huge' this large/);
    expect(huge.message).not.toMatch(/create it first/);
  });
});
