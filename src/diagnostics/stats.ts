/**
 * Statistics for the leak detector and the stress report: least-squares regression with a
 * Student-t confidence interval on the slope, and order statistics of small sample sets.
 * Pure functions, no I/O.
 */

export interface Regression {
  /** Points used. */
  n: number;
  slope: number;
  intercept: number;
  /** Coefficient of determination, 0..1 (0 when y does not vary). */
  r2: number;
  /** Standard error of the slope (Infinity with fewer than 3 points). */
  slopeStdErr: number;
  /** Two-sided confidence interval of the slope; [-Infinity, Infinity] with fewer than 3 points. */
  slopeCi: [number, number];
  confidence: number;
}

/** Lanczos approximation of ln Γ(x), x > 0 (accurate to ~1e-14). */
export function logGamma(x: number): number {
  const g = 7;
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
    1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let a = c[0]!;
  const t = z + g + 0.5;
  for (let i = 1; i < g + 2; i++) a += c[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta function (modified Lentz). */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return h;
}

/** The regularized incomplete beta function I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  // The continued fraction converges fast only on one side of the mean.
  if (x < (a + 1) / (a + b + 2)) return (front * betaContinuedFraction(a, b, x)) / a;
  return 1 - (front * betaContinuedFraction(b, a, 1 - x)) / b;
}

/** P(T <= t) for Student's t with `df` degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** The quantile t with P(T <= t) = p, for 0 < p < 1 (bisection on the CDF). */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`p must lie strictly between 0 and 1, got ${p}`);
  if (!(df > 0)) throw new RangeError(`degrees of freedom must be positive, got ${df}`);
  if (p === 0.5) return 0;
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0;
  let hi = 1;
  while (studentTCdf(hi, df) < p && hi < 1e12) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-12 * Math.max(1, hi); i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Ordinary least squares of y on x, with the slope's confidence interval (default 95 %). */
export function linearRegression(xs: readonly number[], ys: readonly number[], confidence = 0.95): Regression {
  if (xs.length !== ys.length) throw new RangeError(`x and y differ in length (${xs.length} vs ${ys.length})`);
  const n = xs.length;
  const unbounded: [number, number] = [-Infinity, Infinity];
  if (n === 0) return { n, slope: 0, intercept: 0, r2: 0, slopeStdErr: Infinity, slopeCi: unbounded, confidence };
  const mx = mean(xs);
  const my = mean(ys);
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i]! - mx;
    const dy = ys[i]! - my;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  if (sxx === 0) return { n, slope: 0, intercept: my, r2: 0, slopeStdErr: Infinity, slopeCi: unbounded, confidence };
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  let ssRes = 0;
  for (let i = 0; i < n; i++) {
    const r = ys[i]! - (intercept + slope * xs[i]!);
    ssRes += r * r;
  }
  const r2 = syy === 0 ? 0 : Math.max(0, Math.min(1, 1 - ssRes / syy));
  if (n < 3) return { n, slope, intercept, r2, slopeStdErr: Infinity, slopeCi: unbounded, confidence };
  const slopeStdErr = Math.sqrt(ssRes / (n - 2) / sxx);
  const t = studentTQuantile(1 - (1 - confidence) / 2, n - 2);
  return { n, slope, intercept, r2, slopeStdErr, slopeCi: [slope - t * slopeStdErr, slope + t * slopeStdErr], confidence };
}

export function mean(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** Nearest-rank quantile (0..1) of values sorted ascending; NaN when empty. */
export function quantileSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  // The epsilon keeps floating point from lifting an exact rank (0.07 * 100 is 7.000000000000001).
  const rank = Math.ceil(q * sorted.length - 1e-9);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** min, max, avg, med, p90, p95, p99 and count of a sample set (null figures when empty). */
export interface SampleSummary {
  count: number;
  min: number | null;
  max: number | null;
  avg: number | null;
  med: number | null;
  p90: number | null;
  p95: number | null;
  p99: number | null;
}

/** Order statistics of a small sample set (gauges sampled once a second). */
export function summarize(values: readonly number[]): SampleSummary {
  const sorted = [...values].sort((a, b) => a - b);
  const pick = (v: number) => (Number.isNaN(v) ? null : v);
  return {
    count: sorted.length,
    min: pick(sorted[0] ?? NaN),
    max: pick(sorted[sorted.length - 1] ?? NaN),
    avg: pick(mean(sorted)),
    med: pick(quantileSorted(sorted, 0.5)),
    p90: pick(quantileSorted(sorted, 0.9)),
    p95: pick(quantileSorted(sorted, 0.95)),
    p99: pick(quantileSorted(sorted, 0.99)),
  };
}
