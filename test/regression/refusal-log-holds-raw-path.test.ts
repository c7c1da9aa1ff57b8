/**
 * What broke (L9, the proxy's part), through the production server: a refused API path
 * was logged with up to 100 characters of its raw text (`proxy_path_refused`, `reason:
 * segment "…" of the path rest is refused`), and path segments carry personal data
 * (`/api/users/jane.doe@example.com/...`) or keys. The reason now names a category and
 * a position, with lengths, never the text.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { rawRequest } from '../helpers/raw-http.ts';

const MARKER = 'jane.doe-PRIVATE-SEGMENT';

let stack: ProductionStack;

before(async () => {
  stack = await startProductionStack();
});

after(async () => {
  await stack?.close();
});

test('a refused path is logged by category, position and length, never by its text', async () => {
  // `%2541` decodes to `%41`, an encoded unreserved character: refused in the segment that holds the marker.
  for (const path of [`/api/demo/${MARKER}%2541/x?api_key=QUERY-SECRET-1`, `/api/demo/a/${MARKER}%252e%252e/y?token=QUERY-SECRET-2`]) {
    const answer = await rawRequest(stack.url, { path, headers: [['X-CSRF', '1'], ['Sec-Fetch-Site', 'same-origin']] });
    assert.equal(answer.status, 400, `${path}: ${answer.body.toString()}`);
  }
  const logs = stack.serverStderr() + stack.serverStdout();
  const refusals = logs.split('\n').filter((line) => line.includes('"proxy_path_refused"'));
  assert.equal(refusals.length, 2, logs.slice(-2_000));
  for (const line of refusals) {
    const entry = JSON.parse(line) as { reason: string; pathLength: number; queryLength: number };
    assert.match(entry.reason, /^segment \d+ of the path rest \(\d+ characters\) is refused: /);
    assert.equal(typeof entry.pathLength, 'number');
    assert.equal(typeof entry.queryLength, 'number');
  }
  assert.ok(!logs.includes('PRIVATE-SEGMENT'), 'the path text is not logged');
  assert.ok(!logs.includes('QUERY-SECRET'), 'the query text is not logged');
});
