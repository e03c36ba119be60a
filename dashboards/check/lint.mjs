// What the TypeScript types cannot say about dashboards/l2watch.json. Usage: node lint.mjs DASHBOARD METRICS_RS
// Prints every problem and exits 1 if there is any.
import { readFileSync } from 'node:fs';

const [dashboardPath, metricsPath] = process.argv.slice(2);
const d = JSON.parse(readFileSync(dashboardPath, 'utf8'));
const problems = [];
const fail = (msg) => problems.push(msg);

if (!(Number.isInteger(d.schemaVersion) && d.schemaVersion >= 39)) {
  fail(`schemaVersion ${d.schemaVersion}: want an integer >= 39 (a current Grafana)`);
}

// Data sources: only the variable, anywhere in the file (panels, targets, variables, annotations).
const walk = (node, path, visit) => {
  if (Array.isArray(node)) node.forEach((v, i) => walk(v, `${path}[${i}]`, visit));
  else if (node && typeof node === 'object') {
    visit(node, path);
    for (const [k, v] of Object.entries(node)) walk(v, `${path}.${k}`, visit);
  }
};
walk(d, '$', (obj, path) => {
  if ('datasource' in obj && obj.datasource !== null && typeof obj.datasource === 'object') {
    if (obj.datasource.uid !== '${datasource}') {
      fail(`${path}.datasource.uid is ${JSON.stringify(obj.datasource.uid)}: want "\${datasource}"`);
    }
  } else if ('datasource' in obj && typeof obj.datasource === 'string') {
    fail(`${path}.datasource is the string ${JSON.stringify(obj.datasource)}: want {type, uid: "\${datasource}"}`);
  }
});
const text = JSON.stringify(d);
for (const bad of ['${DS_', '__inputs', '__requires']) {
  if (text.includes(bad)) fail(`contains ${bad}: an export "for sharing externally"; use the datasource variable`);
}

const vars = new Set((d.templating?.list ?? []).map((v) => v.name));
if (![...(d.templating?.list ?? [])].some((v) => v.type === 'datasource' && v.name === 'datasource' && v.query === 'prometheus')) {
  fail('no template variable "datasource" of type datasource with query "prometheus"');
}
const builtin = new Set(['__rate_interval', '__interval', '__range', '__all']);

// Metric names must be ones l2watch exports (read from its source), or Prometheus' own `up`.
const source = readFileSync(metricsPath, 'utf8');
const exported = new Set([...source.matchAll(/"(l2watch_[a-z0-9_]+)"/g)].map((m) => m[1]));
const known = (name) =>
  name === 'up' || exported.has(name) || ['_bucket', '_count', '_sum'].some((s) => name.endsWith(s) && exported.has(name.slice(0, -s.length)));

const checkExpr = (expr, where) => {
  for (const m of expr.matchAll(/\bl2watch_[a-z0-9_]+/g)) {
    if (!known(m[0])) fail(`${where}: metric ${m[0]} is not exported by l2watch (src/export/metrics.rs)`);
  }
  for (const m of expr.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g)) {
    if (!vars.has(m[1]) && !builtin.has(m[1]) && !/^\d/.test(m[1])) fail(`${where}: unknown variable $${m[1]}`);
  }
};

const panels = [];
for (const p of d.panels ?? []) {
  panels.push(p);
  for (const inner of p.panels ?? []) panels.push(inner);
}
const ids = new Map();
const cells = new Map();
for (const [i, p] of panels.entries()) {
  const where = `panel ${i} (${JSON.stringify(p.title)})`;
  if (!Number.isInteger(p.id)) fail(`${where}: no integer id`);
  else if (ids.has(p.id)) fail(`${where}: id ${p.id} is also ${ids.get(p.id)}'s`);
  else ids.set(p.id, where);
  const g = p.gridPos;
  if (!g || ![g.x, g.y, g.w, g.h].every(Number.isInteger)) {
    fail(`${where}: no gridPos with integer x, y, w, h`);
  } else {
    if (g.x < 0 || g.w < 1 || g.x + g.w > 24 || g.h < 1) fail(`${where}: gridPos ${JSON.stringify(g)} is outside the 24-column grid`);
    for (let x = g.x; x < g.x + g.w; x++) {
      for (let y = g.y; y < g.y + g.h; y++) {
        const key = `${x},${y}`;
        if (cells.has(key)) fail(`${where}: overlaps ${cells.get(key)} at ${key}`);
        cells.set(key, where);
      }
    }
  }
  if (p.type === 'row') continue;
  if (!Array.isArray(p.targets) || p.targets.length === 0) fail(`${where}: no targets`);
  const refIds = new Set();
  for (const [j, t] of (p.targets ?? []).entries()) {
    if (typeof t.expr !== 'string' || t.expr.trim() === '') fail(`${where} target ${j}: no expr`);
    else checkExpr(t.expr, `${where} target ${j}`);
    if (refIds.has(t.refId)) fail(`${where}: refId ${t.refId} twice`);
    refIds.add(t.refId);
  }
}
for (const v of d.templating?.list ?? []) {
  if (v.type === 'query') checkExpr(String(v.query), `variable ${v.name}`);
}

if (problems.length) {
  console.error(`${dashboardPath}:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`${dashboardPath}: ${panels.length} panels, ${vars.size} variables: structure OK`);
