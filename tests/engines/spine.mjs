// Parses libGDX / Spine .atlas text with spine-core's TextureAtlas (the Spine runtimes' parser of the
// format libGDX's TextureAtlas reads). Usage: node spine.mjs < job.json
// The job: {"cases": [{"id", "atlas"}]}; prints the pages and regions it read.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { TextureAtlas } from '@esotericsoftware/spine-core';

const require = createRequire(import.meta.url);
const { readJob, version } = require('./common.cjs');

const out = { version: version(new URL('./node_modules/@esotericsoftware/spine-core', import.meta.url).pathname), cases: {} };
for (const job of readJob().cases) {
  const atlas = new TextureAtlas(readFileSync(job.atlas, 'utf8'));
  out.cases[job.id] = {
    pages: atlas.pages.map((p) => ({
      name: p.name, width: p.width, height: p.height, minFilter: p.minFilter, magFilter: p.magFilter,
      uWrap: p.uWrap, vWrap: p.vWrap, pma: p.pma,
    })),
    regions: atlas.regions.map((r) => ({
      name: r.name, page: r.page.name, index: r.index, x: r.x, y: r.y, width: r.width, height: r.height,
      offsetX: r.offsetX, offsetY: r.offsetY, originalWidth: r.originalWidth, originalHeight: r.originalHeight,
      degrees: r.degrees, names: r.names ?? null,
    })),
  };
}
process.stdout.write(JSON.stringify(out));
