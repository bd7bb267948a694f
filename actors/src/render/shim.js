// headend page script, run before any script of the template (Page.addScriptToEvaluateOnNewDocument).
//
// Frames are produced only when the renderer calls HeadlessExperimental.beginFrame, with frame
// times exactly 1/fps apart, so document.timeline advances exactly one frame per output frame.
// Everything a page can use to tell time follows that virtual clock:
//   performance.now(), requestAnimationFrame timestamps: ms since frame 0 (k * 1000 / fps);
//   Date.now(), new Date(): clock_origin_ms + the same;
//   setTimeout / setInterval: fire at the frame whose virtual time reaches them.
// Before the first frame (while loading) the clock stands at 0.
//
// API for templates:
//   window.headend.item           the item's metadata (data, never HTML: set it with textContent)
//   window.headend.position_ms    item position at the current frame
//   window.headend.frame          index of the current frame
//   window.headend.waitFor(p)     delay the first frame until promise p settles
//   'headend:item' on window      dispatched once, when rendering starts (detail: item)
//   'headend:tick' on window      dispatched at each frame (detail: {position_ms, frame})
//
// <video> elements do not follow frame times when they play (the media clock is real time),
// so they are kept paused and seeked to the item position (modulo their duration when they
// loop) before each frame is drawn; the renderer waits for the seeks (__prepare).
(() => {
  'use strict';
  const job = __HEADEND_JOB__;
  if (Object.prototype.hasOwnProperty.call(window, 'headend')) return;

  const RealDate = Date;
  const realRaf = window.requestAnimationFrame.bind(window);
  const timeline = document.timeline;
  const frameMs = 1000 / job.fps;

  let started = false;
  let startTimeline = null;
  let t0 = null;

  // Frame index of a timeline time, once the first frame after start has been seen.
  function frameAt(tl) {
    if (!started || tl === null || tl === undefined) return 0;
    if (t0 === null) {
      if (tl === startTimeline) return 0;
      t0 = tl;
    }
    return Math.max(0, Math.round((tl - t0) / frameMs));
  }
  const frameNow = () => frameAt(timeline.currentTime);
  const msOf = (k) => (k * 1000) / job.fps;
  const vnow = () => msOf(frameNow());
  const wallNow = () => job.clock_origin_ms + Math.floor(vnow());

  // Date and performance.now follow the virtual clock.
  function HeadendDate(...args) {
    if (!new.target) return new RealDate(wallNow()).toString();
    return Reflect.construct(RealDate, args.length ? args : [wallNow()], new.target);
  }
  HeadendDate.prototype = RealDate.prototype;
  HeadendDate.now = wallNow;
  HeadendDate.parse = RealDate.parse;
  HeadendDate.UTC = RealDate.UTC;
  Object.defineProperty(HeadendDate, 'name', { value: 'Date' });
  window.Date = HeadendDate;
  Object.defineProperty(performance, 'now', { value: vnow, configurable: true, writable: true });

  // requestAnimationFrame callbacks get the virtual time.
  window.requestAnimationFrame = (cb) => realRaf((tl) => cb(msOf(frameAt(tl))));

  // Timers on the virtual clock, run at each frame in due order.
  const timers = new Map();
  let nextId = 1;
  let nextSeq = 1;
  function addTimer(fn, delay, args, repeat) {
    const d = Math.max(0, Number(delay) || 0);
    const id = nextId++;
    timers.set(id, { due: vnow() + d, seq: nextSeq++, fn, args, every: repeat ? Math.max(d, 4) : null });
    return id;
  }
  window.setTimeout = (fn, delay, ...args) => addTimer(fn, delay, args, false);
  window.setInterval = (fn, delay, ...args) => addTimer(fn, delay, args, true);
  window.clearTimeout = (id) => { timers.delete(id); };
  window.clearInterval = (id) => { timers.delete(id); };
  function runTimers(now) {
    for (let guard = 0; guard < 1000; guard++) {
      let bestId = null;
      let best = null;
      for (const [id, t] of timers) {
        if (t.due <= now && (best === null || t.due < best.due || (t.due === best.due && t.seq < best.seq))) {
          bestId = id;
          best = t;
        }
      }
      if (best === null) return;
      if (best.every === null) timers.delete(bestId);
      else { best.due += best.every; best.seq = nextSeq++; }
      try {
        if (typeof best.fn === 'function') best.fn(...best.args);
        else (0, eval)(String(best.fn));
      } catch (e) {
        queueMicrotask(() => { throw e; });
      }
    }
  }

  // Videos: paused, seeked per frame.
  let videoSync = false;
  const realPlay = HTMLMediaElement.prototype.play;
  HTMLMediaElement.prototype.play = function () {
    if (videoSync && this instanceof HTMLVideoElement) return Promise.resolve();
    return realPlay.call(this);
  };
  function seekVideo(v, seconds) {
    return new Promise((resolve) => {
      if (!v.paused) v.pause();
      const d = v.duration;
      let target = seconds;
      if (Number.isFinite(d) && d > 0) target = v.loop ? seconds % d : Math.min(seconds, d);
      // Half a millisecond in: the picture whose time has come, never the one before.
      target += 0.0005;
      if (v.readyState >= 2 && !v.seeking && Math.abs(v.currentTime - target) < 1e-6) return resolve();
      v.addEventListener('seeked', () => resolve(), { once: true });
      v.addEventListener('error', () => resolve(), { once: true });
      v.currentTime = target;
    });
  }
  function videoLoaded(v) {
    return new Promise((resolve) => {
      if (v.readyState >= 2 || v.error) return resolve();
      v.addEventListener('loadeddata', () => resolve(), { once: true });
      v.addEventListener('error', () => resolve(), { once: true });
    });
  }

  const waits = [];
  const item = Object.freeze(Object.assign({}, job.item));
  const api = {
    item,
    position_ms: 0,
    frame: 0,
    fps: job.fps,
    waitFor(p) { waits.push(Promise.resolve(p)); },
  };
  let lastFrame = -1;
  function tick() {
    const k = frameNow();
    if (k > lastFrame) {
      lastFrame = k;
      api.frame = k;
      api.position_ms = Math.floor((k * 1000) / job.fps);
      runTimers(msOf(k));
      window.dispatchEvent(new CustomEvent('headend:tick', { detail: { position_ms: api.position_ms, frame: k } }));
    }
    realRaf(tick);
  }
  // Called by the renderer once the page has loaded; resolves when the first frame may be drawn.
  Object.defineProperty(api, '__start', {
    value: async () => {
      if (started) return { videos: videoSync };
      window.dispatchEvent(new CustomEvent('headend:item', { detail: item }));
      const images = Array.from(document.images, (img) => (img.src ? img.decode().catch(() => {}) : null));
      const videos = Array.from(document.querySelectorAll('video'));
      videoSync = videos.length > 0;
      await Promise.all([...images, ...videos.map(videoLoaded), document.fonts.ready, ...waits.map((p) => p.catch(() => {}))]);
      startTimeline = timeline.currentTime;
      started = true;
      realRaf(tick);
      return { videos: videoSync };
    },
  });
  // Called by the renderer before frame k is drawn when the page has videos.
  Object.defineProperty(api, '__prepare', {
    value: (k) => Promise.all(Array.from(document.querySelectorAll('video'), (v) => seekVideo(v, k / job.fps))).then(() => true),
  });
  Object.defineProperty(window, 'headend', { value: Object.seal(api), writable: false, configurable: false, enumerable: true });
  // Child frames start with their own load (the renderer starts the top document).
  if (window !== window.top) window.addEventListener('load', () => { api.__start(); });
})();
