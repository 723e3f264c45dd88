// Shared by the engine scripts: read the job from stdin, the size of a PNG from its IHDR chunk.
'use strict';
const fs = require('fs');

function readJob() {
  return JSON.parse(fs.readFileSync(0, 'utf8'));
}

function pngSize(path) {
  const bytes = fs.readFileSync(path);
  if (bytes.toString('latin1', 1, 4) !== 'PNG' || bytes.toString('latin1', 12, 16) !== 'IHDR') {
    throw new Error(`${path} is not a PNG`);
  }
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

function version(packageDir) {
  return JSON.parse(fs.readFileSync(`${packageDir}/package.json`, 'utf8')).version;
}

module.exports = { readJob, pngSize, version };
