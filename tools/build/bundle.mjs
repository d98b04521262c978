// Bundles a project with esbuild into dist/<project root>: an app's process entry (main.ts) and Lambda entry (lambda.ts)
// as one ESM file for Node.js 24 (what a Lambda function or a container runs), a library's
// index.ts to prove that it bundles on its own.
import { copyFileSync, existsSync } from "node:fs"
import { join } from "node:path"
import { build } from "esbuild"

const projectRoot = process.argv[2]
if (projectRoot === undefined) {
  console.error("usage: node tools/build/bundle.mjs <project root>")
  process.exit(2)
}
const entries = ["main.ts", "lambda.ts", "index.ts", "archive-file.ts"].map((name) => join(projectRoot, "src", name)).filter((path) => existsSync(path))
await build({
  entryPoints: entries,
  outdir: join("dist", projectRoot),
  bundle: true,
  platform: "node",
  target: "node24",
  format: "esm",
  sourcemap: true,
  // Smaller bundles load faster on a cold start; names are kept for stack traces and error tags.
  minify: true,
  keepNames: true,
  logLevel: "warning",
  banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" }
})
console.log(`built ${entries.join(", ")} into ${join("dist", projectRoot)}`)

// An app's container image is built from its bundle and a Dockerfile: its own in container/, else the shared one.
if (existsSync(join(projectRoot, "src", "main.ts"))) {
  const own = join(projectRoot, "container", "Dockerfile")
  copyFileSync(existsSync(own) ? own : join("tools", "build", "service.Dockerfile"), join("dist", projectRoot, "Dockerfile"))
}
