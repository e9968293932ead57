#!/usr/bin/env node
/**
 * hyphae-plugin-js: builds Hyphae plugins written in JavaScript into WebAssembly components.
 *
 *   hyphae-plugin-js build [DIR] [--out FILE.wasm] [--quiet]
 *
 * Exit codes: 0 built, 1 the build failed (the message says why), 2 bad usage.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { BuildError, SDK_DIR, build } from '../src/build.js';

const USAGE = `Usage: hyphae-plugin-js build [DIR] [--out FILE.wasm] [--quiet]

Builds the plugin project in DIR (default: the working directory) into a WebAssembly component.
DIR holds package.json; the agent module is its "main", else src/agent.js. The module exports
execute(ctx) (world executor-plugin), validate(handoff) (validator-plugin) or both (agent-plugin),
and optionally info = {version, description, agentType}.

Options:
  --out FILE   where to write the component (default DIR/dist/NAME.wasm, NAME from package.json;
               the file name is the agent type)
  --quiet      print nothing on success
  -h, --help   this text
  --version    the SDK's version`;

function usage(message) {
  process.stderr.write(`hyphae-plugin-js: ${message}\n\n${USAGE}\n`);
  process.exit(2);
}

async function main(argv) {
  if (argv.length === 0 || argv[0] === '-h' || argv[0] === '--help' || argv[0] === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (argv[0] === '--version') {
    process.stdout.write(`${JSON.parse(readFileSync(`${SDK_DIR}/package.json`, 'utf8')).version}\n`);
    return 0;
  }
  const [command, ...rest] = argv;
  if (command !== 'build') usage(`unknown command ${JSON.stringify(command)}`);
  let dir;
  let out;
  let quiet = false;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (arg === '--out') {
      if (i + 1 >= rest.length) usage('--out needs a file name (FILE.wasm)');
      out = rest[++i];
    } else if (arg.startsWith('--out=')) {
      out = arg.slice('--out='.length);
    } else if (arg === '--quiet' || arg === '-q') {
      quiet = true;
    } else if (arg === '-h' || arg === '--help') {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    } else if (arg.startsWith('-')) {
      usage(`unknown option ${arg}`);
    } else if (dir === undefined) {
      dir = arg;
    } else {
      usage(`one project directory only (got ${dir} and ${arg})`);
    }
  }
  if (out !== undefined && !out.endsWith('.wasm')) usage(`--out ${out}: the file name must end in .wasm (NAME.wasm, NAME being the agent type)`);
  const say = quiet ? () => {} : (line) => process.stderr.write(`${line}\n`);
  try {
    const r = await build({ dir: dir ?? '.', out, say });
    if (!quiet) {
      const mib = (r.bytes / (1024 * 1024)).toFixed(1);
      process.stdout.write(`built ${relative(process.cwd(), r.out) || r.out} (world ${r.world}, ${mib} MiB) in ${r.seconds.toFixed(1)} s\n`);
    }
    return 0;
  } catch (e) {
    if (e instanceof BuildError) {
      process.stderr.write(`hyphae-plugin-js: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`hyphae-plugin-js: internal error: ${e?.stack ?? e}\n`);
    process.exit(1);
  },
);
