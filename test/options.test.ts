// Mount options: defaults, limits, and errors that name the option; version rules.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseOptionString, resolveMountOptions, OptionError } from '../src/transport/index.js';
import { negotiateVersion, initOutSize } from '../src/abi/index.js';

function throwsNaming(fn: () => unknown, option: string): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, OptionError);
    assert.is((e as OptionError).option, option);
    assert.ok((e as Error).message.includes(option), (e as Error).message);
    return;
  }
  assert.unreachable(`no error for ${option}`);
}

test('defaults: 1 MiB max_write, subtype tsfuse, fsname = subtype, auto mount method', () => {
  const o = resolveMountOptions({});
  assert.is(o.maxWrite, 1024 * 1024);
  assert.is(o.subtype, 'tsfuse');
  assert.is(o.fsname, 'tsfuse');
  assert.is(o.mountMethod, 'auto');
  assert.is(o.allowOther, false);
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
});

test('-o strings parse as mount(8) spells them', () => {
  const { options } = parseOptionString('allow_other,ro,fsname=data,max_read=131072,default_permissions,rw');
  assert.equal(options, { allowOther: true, readOnly: true, fsname: 'data', maxRead: 131072, defaultPermissions: true });
  assert.equal(parseOptionString('default_permissions,nodefault_permissions,noallow_other').options,
    { defaultPermissions: false, allowOther: false }, 'noNAME turns a flag off; the last one wins');
  assert.equal(parseOptionString('noexec').options, { noexec: true }, 'noexec is a flag of its own');
});

test('-o errors name the option: unknown, missing value, bad number, value on a flag', () => {
  throwsNaming(() => parseOptionString('nofsname'), 'nofsname');
  throwsNaming(() => parseOptionString('nodefault_permissions=1'), 'nodefault_permissions');
  throwsNaming(() => parseOptionString('allow_other,nonsense'), 'nonsense');
  throwsNaming(() => parseOptionString('max_read='), 'max_read');
  throwsNaming(() => parseOptionString('max_write=lots'), 'max_write');
  throwsNaming(() => parseOptionString('ro=1'), 'ro');
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
