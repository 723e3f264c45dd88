// Loads atlases into a real Phaser TextureManager and AnimationManager, the way Phaser's loader does
// (load.aseprite / load.atlas end in textures.addAtlas and, for Aseprite, the JSON cache), then runs
// anims.createFromAseprite. Usage: node phaser.cjs <package dir name> < job.json
// The job: {"cases": [{"id", "image", "kind": "aseprite"|"atlas", "json"}]}; prints what Phaser made of them.
'use strict';
const path = require('path');
const fs = require('fs');
const { readJob, pngSize, version } = require('./common.cjs');

const root = path.join(__dirname, 'node_modules', process.argv[2]);

// The least of a browser that Phaser's modules touch when they load (device sniffing draws once on a
// canvas). No renderer is created: textures need none until they are drawn.
globalThis.window = globalThis;
globalThis.navigator = { userAgent: 'node' };
// A 2D context whose every method returns one blank pixel's image data.
const context = () => new Proxy({}, {
  get: (target, key) => (key in target ? target[key] : () => ({ data: new Uint8ClampedArray(4) })),
});
globalThis.HTMLCanvasElement = class {
  constructor() {
    this.style = {};
    this.width = 1;
    this.height = 1;
  }

  getContext() {
    return context();
  }
};
globalThis.HTMLImageElement = class {};
globalThis.Image = globalThis.HTMLImageElement;
globalThis.document = { createElement: () => new HTMLCanvasElement(), documentElement: { style: {} } };

const EventEmitter = require(require.resolve('eventemitter3', { paths: [root] }));
const TextureManager = require(path.join(root, 'src/textures/TextureManager'));
const AnimationManager = require(path.join(root, 'src/animations/AnimationManager'));
const BaseCache = require(path.join(root, 'src/cache/BaseCache'));

const game = { events: new EventEmitter(), cache: { json: new BaseCache() }, config: {}, renderer: null };
game.textures = new TextureManager(game);
game.anims = new AnimationManager(game);
game.anims.boot();

function frameInfo(frame) {
  return {
    x: frame.cutX, y: frame.cutY, w: frame.cutWidth, h: frame.cutHeight,
    trimmed: frame.trimmed, sourceW: frame.realWidth, sourceH: frame.realHeight,
    offsetX: frame.x, offsetY: frame.y,
  };
}

const out = { version: version(root), cases: {} };
for (const job of readJob().cases) {
  const key = job.id;
  const size = pngSize(job.image);
  // An image element as far as TextureSource cares: its size.
  const image = { width: size.width, height: size.height, naturalWidth: size.width, naturalHeight: size.height };
  const data = JSON.parse(fs.readFileSync(job.json, 'utf8'));
  const texture = game.textures.addAtlas(key, image, data);
  const result = { frames: {}, anims: {} };
  for (const name of texture.getFrameNames()) result.frames[name] = frameInfo(texture.get(name));
  if (job.kind === 'aseprite') {
    game.cache.json.add(key, data); // what AsepriteFile.addToCache does with the JSON
    for (const anim of game.anims.createFromAseprite(key)) {
      result.anims[anim.key] = {
        frames: anim.frames.map((f) => f.textureFrame),
        textureKeys: [...new Set(anim.frames.map((f) => f.textureKey))],
        durations: anim.frames.map((f) => f.duration),
        duration: anim.duration, frameRate: anim.frameRate, yoyo: anim.yoyo,
      };
      game.anims.remove(anim.key);
    }
  }
  out.cases[key] = result;
}
process.stdout.write(JSON.stringify(out));
