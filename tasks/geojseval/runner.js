// The test process (untrusted: it runs the model's function). Started by driver.py as
// `node --no-warnings --max-old-space-size=N -e SOURCE`; its job arrives on stdin as JSON:
//   {libs: {turf, geolib, jsts: UMD source}, code, function, cases: [{index, params: [[key, value], ...]}],
//    result_fd, jsts_geometry}
// It never sees the driver's nonce, the expected answers or the driver's stdout. It answers one JSON line
// per step on `result_fd`: ["built", {index: factory error}], then ["ready"] or ["load_error", name, message],
// then per case [index, status, value-as-JSON-text | error, elapsed ms, peak RSS KiB]. What the program
// writes with console.* or to fds 1 and 2 goes to pipes the driver attributes to the running case.
// Everything below lives in a function scope: the model's code, evaluated in the global scope, cannot name it.
(function () {
'use strict';
const fs = require('fs');
const vm = require('vm');

const job = JSON.parse(fs.readFileSync(0, 'utf8'));
// Kept before any code of the task or the model runs: a program that replaces JSON.stringify, Buffer or
// fs.writeSync later cannot change how this process frames its answers.
const stringify = JSON.stringify;
const writeSync = fs.writeSync;
const BufferFrom = Buffer.from;
const hrtime = process.hrtime.bigint;
const out = job.result_fd;

// After each step, a marker on fds 1 and 2: the driver gives each case what was printed before its marker.
function mark(label) {
  const m = BufferFrom(`\x1e${job.marker}=${label}\x1f`);
  for (const fd of [1, 2]) {
    try { writeSync(fd, m, 0, m.length); } catch (_) { /* a closed pipe: nothing more to attribute */ }
  }
}

// Every answer line starts with this process's token, which lives only in this function scope: a line the
// model's code writes on the answer pipe (it can find the pipe) lacks it, and the driver voids the process.
const token = job.token;
function emit(item) {
  const data = BufferFrom(stringify([token, ...item]) + '\n');
  let off = 0;
  while (off < data.length) off += writeSync(out, data, off, data.length - off);
}

function describe(e) {
  try {
    if (e instanceof Error || (e && typeof e === 'object' && 'message' in e)) {
      return [String(e.name || 'Error'), String(e.message).slice(0, 500)];
    }
    return ['Thrown', String(e).slice(0, 500)];
  } catch (_) {
    return ['Thrown', 'an unprintable value'];
  }
}

// The libraries as upstream's run_function.js makes them globals (turf, geolib; jsts as its UMD bundle, which
// needs no browser). A UMD bundle is loaded through a CommonJS shim, so nothing is read from disk here.
function loadUmd(name, source) {
  const module = { exports: {} };
  vm.runInThisContext(`(function (exports, module) {${source}\n})`, { filename: `${name}.umd.js` })(module.exports, module);
  return module.exports;
}
globalThis.turf = loadUmd('turf', job.libs.turf);
globalThis.geolib = loadUmd('geolib', job.libs.geolib);
globalThis.jsts = loadUmd('jsts', job.libs.jsts);
// `require` of the libraries (models often write `const turf = require('@turf/turf')`) answers the loaded
// bundles; @turf/<module> answers turf itself, whose functions are the sub-packages' (upstream's four
// overrides: in 7.4.0 @turf/buffer etc. are the very functions @turf/turf exports). Node's own modules load.
const nodeRequire = require;
globalThis.require = function (name) {
  if (name === 'geolib') return globalThis.geolib;
  if (name === 'jsts') return globalThis.jsts;
  if (typeof name === 'string' && name.startsWith('@turf/')) {
    const t = globalThis.turf;
    return Object.assign(Object.create(t), { default: t[name.slice(6).replace(/-([a-z])/g, (_, c) => c.toUpperCase())] || t });
  }
  return nodeRequire(name);
};

// Every case's arguments are built before the model's code is loaded: a factory that throws is the data's
// fault, never the model's. As upstream: values are positional in YAML order; a `callback` string is
// evaluated into a value; a `!js` value's first `function NAME` is called with no arguments.
const built = {};
const factoryErrors = {};
for (const c of job.cases) {
  try {
    built[c.index] = c.params.map(([key, value]) => {
      if (key === 'callback' && typeof value === 'string') return (0, eval)(value);
      if (value && typeof value === 'object' && !Array.isArray(value) && '__js__' in value) {
        const src = String(value.__js__);
        const m = src.match(/function\s+([a-zA-Z0-9_$]+)/);
        if (!m) throw new Error('the !js source declares no function');
        const f = new Function(`${src}\n;return ${m[1]};`)();
        return typeof f === 'function' ? f() : f;
      }
      return value;
    });
  } catch (e) {
    factoryErrors[c.index] = describe(e).join(': ');
  }
}
emit(['built', factoryErrors]);

let fn;
let loaded = false;
try {
  // Indirect eval: the code runs as a script in the global scope, where function declarations become
  // globals, as upstream's eval does them in its module scope.
  (0, eval)(job.code);
  fn = (0, eval)(`typeof ${job.function} === 'function' ? ${job.function} : undefined`);
  if (typeof fn !== 'function') throw Object.assign(new Error(`no function named ${job.function}`), { name: 'MissingFunction' });
  loaded = true;
} catch (e) {
  emit(['load_error', ...describe(e)]);
}
mark('load');
if (loaded) emit(['ready']);

function peakRssKiB() {
  try {
    const m = /VmHWM:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch (_) {
    return null;
  }
}

function jstsGeometry(value) {
  // upstream run_jsts.js: a JSTS geometry becomes {type, coordinates: every vertex [x, y], flattened}
  if (value && typeof value.getCoordinates === 'function' && typeof value.getGeometryType === 'function') {
    return { type: value.getGeometryType(), coordinates: value.getCoordinates().map((c) => [c.x, c.y]) };
  }
  return value;
}

for (const c of loaded ? job.cases : []) {
  if (c.index in factoryErrors) continue;
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5'); // resets VmHWM: the peak is this case's
  } catch (_) { /* not allowed here: the peak is the process's so far */ }
  const t0 = hrtime();
  let value;
  try {
    value = fn(...built[c.index]);
  } catch (e) {
    const ms = Number(hrtime() - t0) / 1e6;
    mark(c.index);
    emit([c.index, 'error', describe(e), ms, peakRssKiB()]);
    continue;
  }
  const ms = Number(hrtime() - t0) / 1e6;
  let status = 'ok';
  let payload;
  try {
    if (value !== null && (typeof value === 'object' || typeof value === 'function') && typeof value.then === 'function') {
      status = 'promise';
      payload = 'the function returned a Promise (it is called synchronously, as upstream; a Promise serialises to {})';
    } else {
      // as upstream: JSON.stringify({result}); undefined leaves the key out, NaN and Infinity become null
      payload = stringify({ result: job.jsts_geometry ? jstsGeometry(value) : value });
    }
  } catch (e) {
    status = 'unserialisable';
    payload = describe(e).join(': ');
  }
  mark(c.index);
  emit([c.index, status, payload, ms, peakRssKiB()]);
}
if (loaded) emit(['done']);
// Timers or pending promises the program left would keep the process alive: the driver ends it.
process.exit(0);
})();
