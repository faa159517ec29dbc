// report.mjs: the markdown report of bench/peers.sh.
//   node report.mjs META RAW RUNS LINES > report.md
// META: "key\tvalue" lines, and "config\tname\tcommand\tnote\tstatus" lines
// RAW:  round config metric value server_us_per_op others_pct   (value "err": failed)
// RUNS: round config secs load1 others_pct status
// LINES: the per-run lines as printed
import { readFileSync } from 'node:fs';

const [metaFile, rawFile, runsFile, linesFile] = process.argv.slice(2);
const rows = (f) => readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => l.split('\t'));

const meta = {};
const configs = []; // { name, cmd, note, status }
for (const r of rows(metaFile)) {
  if (r[0] === 'config') configs.push({ name: r[1], cmd: r[2], note: r[3], status: r[4] ?? '' });
  else meta[r[0]] = r.slice(1).join('\t');
}

const METRICS = [
  ['create', 'create', 'ops/s'], ['stat_warm', 'stat warm (expired)', 'ops/s'], ['stat_cold', 'stat cold', 'ops/s'],
  ['readdir', 'readdir', 'entries/s'], ['unlink', 'unlink', 'ops/s'],
  ['seq_write', 'seq write', 'MB/s'], ['seq_read', 'seq read cold', 'MB/s'],
  ['rand_buf_1j', '4k rand buf 1j', 'IOPS'], ['rand_buf_4j', '4k rand buf 4j', 'IOPS'],
  ['rand_direct_1j', '4k rand direct 1j', 'IOPS'], ['rand_direct_4j', '4k rand direct 4j', 'IOPS'],
  ['tree', 'tree walk', 'files/s'],
];
const present = new Set();
const val = new Map(); // config|metric -> [values]
const cpu = new Map();
const errs = new Map();
for (const [, cfg, metric, value, us] of rows(rawFile)) {
  present.add(metric);
  const k = `${cfg}|${metric}`;
  if (value === 'err') {
    errs.set(k, (errs.get(k) ?? 0) + 1);
    continue;
  }
  if (!val.has(k)) val.set(k, []);
  val.get(k).push(Number(value));
  if (us !== '-' && us !== '') {
    if (!cpu.has(k)) cpu.set(k, []);
    cpu.get(k).push(Number(us));
  }
}
const metrics = METRICS.filter(([m]) => present.has(m));
const runs = rows(runsFile).map(([round, cfg, secs, load1, others, status]) => ({ round, cfg, secs, load1, others, status }));

const median = (a) => {
  if (!a || a.length === 0) return undefined;
  const s = [...a].sort((x, y) => x - y);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
const fmt = (v) => {
  if (v === undefined || Number.isNaN(v)) return '—';
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
};
const fmtRatio = (v) => (v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(v < 0.1 ? 3 : 2));
const cell = (cfg, m, map = val) => {
  const k = `${cfg}|${m}`;
  const v = median(map.get(k));
  if (v === undefined) return errs.has(k) ? 'err' : '—';
  return fmt(v) + (errs.has(k) && map === val ? ` (${errs.get(k)} err)` : '');
};
const statusOf = (c) => c.status || (runs.some((r) => r.cfg === c.name) ? 'ran' : 'did not run');
const ran = configs.filter((c) => !c.status && runs.some((r) => r.cfg === c.name));

const out = [];
const p = (s = '') => out.push(s);
const table = (head, body, left = 1) => { // the first `left` columns left-aligned, numbers right
  p(`| ${head.join(' | ')} |`);
  p(`|${head.map((_, i) => (i < left ? '---' : '---:')).join('|')}|`);
  for (const r of body) p(`| ${r.join(' | ')} |`);
};

p(`# Peer benchmark: tsfuse passthrough vs native, passthrough_ll, go-fuse, fuse-native`);
p();
p(`- date: ${meta.date}; total running time ${Math.floor(meta.total_s / 60)} min ${meta.total_s % 60} s`);
p(`- command: \`${meta.command}\``);
p(`- git revision: ${meta.rev}; kernel ${meta.kernel}; node ${meta.node}; ${meta.cpus} CPUs; ${meta.fio}`);
p(`- parameters: ${meta.params}`);
if (meta.tree_note) p(`- **tree size:** ${meta.tree_note}`);
const loads = runs.map((r) => Number(r.load1));
const others = runs.map((r) => Number(r.others));
if (runs.length) {
  p(`- load: 1-minute load average at the start of a run ${fmt(Math.min(...loads))}..${fmt(Math.max(...loads))} ` +
    `(median ${fmt(median(loads))}); CPU busy in other processes during the phases ` +
    `${Math.min(...others).toFixed(1)}..${Math.max(...others).toFixed(1)}% of all CPUs (median ${median(others).toFixed(1)}%)`);
}
p();
p(`Medians over the rounds; every FUSE server has its own tmpfs source. Rows without \`-nodp\` mount with ` +
  `\`default_permissions\`. Stat warm = 1.1 s after the creates: the 1 s timeouts have expired, ` +
  `dentries and inodes are still cached (one revalidating LOOKUP per stat). Cold = after \`echo 3 > /proc/sys/vm/drop_caches\` (tmpfs keeps its own ` +
  `dentries and pages, so the native "cold" rows are warm). Server CPU = time on CPU of all the server's ` +
  `threads (the sum of /proc/PID/task/*/schedstat, in ns: the precise form of utime+stime) over the ` +
  `phase, divided by its operations (files, entries, 1 MiB blocks, 4 KiB reads, files walked). ` +
  `"Others" = busy CPU in /proc/stat minus the server, the script and its clients, as a share of all CPUs.`);
p();
p(`## Configurations`);
p();
table(['row', 'server command (SRC, MNT)', 'notes', 'status'],
  configs.map((c) => [`\`${c.name}\``, `\`${c.cmd}\``, c.note, statusOf(c)]), 4);
p();
p(`## Medians`);
p();
table(['row', ...metrics.map(([, h, u]) => `${h} (${u})`)],
  configs.map((c) => [`\`${c.name}\``, ...metrics.map(([m]) => (c.status ? 'n/a' : cell(c.name, m)))]));
p();

// ratios: every tsfuse row against the peer rows with the same default_permissions setting
const has = (name) => ran.some((c) => c.name === name);
const ratioRows = [];
for (const t of ran.filter((c) => c.name.startsWith('tsfuse'))) {
  const nodp = t.name === 'tsfuse-nodp';
  const peers = [
    [nodp ? 'pll-nodp' : 'pll', 'passthrough_ll'], [nodp ? 'gofuse-nodp' : 'gofuse', 'go-fuse'],
    [nodp ? 'fusenative-nodp' : 'fusenative', 'fuse-native'], ['native', 'native'],
  ];
  for (const [peer, label] of peers) {
    if (!has(peer)) continue;
    ratioRows.push([`\`${t.name}\` / ${label} (\`${peer}\`)`, ...metrics.map(([m]) => {
      const a = median(val.get(`${t.name}|${m}`));
      const b = median(val.get(`${peer}|${m}`));
      return a === undefined || b === undefined || b === 0 ? '—' : fmtRatio(a / b);
    })]);
  }
}
if (ratioRows.length) {
  p(`## Ratios (tsfuse / peer, ratio of medians; > 1: tsfuse faster)`);
  p();
  table(['ratio', ...metrics.map(([, h]) => h)], ratioRows);
  p();
}
p(`## Server CPU, µs per operation (median)`);
p();
table(['row', ...metrics.map(([, h]) => h)],
  configs.filter((c) => c.name !== 'native').map((c) => [`\`${c.name}\``, ...metrics.map(([m]) => (c.status ? 'n/a' : cell(c.name, m, cpu)))]));
p();
const reps = Math.max(0, ...runs.map((r) => Number(r.round)));
if (reps > 1) {
  p(`## Spread (min..max over the rounds)`);
  p();
  table(['row', ...metrics.map(([, h]) => h)],
    ran.map((c) => [`\`${c.name}\``, ...metrics.map(([m]) => {
      const a = val.get(`${c.name}|${m}`);
      return a && a.length ? `${fmt(Math.min(...a))}..${fmt(Math.max(...a))}` : '—';
    })]));
  p();
}
p(`## Runs`);
p();
p(`One line per run as printed (values truncated to integers), then the server's µs CPU per op.`);
p();
p('```');
for (const l of readFileSync(linesFile, 'utf8').split('\n').filter(Boolean)) p(l);
p('```');
p();
table(['round', 'row', 'seconds', 'load1 at start', 'others % CPU', 'status'],
  runs.map((r) => [r.round, `\`${r.cfg}\``, r.secs, r.load1, r.others, r.status]), 2);
const failed = [...errs.entries()];
if (failed.length) {
  p();
  p(`Failed phases (config|metric: count): ${failed.map(([k, n]) => `${k}: ${n}`).join(', ')}.`);
}
console.log(out.join('\n'));
