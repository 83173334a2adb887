/**
 * A monthly cost estimate from the figures of the original stack (stack.md, as of 2026-03-28; R2
 * pricing in cloudflare.md §10): R2 Standard storage above the free tier, one small Fly machine, the
 * Neon free plan. Prices are inputs, so a user can update them without a release.
 */

export interface Prices {
  /** USD per GB-month of R2 Standard storage above the free tier. */
  readonly r2PerGbMonth: number;
  /** GB-month of R2 Standard storage free each month. */
  readonly r2FreeGb: number;
  /** USD per month of the Fly VM. */
  readonly flyVmPerMonth: number;
  /** USD per month of the Neon plan. */
  readonly neonPerMonth: number;
  /** When the prices were taken (shown with the estimate). */
  readonly date: string;
}

export const DEFAULT_PRICES: Prices = {
  r2PerGbMonth: 0.015,
  r2FreeGb: 10,
  flyVmPerMonth: 1.94,
  neonPerMonth: 0,
  date: '2026-03-28',
};

export interface CostLine {
  readonly item: string;
  readonly basis: string;
  readonly usd: number;
}

export interface CostEstimate {
  readonly lines: readonly CostLine[];
  /** USD per month, rounded to cents. */
  readonly total: number;
  /** Stored bytes the estimate used, or undefined when unknown (storage then counts as 0). */
  readonly storageBytes: number | undefined;
  readonly notes: readonly string[];
}

/** GB as Cloudflare bills it (decimal; cloudflare.md §10 leaves 10^9 vs 2^30 open, 10^9 is the higher count). */
export const BYTES_PER_GB = 1e9;

function cents(usd: number): number {
  return Math.round(usd * 100) / 100;
}

export function estimateMonthlyCost(input: {
  readonly storageBytes: number | undefined;
  /** Where the stored size comes from, for the table. */
  readonly storageSource: string;
  readonly prices: Prices;
  readonly storageClass?: string | undefined;
}): CostEstimate {
  const { prices } = input;
  const notes: string[] = [];
  let storageUsd = 0;
  let basis = 'stored size unknown (counted as 0)';
  if (input.storageBytes !== undefined) {
    const gb = input.storageBytes / BYTES_PER_GB;
    // R2 bills whole GB-months, rounded up, after the free tier.
    const billable = Math.max(0, Math.ceil(gb) - prices.r2FreeGb);
    storageUsd = billable * prices.r2PerGbMonth;
    basis = `${gb.toFixed(gb < 10 ? 2 : 1)} GB (${input.storageSource}); ${prices.r2FreeGb} GB free, then $${prices.r2PerGbMonth}/GB-month`;
  }
  if (input.storageClass && input.storageClass !== 'Standard') {
    notes.push(
      `The bucket's storage class is ${input.storageClass}: it has no free tier and other prices; the estimate uses Standard prices.`,
    );
  }
  notes.push(
    'Request charges (Class A/B operations above the free tier) are not included; a personal cache rarely exceeds them.',
  );
  const lines: CostLine[] = [
    { item: 'Cloudflare R2 storage', basis, usd: cents(storageUsd) },
    { item: 'Fly.io machine', basis: 'shared-cpu-1x, 256 MB', usd: cents(prices.flyVmPerMonth) },
    {
      item: 'Neon PostgreSQL',
      basis: prices.neonPerMonth === 0 ? 'Free plan' : 'plan price',
      usd: cents(prices.neonPerMonth),
    },
  ];
  const total = cents(lines.reduce((sum, line) => sum + line.usd, 0));
  return { lines, total, storageBytes: input.storageBytes, notes };
}
