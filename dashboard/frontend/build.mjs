// Builds the vendored bundles the dashboard serves as static files, so that installing ASCEP needs no Node:
//   vendor/editor.min.js   CodeMirror 6 with the rule language (src/editor.js), as window.AscepEditor
//   vendor/uplot.min.js    uPlot (window.uPlot) and vendor/uplot.min.css, as uPlot publishes them
// Run: npm ci && npm run build (from dashboard/frontend); commit what changed under vendor/.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "static", "dashboard", "vendor");
const lock = JSON.parse(readFileSync(join(here, "package-lock.json"), "utf8")).packages;

// The packages a bundle holds, with the versions the lock file pinned, so the committed file says what it is.
function banner(packages) {
  const listed = [...packages].sort().map((name) => `${name}@${lock[`node_modules/${name}`].version}`);
  return `/*! ${listed.join(", ")} (MIT licences). Built by dashboard/frontend/build.mjs; do not edit. */\n`;
}

mkdirSync(out, { recursive: true });
const editor = await build({
  entryPoints: [join(here, "src", "editor.js")],
  outfile: join(out, "editor.min.js"),
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  legalComments: "none",
  metafile: true,
  write: false,
});
const inputs = Object.keys(Object.values(editor.metafile.outputs)[0].inputs);
const bundled = new Set(inputs.map((path) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)?.[1]).filter(Boolean));
writeFileSync(join(out, "editor.min.js"), banner(bundled) + editor.outputFiles[0].text);

const uplot = join(here, "node_modules", "uplot", "dist");
writeFileSync(join(out, "uplot.min.js"), banner(["uplot"]) + readFileSync(join(uplot, "uPlot.iife.min.js"), "utf8"));
copyFileSync(join(uplot, "uPlot.min.css"), join(out, "uplot.min.css"));
console.log(`built ${out}/editor.min.js, uplot.min.js, uplot.min.css`);
