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
// The kit's runner, imported by path (@heimdall/testing depends on core, not the reverse).
import { runExample } from '../../../testing/src/readme.js';

/** What the README's `import { … } from '…'` lines may name. */
const MODULES: Record<string, object> = {
  '@heimdall/core': core,
  '@heimdall/core/packet': packet,
  '@heimdall/core/wire': wire,
  '@heimdall/core/transport': transport,
  '@heimdall/core/di': di,
  '@heimdall/core/errors': errors,
  '@heimdall/core/pipeline': pipeline,
  'node:assert/strict': { default: assert },
};

// The README's pipeline example is a test: it is extracted and run against core, imports and all.
describe('README pipeline example', () => {
  it('runs', async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const block = /<!-- pipeline-example:start -->\s*```ts\n([\s\S]*?)```\s*<!-- pipeline-example:end -->/.exec(readme);
    expect(block).not.toBeNull();
    await runExample((block as RegExpExecArray)[1]!, MODULES);
  });
});
