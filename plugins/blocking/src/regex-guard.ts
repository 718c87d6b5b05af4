/**
 * Safety checks for regular-expression list entries (`/…/`).
 *
 * V8's backtracking engine can take exponential time on patterns such as
 * `(a+)+$` or `(a|a)*$`, and high-degree polynomial time on long chains of
 * unbounded quantifiers. Query names are attacker-controlled, so a list entry
 * must not be able to stall the event loop. The guard is conservative: it
 * rejects patterns rather than trying to prove them safe.
 *
 * Rejected:
 * - sources longer than `maxLength`;
 * - backreferences (`\1`…`\9`, `\k<name>`), which defeat every linear bound;
 * - a quantified group (`(…)*`, `(…)+`, `(…){2,}`) that itself contains a
 *   quantifier or an alternation (nested or overlapping repetition);
 * - more than `maxUnbounded` unbounded quantifiers (`*`, `+`, `{n,}`) overall,
 *   where a pattern without a leading `^` counts one more (the engine retries
 *   it at every start position): with k of them the worst case is about n^k
 *   steps for an n-character name (n ≤ 253). Measured on this machine: k = 2
 *   stays near 1 ms on a hostile 253-character name, k = 3 reaches 5–10 ms,
 *   k = 4 more than 600 ms — hence the default of 2;
 * - anything `new RegExp` refuses.
 */

/** Bounds for {@link checkRegex}. */
export interface RegexLimits {
  /** Longest accepted pattern source, in characters. Default 256. */
  maxLength: number;
  /** Most unbounded quantifiers in one pattern (an unanchored start counts as one). Default 2. */
  maxUnbounded: number;
}

/** Defaults for {@link RegexLimits}. */
export const DEFAULT_REGEX_LIMITS: Readonly<RegexLimits> = Object.freeze({ maxLength: 256, maxUnbounded: 2 });

/** Why a pattern was rejected; `null` when it is accepted. */
export function checkRegex(source: string, limits: RegexLimits = DEFAULT_REGEX_LIMITS): string | null {
  if (source.length === 0) return 'empty pattern';
  if (source.length > limits.maxLength) return `pattern longer than ${limits.maxLength} characters`;
  interface Frame {
    hasQuantifier: boolean;
    hasAlternation: boolean;
  }
  const stack: Frame[] = [{ hasQuantifier: false, hasAlternation: false }];
  // An unanchored pattern is tried at every offset: one implicit `.*?` in front.
  let unbounded = source.startsWith('^') ? 0 : 1;
  let inClass = false;
  // What the next quantifier applies to: a closed group's frame, or an atom.
  let lastGroup: Frame | null = null;
  let lastWasAtom = false;
  const len = source.length;
  for (let i = 0; i < len; i++) {
    const c = source[i]!;
    if (c === '\\') {
      const n = source[i + 1];
      if (n === undefined) return 'trailing backslash';
      if (!inClass && ((n >= '1' && n <= '9') || n === 'k')) return 'backreferences are not allowed';
      i++;
      if (!inClass) {
        lastGroup = null;
        lastWasAtom = true;
      }
      continue;
    }
    if (inClass) {
      if (c === ']') {
        inClass = false;
        lastGroup = null;
        lastWasAtom = true;
      }
      continue;
    }
    const top = stack[stack.length - 1]!;
    switch (c) {
      case '[':
        inClass = true;
        break;
      case '(':
        stack.push({ hasQuantifier: false, hasAlternation: false });
        lastGroup = null;
        lastWasAtom = false;
        // Skip group prefixes (?: (?= (?! (?<= (?<! (?<name>
        if (source[i + 1] === '?') {
          i++;
          if (source[i + 1] === '<' && source[i + 2] !== '=' && source[i + 2] !== '!') {
            const end = source.indexOf('>', i);
            if (end < 0) return 'unterminated group name';
            i = end;
          } else if (source[i + 1] === '<') {
            i += 2;
          } else {
            i++;
          }
        }
        break;
      case ')': {
        if (stack.length === 1) return 'unbalanced parenthesis';
        const closed = stack.pop()!;
        const parent = stack[stack.length - 1]!;
        parent.hasQuantifier ||= closed.hasQuantifier;
        parent.hasAlternation ||= closed.hasAlternation;
        lastGroup = closed;
        lastWasAtom = true;
        break;
      }
      case '|':
        top.hasAlternation = true;
        lastGroup = null;
        lastWasAtom = false;
        break;
      case '*':
      case '+':
      case '?':
      case '{': {
        let isUnbounded = c === '*' || c === '+';
        let repeats = c !== '?';
        if (c === '{') {
          const end = source.indexOf('}', i);
          const body = end < 0 ? null : source.slice(i + 1, end);
          const m = body === null ? null : /^(\d+)(,(\d*))?$/.exec(body);
          if (m === null) {
            // A literal '{' (Annex B); treat as an atom.
            lastGroup = null;
            lastWasAtom = true;
            break;
          }
          isUnbounded = m[2] !== undefined && m[3] === '';
          const max = m[2] === undefined ? Number(m[1]) : m[3] === '' ? Number.POSITIVE_INFINITY : Number(m[3]);
          repeats = max > 1;
          i = end;
        }
        if (!lastWasAtom) return 'quantifier without a target';
        if (lastGroup !== null && repeats && (lastGroup.hasQuantifier || lastGroup.hasAlternation)) {
          return 'nested quantifier or quantified alternation (catastrophic backtracking)';
        }
        if (isUnbounded && ++unbounded > limits.maxUnbounded) {
          return `more than ${limits.maxUnbounded} unbounded quantifiers`;
        }
        // Lazy/possessive suffix: `*?`
        if (source[i + 1] === '?') i++;
        top.hasQuantifier = true;
        lastGroup = null;
        lastWasAtom = false;
        break;
      }
      default:
        lastGroup = null;
        lastWasAtom = true;
    }
  }
  if (inClass) return 'unterminated character class';
  if (stack.length !== 1) return 'unbalanced parenthesis';
  try {
    new RegExp(source);
  } catch (err) {
    return `invalid pattern: ${(err as Error).message}`;
  }
  return null;
}
