// End-to-end: the passthrough serves each request with the credentials of the
// process that made it — fsuid, fsgid AND supplementary groups — so the source
// filesystem decides exactly as it would for that process: group access through
// a supplementary group, chgrp to one, setgid directories (with
// FUSE_CREATE_SUPP_GROUP for creations), refusals for non-members and for
// members whose group bits deny, and never the server's own groups. Groups are
// the caller's own: they neither leak between callers nor outlive a change of
// the caller's credentials (at once when its uid or gid changes, soon after a
// setgroups() alone). OPENDIR opens the directory as the caller (a 0711
// directory cannot be listed by others, also without default_permissions), and
// READDIRPLUS sends an entry whose lookup fails as a name only, so `ls` lists
// every name the source lists.
//
// Real users and groups are made for the run (tsfu-{staff,alice,bob}-PID:
// alice's primary group is her own, staff is supplementary; bob is in no
// group of ours) and removed at the end. Every client runs in its own process
// with its groups intact (a Node child of src/cli/as-user.ts: initgroups, or
// `setpriv --init-groups`), checked with `id -G`. Each case runs twice (with and without default_permissions) on
// two identical trees: SRC/n used directly, SRC/m through the mount; what the
// mount shows must equal what the source did, and the source must show what
// the case expects.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run, sleep, timed } from './helpers.js';
import { bases, withPt } from './pt-helpers.js';
import { runAs } from '../src/cli/as-user.js';

const NOBODY = 65534;
/** A child's environment: no PATH entry it cannot search (root's pyenv shims), stable sorting. */
const ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' };

// ---- users and groups -------------------------------------------------------------------

interface User { name: string; uid: number; gid: number }
interface Users { staff: number; staffName: string; alice: User; bob: User }

const tag = `${process.pid}`;
const made = { users: [] as string[], groups: [] as string[] };
let U: Users;

/** Runs a shadow-utils command, retrying while another process holds /etc/passwd or /etc/group. */
async function shadow(cmd: string, args: string[]): Promise<void> {
  for (let i = 0; ; i++) {
    const r = await run(cmd, args, 30_000);
    if (r.code === 0) return;
    if (i >= 20 || !/lock/i.test(r.stderr)) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.code ?? r.signal}: ${r.stderr.trim()}`);
    await sleep(250);
  }
}
/** The passwd entry of a name or uid. */
function user(key: string | number): User {
  const [name, , uid, gid] = execFileSync('getent', ['passwd', String(key)], { encoding: 'utf8' }).trim().split(':');
  return { name, uid: Number(uid), gid: Number(gid) };
}
const gidOf = (name: string) => Number(execFileSync('getent', ['group', name], { encoding: 'utf8' }).split(':')[2]);

async function makeUsers(): Promise<Users> {
  const staffName = `tsfu-staff-${tag}`;
  await shadow('groupadd', [staffName]);
  made.groups.push(staffName);
  for (const [who, extra] of [['alice', ['-G', staffName]], ['bob', []]] as const) {
    const name = `tsfu-${who}-${tag}`;
    await shadow('useradd', ['-M', '-U', '-d', '/nonexistent', '-s', '/usr/sbin/nologin', ...extra, name]);
    made.users.push(name);
    made.groups.push(name); // -U made the user's own group: userdel removes it, else groupdel below
  }
  return { staff: gidOf(staffName), staffName, alice: user(`tsfu-alice-${tag}`), bob: user(`tsfu-bob-${tag}`) };
}
/** Removes what makeUsers made (synchronous: also called at exit). */
function removeUsers(): void {
  for (const n of made.users.splice(0)) try { execFileSync('userdel', [n], { stdio: 'ignore' }); } catch { /* reported by the last test */ }
  for (const n of made.groups.splice(0)) try { execFileSync('groupdel', [n], { stdio: 'ignore' }); } catch { /* gone with its user */ }
}
process.on('exit', removeUsers);
test.before(async () => { U = await makeUsers(); });
test.after(removeUsers);

// ---- clients ------------------------------------------------------------------------------

/**
 * What each body gets (it runs as the user, with the groups the group database gives it,
 * umask 022): A = {user, root, staff}, R = A.root, me = 'alice' or 'bob'; `r`, the results
 * to fill; `res(f)` gives {ok: value} or {err: 'EACCES'}; `st(p)` lstat's owner, group (by
 * name) and mode; readf, creat, mkdir, mkfifo, symlink, enter, chown as their names say.
 */
const PRELUDE = String.raw`
  const A = a[0], R = A.root, me = A.user.split('-')[1], r = {};
  const names = (db) => new Map(fs.readFileSync(db, 'utf8').split('\n').filter(Boolean).map((l) => l.split(':')).map((f) => [Number(f[2]), f[0]]));
  const users = names('/etc/passwd'), groups = names('/etc/group');
  const res = (f, ...x) => { try { return { ok: f(...x) ?? null }; } catch (e) { if (!e.code) throw e; return { err: e.code }; } };
  const st = (p) => { const s = fs.lstatSync(p); return { owner: users.get(s.uid), group: groups.get(s.gid), mode: '0o' + s.mode.toString(8) }; };
  const readf = (p) => fs.readFileSync(p, 'utf8');
  const creat = (p, mode) => { fs.closeSync(fs.openSync(p, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, mode)); return st(p); };
  const mkdir = (p, mode) => { fs.mkdirSync(p, mode); return st(p); };
  const mkfifo = (p, mode) => { sys.mkfifo(p, mode); return st(p); };
  const symlink = (t, p) => { fs.symlinkSync(t, p); return st(p); };
  const enter = (p) => { process.chdir(p); process.chdir('/'); };
  const chown = (p, uid, gid) => { fs.chownSync(p, uid, gid); return st(p); };
`;

type Res = { ok?: unknown; err?: string };
type Results = Record<string, Res>;

/** Runs `body` (which fills `r`) as `who` with R = `root`; checks `id -G` shows `groups`. */
async function asUser(who: User, root: string, body: string, groups: number[]): Promise<Results> {
  const out = await runAs<{ ids: number[]; r: Results }>(`${PRELUDE}${body}
  const { execFileSync } = await import('node:child_process');
  const ids = execFileSync('id', ['-G'], { encoding: 'utf8', env: a[1] }).trim().split(/\\s+/).map(Number);
  return { ids, r };`, [{ user: who.name, root, staff: U.staff }, ENV], { uid: who.uid, umask: 0o022 }, 60_000);
  assert.equal([...out.ids].sort((a, b) => a - b), [...groups].sort((a, b) => a - b), `id -G of the client as ${who.name}`);
  return out.r;
}

/** Runs `args` as uid/gid with that user's groups (setpriv --init-groups), cwd /. */
function setpriv(uid: number, gid: number, args: string[], ms = 60_000) {
  return run('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--init-groups', ...args], ms, { cwd: '/', env: ENV });
}

// ---- trees ---------------------------------------------------------------------------------

type Node = [name: string, mode: number, uid: number, gid: number, content?: string];

/** Makes `nodes` below `root` as root: a mode with S_IFDIR makes a directory; chmod after chown (which clears setgid). */
function build(root: string, nodes: Node[]): void {
  mkdirSync(root, { mode: 0o755 });
  chmodSync(root, 0o755);
  for (const [name, mode, uid, gid, content] of nodes) {
    const p = join(root, name);
    if (mode & 0o40000) mkdirSync(p); else writeFileSync(p, content ?? '');
    chownSync(p, uid, gid);
    chmodSync(p, mode & 0o7777);
  }
}

const LABELS = { true: 'default_permissions', false: 'no default_permissions' } as const;

/** This process's supplementary groups (Node's getgroups adds the egid, which setgroups would then add). */
function ownGroups(pid: number | string = 'self'): number[] {
  const line = /^Groups:(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1];
  return line.trim().split(/\s+/).filter(Boolean).map(Number);
}

/**
 * For each case in order (the refused first, so no dentry another caller
 * looked up lets them skip a check the kernel leaves to the server without
 * default_permissions), runs `body` as that user on SRC/n directly and on
 * MNT/m; the source must give the case's results, the mount the same. The
 * server runs with `serverGroups` as its own supplementary groups (inherited
 * from this process), none by default.
 */
async function compare(dp: boolean, nodes: () => Node[], body: string, cases: [User, number[], Results][], serverGroups: number[] = []): Promise<void> {
  const mine = ownGroups();
  process.setgroups!(serverGroups); // until the fixture has started: it inherits them
  try {
    await withPt({ defaultPermissions: dp }, async ({ base, src, mnt, fx }) => {
      process.setgroups!(mine);
      assert.equal(ownGroups(fx.child.pid!), serverGroups, "the server's own supplementary groups");
      chmodSync(base, 0o755);
      chmodSync(src, 0o755);
      build(join(src, 'n'), nodes());
      build(join(src, 'm'), nodes());
      for (const [who, groups, expected] of cases) {
        const native = await asUser(who, join(src, 'n'), body, groups);
        assert.equal(native, expected, `${who.name} on the source itself (the case's premise)`);
        const mounted = await asUser(who, join(mnt, 'm'), body, groups);
        assert.equal(mounted, native, `${who.name} through the mount [${LABELS[`${dp}`]}] vs the source`);
      }
    });
  } finally {
    process.setgroups!(mine);
  }
}

const aliceGroups = () => [U.alice.gid, U.staff];
const bobGroups = () => [U.bob.gid];
const st = (owner: string, group: string, mode: number) => ({ ok: { owner, group, mode: `0o${mode.toString(8)}` } });
const EACCES = { err: 'EACCES' };
const EPERM = { err: 'EPERM' };

// ---- the cases ----------------------------------------------------------------------------

/** Each user's own file (for chgrp/chown) and the staff-only places. */
const tree = (): Node[] => [
  ['own-alice', 0o100644, U.alice.uid, U.alice.gid, 'alice\n'],
  ['own2-alice', 0o100644, U.alice.uid, U.alice.gid, 'alice\n'],
  ['own-bob', 0o100644, U.bob.uid, U.bob.gid, 'bob\n'],
  ['own2-bob', 0o100644, U.bob.uid, U.bob.gid, 'bob\n'],
  ['rd', 0o100640, 0, U.staff, 'staff only\n'],
  ['deny', 0o100604, 0, U.staff, 'not for staff\n'],
  ['dr', 0o40750, 0, U.staff],
  ['dr/f', 0o100644, 0, 0, 'inside\n'],
  ['dw', 0o40770, 0, U.staff],
  ['sg', 0o42775, 0, U.staff],
];

const CHOWN = `
  r.chgrp = res(chown, R + '/own-' + me, -1, A.staff);
  r.chown = res(chown, R + '/own2-' + me, process.getuid(), A.staff);
`;
const ACCESS = `
  r.read = res(readf, R + '/rd');
  r.list = res(() => fs.readdirSync(R + '/dr').sort());
  r.enter = res(enter, R + '/dr');
  r.inside = res(readf, R + '/dr/f');
  r.create = res(creat, R + '/dw/new-' + me, 0o644);
  r.mkdir = res(mkdir, R + '/dw/sub-' + me, 0o755);
`;
const SETGID = `
  r.file = res(creat, R + '/sg/f-' + me, 0o644);
  r.sgidFile = res(creat, R + '/sg/x-' + me, 0o2755);
  r.dir = res(mkdir, R + '/sg/d-' + me, 0o755);
  r.fifo = res(mkfifo, R + '/sg/p-' + me, 0o2755);
  r.symlink = res(symlink, 'target', R + '/sg/l-' + me);
`;
const DENY = `
  r.deny = res(readf, R + '/deny');
`;

for (const dp of [true, false]) {
  const L = LABELS[`${dp}`];

  test(`alice (supplementary group staff) chgrps and chowns her own file to staff, as on the source [${L}]`, timed(60_000, () =>
    compare(dp, tree, CHOWN, [
      [U.bob, bobGroups(), { chgrp: EPERM, chown: EPERM }],
      [U.alice, aliceGroups(), { chgrp: st(U.alice.name, U.staffName, 0o100644), chown: st(U.alice.name, U.staffName, 0o100644) }],
    ])));

  test(`alice reads a 0640 root:staff file, enters and lists a 0750 root:staff directory, creates in a 0770 one [${L}]`, timed(60_000, () =>
    compare(dp, tree, ACCESS, [
      [U.bob, bobGroups(), { read: EACCES, list: EACCES, enter: EACCES, inside: EACCES, create: EACCES, mkdir: EACCES }],
      [U.alice, aliceGroups(), {
        read: { ok: 'staff only\n' }, list: { ok: ['f'] }, enter: { ok: null }, inside: { ok: 'inside\n' },
        create: st(U.alice.name, U.alice.name, 0o100644), mkdir: st(U.alice.name, U.alice.name, 0o40755),
      }],
    ])));

  test(`setgid directory 02775 root:staff: alice's creations get group staff, S_ISGID kept as she asked, subdirectories setgid [${L}]`, timed(60_000, () =>
    compare(dp, tree, SETGID, [
      [U.bob, bobGroups(), { file: EACCES, sgidFile: EACCES, dir: EACCES, fifo: EACCES, symlink: EACCES }],
      [U.alice, aliceGroups(), {
        file: st(U.alice.name, U.staffName, 0o100644), sgidFile: st(U.alice.name, U.staffName, 0o102755),
        dir: st(U.alice.name, U.staffName, 0o42755), fifo: st(U.alice.name, U.staffName, 0o12755),
        symlink: st(U.alice.name, U.staffName, 0o120777),
      }],
    ])));

  test(`bob (not in staff) is refused all of it, also when the server itself is in staff [${L}]`, timed(60_000, () =>
    compare(dp, tree, CHOWN + ACCESS + SETGID + DENY, [[U.bob, bobGroups(), {
      chgrp: EPERM, chown: EPERM, read: EACCES, list: EACCES, enter: EACCES, inside: EACCES, create: EACCES, mkdir: EACCES,
      file: EACCES, sgidFile: EACCES, dir: EACCES, fifo: EACCES, symlink: EACCES, deny: { ok: 'not for staff\n' },
    }]], [U.staff])));

  test(`a member of staff is refused a 0604 root:staff file (group bits deny, other bits would allow), as on the source [${L}]`, timed(60_000, () =>
    compare(dp, tree, DENY, [
      [U.alice, aliceGroups(), { deny: EACCES }],
      [U.bob, bobGroups(), { deny: { ok: 'not for staff\n' } }],
    ])));

  test(`uid 65534 cannot list a root-owned 0711 directory but stats and reads a known name in it, as on the source [${L}]`, timed(60_000, () =>
    withPt({ defaultPermissions: dp }, async ({ base, src, mnt }) => {
      chmodSync(base, 0o755);
      chmodSync(src, 0o755);
      const nodes: Node[] = [['x', 0o40711, 0, 0], ['x/known', 0o100644, 0, 0, 'known\n']];
      build(join(src, 'n'), nodes);
      build(join(src, 'm'), nodes);
      const body = `
        r.list = res(() => fs.readdirSync(R + '/x'));
        r.stat = res(st, R + '/x/known');
        r.read = res(readf, R + '/x/known');
      `;
      const expected = { list: EACCES, stat: st('root', 'root', 0o100644), read: { ok: 'known\n' } };
      const nobody = user(NOBODY);
      const groups = execFileSync('id', ['-G', nobody.name], { encoding: 'utf8' }).trim().split(/\s+/).map(Number);
      assert.equal(await asUser(nobody, join(src, 'n'), body, groups), expected, 'on the source itself');
      assert.equal(await asUser(nobody, join(mnt, 'm'), body, groups), expected, 'through the mount');
    })));

  // Every lookup fails here, and READDIRPLUS_AUTO hides a drop of them all: after a plus
  // reply of "." and ".." only, the kernel goes on with plain READDIR from there. The next
  // case has one failing entry among good ones, where a dropped name is lost.
  test(`READDIRPLUS: uid 65534 lists every name of a root-owned 0744 directory; ls -l reports each stat error, as on the source [${L}]`, timed(60_000, () =>
    withPt({ defaultPermissions: dp }, async ({ base, src, mnt }) => {
      chmodSync(base, 0o755);
      chmodSync(src, 0o755);
      const nodes: Node[] = [['x', 0o40744, 0, 0], ['x/a', 0o100644, 0, 0], ['x/b', 0o100644, 0, 0], ['x/c', 0o100644, 0, 0]];
      build(join(src, 'n'), nodes);
      build(join(src, 'm'), nodes);
      const ls = async (root: string, ...opts: string[]) => {
        const r = await setpriv(NOBODY, NOBODY, ['ls', ...opts, join(root, 'x')]);
        return { code: r.code, stdout: r.stdout, stderr: r.stderr.split(root).join('R') };
      };
      const native = await ls(join(src, 'n'));
      assert.equal(native, { code: 0, stdout: 'a\nb\nc\n', stderr: '' }, 'ls on the source itself');
      assert.equal(await ls(join(mnt, 'm')), native, 'ls through the mount');
      // Errors come in readdir order, which need not be the same in two directories.
      const lsl = async (root: string) => { const r = await ls(root, '-l'); return { ...r, stderr: r.stderr.trim().split('\n').sort() }; };
      const nativeL = await lsl(join(src, 'n'));
      assert.is(nativeL.code, 1, `ls -l on the source: ${JSON.stringify(nativeL)}`);
      assert.equal(nativeL.stderr, ['a', 'b', 'c'].map((n) => `ls: cannot access 'R/x/${n}': Permission denied`), 'ls -l on the source');
      assert.equal(await lsl(join(mnt, 'm')), nativeL, 'ls -l through the mount');
    })));

  test(`READDIRPLUS: an entry whose lookup fails mid-listing is listed by name (a ramfs mount 'mandatory' handles cannot key) [${L}]`, timed(60_000, () =>
    withPt({ defaultPermissions: dp, inodeHandles: 'mandatory' }, async ({ src, mnt }) => {
      const x = join(src, 'x');
      mkdirSync(join(x, 'r'), { recursive: true });
      // The source's own order (ls -f: unsorted). The failing entry must not come last:
      // there, dropping it would cost nothing (the kernel goes on with plain READDIR).
      const listed = async (d: string) => (await run('ls', ['-f', d], 30_000, { env: ENV })).stdout.split('\n').filter((n) => n && n !== '.' && n !== '..');
      for (let i = 0; i < 8 || (await listed(x)).at(-1) === 'r'; i++) {
        assert.ok(i < 200, 'r stays last in the source directory');
        writeFileSync(join(x, `f${i}`), '');
      }
      execFileSync('mount', ['-t', 'ramfs', 'tsfuse-test-ramfs', join(x, 'r')]);
      try {
        const st = await run('stat', [join(mnt, 'x', 'r')], 30_000, { env: ENV });
        assert.ok(/Operation not supported/.test(st.stderr), `the premise: looking up r through the mount fails (${st.stderr.trim()})`);
        assert.equal((await listed(join(mnt, 'x'))).sort(), (await listed(x)).sort(), 'ls -f through the mount vs the source');
      } finally {
        execFileSync('umount', ['-l', join(x, 'r')]); // lazily: the server may hold an fd on it
      }
    })));

  test(`groups do not leak between requests: alice and bob reading one 0640 root:staff file in parallel loops [${L}]`, timed(120_000, () =>
    withPt({ defaultPermissions: dp }, async ({ base, src, mnt }) => {
      chmodSync(base, 0o755);
      chmodSync(src, 0o755);
      build(join(src, 'm'), [['rd', 0o100640, 0, U.staff, 'staff only\n']]);
      const N = 100;
      const loop = 'id -G; i=0; while [ $i -lt "$2" ]; do i=$((i+1)); if out=$(cat "$1" 2>&1); then echo "ok $out"; else echo "no $out"; fi; done';
      const f = join(mnt, 'm', 'rd');
      const who = [U.alice, U.bob, U.alice, U.bob];
      const outs = await Promise.all(who.map((u) => setpriv(u.uid, u.gid, ['sh', '-c', loop, 'sh', f, String(N)], 100_000)));
      outs.forEach((o, i) => {
        const u = who[i];
        assert.is(o.code, 0, `loop as ${u.name}: ${o.stderr}`);
        const [ids, ...lines] = o.stdout.trim().split('\n');
        assert.equal(ids.split(' ').map(Number).sort((a, b) => a - b), (u === U.alice ? aliceGroups() : bobGroups()).sort((a, b) => a - b), `id -G as ${u.name}`);
        const want = u === U.alice ? 'ok staff only' : `no cat: ${f}: Permission denied`;
        const seen: Record<string, number> = {};
        for (const l of lines) seen[l] = (seen[l] ?? 0) + 1;
        assert.equal(seen, { [want]: N }, `${u.name}: what each of ${N} reads gave`);
      });
    })));

  // One process that switches credentials between reads (as root, back to euid 0 to
  // change them); the header's pid is the same for every read. A switch of uid or gid
  // must be seen at the next request. A setgroups() that keeps both ids may be seen
  // later (the passthrough keeps a caller's groups for groupsMaxAge, 1 s by default):
  // each read is retried until it gives what the source gave, within a generous deadline.
  for (const [what, idsChange] of [['switching users', true], ['setgroups() alone', false]] as const) {
    test(`one process whose credentials change between requests (${what}): ${idsChange ? 'each read gets the groups of that moment' : 'reads get the new groups soon after'} [${L}]`, timed(120_000, () =>
      withPt({ defaultPermissions: dp }, async ({ base, src, mnt }) => {
        chmodSync(base, 0o755);
        chmodSync(src, 0o755);
        for (const d of ['n', 'm']) build(join(src, d), [['rd', 0o100640, 0, U.staff, 'staff only\n']]);
        const OK = 'staff only\n';
        const [a, b] = [[U.alice.uid, U.alice.gid, aliceGroups(), OK], idsChange ? [U.bob.uid, U.bob.gid, bobGroups(), 'EACCES'] : [U.alice.uid, U.alice.gid, [U.alice.gid], 'EACCES']];
        const states = [a, b, a, b, a];
        // One Node child, root to start with: back to euid 0 to change its credentials before each read.
        const reads = (root: string) => runAs<string[]>(`
          const [p, states, wait] = a;
          const read = () => { try { return fs.readFileSync(p, 'utf8'); } catch (e) { if (!e.code) throw e; return e.code; } };
          const out = [];
          for (const [uid, gid, groups, want] of states) {
            process.seteuid(0); process.setgroups(groups); process.setegid(gid); process.seteuid(uid);
            const end = performance.now() + wait;
            let got = read();
            while (got !== want && performance.now() < end) {
              await new Promise((resolve) => setTimeout(resolve, 50));
              got = read();
            }
            out.push(got);
          }
          return out;
        `, [join(root, 'rd'), states, idsChange ? 0 : 15_000], {}, 100_000);
        const expected = states.map((x) => x[3]);
        assert.equal(await reads(join(src, 'n')), expected, 'on the source itself');
        assert.equal(await reads(join(mnt, 'm')), expected, 'through the mount');
      })));
  }
}

// ---- leftovers -------------------------------------------------------------------------------

test('the test users and groups are removed', timed(30_000, () => {
  removeUsers();
  const left = ['passwd', 'group'].flatMap((db) => execFileSync('getent', [db], { encoding: 'utf8' }).split('\n'))
    .filter((l) => l.startsWith('tsfu-') && l.split(':')[0].endsWith(`-${tag}`));
  assert.equal(left, []);
}));

test('nothing of ours is left mounted', timed(10_000, () => {
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '');
  assert.equal(mounts.filter((m) => bases.some((b) => m.startsWith(b))), []);
}));

test.run();
