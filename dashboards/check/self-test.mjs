// Proves the schema check can fail: writes broken copies of a dashboard into DIR, each broken in one way
// that the TypeScript types or lint.mjs must catch, plus wrappers for tsc. Usage:
//   node self-test.mjs DASHBOARD DIR      -> writes DIR/<case>.json, DIR/<case>.ts, prints "<case> <checker>" per line
// (the first case, "intact", is the dashboard unbroken)
import { readFileSync, writeFileSync } from 'node:fs';

const [src, dir] = process.argv.slice(2);
const original = JSON.parse(readFileSync(src, 'utf8'));
const panel = (d, type) => d.panels.find((p) => p.type === type);

// [name, checker that must reject it, how to break it]
const cases = [
  ['gridpos-h-string', 'tsc', (d) => { panel(d, 'stat').gridPos.h = '4'; }],
  ['unknown-top-level-field', 'tsc', (d) => { d.colour = 'red'; }],
  ['panel-without-type', 'tsc', (d) => { delete panel(d, 'stat').type; }],
  ['unknown-panel-field', 'tsc', (d) => { panel(d, 'stat').titel = 'x'; }],
  ['stat-colormode-not-in-enum', 'tsc', (d) => { panel(d, 'stat').options.colorMode = 'rainbow'; }],
  ['stat-without-reduceoptions', 'tsc', (d) => { delete panel(d, 'stat').options.reduceOptions; }],
  ['table-unknown-option', 'tsc', (d) => { panel(d, 'table').options.showHeaders = true; }],
  ['timeseries-drawstyle-not-in-enum', 'tsc', (d) => { panel(d, 'timeseries').fieldConfig.defaults.custom.drawStyle = 'dots'; }],
  ['threshold-value-string', 'tsc', (d) => { panel(d, 'stat').fieldConfig.defaults.thresholds.steps[0].value = '0'; }],
  ['no-schemaversion', 'tsc', (d) => { delete d.schemaVersion; }],
  ['variable-type-typo', 'tsc', (d) => { d.templating.list[1].type = 'querry'; }],
  ['variable-current-empty', 'tsc', (d) => { d.templating.list[1].current = {}; }],
  ['target-without-expr', 'tsc', (d) => { delete panel(d, 'stat').targets[0].expr; }],
  ['hard-coded-datasource-uid', 'tsc', (d) => { panel(d, 'timeseries').targets[0].datasource.uid = 'P1809F7CD0C75ACF3'; }],
  ['lint: hard-coded-datasource-uid', 'lint', (d) => { panel(d, 'timeseries').datasource.uid = 'P1809F7CD0C75ACF3'; }],
  ['lint: duplicate-panel-id', 'lint', (d) => { d.panels[2].id = d.panels[1].id; }],
  ['lint: panel-without-gridpos', 'lint', (d) => { delete d.panels[2].gridPos; }],
  ['lint: overlapping-panels', 'lint', (d) => { d.panels[2].gridPos = { ...d.panels[1].gridPos }; }],
  ['lint: target-without-expr', 'lint', (d) => { panel(d, 'table').targets[0].expr = ' '; }],
  ['lint: metric-l2watch-does-not-export', 'lint', (d) => { panel(d, 'stat').targets[0].expr = 'count(l2watch_conflicts_active)'; }],
  ['lint: undefined-variable', 'lint', (d) => { panel(d, 'stat').targets[0].expr = 'count(l2watch_build_info{node=~"$nodes"})'; }],
  ['lint: schemaversion-too-old', 'lint', (d) => { d.schemaVersion = 27; }],
];

// The intact copy goes through the same wrapper: it must pass, or the cases prove nothing.
for (const [name, checker, breakIt] of [['intact', 'none', () => {}], ...cases]) {
  const d = structuredClone(original);
  breakIt(d);
  const file = name.replace(/[^a-z0-9-]/g, '_');
  writeFileSync(`${dir}/${file}.json`, JSON.stringify(d, null, 2));
  writeFileSync(`${dir}/${file}.ts`, [
    'import type { GrafanaDashboard, L2watchDashboard } from "../dashboard-types";',
    `export const dashboard = ${JSON.stringify(d, null, 2)} satisfies L2watchDashboard;`,
    'export const asGrafana: GrafanaDashboard = dashboard;',
    '',
  ].join('\n'));
  console.log(`${file} ${checker}`);
}
