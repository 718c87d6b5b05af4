/**
 * Text the dashboard shows, as pure functions (no DOM, no Node.js: the
 * dashboard bundles this file; the tests import it): why a query was
 * answered so, the client column, which plugin actions need no argument, what
 * a blocking reload did.
 */
import type { QueryEntry } from './model.js';

/** Why a query was answered so, for the query log: rewrite, block (list, group and the rule), cache, upstream. */
export function why(e: QueryEntry): string {
  const parts: string[] = [];
  if (e.rewrite) parts.push(`rewritten to ${e.rewrite.qname} ${e.rewrite.qtype}`);
  if (e.blocked) {
    const b = e.blocked;
    const rule = b.rule === undefined ? '' : `, ${b.reason === 'regex' ? 'regex' : 'rule'} ${b.rule}`;
    parts.push(`blocked by ${b.reason === 'cname' ? `CNAME ${b.name} in ` : ''}list ${b.list} (group ${b.group})${rule}`);
  }
  if (e.cache === 'hit') parts.push('cache hit');
  else if (e.cache === 'stale') parts.push('stale cache answer');
  else if (e.cache === 'miss') parts.push('cache miss');
  if (e.upstream) parts.push(`forwarded to ${e.upstream}`);
  if (parts.length === 0) parts.push(e.rcode === 'none' ? 'no plugin answered' : 'answered locally');
  return parts.join('; ');
}

/** The client column: the address, and the client's id when it sent one (`10.0.0.5 (kids-tablet)`). */
export function clientLabel(e: Pick<QueryEntry, 'client' | 'clientId'>): string {
  return e.clientId === undefined || e.clientId === '' ? e.client : `${e.client} (${e.clientId})`;
}

/** An admin action's argument schema, as `GET /actions` lists it. */
export interface ActionArgs {
  properties?: Record<string, { default?: unknown }>;
  required?: string[];
}

/**
 * The arguments a call of an action must give: the required ones without a
 * default (core's `options()` lists defaulted arguments as required too, and
 * a call without them gets the default).
 */
export function mandatoryArgs(args: ActionArgs | undefined): string[] {
  return (args?.required ?? []).filter((k) => args?.properties?.[k]?.default === undefined);
}

/** What `POST /<blocking>/reload` answers (per worker with `--workers N`). */
export interface ReloadResult {
  rebuilt: boolean;
  changed: number;
  failed: number;
  rejected: number;
}

/** What a reload did, said as it is: failed or rejected lists are an error, not "reloaded". Workers reload the same lists: the worst one counts. */
export function reloadStatus(results: readonly ReloadResult[]): { ok: boolean; text: string } {
  let changed = 0;
  let failed = 0;
  let rejected = 0;
  for (const r of results) {
    changed = Math.max(changed, r.changed ?? 0);
    failed = Math.max(failed, r.failed ?? 0);
    rejected = Math.max(rejected, r.rejected ?? 0);
  }
  const lists = (n: number) => `${n} ${n === 1 ? 'list' : 'lists'}`;
  if (failed > 0 || rejected > 0) {
    const what = [failed > 0 ? `${lists(failed)} failed to refresh` : '', rejected > 0 ? `${lists(rejected)} rejected as suspect` : '']
      .filter(Boolean)
      .join(', ');
    return { ok: false, text: `Reload incomplete: ${what} (the last good copy stays in use); ${lists(changed)} changed.` };
  }
  return { ok: true, text: changed > 0 ? `Lists reloaded: ${lists(changed)} changed.` : 'Lists reloaded: no list changed.' };
}
