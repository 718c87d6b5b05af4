/**
 * @heimdall/plugin-rewrite — CoreDNS-style `rewrite name` (exact or suffix, case-insensitive, first
 * match wins): the rest of the chain sees the new name; core gives the client its own question back.
 */
import { definePlugin, options, type Static, Type } from '@heimdall/core';

const name = (description: string) =>
  Type.String({ pattern: '^\\.?[^.\\s]{1,63}(\\.[^.\\s]{1,63})*\\.?$', maxLength: 254, errorMessage: 'must be a domain name', description });

/** One rule: `{ exact: 'a.example', to: 'b.example' }` or `{ suffix: '.lan', to: '.home.arpa' }`. */
const rule = Type.Object(
  { exact: Type.Optional(name('Name to rewrite.')), suffix: Type.Optional(name('Ending to replace.')), to: name('New name, or new ending.') },
  { additionalProperties: false, minProperties: 2, maxProperties: 2, errorMessage: 'must have `to` and one of `exact` or `suffix`' },
);
const rewriteOptionsSchema = options({ rules: Type.Array(rule, { default: [], maxItems: 10_000, description: 'Rules, first match wins.' }) });
/** Options of the rewrite plugin, defaults filled in. */
export type RewriteOptions = Static<typeof rewriteOptionsSchema>;

const bare = (n: string) => (n.endsWith('.') ? n.slice(0, -1) : n);

/** The rewrite plugin: `rewrite({ rules: [{ suffix: '.lan', to: '.home.arpa' }] })`. */
export const rewrite = definePlugin({
  name: 'rewrite',
  description: 'Rewrites query names (CoreDNS `rewrite name` exact/suffix); the client sees its own question.',
  options: rewriteOptionsSchema,
  setup: ({ rules }) => {
    const compiled = rules.map((r) => ({ exact: r.exact !== undefined, from: bare(r.exact ?? r.suffix ?? '').toLowerCase(), to: bare(r.to) }));
    return {
      middleware: () => (ctx, next) => {
        const qname = ctx.query.qname;
        const lower = qname.toLowerCase();
        const r = compiled.find((c) => (c.exact ? lower === c.from : lower.length > c.from.length && lower.endsWith(c.from)));
        if (r !== undefined) ctx.rewrite({ name: r.exact ? r.to : qname.slice(0, qname.length - r.from.length) + r.to });
        return next();
      },
    };
  },
});
export default rewrite;
