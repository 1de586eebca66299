/**
 * k6-style threshold expressions: `p(95)<30000`, `rate<0.10`, `avg <= 250`, `count==0`.
 * Grammar: aggregation operator number, where aggregation is p(N) (0 < N <= 100), avg, min,
 * max, med, rate, count or value, and operator one of < <= > >= ==.
 */

export type Aggregation = { kind: 'p'; percentile: number } | { kind: 'avg' | 'min' | 'max' | 'med' | 'rate' | 'count' | 'value' };
export type AggregationKind = Aggregation['kind'];
export type Operator = '<' | '<=' | '>' | '>=' | '==';

export interface ThresholdExpression {
  /** The expression as written. */
  source: string;
  aggregation: Aggregation;
  operator: Operator;
  value: number;
}

export class ExpressionError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(message);
    this.name = 'ExpressionError';
  }
}

const NAMES = ['avg', 'min', 'max', 'med', 'rate', 'count', 'value'] as const;
const OPERATORS: readonly Operator[] = ['<=', '>=', '==', '<', '>'];
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?/i;

/** Parses one expression; throws ExpressionError saying what was expected where. */
export function parseThreshold(source: string): ThresholdExpression {
  let pos = 0;
  const skip = () => {
    while (pos < source.length && /\s/.test(source[pos]!)) pos++;
  };
  const fail = (expected: string): never => {
    const found = pos < source.length ? `"${source.slice(pos, pos + 8)}"` : 'the end';
    throw new ExpressionError(`expected ${expected} at position ${pos + 1}, found ${found}`, pos);
  };

  skip();
  let aggregation: Aggregation;
  const word = /^[a-z]+/i.exec(source.slice(pos))?.[0]?.toLowerCase() ?? '';
  if (word === 'p' && /^p\s*\(/i.test(source.slice(pos))) {
    pos = source.indexOf('(', pos) + 1;
    skip();
    const m = NUMBER.exec(source.slice(pos));
    if (!m) fail('a percentile such as 95 or 99.9');
    const percentile = Number(m![0]);
    if (!(percentile > 0 && percentile <= 100)) throw new ExpressionError(`percentile must lie in (0, 100], got ${m![0]}`, pos);
    pos += m![0].length;
    skip();
    if (source[pos] !== ')') fail('")"');
    pos++;
    aggregation = { kind: 'p', percentile };
  } else if ((NAMES as readonly string[]).includes(word)) {
    pos += word.length;
    aggregation = { kind: word as (typeof NAMES)[number] };
  } else {
    fail('an aggregation: p(N), avg, min, max, med, rate, count or value');
  }

  skip();
  const operator = OPERATORS.find((op) => source.startsWith(op, pos));
  if (!operator) fail('an operator: <, <=, >, >= or ==');
  pos += operator!.length;

  skip();
  const m = NUMBER.exec(source.slice(pos));
  if (!m) fail('a number');
  pos += m![0].length;
  skip();
  if (pos < source.length) fail('the end of the expression');
  return { source, aggregation: aggregation!, operator: operator!, value: Number(m![0]) };
}

/** `p(95)`, `avg`, … as written in scenario files and reports. */
export function aggregationName(aggregation: Aggregation): string {
  return aggregation.kind === 'p' ? `p(${aggregation.percentile})` : aggregation.kind;
}

/** Whether `actual` satisfies the expression; a missing figure never does. */
export function holds(expression: ThresholdExpression, actual: number | null): boolean {
  if (actual === null || Number.isNaN(actual)) return false;
  const v = expression.value;
  switch (expression.operator) {
    case '<':
      return actual < v;
    case '<=':
      return actual <= v;
    case '>':
      return actual > v;
    case '>=':
      return actual >= v;
    case '==':
      return actual === v;
  }
}
