import type { PageResult, Report, Violation, ViolationNode } from '../../src/domain/scan.js';
import { summarize } from '../../src/reporters/summary.js';

/** Markup with every character HTML and XML escaping must handle, plus a C0 control character. */
export const HOSTILE_HTML = `<p title='"&'><script>alert("x")</script>\u0001</p>`;

function node(fingerprint: string, target: string, extra: Partial<ViolationNode> = {}): ViolationNode {
  return {
    target: [target],
    html: `<div id="${fingerprint}">`,
    failureSummary: 'Fix any of the following:\n  Element has insufficient contrast',
    fingerprint,
    ...extra,
  };
}

function violation(v: Partial<Violation> & Pick<Violation, 'id' | 'impact' | 'nodes'>): Violation {
  return {
    wcag: [],
    tags: [],
    help: `${v.id} help`,
    helpUrl: `https://dequeuniversity.com/rules/axe/4.11/${v.id}`,
    ...v,
  };
}

const home: PageResult = {
  url: 'https://example.com/',
  finalUrl: 'https://example.com/',
  status: 'ok',
  httpStatus: 200,
  timings: { navigationMs: 1200, settleMs: 300, axeMs: 450, totalMs: 2000 },
  rules: {
    axeVersion: '4.11.4',
    tags: ['wcag2a', 'wcag2aa'],
    ran: ['image-alt', 'color-contrast', 'region', 'heading-order', 'html-has-lang', 'document-title'],
  },
  violations: [
    violation({
      id: 'image-alt',
      impact: 'critical',
      wcag: ['1.1.1'],
      tags: ['cat.text-alternatives', 'wcag2a', 'wcag111'],
      help: 'Images must have alternative text',
      description: 'Ensures <img> elements have alternate text',
      nodes: [
        node('fp-img-1', 'img.hero', { html: HOSTILE_HTML, failureSummary: '=HYPERLINK("http://evil")' }),
        node('fp-img-2', 'img.logo, a > img', { failureSummary: '-2+3' }),
      ],
    }),
    violation({
      id: 'color-contrast',
      impact: 'serious',
      wcag: ['1.4.3'],
      tags: ['cat.color', 'wcag2aa', 'wcag143'],
      help: 'Elements must meet minimum color contrast ratio thresholds',
      nodes: ['a', 'b', 'c', 'd', 'e'].map((k) => node(`fp-cc-${k}`, `.c-${k}`)),
    }),
    violation({ id: 'region', impact: 'moderate', nodes: [node('fp-region', 'body > div')] }),
    violation({ id: 'heading-order', impact: 'minor', nodes: [node('fp-heading', '@h3')] }),
  ],
};

const about: PageResult = {
  url: 'https://example.com/about?a=1&b=2',
  finalUrl: 'https://example.com/about?a=1&b=2',
  status: 'ok',
  httpStatus: 200,
  timings: { navigationMs: 500, settleMs: 100, axeMs: 200, totalMs: 800 },
  rules: { axeVersion: '4.11.4', tags: ['wcag2a'], ran: ['image-alt', 'html-has-lang', 'document-title'] },
  violations: [],
};

const down: PageResult = {
  url: 'https://example.com/down',
  finalUrl: null,
  status: 'error',
  httpStatus: null,
  error: { code: 'NAVIGATION_TIMEOUT', message: 'Navigation timed out after 30000 ms, "quoted", <b>', retryable: true },
  timings: { navigationMs: 30000, settleMs: 0, axeMs: 0, totalMs: 30010 },
  rules: { axeVersion: '4.11.4', tags: [], ran: [] },
  violations: [],
};

/** A fresh report on every call so tests can modify it freely. */
export function makeReport(): Report {
  const pages = structuredClone([home, about, down]);
  return {
    tool: { name: 'wcagai', version: '0.1.0' },
    axeVersion: '4.11.4',
    startedAt: '2025-01-01T10:00:00.000Z',
    finishedAt: '2025-01-01T10:00:32.500Z',
    options: { wcagLevel: 'AA', wcagVersion: '2.2', bestPractice: false, failOn: 'serious' },
    summary: summarize(pages),
    pages,
  };
}

/** Every node of a report, flattened with its rule. */
export function allNodes(report: Report): Array<{ url: string; rule: string; node: ViolationNode }> {
  return report.pages.flatMap((p) => p.violations.flatMap((v) => v.nodes.map((node) => ({ url: p.url, rule: v.id, node }))));
}
