import type { Impact, PageResult, Report, Violation } from '../domain/scan.js';
import { gateNodes } from './baseline.js';
import { targetText } from './summary.js';

/** What the run's gate counts: CI marks a build by the failures of its JUnit report. */
interface Gate {
  failOn: Impact;
  baselineApplied: boolean;
}

/**
 * JUnit XML: a suite per page, a test case per rule that ran, a failure per violated rule the gate
 * counts. A violated rule the gate leaves out (every finding persisting from the baseline, or below
 * `--fail-on`) is a skipped test case saying why, with its findings: the test report agrees with
 * the exit code instead of showing a green gate as failed tests.
 */
export function renderJunit(report: Report): string {
  const gate: Gate = { failOn: report.options.failOn ?? 'minor', baselineApplied: report.options.baseline !== undefined || report.summary.baseline !== undefined };
  const suites = report.pages.map((page) => renderSuite(page, gate));
  const tests = suites.reduce((n, s) => n + s.tests, 0);
  const failures = suites.reduce((n, s) => n + s.failures, 0);
  const errors = suites.reduce((n, s) => n + s.errors, 0);
  const time = wallSeconds(report) ?? report.pages.reduce((t, p) => t + p.timings.totalMs / 1000, 0);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="${attr(report.tool.name)}" tests="${tests}" failures="${failures}" errors="${errors}" time="${seconds(time)}">`,
    ...suites.map((s) => s.xml),
    '</testsuites>',
    '',
  ].join('\n');
}

interface Suite {
  xml: string;
  tests: number;
  failures: number;
  errors: number;
}

function renderSuite(page: PageResult, gate: Gate): Suite {
  const url = attr(page.url);
  const open = (tests: number, failures: number, errors: number, skipped = 0): string =>
    `  <testsuite name="${url}" tests="${tests}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${seconds(page.timings.totalMs / 1000)}">`;
  const properties = renderProperties(page);
  if (page.status === 'error' || page.error) {
    const code = page.error?.code ?? 'error';
    const message = page.error?.message ?? 'page could not be scanned';
    // A fixed test case name, not the error code, so CI test history tracks the page across runs.
    return {
      tests: 1,
      failures: 0,
      errors: 1,
      xml: [
        open(1, 0, 1),
        properties,
        `    <testcase classname="${url}" name="scan" time="${seconds(page.timings.totalMs / 1000)}">`,
        `      <error message="${attr(message)}" type="${attr(code)}">${text(`${code}: ${message}`)}</error>`,
        '    </testcase>',
        '  </testsuite>',
      ].join('\n'),
    };
  }
  const violated = new Map(page.violations.map((v) => [v.id, v]));
  // A rule can report a violation without appearing in `ran` (older reports): still list it.
  const ruleIds = [...new Set([...page.rules.ran, ...violated.keys()])];
  let failures = 0;
  let skipped = 0;
  const cases = ruleIds.map((id) => {
    const v = violated.get(id);
    const head = `    <testcase classname="${url}" name="${attr(id)}" time="0"`;
    if (!v) return `${head}/>`;
    if (gateNodes(v, gate.failOn, gate.baselineApplied) > 0) {
      failures++;
      return `${head}>\n${renderFailure(v)}\n    </testcase>`;
    }
    skipped++;
    return `${head}>\n${renderSkipped(v, gate)}\n    </testcase>`;
  });
  return {
    tests: ruleIds.length,
    failures,
    errors: 0,
    xml: [open(ruleIds.length, failures, 0, skipped), properties, ...cases, '  </testsuite>'].join('\n'),
  };
}

function renderProperties(page: PageResult): string {
  const props: Array<[string, string]> = [];
  if (page.finalUrl !== null) props.push(['finalUrl', page.finalUrl]);
  if (page.httpStatus !== null) props.push(['httpStatus', String(page.httpStatus)]);
  props.push(['axeVersion', page.rules.axeVersion]);
  const lines = props.map(([k, v]) => `      <property name="${attr(k)}" value="${attr(v)}"/>`);
  return ['    <properties>', ...lines, '    </properties>'].join('\n');
}

function findings(v: Violation): string {
  const impact = v.impact ?? 'unknown';
  const lines = [`${v.help} (${impact}${v.wcag.length ? `, WCAG ${v.wcag.join(', ')}` : ''})`, v.helpUrl, ''];
  for (const node of v.nodes) {
    const status = node.baseline ? ` [${node.baseline}]` : '';
    lines.push(`- ${targetText(node.target)}${status}`, `  ${node.html}`);
    for (const summaryLine of node.failureSummary.split(/\r?\n/)) lines.push(`  ${summaryLine}`);
  }
  return text(lines.join('\n'));
}

const elements = (n: number) => `${n} element${n === 1 ? '' : 's'}`;

function renderFailure(v: Violation): string {
  const message = `${v.help} (${elements(v.nodes.length)})`;
  return `      <failure message="${attr(message)}" type="${attr(v.impact ?? 'unknown')}">${findings(v)}</failure>`;
}

function renderSkipped(v: Violation, gate: Gate): string {
  const why = gateNodes(v, gate.failOn, false) === 0 ? `below --fail-on ${gate.failOn}` : 'persisting: in the baseline';
  const message = `${v.help} (${elements(v.nodes.length)}, ${why})`;
  return `      <skipped message="${attr(message)}">${findings(v)}</skipped>`;
}

function wallSeconds(report: Report): number | undefined {
  const ms = Date.parse(report.finishedAt) - Date.parse(report.startedAt);
  return Number.isFinite(ms) && ms >= 0 ? ms / 1000 : undefined;
}

function seconds(value: number): string {
  return (Number.isFinite(value) && value > 0 ? value : 0).toFixed(3);
}

// Characters XML 1.0 cannot carry at all, even escaped: C0 controls but tab/LF/CR, lone surrogates, U+FFFE/F.
const INVALID_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

function text(value: string): string {
  return value.replace(INVALID_XML, '').replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

function attr(value: string): string {
  // Whitespace is written as references so attribute-value normalisation keeps line breaks.
  return text(value)
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;')
    .replaceAll('\t', '&#9;')
    .replaceAll('\n', '&#10;')
    .replaceAll('\r', '&#13;');
}
