/**
 * The fault language every fake shares (`faults.ts`): matching, the one `times` default, `skip`,
 * `probability` with its seed, first match wins, and what a fake refuses.
 */
import { FaultInjector, faultKind, type FaultRule } from './faults.js';

const get = (path: string, extra: { target?: string; query?: string; route?: string } = {}) => ({
  method: 'GET',
  path,
  ...extra,
});

describe('fault rules', () => {
  it('fire on every matching request unless `times` says otherwise', () => {
    const faults = new FaultInjector();
    const every = faults.add({ path: /^\/a$/, action: { status: 503 } });
    for (let i = 0; i < 50; i++) expect(faults.pick(get('/a'))?.action).toEqual({ status: 503 });
    expect(every.hits()).toBe(50);
    expect(faults.pick(get('/b'))).toBeUndefined();

    const twice = faults.add({ path: '/b', times: 2, action: { kind: 'reset' } });
    expect([1, 2, 3].map(() => faults.pick(get('/b'))?.action)).toEqual([
      { kind: 'reset' },
      { kind: 'reset' },
      undefined,
    ]);
    expect({ hits: twice.hits(), matched: twice.matched() }).toEqual({ hits: 2, matched: 3 });
  });

  it('match target, method (any case), path (RegExp or contained string), query and route', () => {
    const faults = new FaultInjector();
    const rule: FaultRule = {
      target: 's3',
      method: 'put',
      path: '/nar/',
      query: /partNumber=/,
      route: 'PUT /:bucket/*key',
      action: { status: 500 },
    };
    faults.add(rule);
    const route = 'PUT /:bucket/*key';
    const hit = { target: 's3', method: 'PUT', path: '/b/nar/x', query: 'partNumber=1', route };
    expect(faults.pick(hit)).toBe(rule);
    expect(faults.pick({ ...hit, target: 'api' })).toBeUndefined();
    expect(faults.pick({ ...hit, method: 'GET' })).toBeUndefined();
    expect(faults.pick({ ...hit, path: '/b/x.narinfo' })).toBeUndefined();
    expect(faults.pick({ ...hit, query: 'uploads' })).toBeUndefined();
    expect(faults.pick({ ...hit, route: 'GET /:bucket/*key' })).toBeUndefined();
    const { route: _route, ...unrouted } = hit;
    expect(faults.pick(unrouted)).toBeUndefined();
  });

  it('let `skip` requests through first, and pass spent rules on to the next one', () => {
    const faults = new FaultInjector();
    faults.add({ path: '/a', skip: 1, times: 1, action: { status: 500 }, name: 'first' });
    faults.add({ path: '/a', times: 1, action: { status: 502 }, name: 'second' });
    const statuses = [1, 2, 3, 4].map(() => {
      const action = faults.pick(get('/a'))?.action;
      return action && 'status' in action ? action.status : undefined;
    });
    // The first request is skipped by `first` and hit by `second`; then `first` fires once.
    expect(statuses).toEqual([502, 500, undefined, undefined]);
    expect(faults.log.map((f) => f.name)).toEqual(['second', 'first']);
    expect(faults.count({ name: 'first' })).toBe(1);
    expect(faults.count({ action: 'status' })).toBe(2);
  });

  it('draw `probability` from a seeded PRNG: same seed, same faults', () => {
    const run = (seed: number): boolean[] => {
      const faults = new FaultInjector({ seed });
      faults.add({ probability: 0.3, action: { kind: 'delay', ms: 1 } });
      return Array.from({ length: 200 }, () => faults.pick(get('/x')) !== undefined);
    };
    const a = run(1);
    expect(run(1)).toEqual(a);
    expect(run(2)).not.toEqual(a);
    const hits = a.filter(Boolean).length;
    expect(hits).toBeGreaterThan(30);
    expect(hits).toBeLessThan(90);
  });

  it('are removed one by one or all at once; the log stays', () => {
    const faults = new FaultInjector();
    const one = faults.add({ action: { kind: 'hang' } });
    faults.add({ action: { kind: 'reset' } });
    expect(faults.pick(get('/'))?.action).toEqual({ kind: 'hang' });
    one.remove();
    expect(faults.handles()).toHaveLength(1);
    expect(faults.pick(get('/'))?.action).toEqual({ kind: 'reset' });
    faults.clear();
    expect(faults.pick(get('/'))).toBeUndefined();
    expect(faults.injected).toBe(2);
    expect(faultKind({ status: 404 })).toBe('status');
  });

  it('are refused when the fake does not model them', () => {
    const faults = new FaultInjector({
      fake: 'demo',
      support: { kinds: ['status', 'reset'], afterHandling: ['status'] },
    });
    expect(() => faults.add({ action: { kind: 'reset-mid-body' } })).toThrow(
      'fake demo: no "reset-mid-body" faults (it models status, reset)',
    );
    expect(() => faults.add({ afterHandling: true, action: { kind: 'reset' } })).toThrow(
      'fake demo: no "reset" after handling (only status)',
    );
    expect(faults.add({ afterHandling: true, action: { status: 500 } }).rule.afterHandling).toBe(true);
  });
});
