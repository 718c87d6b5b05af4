import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as di from '../di.js';
import * as errors from '../errors.js';
import * as core from '../index.js';
import * as packet from '../packet/index.js';
import * as transport from '../transport/index.js';
import * as wire from '../wire/index.js';
import * as pipeline from './index.js';

/** What the README's `import { … } from '…'` lines may name. */
const MODULES: Record<string, Record<string, unknown>> = {
  '@heimdall/core': core,
  '@heimdall/core/packet': packet,
  '@heimdall/core/wire': wire,
  '@heimdall/core/transport': transport,
  '@heimdall/core/di': di,
  '@heimdall/core/errors': errors,
  '@heimdall/core/pipeline': pipeline,
  'node:assert/strict': { default: assert },
};

/** Runs a README code block: its imports become bindings from the modules above (an unknown name fails the test). */
async function runExample(code: string): Promise<void> {
  const names: string[] = [];
  const values: unknown[] = [];
  const body = code.replace(/^import\s+(?:(\w+)|\{([^}]*)\})\s+from\s+'([^']+)';$/gm, (_m, def: string | undefined, list: string | undefined, spec: string) => {
    const mod = MODULES[spec];
    if (mod === undefined) throw new Error(`README imports from an unknown module ${spec}`);
    if (def !== undefined) {
      names.push(def);
      values.push(mod.default);
    }
    for (const item of (list ?? '').split(',').map((x) => x.trim()).filter(Boolean)) {
      const [name, alias] = item.replace(/^type\s+/, '').split(/\s+as\s+/);
      if (!(name! in mod)) throw new Error(`README imports ${name} from ${spec}, which does not export it`);
      names.push(alias ?? name!);
      values.push(mod[name!]);
    }
    return '';
  });
  const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => (...a: unknown[]) => Promise<void>;
  await new AsyncFunction(...names, body)(...values);
}

// The README's pipeline example is a test: it is extracted and run against core, imports and all.
describe('README pipeline example', () => {
  it('runs', async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const block = /<!-- pipeline-example:start -->\s*```ts\n([\s\S]*?)```\s*<!-- pipeline-example:end -->/.exec(readme);
    expect(block).not.toBeNull();
    await runExample((block as RegExpExecArray)[1]!);
  });
});
