// The visual test process for Leaflet and OpenLayers. Started by driver.py as `node -e SOURCE` with its job on
// stdin (JSON): {modules: the node_modules holding puppeteer-core, chromium, profile, page (HTML), libs: {js, css},
// code, function, cases: [{index, params, eval_methods}], result_fd, marker, token, heap_mb}. This Node process is ours; the
// model's code runs only inside the page, which cannot reach this process's pipes. It speaks runner.js's line
// protocol on `result_fd` (["browser", pid] first, so the driver can kill Chromium's process group, which
// puppeteer starts as a session of its own), with one more element per case: the requests the page tried
// since the previous one (its own, and the map's tiles for a view it moved, and WebSockets), all aborted. The page's console and uncaught errors go to fds 1 and 2 (log/info/debug on
// stdout, warn/error and page errors on stderr) with runner.js's markers, for the stderr rule.
(function () {
'use strict';
const fs = require('fs');
const path = require('path');

const job = JSON.parse(fs.readFileSync(0, 'utf8'));
const puppeteer = require(path.join(job.modules, 'puppeteer-core'));
const out = job.result_fd;
const ORIGIN = 'http://geojseval.invalid';  // the page and the libraries are served from memory under this origin
const FILES = {
  '/index.html': ['text/html', job.page],
  '/lib.js': ['application/javascript', job.libs.js],
  '/lib.css': ['text/css', job.libs.css],
  '/favicon.ico': ['image/x-icon', ''],  // asked for by Chromium itself, after the page loads
};
// Chromium's own console line for each request we abort: not the program's output
const ABORTED = 'Failed to load resource: net::ERR_BLOCKED_BY_CLIENT';

function emit(item) {
  const data = Buffer.from(JSON.stringify([job.token, ...item]) + '\n');
  let off = 0;
  while (off < data.length) off += fs.writeSync(out, data, off, data.length - off);
}

function mark(label) {
  const m = Buffer.from(`\x1e${job.marker}=${label}\x1f`);
  for (const fd of [1, 2]) {
    try { fs.writeSync(fd, m, 0, m.length); } catch (_) { /* a closed pipe: nothing more to attribute */ }
  }
}

function print(fd, text) {
  const b = Buffer.from(String(text) + '\n');
  try { fs.writeSync(fd, b, 0, b.length); } catch (_) { /* as above */ }
}

let blocked = [];  // aborted requests since the last step

// Runs in the page, before the model's code: builds every case's arguments (as upstream: positional, `callback`
// strings evaluated, a `!js` factory's first function called, `map: true` the page's map) and returns the
// functions that load the model's code and run one case. They live only in this closure (puppeteer holds it
// as a handle): the model's code, evaluated in the global scope, can neither name them nor the references to
// JSON.stringify they keep.
function setup(cases) {
  const stringify = JSON.stringify;
  const now = performance.now.bind(performance);
  const raf = window.requestAnimationFrame.bind(window);
  const later = window.setTimeout.bind(window);
  const map = window.getMapInstance();
  const built = {};
  const factoryErrors = {};
  const describe = (e) => {
    try {
      if (e instanceof Error || (e && typeof e === 'object' && 'message' in e)) {
        return [String(e.name || 'Error'), String(e.message).slice(0, 500)];
      }
      return ['Thrown', String(e).slice(0, 500)];
    } catch (_) {
      return ['Thrown', 'an unprintable value'];
    }
  };
  for (const c of cases) {
    try {
      built[c.index] = c.params.map(([key, value]) => {
        if (key === 'map' && value === true) return map;
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
  let fn;
  function load(code, name) {
    try {
      (0, eval)(code);
      fn = (0, eval)(`typeof ${name} === 'function' ? ${name} : undefined`);
      if (typeof fn !== 'function') throw Object.assign(new Error(`no function named ${name}`), { name: 'MissingFunction' });
      return null;
    } catch (e) {
      return describe(e);
    }
  }
  const methods = {};
  for (const c of cases) methods[c.index] = c.eval_methods;
  function run(index) {
    const t0 = now();
    let value;
    try {
      value = fn(...built[index]);
    } catch (e) {
      return ['error', describe(e), now() - t0];
    }
    const ms = now() - t0;
    try {
      if (value !== null && (typeof value === 'object' || typeof value === 'function') && typeof value.then === 'function') {
        return ['promise', 'the function returned a Promise (it is called synchronously, as upstream)', ms];
      }
      // upstream run_visual.js: each eval_methods expression loses the text before its first '.' and is
      // evaluated on the returned value (an expression without a dot is appended to it as is); an exception
      // gives {error: message}; with no expressions the value itself is the result
      let result = value;
      const exprs = methods[index];
      if (Array.isArray(exprs) && exprs.length) {
        result = {};
        for (const expr of exprs) {
          const s = String(expr);
          const dot = s.indexOf('.');
          try {
            result[s] = new Function('result', `return result${dot < 0 ? s : '.' + s.slice(dot + 1)};`)(value);
          } catch (e) {
            result[s] = { error: describe(e)[1] };
          }
        }
      }
      return ['ok', stringify({ result }), ms];
    } catch (e) {
      return ['unserialisable', describe(e).join(': '), ms];
    }
  }
  // after a case: two frames (or 100 ms when frames do not come), for the requests and console lines it caused
  const settle = () => new Promise((done) => { later(done, 100); raf(() => raf(done)); });
  return { load, run, settle, factoryErrors };
}

async function main() {
  const browser = await puppeteer.launch({
    executablePath: job.chromium, headless: true, pipe: true, userDataDir: job.profile,
    defaultViewport: { width: 800, height: 600 }, handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false,
    // --no-sandbox: Chromium's own sandbox needs namespaces the outer sandbox (bwrap, the container) forbids;
    // that outer sandbox is the isolation. /dev/shm is small there: shared memory goes to /tmp.
    args: ['--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--mute-audio',
      `--js-flags=--max-old-space-size=${job.heap_mb}`, '--window-size=800,600',
      // WebSockets bypass request interception: no host name or address resolves, so they cannot connect
      // either (the outer sandbox has no network besides; this holds wherever the runner is started)
      '--host-resolver-rules=MAP * ~NOTFOUND'],
  });
  emit(['browser', browser.process().pid]);
  const page = await browser.newPage();
  // counted like the requests aborted below (they fail for want of an address, see the launch flags)
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  cdp.on('Network.webSocketCreated', (e) => blocked.push(String(e.url).slice(0, 200)));
  await page.setRequestInterception(true);
  page.on('request', (req) => {
    const url = req.url();
    const file = url.startsWith(ORIGIN + '/') ? FILES[url.slice(ORIGIN.length)] : undefined;
    if (file) {
      req.respond({ status: 200, contentType: file[0], body: file[1] });
    } else {
      if (!url.startsWith('data:')) blocked.push(url.slice(0, 200));
      req.abort('blockedbyclient');
    }
  });
  page.on('console', (msg) => {
    const t = msg.type();
    if (t === 'error' && msg.text().startsWith(ABORTED)) return;
    print(t === 'warn' || t === 'error' || t === 'assert' || t === 'trace' ? 2 : 1, msg.text());
  });
  page.on('pageerror', (e) => print(2, `Uncaught ${e && e.message ? e.message : e}`));
  // the renderer died (killed for memory: the container's OOM killer picks the biggest process): a pending
  // evaluate would wait for ever, so this process ends and the driver fails the running case as crashed
  page.on('error', () => process.exit(4));
  await page.goto(ORIGIN + '/index.html', { waitUntil: 'load' });
  // the maps draw (and ask for their tiles) on animation frames: let the first ones pass, so that the page's own
  // tile requests are counted as the page's, not as the first case's
  await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
  const pageBlocked = blocked.length;
  blocked = [];
  const cases = job.cases.map((c) => ({ index: c.index, params: c.params, eval_methods: c.eval_methods }));
  const handle = await page.evaluateHandle(setup, cases);
  const factoryErrors = await handle.evaluate((h) => h.factoryErrors);
  emit(['built', factoryErrors]);
  // the model's code from here on: under the driver's load deadline, then each case's
  const loadError = await handle.evaluate((h, code, name) => h.load(code, name), job.code, job.function);
  mark('load');
  if (loadError) {
    emit(['load_error', ...loadError]);
    return;
  }
  emit(['ready']);
  for (const c of job.cases) {
    if (c.index in factoryErrors) continue;
    const [status, payload, ms] = await handle.evaluate((h, i) => h.run(i), c.index);
    await handle.evaluate((h) => h.settle());
    mark(c.index);
    emit([c.index, status, payload, ms, null, { blocked: blocked.length, blocked_urls: blocked.slice(0, 20), page_blocked: pageBlocked }]);
    blocked = [];
  }
  emit(['done']);
}

main().then(() => process.exit(0), (e) => {
  print(2, `browser runner: ${e && e.stack ? e.stack : e}`);
  process.exit(3);
});
})();
