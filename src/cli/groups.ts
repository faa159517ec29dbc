/** Group names for the CLI (--control-group): /etc/group, or a number. */
import { readFileSync } from 'node:fs';

/** The gid of group `name` (a number is taken as a gid); throws naming the group when unknown. */
export function getgrnam(name: string): number {
  if (/^\d+$/.test(name)) return Number(name);
  let text = '';
  try {
    text = readFileSync('/etc/group', 'utf8');
  } catch (e) {
    throw new Error(`--control-group ${name}: cannot read /etc/group (${(e as Error).message}); give the gid as a number`);
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && /^\d+$/.test(f[2] ?? '')) return Number(f[2]);
  }
  throw new Error(`--control-group ${name}: no such group in /etc/group (name an existing group, or give its gid as a number)`);
}
