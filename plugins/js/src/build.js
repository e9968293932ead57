/**
 * `hyphae-plugin-js build`: a plugin project -> a WebAssembly component.
 *
 * 1. The project is a directory with a `package.json`; its agent module is package.json's `main`
 *    when set, else `src/agent.js` (or `src/agent.ts`).
 * 2. esbuild bundles the agent module with the SDK (resolved to this package, whichever copy the
 *    project has installed) and the project's npm dependencies into one ES module, with the SDK's
 *    component-side host (package.json `imports`, conditions `hyphae-wasm` / `hyphae-validator`).
 * 3. The world follows from the module's exports: `execute` -> `executor-plugin`, `validate` ->
 *    `validator-plugin`, both -> `agent-plugin`.
 * 4. componentize-js builds the component against this package's `wit/`, with the WASI features
 *    the world needs (no `fetch-event`; validators also no `http`).
 * @module
 */
import { componentize } from '@bytecodealliance/componentize-js';
import * as esbuild from 'esbuild';
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** This package's root directory. */
export const SDK_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The WIT the components are built against (a copy of the repository's `wit/`). */
export const WIT_DIR = join(SDK_DIR, 'wit');

/** A build problem with a message that says what to do; the CLI prints it without a stack. */
export class BuildError extends Error {
  constructor(message) {
    super(message);
    this.name = 'BuildError';
  }
}

/**
 * Reads the project: its package.json, name and agent module.
 * @param {string} dir
 * @returns {Promise<{dir: string, pkg: any, name: string, entry: string}>}
 */
export async function readProject(dir) {
  dir = resolve(dir);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new BuildError(`${dir} is not a directory: give the plugin project's directory (the one with package.json)`);
  }
  const pkgPath = join(dir, 'package.json');
  if (!existsSync(pkgPath)) {
    throw new BuildError(
      `no package.json in ${dir}: build a plugin project (\`hyphae plugin new NAME --lang js\` makes one), ` +
        'whose package.json names the plugin and whose agent module is `main` or src/agent.js',
    );
  }
  let pkg;
  try {
    pkg = JSON.parse(await readFile(pkgPath, 'utf8'));
  } catch (e) {
    throw new BuildError(`${pkgPath} is not valid JSON: ${e.message}`);
  }
  const name = typeof pkg.name === 'string' ? pkg.name.replace(/^@[^/]+\//, '') : '';
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    throw new BuildError(
      `${pkgPath}: "name" ${JSON.stringify(pkg.name)} cannot name the component: use letters, digits, '.', '_' ` +
        "and '-' (the file name NAME.wasm is the agent type)",
    );
  }
  const candidates = pkg.main ? [pkg.main] : ['src/agent.js', 'src/agent.ts'];
  const entry = candidates.map((c) => resolve(dir, c)).find((p) => existsSync(p));
  if (!entry) {
    const what = pkg.main ? `package.json "main" (${pkg.main})` : 'src/agent.js';
    throw new BuildError(`${dir}: the agent module ${what} does not exist: create it, exporting execute(ctx) and/or validate(handoff)`);
  }
  return { dir, pkg, name, entry };
}

/** Resolves `@hyphae/plugin` (and its subpaths) to this package, so glue and agent share one SDK. */
const sdkPlugin = {
  name: 'hyphae-sdk',
  setup(build) {
    build.onResolve({ filter: /^@hyphae\/plugin(\/.*)?$/ }, (args) => {
      const sub = args.path.slice('@hyphae/plugin'.length);
      const files = { '': 'src/index.js', '/glue': 'src/glue.js' };
      if (!(sub in files)) {
        return { errors: [{ text: `@hyphae/plugin${sub} is not available in components: import from "@hyphae/plugin"` }] };
      }
      return { path: join(SDK_DIR, files[sub]) };
    });
  },
};

/** Node built-ins do not exist inside a component: say so instead of "could not resolve". */
const nodeBuiltinsPlugin = {
  name: 'no-node-builtins',
  setup(build) {
    const names = new Set(builtinModules);
    build.onResolve({ filter: /^[a-z_:/]+$/ }, (args) => {
      const bare = args.path.replace(/^node:/, '');
      if (!args.path.startsWith('node:') && !names.has(bare.split('/')[0])) return undefined;
      if (!names.has(bare) && !names.has(bare.split('/')[0])) return undefined;
      return {
        errors: [{
          text: `${args.path} is a Node built-in module, which a component does not have: plugins get log, progress, ` +
            'config, secret and fetch from @hyphae/plugin (and the JavaScript standard library)',
        }],
      };
    });
  },
};

/**
 * esbuild options shared by both passes.
 * @param {string} world
 */
function esbuildOptions(world) {
  const conditions = world === 'validator-plugin' ? ['hyphae-wasm', 'hyphae-validator', 'module'] : ['hyphae-wasm', 'module'];
  return {
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    mainFields: ['module', 'main'],
    conditions,
    external: ['hyphae:*', 'wasi:*'],
    keepNames: true,
    logLevel: 'silent',
    plugins: [sdkPlugin, nodeBuiltinsPlugin],
  };
}

/** esbuild's failure as text. */
function esbuildMessage(e, dir) {
  if (!e.errors) return e.message;
  return e.errors
    .map((m) => (m.location ? `${relative(dir, m.location.file) || m.location.file}:${m.location.line}:${m.location.column}: ${m.text}` : m.text))
    .join('\n');
}

/**
 * The names the agent module exports.
 * @param {string} entry
 * @param {string} dir
 * @returns {Promise<string[]>}
 */
async function exportsOf(entry, dir) {
  try {
    const result = await esbuild.build({ ...esbuildOptions('executor-plugin'), entryPoints: [entry], outfile: 'agent.js', metafile: true });
    return Object.values(result.metafile.outputs)[0]?.exports ?? [];
  } catch (e) {
    throw new BuildError(`bundling ${relative(dir, entry)} failed:\n${esbuildMessage(e, dir)}`);
  }
}

/**
 * The world for a module's exports.
 * @param {string[]} names
 * @returns {'executor-plugin'|'validator-plugin'|'agent-plugin'|undefined}
 */
export function worldFor(names) {
  const execute = names.includes('execute');
  const validate = names.includes('validate');
  if (execute && validate) return 'agent-plugin';
  if (execute) return 'executor-plugin';
  if (validate) return 'validator-plugin';
  return undefined;
}

/**
 * The generated entry module: the agent module wrapped into the world's interface objects.
 * @param {string} entry absolute path of the agent module
 * @param {string} world
 * @param {{name: string, version?: string, description?: string}} pkg
 */
export function entrySource(entry, world, pkg) {
  const info = { name: pkg.name, version: pkg.version ?? '', description: pkg.description ?? '' };
  const lines = [
    `import * as plugin from ${JSON.stringify(entry)};`,
    "import { makeExports } from '@hyphae/plugin/glue';",
    `const glue = makeExports(plugin, ${JSON.stringify(info)});`,
    'export const metadata = glue.metadata;',
  ];
  if (world !== 'validator-plugin') lines.push('export const executor = glue.executor;');
  if (world !== 'executor-plugin') lines.push('export const validator = glue.validator;');
  return `${lines.join('\n')}\n`;
}

/**
 * Builds the project in `dir` into a component.
 * @param {object} options
 * @param {string} [options.dir] project directory (default: the working directory)
 * @param {string} [options.out] output file (default `DIR/dist/NAME.wasm`)
 * @param {(line: string) => void} [options.say] progress lines (default: none)
 * @returns {Promise<{out: string, world: string, bytes: number, seconds: number, name: string}>}
 */
export async function build({ dir = '.', out, say = () => {} } = {}) {
  const started = Date.now();
  const project = await readProject(dir);
  const names = await exportsOf(project.entry, project.dir);
  const world = worldFor(names);
  if (!world) {
    throw new BuildError(
      `${relative(project.dir, project.entry)} exports neither execute nor validate (it exports: ${names.join(', ') || 'nothing'}): ` +
        'add `export function execute(ctx) { ... }` (an executor) and/or `export function validate(handoff) { ... }` (a validator)',
    );
  }
  say(`${project.name}: ${relative(process.cwd(), project.entry) || project.entry} -> world ${world}`);

  let bundle;
  try {
    const result = await esbuild.build({
      ...esbuildOptions(world),
      stdin: { contents: entrySource(project.entry, world, { ...project.pkg, name: project.name }), resolveDir: project.dir, sourcefile: 'hyphae-entry.js', loader: 'js' },
      outfile: `${project.name}.js`,
    });
    bundle = result.outputFiles[0].text;
  } catch (e) {
    throw new BuildError(`bundling ${project.name} failed:\n${esbuildMessage(e, project.dir)}`);
  }

  const work = await mkdtemp(join(tmpdir(), 'hyphae-plugin-js-'));
  const outFile = resolve(out ?? join(project.dir, 'dist', `${project.name}.wasm`));
  try {
    const source = join(work, `${project.name}.js`);
    await writeFile(source, bundle);
    let component;
    try {
      ({ component } = await componentize({
        sourcePath: source,
        witPath: WIT_DIR,
        worldName: world,
        disableFeatures: world === 'validator-plugin' ? ['fetch-event', 'http'] : ['fetch-event'],
      }));
    } catch (e) {
      throw new BuildError(
        `componentize-js failed for ${project.name} (world ${world}):\n${e.message}\n` +
          'Top-level code of the agent module runs at build time (the component starts from that snapshot): ' +
          'move I/O, config and secret reads into execute/validate.',
      );
    }
    await mkdir(dirname(outFile), { recursive: true });
    await writeFile(outFile, component);
    const seconds = (Date.now() - started) / 1000;
    return { out: outFile, world, bytes: component.length, seconds, name: project.name };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
