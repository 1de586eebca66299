import { ALERT_RULES, type AlertRuleName, type Config } from '../config/schema.js';
import type { AlertSettings, RuleSettings } from './types.js';

/** The alert rules' settings from the configuration. */
export function alertSettingsOf(config: Config): AlertSettings {
  const rule = (r: AlertRuleName): RuleSettings => ({
    enabled: config[`ALERT_${r}_ENABLED`],
    threshold: config[`ALERT_${r}_THRESHOLD`],
    severity: config[`ALERT_${r}_SEVERITY`],
    cooldownMs: config[`ALERT_${r}_COOLDOWN`],
  });
  return {
    rules: Object.fromEntries(ALERT_RULES.map((r) => [r, rule(r)])) as Record<AlertRuleName, RuleSettings>,
    errorRateWindowMs: config.ALERT_ERROR_RATE_WINDOW,
    errorRateMinScans: config.ALERT_ERROR_RATE_MIN_SCANS,
    resolveAfterMs: config.ALERT_RESOLVE_AFTER,
  };
}
