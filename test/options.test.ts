// Mount options: defaults, limits, and errors that name the option; version rules.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  fusermountFlags, mountFlags, optionWord, parseOptionString, resolveMountOptions, OptionError,
} from '../src/transport/index.js';
import { negotiateVersion, initOutSize } from '../src/abi/index.js';

function throwsNaming(fn: () => unknown, option: string, code = 'EINVAL'): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, OptionError);
    assert.is((e as OptionError).option, option);
    assert.is((e as OptionError).code, code);
    assert.ok((e as Error).message.startsWith(`invalid option ${option}: `), (e as Error).message);
    return;
  }
  assert.unreachable(`no error for ${option}`);
}

// linux/mount.h, written out here rather than taken from the code under test.
const MS_RDONLY = 1, MS_NOSUID = 2, MS_NODEV = 4, MS_NOEXEC = 8, MS_SYNCHRONOUS = 16, MS_DIRSYNC = 128, MS_NOSYMFOLLOW = 256;
const MS_NOATIME = 1024, MS_NODIRATIME = 2048, MS_RELATIME = 1 << 21, MS_STRICTATIME = 1 << 24, MS_LAZYTIME = 1 << 25;

test('defaults: 1 MiB max_write, subtype tsfuse, fsname = subtype, auto mount method', () => {
  const o = resolveMountOptions({});
  assert.is(o.maxWrite, 1024 * 1024);
  assert.is(o.subtype, 'tsfuse');
  assert.is(o.fsname, 'tsfuse');
  assert.is(o.mountMethod, 'auto');
  assert.is(o.allowOther, false);
  assert.is(o.dev, false, 'nodev unless asked');
  assert.is(o.suid, false, 'nosuid unless asked');
  assert.is(o.atime, 'relatime');
});

test('out-of-range and mistyped options name themselves', () => {
  throwsNaming(() => resolveMountOptions({ maxWrite: 3 }), 'maxWrite');
  throwsNaming(() => resolveMountOptions({ maxWrite: 2 * 1024 * 1024 }), 'maxWrite');
  throwsNaming(() => resolveMountOptions({ maxBackground: 0 }), 'maxBackground');
  throwsNaming(() => resolveMountOptions({ maxBackground: 10, congestionThreshold: 11 }), 'congestionThreshold');
  throwsNaming(() => resolveMountOptions({ allowOther: 'yes' as unknown as boolean }), 'allowOther');
  throwsNaming(() => resolveMountOptions({ fsname: 'a,b' }), 'fsname');
  throwsNaming(() => resolveMountOptions({ mountMethod: 'magic' as 'auto' }), 'mountMethod');
  throwsNaming(() => resolveMountOptions({ bogus: 1 } as never), 'bogus');
  throwsNaming(() => resolveMountOptions({ dev: 'yes' as unknown as boolean }), 'dev');
  throwsNaming(() => resolveMountOptions({ suid: 1 as unknown as boolean }), 'suid');
  throwsNaming(() => resolveMountOptions({ atime: 'sometimes' as 'noatime' }), 'atime');
  throwsNaming(() => resolveMountOptions({ noatime: true, atime: 'strictatime' }), 'noatime');
  throwsNaming(() => resolveMountOptions({ lazytime: 'on' as unknown as boolean }), 'lazytime');
});

test('noatime: true is atime "noatime" (the older spelling)', () => {
  assert.is(resolveMountOptions({ noatime: true }).atime, 'noatime');
  assert.is(resolveMountOptions({ noatime: true, atime: 'noatime' }).atime, 'noatime');
  assert.is(resolveMountOptions({ noatime: false, atime: 'strictatime' }).atime, 'strictatime');
});

test('-o strings parse as mount(8) spells them', () => {
  const { options } = parseOptionString('allow_other,rw,fsname=data,max_read=131072,default_permissions,ro');
  assert.equal(options, { allowOther: true, readOnly: true, fsname: 'data', maxRead: 131072, defaultPermissions: true });
  assert.equal(parseOptionString('ro,rw').options, { readOnly: false }, 'rw after ro: read-write, as in mount(8)');
  assert.equal(parseOptionString('default_permissions,nodefault_permissions,noallow_other').options,
    { defaultPermissions: false, allowOther: false }, 'noNAME turns a flag off; the last one wins');
  assert.equal(parseOptionString('noexec').options, { noexec: true }, 'noexec is a flag of its own');
});

test('-o: mount(8)\'s generic flags, later words winning', () => {
  assert.equal(parseOptionString('dev,suid,exec,sync,dirsync,nodiratime,lazytime,nosymfollow').options,
    { dev: true, suid: true, noexec: false, sync: true, dirsync: true, nodiratime: true, lazytime: true, nosymfollow: true });
  assert.equal(parseOptionString('nodev,nosuid,noexec,async,diratime,nolazytime,symfollow').options,
    { dev: false, suid: false, noexec: true, sync: false, nodiratime: false, lazytime: false, nosymfollow: false });
  assert.equal(parseOptionString('dev,nodev,nosuid,suid').options, { dev: false, suid: true });
  assert.equal(parseOptionString('noexec,exec').options, { noexec: false });
});

test('-o: the atime words as mount(8) reads them', () => {
  const atime = (s: string) => parseOptionString(s).options.atime;
  assert.is(atime('noatime'), 'noatime');
  assert.is(atime('relatime'), 'relatime');
  assert.is(atime('strictatime'), 'strictatime');
  assert.is(atime('noatime,atime'), 'relatime', 'atime only clears noatime');
  assert.is(atime('strictatime,atime'), 'strictatime');
  assert.is(atime('strictatime,nostrictatime'), 'relatime');
  assert.is(atime('noatime,nostrictatime'), 'noatime');
  assert.is(atime('norelatime'), undefined, 'relatime is the kernel default unless strictatime or noatime');
  assert.is(atime('noatime,strictatime'), 'strictatime');
  assert.is(atime('strictatime,noatime'), 'noatime');
});

test('-o: fstab words are accepted and change nothing; user/owner imply what mount(8) says', () => {
  assert.equal(parseOptionString('defaults,auto,noauto,nouser,_netdev,nofail,x-systemd.automount,x-gvfs-show,comment=x').options, {});
  assert.equal(parseOptionString('dev,suid,defaults').options, { dev: true, suid: true }, 'defaults keeps what was asked');
  assert.equal(parseOptionString('user').options, { noexec: true, suid: false, dev: false });
  assert.equal(parseOptionString('users,exec,dev,suid').options, { noexec: false, suid: true, dev: true });
  assert.equal(parseOptionString('owner').options, { suid: false, dev: false });
  assert.equal(parseOptionString('group,dev').options, { suid: false, dev: true });
});

test('mount(2) flags: nosuid,nodev,relatime by default; each option sets its MS_* bit', () => {
  const f = (o: object) => mountFlags(resolveMountOptions(o));
  assert.is(f({}), MS_NOSUID | MS_NODEV | MS_RELATIME);
  assert.is(f({ dev: true, suid: true }), MS_RELATIME);
  assert.is(f({ atime: 'noatime' }), MS_NOSUID | MS_NODEV | MS_NOATIME);
  assert.is(f({ atime: 'strictatime' }), MS_NOSUID | MS_NODEV | MS_STRICTATIME);
  assert.is(f({ readOnly: true, noexec: true, sync: true, dirsync: true, nodiratime: true, lazytime: true, nosymfollow: true, dev: true, suid: true }),
    MS_RDONLY | MS_NOEXEC | MS_SYNCHRONOUS | MS_DIRSYNC | MS_NODIRATIME | MS_LAZYTIME | MS_NOSYMFOLLOW | MS_RELATIME);
});

test('fusermount3 words: relatime left implicit; dev and suid refused (EPERM) for a uid other than 0', () => {
  const w = (o: object, uid = 0) => fusermountFlags(resolveMountOptions(o), uid);
  assert.equal(w({}), ['nosuid', 'nodev']);
  assert.equal(w({}, 1000), ['nosuid', 'nodev']);
  assert.equal(w({ dev: true, suid: true, readOnly: true, noexec: true, atime: 'noatime' }), ['suid', 'dev', 'ro', 'noexec', 'noatime']);
  assert.equal(w({ atime: 'strictatime', sync: true, dirsync: true, nodiratime: true, lazytime: true, nosymfollow: true }),
    ['nosuid', 'nodev', 'sync', 'dirsync', 'strictatime', 'nodiratime', 'lazytime', 'nosymfollow']);
  throwsNaming(() => w({ dev: true }, 1000), 'dev', 'EPERM');
  throwsNaming(() => w({ suid: true }, 65534), 'suid', 'EPERM');
});

test('optionWord: the -o spelling of a MountOptions key', () => {
  assert.is(optionWord('maxWrite'), 'max_write');
  assert.is(optionWord('congestionThreshold'), 'congestion_threshold');
  assert.is(optionWord('readOnly'), 'ro');
  assert.is(optionWord('dev'), 'dev');
});

test('-o errors name the option: unknown, missing value, bad number, value on a flag', () => {
  throwsNaming(() => parseOptionString('nofsname'), 'nofsname');
  throwsNaming(() => parseOptionString('nodefault_permissions=1'), 'nodefault_permissions');
  throwsNaming(() => parseOptionString('allow_other,nonsense'), 'nonsense');
  throwsNaming(() => parseOptionString('max_read='), 'max_read');
  throwsNaming(() => parseOptionString('max_write=lots'), 'max_write');
  throwsNaming(() => parseOptionString('ro=1'), 'ro');
  throwsNaming(() => parseOptionString('dev=1'), 'dev');
  throwsNaming(() => parseOptionString('strictatime=yes'), 'strictatime');
  throwsNaming(() => parseOptionString('atime=strict'), 'atime');
  throwsNaming(() => parseOptionString('nosuid=0'), 'nosuid');
});

test('version rules: 7.45 and older 7.x down to 7.27 accepted, older refused, newer major retried', () => {
  assert.equal(negotiateVersion(7, 45), { kind: 'ok', minor: 45 });
  assert.equal(negotiateVersion(7, 50), { kind: 'ok', minor: 45 });
  assert.equal(negotiateVersion(7, 27), { kind: 'ok', minor: 27 });
  const old = negotiateVersion(7, 26);
  assert.is(old.kind, 'refuse');
  assert.ok(old.kind === 'refuse' && old.reason.includes('7.26'));
  assert.is(negotiateVersion(6, 40).kind, 'refuse');
  assert.is(negotiateVersion(8, 0).kind, 'retry-major');
  assert.is(initOutSize(45), 64);
  assert.is(initOutSize(22), 24);
  assert.is(initOutSize(4), 8);
});

test.run();
