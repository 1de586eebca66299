import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
let axeSource: string | undefined;

/** axe-core's browser bundle, read once per process. */
export function axeScript(): string {
  axeSource ??= readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  return axeSource;
}

/** axe-core's version, from the same package the pages get. */
export function axeVersion(): string {
  return (require('axe-core/package.json') as { version: string }).version;
}

/**
 * Tracks what a page still does after `load`: fetch/XHR in flight (reading a fetched body counts)
 * and DOM mutations.
 * `__wcagaiSettle(quietMs, maxMs, quiet?)` resolves at once for a page that did nothing after load,
 * else once no request is pending and the DOM has been quiet for quietMs, capped at maxMs.
 * A fixed quiet window would cost every static page its full length; this costs them nothing.
 */
const SETTLE_TRACKER = `(() => {
  if (window !== window.top || window.__wcagaiSettle) return;
  const state = { pending: 0, last: 0, afterLoad: false, loaded: false, live: false };
  const now = () => performance.now();
  // "Live": the page's own code scheduled something that could still run after the scan (timers,
  // lifecycle handlers, workers, sockets, IndexedDB). Only such pages need parking on about:blank
  // before their storage is cleared; a page without them cannot write anything afterwards.
  const setTimeout = window.setTimeout.bind(window);
  const markLive = (target, name) => {
    const orig = target && target[name];
    if (typeof orig !== 'function') return;
    target[name] = function (...args) { state.live = true; return orig.apply(this, args); };
  };
  for (const name of ['setTimeout', 'setInterval', 'requestAnimationFrame', 'requestIdleCallback']) markLive(window, name);
  if (typeof indexedDB === 'object' && indexedDB) markLive(indexedDB, 'open');
  for (const name of ['Worker', 'SharedWorker', 'WebSocket', 'EventSource', 'BroadcastChannel']) {
    const Orig = window[name];
    if (typeof Orig !== 'function') continue;
    const Wrapped = new Proxy(Orig, { construct(t, a, n) { state.live = true; return Reflect.construct(t, a, n); } });
    Object.defineProperty(window, name, { value: Wrapped, writable: true, configurable: true });
  }
  const LIFECYCLE = new Set(['unload', 'pagehide', 'beforeunload', 'visibilitychange', 'freeze']);
  const addListener = EventTarget.prototype.addEventListener;
  EventTarget.prototype.addEventListener = function (type, ...rest) {
    if ((this === window || this === document) && LIFECYCLE.has(String(type))) state.live = true;
    return addListener.call(this, type, ...rest);
  };
  const lifecycleHandlers = () => !!(window.onunload || window.onpagehide || window.onbeforeunload || document.onvisibilitychange || document.querySelector('meta[http-equiv="refresh" i]'));
  const touch = () => { state.last = now(); if (state.loaded) state.afterLoad = true; };
  const origFetch = window.fetch;
  if (typeof origFetch === 'function') {
    window.fetch = function (...args) {
      state.pending++; touch();
      let p;
      try { p = origFetch.apply(this, args); } catch (e) { state.pending--; throw e; }
      Promise.resolve(p).then(() => {}, () => {}).then(() => { state.pending--; touch(); });
      return p;
    };
  }
  // A fetch resolves once the headers are in; the body can take much longer (slow or streamed
  // APIs). Reading it through Response counts as pending work too, so render-after-json waits.
  const R = typeof Response === 'function' ? Response.prototype : null;
  if (R) {
    for (const name of ['arrayBuffer', 'blob', 'bytes', 'formData', 'json', 'text']) {
      const orig = R[name];
      if (typeof orig !== 'function') continue;
      Object.defineProperty(R, name, { configurable: true, writable: true, value: function (...args) {
        state.pending++; touch();
        let p;
        try { p = orig.apply(this, args); } catch (e) { state.pending--; throw e; }
        Promise.resolve(p).then(() => {}, () => {}).then(() => { state.pending--; touch(); });
        return p;
      } });
    }
  }
  const send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.send = function (...args) {
    state.pending++; touch();
    let done = false;
    const end = () => { if (!done) { done = true; state.pending--; touch(); } };
    this.addEventListener('loadend', end);
    try { return send.apply(this, args); } catch (e) { end(); throw e; }
  };
  let observer = null;
  addEventListener('load', () => {
    state.loaded = true;
    observer = new MutationObserver(touch);
    observer.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
  }, { once: true });
  // With quiet set (the engine waited for scripts that loaded after load, which may render once
  // they run), the DOM must stay quiet for quietMs from now, as after a change.
  Object.defineProperty(window, '__wcagaiSettle', { value: (quietMs, maxMs, quiet) => new Promise((resolve) => {
    const start = now();
    if (quiet) { state.afterLoad = true; state.last = Math.max(state.last, start); }
    // The observer stops once settled, so axe-core's own DOM work is not tracked.
    // Liveness is read here, before axe-core runs: axe's own timers must not count.
    const done = (settled, t) => { if (observer) observer.disconnect(); resolve({ settled, ms: t - start, live: state.live || state.pending > 0 || lifecycleHandlers() }); };
    const check = () => {
      const t = now();
      if (t - start >= maxMs) return done(false, t);
      if (state.pending === 0 && (!state.afterLoad || t - state.last >= quietMs)) return done(true, t);
      setTimeout(check, state.pending > 0 ? 20 : Math.max(5, quietMs - (t - state.last)));
    };
    setTimeout(check, 0);
  }) });
})();`;

let preload: string | undefined;

/** The script every frame of a pooled page gets before its own scripts run. */
export function preloadScript(): string {
  // Not in the blank document a page is parked on between scans: nothing is scanned there, and
  // evaluating axe-core's bundle is the costliest part of loading it. Blank child frames keep it,
  // since axe-core needs itself in every frame it descends into.
  // The instance is also kept where the page cannot replace it: a page's own global `axe` (a
  // script's `var axe`, a copy of axe-core it ships) would otherwise be what the scan runs.
  preload ??= `if (!(window === window.top && location.href === 'about:blank')) {\n${axeScript()}\n;axe.configure({ allowedOrigins: ['<unsafe_all_origins>'] });\nObject.defineProperty(window, '__wcagaiAxe', { value: window.axe });\n${SETTLE_TRACKER}\n}`;
  return preload;
}

/**
 * Refuses WebSockets in every frame: their handshakes bypass request interception (CDP's Fetch domain
 * never sees them), so the target guard cannot check where they go. A page sees what it would see
 * for a socket that could not connect: an `error` then a `close` (1006) event. Used when private
 * targets are not allowed. Dedicated and shared workers keep their own WebSocket: this runs in
 * documents only.
 */
const WEBSOCKET_GUARD = `(() => {
  if (typeof WebSocket !== 'function') return;
  const fire = (target, event) => {
    target.dispatchEvent(event);
    const handler = target['on' + event.type];
    if (typeof handler === 'function') handler.call(target, event);
  };
  class BlockedWebSocket extends EventTarget {
    constructor(url, protocols) {
      super();
      const parsed = new URL(String(url), location.href);
      if (parsed.protocol === 'http:') parsed.protocol = 'ws:';
      if (parsed.protocol === 'https:') parsed.protocol = 'wss:';
      if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
        throw new DOMException("The URL's scheme must be either 'http', 'https', 'ws', or 'wss'.", 'SyntaxError');
      }
      this.url = parsed.href;
      this.readyState = 0;
      this.protocol = '';
      this.extensions = '';
      this.bufferedAmount = 0;
      this.binaryType = 'blob';
      this.onopen = this.onerror = this.onclose = this.onmessage = null;
      void protocols;
      setTimeout(() => {
        this.readyState = 3;
        fire(this, new Event('error'));
        fire(this, new CloseEvent('close', { code: 1006, reason: '', wasClean: false }));
      }, 0);
    }
    send() {
      if (this.readyState === 0) throw new DOMException('Still in CONNECTING state.', 'InvalidStateError');
    }
    close() {}
  }
  for (const [name, value] of [['CONNECTING', 0], ['OPEN', 1], ['CLOSING', 2], ['CLOSED', 3]]) {
    Object.defineProperty(BlockedWebSocket, name, { value });
    Object.defineProperty(BlockedWebSocket.prototype, name, { value });
  }
  Object.defineProperty(BlockedWebSocket, 'name', { value: 'WebSocket' });
  Object.defineProperty(window, 'WebSocket', { value: BlockedWebSocket, writable: true, configurable: true });
  if ('WebSocketStream' in window) delete window.WebSocketStream;
})();`;

/** The script that refuses WebSockets in every frame of a page (see WEBSOCKET_GUARD). */
export function websocketGuardScript(): string {
  return WEBSOCKET_GUARD;
}
