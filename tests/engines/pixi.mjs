// Parses TexturePacker JSON with PixiJS's own Spritesheet (what Assets.load does with a sheet's JSON)
// over a texture source of the PNG's size. Usage: node pixi.mjs < job.json
// The job: {"cases": [{"id", "image", "json"}]}; prints the frames and animations Pixi made.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { readJob, pngSize, version } = require('./common.cjs');

// Pixi's browser adapter asks for navigator when its modules load (Safari sniffing); nothing more is needed.
globalThis.navigator ??= { userAgent: 'node' };
const { Spritesheet, Texture, TextureSource } = await import('pixi.js');

const out = { version: version(new URL('./node_modules/pixi.js', import.meta.url).pathname), cases: {} };
for (const job of readJob().cases) {
  const size = pngSize(job.image);
  const texture = new Texture({ source: new TextureSource({ width: size.width, height: size.height }) });
  const sheet = new Spritesheet(texture, JSON.parse(readFileSync(job.json, 'utf8')));
  await sheet.parse();
  const names = new Map(Object.entries(sheet.textures).map(([name, t]) => [t, name]));
  const frames = {};
  for (const [name, t] of Object.entries(sheet.textures)) {
    frames[name] = {
      x: t.frame.x, y: t.frame.y, w: t.frame.width, h: t.frame.height,
      origW: t.orig.width, origH: t.orig.height,
      trim: t.trim ? { x: t.trim.x, y: t.trim.y, w: t.trim.width, h: t.trim.height } : null,
    };
  }
  const animations = {};
  for (const [name, list] of Object.entries(sheet.animations)) animations[name] = list.map((t) => names.get(t) ?? null);
  out.cases[job.id] = { frames, animations };
}
process.stdout.write(JSON.stringify(out));
