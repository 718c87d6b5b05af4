/**
 * @internal Builds the number→name and name→number lookups of a code table.
 * The first name listed for a number wins for printing (aliases may follow).
 */
export function buildTable(table: Readonly<Record<string, number>>): {
  toName: Map<number, string>;
  fromName: Map<string, number>;
} {
  const toName = new Map<number, string>();
  const fromName = new Map<string, number>();
  for (const [name, value] of Object.entries(table)) {
    if (!toName.has(value)) toName.set(value, name);
    fromName.set(name.toUpperCase(), value);
  }
  return { toName, fromName };
}

/**
 * @internal Parses `name` against a table, accepting the generic form
 * `<PREFIX><number>` (RFC 3597 `TYPE65280`, `CLASS12`) when a prefix is given.
 */
export function parseCode(fromName: Map<string, number>, name: string, prefix: string | null, max: number): number | undefined {
  const upper = name.toUpperCase();
  const known = fromName.get(upper);
  if (known !== undefined) return known;
  if (prefix !== null && upper.startsWith(prefix)) {
    const digits = upper.slice(prefix.length);
    if (/^[0-9]{1,5}$/.test(digits)) {
      const n = Number(digits);
      if (n <= max) return n;
    }
  }
  return undefined;
}
