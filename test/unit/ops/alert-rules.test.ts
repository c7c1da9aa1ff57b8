/**
 * The alert rules in ops/prometheus/alerts.yml, checked by Debian's promtool: they parse
 * and lint (`promtool check rules`), and each alert fires on a synthetic series and stays
 * quiet on a quiet one (`promtool test rules ops/prometheus/alerts.test.yml`). Each alert
 * of the file has a test, so a new rule without one fails here.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ALERT_RULES, ALERT_RULE_TESTS, promtoolPath } from '../../helpers/prometheus.ts';

const promtool = () => {
  const path = promtoolPath();
  assert.ok(path, "promtool is installed (Debian's prometheus package)");
  return path;
};

test('promtool check rules: the alert rules parse and lint clean', () => {
  const result = spawnSync(promtool(), ['check', 'rules', ALERT_RULES], { encoding: 'utf8' });
  assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
  assert.match(result.stdout, /SUCCESS: 6 rules found/);
});

test('promtool test rules: every alert fires on its synthetic series and not on a quiet one', () => {
  const result = spawnSync(promtool(), ['test', 'rules', ALERT_RULE_TESTS], { encoding: 'utf8' });
  assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
  assert.match(result.stdout, /SUCCESS/);
});

test('every alert of the rules file is tested both firing and quiet', () => {
  const alerts = [...readFileSync(ALERT_RULES, 'utf8').matchAll(/^\s+- alert: (\w+)$/gm)].map((m) => m[1]);
  assert.equal(alerts.length, 6);
  const tests = readFileSync(ALERT_RULE_TESTS, 'utf8');
  for (const alert of alerts) {
    const blocks = tests.split(/^\s+- eval_time:/m).filter((block) => block.includes(`alertname: ${alert}\n`));
    assert.ok(blocks.some((block) => /exp_alerts: \[\]/.test(block)), `${alert}: no quiet case`);
    assert.ok(blocks.some((block) => /exp_labels:/.test(block)), `${alert}: no firing case`);
  }
});
