// Every public export carries a doc comment (issue 13, part 4): the API reference
// (`npm run docs`, TypeDoc, typedoc.json) is generated from these comments, so an
// export without one is a hole in the reference. The check walks the exported
// symbols of typedoc.json's entry points with the TypeScript compiler API,
// following re-exports (`export *`, `export { a } from`, `export * as ns`).
//
// What must be documented: every exported function, class, interface, type
// alias, enum, variable; the public members (properties, methods, accessors) of
// exported classes and interfaces, including members inherited from a base that
// is not itself exported; the members of a type alias that is an object literal.
// A member that overrides or implements a documented member inherits its comment
// (as TypeDoc does). Not required: private/protected and `#` members, members
// keyed by a module-private symbol, constructors, enum members and the keys of
// `as const` flag tables (their names are the kernel's, from linux/fuse.h; the
// table's own comment cites it), and the fields of anonymous inline types.
//
// `npm run docs` (validation.notDocumented, a warning fails it) checks the same
// exports except properties (TypeDoc's "Property" kind also takes in every inline
// type's fields), and does check methods of inline types; this test covers the
// properties, and its failure names each export as file:line name.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import ts from 'typescript';
import { REPO, tempDir, timed } from './helpers.js';

/** Building a program of the whole source takes seconds, more on a loaded machine. */
const CHECK_MS = 5 * 60_000;

/** An export (or a member of one) without a doc comment. */
interface Finding { file: string; line: number; name: string }

/** Whether a JSDoc comment or tag says something (an empty one documents nothing, for TypeDoc too). */
function saysSomething(d: ts.JSDoc | ts.JSDocTag): boolean {
  if ((ts.getTextOfJSDocComment(d.comment) ?? '').trim()) return true;
  return ts.isJSDoc(d) && (d.tags ?? []).some(saysSomething);
}

/** Whether `decl` has a doc comment: its own JSDoc, or for a parameter property the
 * constructor's `@param` tag for it. */
function hasDoc(decl: ts.Node): boolean {
  // getJSDocCommentsAndTags looks through a variable declaration to its statement.
  if (ts.getJSDocCommentsAndTags(decl).some(saysSomething)) return true;
  // TypeScript attaches no JSDoc to a binding element (`export const { /** … */ EIO } = E`);
  // TypeDoc reads the comment just before it, and so does this check.
  if (!ts.isBindingElement(decl)) return false;
  const text = decl.getSourceFile().text;
  return (ts.getLeadingCommentRanges(text, decl.pos) ?? []).some((c) =>
    text.startsWith('/**', c.pos) && text.slice(c.pos + 3, c.end - 2).replace(/[\s*]/g, '') !== '');
}

function isOurs(decl: ts.Node, root: string): boolean {
  const f = decl.getSourceFile().fileName;
  return !f.includes('/node_modules/') && !relative(root, f).startsWith('..');
}

function isPublicMember(decl: ts.Declaration): boolean {
  if (ts.isConstructorDeclaration(decl) || ts.isIndexSignatureDeclaration(decl)
    || ts.isCallSignatureDeclaration(decl) || ts.isConstructSignatureDeclaration(decl)) return false;
  const name = ts.getNameOfDeclaration(decl);
  if (name && ts.isPrivateIdentifier(name)) return false;
  // `[NODE]`: keyed by a module-private symbol, unreachable for users.
  if (name && ts.isComputedPropertyName(name) && ts.isIdentifier(name.expression)) return false;
  return (ts.getCombinedModifierFlags(decl) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) === 0;
}

/**
 * Lists the exports of `entries` (and their public members) that have no doc
 * comment; files outside `root` (node_modules, lib.d.ts) are not checked.
 */
export function undocumentedExports(entries: string[], options: ts.CompilerOptions, root: string): Finding[] {
  const program = ts.createProgram(entries, { ...options, noEmit: true });
  const checker = program.getTypeChecker();
  const seen = new Set<ts.Node>();
  const found: Finding[] = [];

  const report = (decl: ts.Declaration, name: string) => {
    const sf = decl.getSourceFile();
    const at = ts.getNameOfDeclaration(decl) ?? decl;
    const line = sf.getLineAndCharacterOfPosition(at.getStart(sf)).line + 1;
    found.push({ file: relative(root, sf.fileName), line, name });
  };

  /** Is some declaration of `name` in a base type or implemented interface documented? */
  const inherited = (owner: ts.ClassLikeDeclaration | ts.InterfaceDeclaration, name: string, isStatic: boolean): boolean => {
    const bases: ts.Type[] = [];
    for (const clause of owner.heritageClauses ?? []) {
      for (const t of clause.types) {
        const type = checker.getTypeAtLocation(t);
        if (isStatic) {
          const sym = type.getSymbol();
          if (sym?.valueDeclaration) bases.push(checker.getTypeOfSymbolAtLocation(sym, sym.valueDeclaration));
        } else bases.push(type);
      }
    }
    return bases.some((b) => {
      const p = b.getProperty(name);
      if (!p) return false;
      return (p.declarations ?? []).some((d) => {
        const owner = ownerOf(d);
        return hasDoc(d) || (!!owner && inherited(owner, name, isStatic));
      });
    });
  };

  /** The class or interface that declares member `d` (a constructor's parameter property too). */
  const ownerOf = (d: ts.Node): ts.ClassLikeDeclaration | ts.InterfaceDeclaration | undefined => {
    const p = ts.isParameter(d) ? d.parent.parent : d.parent;
    return p && (ts.isClassLike(p) || ts.isInterfaceDeclaration(p)) ? p : undefined;
  };

  /** Checks the members of `type` (declared here or inherited from our own code). */
  const checkMembers = (owner: string, type: ts.Type, isStatic: boolean) => {
    const byName = new Map<string, ts.Declaration[]>();
    for (const p of checker.getPropertiesOfType(type)) {
      if (isStatic && p.name === 'prototype') continue;
      const decls = (p.declarations ?? []).filter((d) => isOurs(d, root) && isPublicMember(d));
      if (decls.length) byName.set(p.name, decls);
    }
    for (const [name, decls] of byName) {
      if (decls.every((d) => seen.has(d))) continue;
      decls.forEach((d) => seen.add(d));
      if (decls.some(hasDoc)) continue;
      if (decls.some((d) => { const owner = ownerOf(d); return !!owner && inherited(owner, name, isStatic); })) continue;
      report(decls[0], `${owner}.${name}`);
    }
  };

  const visit = (exported: ts.Symbol, name: string) => {
    const sym = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    const decls = (sym.declarations ?? []).filter((d) => isOurs(d, root));
    if (!decls.length) return;
    // `export * as ns from './file.js'`: the namespace is the file; check its exports.
    if (decls.some(ts.isSourceFile)) {
      if (seen.has(decls[0])) return;
      seen.add(decls[0]);
      for (const e of checker.getExportsOfModule(sym)) visit(e, `${name}.${e.name}`);
      return;
    }
    if (decls.every((d) => seen.has(d))) return;
    decls.forEach((d) => seen.add(d));
    if (!decls.some(hasDoc)) report(decls[0], name);
    for (const d of decls) {
      if (ts.isClassDeclaration(d)) {
        checkMembers(name, checker.getDeclaredTypeOfSymbol(sym), false);
        checkMembers(name, checker.getTypeOfSymbolAtLocation(sym, d), true);
      } else if (ts.isInterfaceDeclaration(d)) {
        checkMembers(name, checker.getDeclaredTypeOfSymbol(sym), false);
      } else if (ts.isTypeAliasDeclaration(d) && ts.isTypeLiteralNode(d.type)) {
        checkMembers(name, checker.getTypeAtLocation(d.type), false);
      }
    }
  };

  for (const entry of entries) {
    const sf = program.getSourceFile(entry);
    if (!sf) throw new Error(`entry point ${entry} is not in the program`);
    const mod = checker.getSymbolAtLocation(sf);
    if (!mod) continue; // a file with no exports
    for (const e of checker.getExportsOfModule(mod)) visit(e, e.name);
  }
  return found.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.name.localeCompare(b.name));
}

function format(found: Finding[]): string {
  return found.map((f) => `  ${f.file}:${f.line} ${f.name}`).join('\n');
}

function projectOptions(): ts.CompilerOptions {
  const parsed = ts.getParsedCommandLineOfConfigFile(join(REPO, 'tsconfig.json'), {}, {
    ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => { throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n')); },
  });
  if (!parsed) throw new Error('cannot read tsconfig.json');
  return parsed.options;
}

const typedocConfig = JSON.parse(readFileSync(join(REPO, 'typedoc.json'), 'utf8')) as {
  entryPoints: string[]; validation?: { notDocumented?: boolean }; treatWarningsAsErrors?: boolean;
};
const entryPoints = typedocConfig.entryPoints.map((e) => (isAbsolute(e) ? e : join(REPO, e)));

test('typedoc.json documents every module the package exports, and fails on what it cannot', () => {
  // `npm run docs` reports an undocumented export too, and a warning fails it.
  assert.is(typedocConfig.validation?.notDocumented, true);
  assert.is(typedocConfig.treatWarningsAsErrors, true);
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
  const missing: string[] = [];
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    // package.json itself, and the examples (programs the guide walks through, not API).
    if (subpath === './package.json' || subpath.startsWith('./examples/')) continue;
    const types = typeof target === 'string' ? target : (target as { types?: string }).types;
    assert.type(types, 'string', `exports["${subpath}"] has no types`);
    // ./dist/src/x/index.d.ts is compiled from src/x/index.ts.
    const source = join(REPO, types!.replace(/^\.\/dist\//, '').replace(/\.d\.ts$/, '.ts'));
    if (!entryPoints.includes(source)) missing.push(`${subpath} (${relative(REPO, source)})`);
  }
  assert.equal(missing, [], `package exports missing from typedoc.json entryPoints:\n  ${missing.join('\n  ')}`);
});

test('every public export has a doc comment', timed(CHECK_MS, () => {
  const found = undocumentedExports(entryPoints, projectOptions(), REPO);
  // One line per export (assert.ok would print the list twice).
  if (found.length) throw new Error(`${found.length} public exports have no doc comment:\n${format(found)}`);
}));

test('the check names an undocumented export, its members and re-exports (file:line name)', timed(CHECK_MS, () => {
  const dir = tempDir('tsfuse-docs-');
  try {
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'entry.ts'), [
      '/** Documented. */',
      'export function documented(): void {}',
      'export function bare(): void {}', // line 3
      '/** Not exported itself: its public members are reached through Thing. */',
      'class Base {',
      '  /** Documented in the base. */',
      '  named(): void {}',
      '  baseBare(): void {}', // line 8
      '}',
      '/** A documented class. */',
      'export class Thing extends Base {',
      '  /** Documented. */',
      '  ok = 1;',
      '  missing = 2;', // line 14
      '  private hidden = 3;',
      '  #secret = 4;',
      '  protected inner(): void {}',
      '  override named(): void {}', // inherits Base.named's comment
      '}',
      "export * from './sub/more.js';",
      "export * as ns from './sub/ns.js';",
      '/** A documented class with parameter properties. */',
      'export class Pair {',
      '  /** @param left - Documented through the constructor. */',
      '  constructor(readonly left: number, readonly right: number) {}', // line 25: right
      '  static made = 0;',
      '  /** */',
      '  empty(): void {}', // line 28: an empty comment documents nothing
      '}',
      'const E = { A: 1, B: 2 };',
      'export const {',
      '  /** Documented. */ A,',
      '  B,', // line 33
      '} = E;',
      'function hidden(): void {}', // line 35, exported as `renamed`
      'export { hidden as renamed };',
      '',
    ].join('\n'));
    writeFileSync(join(dir, 'sub/more.ts'), [
      '/** Documented. */',
      'export interface Shape {',
      '  /** Documented. */',
      '  a: number;',
      '  b: string;', // line 5
      '}',
      'export const LIMIT = 4;', // line 7
      '',
    ].join('\n'));
    writeFileSync(join(dir, 'sub/ns.ts'), 'export type Alias = number;\n');
    const found = undocumentedExports([join(dir, 'entry.ts')], projectOptions(), dir);
    assert.equal(format(found).split('\n'), [
      '  entry.ts:3 bare',
      '  entry.ts:8 Thing.baseBare',
      '  entry.ts:14 Thing.missing',
      '  entry.ts:25 Pair.right',
      '  entry.ts:26 Pair.made',
      '  entry.ts:28 Pair.empty',
      '  entry.ts:33 B',
      '  entry.ts:35 renamed',
      '  sub/more.ts:5 Shape.b',
      '  sub/more.ts:7 LIMIT',
      '  sub/ns.ts:1 ns.Alias',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}));

test.run();
