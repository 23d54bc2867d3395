// `npm run package [-- --target linux-x64] [-o FILE.vsix]`: builds the .vsix with @vscode/vsce for one platform, by
// default as attention-lens-<target>-<version>.vsix in the repository root. onnxruntime-node ships native binaries
// for every platform (about 280 MB); a platform-specific package keeps only its own: .vscodeignore leaves all of
// node_modules out, and the ignore file given to vsce adds back that one binary folder.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
let target = `${process.platform}-${process.arch}`;
let outOption;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a !== '--target' && a !== '-o' && a !== '--out') {
    console.error(`package: unknown argument '${a}' (accepted: --target TARGET, -o|--out FILE.vsix)`);
    process.exit(2);
  }
  const v = args[++i];
  if (v === undefined) {
    console.error(`package: ${a} needs a value`);
    process.exit(2);
  }
  if (a === '--target') target = v;
  else outOption = v;
}
if (!/^(linux|darwin|win32|alpine)-(x64|arm64|armhf)$/.test(target ?? '')) {
  console.error(`package: unknown target '${target}' (expected e.g. linux-x64, darwin-arm64, win32-x64)`);
  process.exit(2);
}
const [os, arch] = target.split('-');
const binaries = 'node_modules/onnxruntime-node/bin/napi-v6';
if (!existsSync(binaries)) {
  console.error(`package: ${binaries} is missing; run npm ci first`);
  process.exit(1);
}
const own = `${binaries}/${os === 'alpine' ? 'linux' : os}/${arch}`;
if (!existsSync(own)) {
  console.error(`package: onnxruntime-node has no binaries for ${target} (${own}); available: ${readdirSync(binaries).flatMap((o) => readdirSync(join(binaries, o)).map((a) => `${o}-${a}`)).join(', ')}`);
  process.exit(1);
}
const ignore = join(tmpdir(), `attention-lens-vscodeignore-${process.pid}`);
writeFileSync(ignore, `${readFileSync('.vscodeignore', 'utf8')}\n# the ${target} package: this platform's onnxruntime binaries\n!${own}/**\n`);
const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const out = outOption ?? `${pkg.name}-${target}-${pkg.version}.vsix`;
try {
  // vsce runs the `vscode:prepublish` script (the build) itself.
  execFileSync(process.execPath, [
    'node_modules/@vscode/vsce/vsce', 'package', '--target', target, '--ignoreFile', ignore, '--out', out,
    '--skip-license', '--allow-missing-repository',
    // The extension's page in VS Code: the extension's own documentation (the project README links into the repo).
    '--readme-path', 'docs/extension.md',
  ], { stdio: 'inherit' });
} finally {
  rmSync(ignore, { force: true });
}
console.log(out);
