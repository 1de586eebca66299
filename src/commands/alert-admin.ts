import type { AlertRecord, Silence } from '../alerts/state.js';
import type { NotificationRecord } from '../alerts/types.js';
import { adminApi, type AdminFlags } from './admin-api.js';

interface AlertView {
  firing: AlertRecord[];
  resolving: AlertRecord[];
  silences: Silence[];
  notifications: NotificationRecord[];
}

const print = (text: string) => process.stdout.write(text);
const iso = (ms: number) => new Date(ms).toISOString();

/** What `wcagai alerts list` prints: firing alerts (silenced ones marked), silences, the last notifications. */
export function alertListText(view: AlertView, notifications = 10): string {
  const lines: string[] = [];
  lines.push(view.firing.length ? `firing (${view.firing.length}):` : 'firing: none');
  for (const a of view.firing) {
    lines.push(`  ${a.id}  ${a.severity}  ${a.summary}  since ${iso(a.since)}${a.silencedUntil ? `  silenced until ${iso(a.silencedUntil)}` : ''}`);
  }
  lines.push(view.silences.length ? `silences (${view.silences.length}):` : 'silences: none');
  for (const s of view.silences) lines.push(`  ${s.alert}  until ${iso(s.until)}${s.reason ? `  "${s.reason}"` : ''}`);
  const recent = view.notifications.slice(0, notifications);
  if (recent.length) {
    lines.push('last notifications:');
    for (const n of recent) lines.push(`  ${n.at}  ${n.alert} ${n.action} to ${n.channel}: ${n.ok ? `ok ${n.status ?? ''}`.trimEnd() : `FAILED ${n.error ?? ''}`.trimEnd()}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `wcagai alerts list`: the fleet's alerts as the server's GET /admin/alerts gives them. */
export async function runAlertsList(flags: AdminFlags): Promise<number> {
  const view = await adminApi(flags).call<AlertView>('GET', '/admin/alerts');
  print(flags.json ? `${JSON.stringify(view, null, 2)}\n` : alertListText(view));
  return 0;
}

/** `wcagai alerts silence <id> --for 2h [--reason …]`: no trigger for it fleet-wide until then. */
export async function runAlertSilence(id: string, flags: AdminFlags & { for: string; reason?: string }): Promise<number> {
  const { silence } = await adminApi(flags).call<{ silence: Silence }>('POST', `/admin/alerts/${encodeURIComponent(id)}/silence`, { for: flags.for, ...(flags.reason ? { reason: flags.reason } : {}) });
  print(flags.json ? `${JSON.stringify(silence, null, 2)}\n` : `alert ${silence.alert} silenced until ${iso(silence.until)}: it is still evaluated and shown, but no notification is sent\n`);
  return 0;
}

/** `wcagai alerts unsilence <id>`: notifications resume (at once, if it fires). */
export async function runAlertUnsilence(id: string, flags: AdminFlags): Promise<number> {
  const answer = await adminApi(flags).call<{ alert: string; removed: boolean }>('DELETE', `/admin/alerts/${encodeURIComponent(id)}/silence`);
  print(flags.json ? `${JSON.stringify(answer)}\n` : answer.removed ? `alert ${answer.alert}: silence lifted; notifications resume\n` : `alert ${answer.alert} was not silenced\n`);
  return 0;
}
