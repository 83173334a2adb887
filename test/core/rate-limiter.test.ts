/** The adaptive rate limiter on a manual clock: off until a throttle, AIMD between 5 and 500 per second. */
import { AdaptiveRateLimiter, RATE_MAX, RATE_MIN } from '../../src/core/rate-limiter.js';

function limiter(): { limiter: AdaptiveRateLimiter; clock: { now: number }; slept: number[] } {
  const clock = { now: 0 };
  const slept: number[] = [];
  const l = new AdaptiveRateLimiter({
    now: () => clock.now,
    sleep: (ms) => {
      slept.push(ms);
      return Promise.resolve();
    },
  });
  return { limiter: l, clock, slept };
}

describe('AdaptiveRateLimiter', () => {
  it('does not wait until the first throttle, then spaces requests at the floor rate', async () => {
    const { limiter: l, slept } = limiter();
    for (let i = 0; i < 50; i++) await l.acquire();
    expect(slept).toEqual([]);
    expect(l.currentRate).toBeUndefined();
    l.record(503);
    expect(l.currentRate).toBe(RATE_MIN);
    await Promise.all([l.acquire(), l.acquire(), l.acquire()]);
    // Concurrent callers get consecutive slots, not the same one.
    expect(slept).toEqual([200, 400, 600]);
  });

  it('backs off to 70 % on each throttle (not below the floor) and recovers 10 % per 10 successes', () => {
    const { limiter: l } = limiter();
    l.record(429);
    for (let i = 0; i < 10; i++) l.record(200);
    expect(l.currentRate).toBeCloseTo(RATE_MIN * 1.1);
    l.record(429);
    expect(l.currentRate).toBe(RATE_MIN);
    for (let i = 0; i < 10_000; i++) l.record(204);
    expect(l.currentRate).toBe(RATE_MAX);
    l.record(503);
    expect(l.currentRate).toBeCloseTo(RATE_MAX * 0.7);
  });
});
