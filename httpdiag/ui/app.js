// lockdiag live page. Plain JavaScript, no dependencies, no build step.
//
// Data: the websocket at <root>/stream (a hello frame with history, then
// sample, breach, recovered and snapshot frames), the status JSON at
// <root>?format=json every few seconds (rule states, wait sites), reports
// at <root>/snapshots/{id}. Every text from the server goes into the page
// with textContent, never as HTML.
'use strict';

(() => {
  // ---- where things are -------------------------------------------------

  const token = new URLSearchParams(location.search).get('token') || '';
  // The page is <root>/ui, root normally /debug/locks.
  const root = location.pathname.replace(/\/ui\/?$/, '');

  // apiURL is for fetches: the token travels in the Authorization header.
  function apiURL(path, query) {
    const u = new URL(root + path, location.href);
    for (const [k, v] of Object.entries(query || {})) u.searchParams.set(k, v);
    return u.toString();
  }
  // linkURL is for plain links (downloads), which cannot carry a header.
  function linkURL(path) {
    const u = new URL(root + path, location.href);
    if (token) u.searchParams.set('token', token);
    return u.pathname + u.search;
  }
  function headers(extra) {
    const h = Object.assign({}, extra);
    if (token) h.Authorization = 'Bearer ' + token;
    return h;
  }

  // ---- constants --------------------------------------------------------

  const KEEP_MS = 5 * 60 * 1000; // history kept: the largest window
  const MAX_SAMPLES = 20000; // bound on kept samples whatever the interval
  const MAX_SNAPSHOTS = 50;
  const MAX_EVENTS = 8;
  const STATUS_EVERY_MS = 3000;

  const COLORS = {
    mutex_wait: '#1f5fbf',
    lock_waiters: '#7a3fc2',
    sched_latency_p99: '#0b7a55',
    goroutines: '#39424e',
    goroutines_waiting: '#c45f00',
    goroutines_runnable: '#1f5fbf',
    futex_waiters: '#7a3fc2',
    run_delay: '#0b7a55',
    ctx_switches: '#5b6573',
  };
  const UNITS = {
    mutex_wait: 's/s', sched_latency_p99: 's', run_delay: 's/s', ctx_switches: '1/s',
  };

  // The plots: which signals each one draws. size sets the grid span.
  const PLOTS = [
    { id: 'mutex_wait', series: ['mutex_wait'], size: 'big', fill: true },
    { id: 'lock_waiters', series: ['lock_waiters'], size: 'big', fill: true },
    { id: 'sched_latency_p99', series: ['sched_latency_p99'], size: 'mid', fill: true },
    {
      id: 'goroutines', title: 'goroutines',
      help: 'live, waiting on anything, waiting for a CPU',
      series: ['goroutines', 'goroutines_waiting', 'goroutines_runnable'], size: 'mid',
    },
    { id: 'futex_waiters', series: ['futex_waiters'], size: 'small', fill: true, note: 'Linux only (/proc)' },
    { id: 'run_delay', series: ['run_delay'], size: 'small', fill: true, note: 'Linux only (/proc)' },
    { id: 'ctx_switches', series: ['ctx_switches'], size: 'small', fill: true, note: 'Linux only (/proc)' },
  ];

  // ---- state ------------------------------------------------------------

  const S = {
    signals: new Map(), // name -> {unit, help}
    intervalMs: 100,
    // The samples: times (ms) and one value array per signal (NaN when
    // not measured), from index head on.
    t: [],
    v: new Map(),
    head: 0,
    received: 0,
    hellos: 0,
    rules: [], // RuleStatus, from hello and status
    episodes: [], // breaches: {rule, signal, start, end}
    snaps: new Map(), // id -> SnapshotInfo (+ urls)
    events: [],
    dropped: 0,
    windowMs: 300 * 1000,
    hover: null, // time under the pointer, ms
    selected: '',
    status: null,
  };

  // ---- small helpers ----------------------------------------------------

  const $ = (id) => document.getElementById(id);

  // el builds an element; text is set with textContent.
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function setData(name, value) { document.body.dataset[name] = String(value); }

  function parseTime(s) {
    if (!s) return NaN;
    const t = Date.parse(s);
    return Number.isFinite(t) && t > 0 ? t : NaN;
  }

  // Go durations as strings ("100ms", "1m30s") to milliseconds.
  function parseGoDuration(s) {
    const units = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1e3, m: 6e4, h: 3.6e6 };
    let ms = 0;
    const re = /([0-9.]+)(ns|us|µs|ms|s|m|h)/g;
    let m;
    let any = false;
    while ((m = re.exec(s || '')) !== null) { ms += parseFloat(m[1]) * units[m[2]]; any = true; }
    return any ? ms : NaN;
  }

  // A duration from lockdiag's JSON to milliseconds: a Go duration string
  // ("1.5s", what the server writes) or integer nanoseconds (older servers).
  function durMs(v) {
    if (typeof v === 'number') return v / 1e6;
    if (typeof v === 'string') return parseGoDuration(v);
    return NaN;
  }

  function pad2(n) { return n < 10 ? '0' + n : String(n); }
  function clock(ms) {
    const d = new Date(ms);
    return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
  }

  function trimZeros(s) { return s.includes('.') ? s.replace(/\.?0+$/, '') : s; }

  function fmtNum(v) {
    const a = Math.abs(v);
    if (a === 0) return '0';
    if (a >= 1e9) return trimZeros((v / 1e9).toFixed(2)) + 'G';
    if (a >= 1e6) return trimZeros((v / 1e6).toFixed(2)) + 'M';
    if (a >= 1e4) return trimZeros((v / 1e3).toFixed(1)) + 'k';
    if (a >= 100) return v.toFixed(0);
    if (a >= 10) return trimZeros(v.toFixed(1));
    if (a >= 1) return trimZeros(v.toFixed(2));
    if (a >= 0.01) return trimZeros(v.toFixed(3));
    return v.toPrecision(2);
  }

  // seconds as a duration
  function fmtSeconds(v) {
    const a = Math.abs(v);
    if (a === 0) return '0';
    if (a < 1e-6) return fmtNum(v * 1e9) + ' ns';
    if (a < 1e-3) return fmtNum(v * 1e6) + ' µs';
    if (a < 1) return fmtNum(v * 1e3) + ' ms';
    if (a < 120) return fmtNum(v) + ' s';
    return fmtNum(v / 60) + ' min';
  }

  function fmt(v, unit) {
    if (typeof v !== 'number' || !Number.isFinite(v)) return '–';
    switch (unit) {
      case 's': return fmtSeconds(v);
      case 's/s': return fmtNum(v) + ' s/s';
      case '1/s': return fmtNum(v) + '/s';
      case '': case undefined: return fmtNum(v);
      default: return fmtNum(v) + ' ' + unit;
    }
  }

  function unitOf(signal) {
    const info = S.signals.get(signal);
    if (info && typeof info.unit === 'string') return info.unit;
    return UNITS[signal] || '';
  }

  function fmtBytes(n) {
    if (!(n >= 0)) return '';
    if (n < 1024) return n + ' B';
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KiB';
    return (n / 1024 / 1024).toFixed(1) + ' MiB';
  }

  // The signal a rule is about: the rule text starts with it.
  function ruleSignal(rule) {
    const m = /^\s*([a-z0-9_]+)/.exec(rule || '');
    return m ? m[1] : '';
  }

  function basename(p) { return String(p || '').replace(/^.*[/\\]/, ''); }
  function shortFunc(f) { return String(f || '').replace(/^.*\//, ''); }

  // ---- the sample store -------------------------------------------------

  function seriesOf(name) {
    let a = S.v.get(name);
    if (!a) {
      // a signal seen for the first time: NaN for the samples before it
      a = new Array(S.t.length).fill(NaN);
      S.v.set(name, a);
    }
    return a;
  }

  function resetSamples() {
    S.t = [];
    S.v = new Map();
    S.head = 0;
    for (const name of S.signals.keys()) seriesOf(name);
    for (const p of PLOTS) for (const name of p.series) seriesOf(name);
  }

  function lastTime() { return S.t.length > S.head ? S.t[S.t.length - 1] : NaN; }

  function addSample(s) {
    if (!s) return false;
    const t = parseTime(s.t);
    // The hello's history may end with the sample the first sample frame
    // carries again: keep times increasing.
    if (!Number.isFinite(t) || t <= lastTime()) return false;
    S.t.push(t);
    for (const [name, arr] of S.v) {
      const x = s[name];
      arr.push(typeof x === 'number' ? x : NaN);
    }
    for (const k of Object.keys(s)) {
      if (k !== 't' && !S.v.has(k) && typeof s[k] === 'number') {
        const arr = seriesOf(k);
        arr[arr.length - 1] = s[k];
      }
    }
    prune();
    return true;
  }

  function prune() {
    const n = S.t.length;
    const cutoff = S.t[n - 1] - KEEP_MS;
    while (S.head < n && S.t[S.head] < cutoff) S.head++;
    if (n - S.head > MAX_SAMPLES) S.head = n - MAX_SAMPLES;
    if (S.head > 4096) {
      S.t.splice(0, S.head);
      for (const arr of S.v.values()) arr.splice(0, S.head);
      S.head = 0;
    }
    const oldest = S.t[S.head];
    S.episodes = S.episodes.filter((e) => !(e.end < oldest));
  }

  // first index i >= head with t[i] >= x
  function lowerBound(x) {
    let lo = S.head;
    let hi = S.t.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (S.t[mid] < x) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  // ---- plots ------------------------------------------------------------

  const plots = [];

  function buildPlots() {
    const box = $('plots');
    box.textContent = '';
    for (const cfg of PLOTS) {
      const legend = el('span', { class: 'legend' });
      const chips = new Map();
      if (cfg.series.length > 1) {
        for (const name of cfg.series) {
          const val = el('b', { text: '–' });
          const sw = el('i', { class: 'swatch sw-' + name });
          chips.set(name, val);
          legend.append(el('span', { class: 'chip', title: name }, sw, name.replace(/^goroutines_/, '') + ' ', val));
        }
      }
      const now = el('span', { class: 'now', text: '–' });
      const help = el('span', { class: 'help', text: cfg.help || '' });
      const canvas = el('canvas', { role: 'img', 'aria-label': cfg.title || cfg.id });
      const card = el('div', { class: 'card ' + cfg.size, 'data-plot': cfg.id },
        el('div', { class: 'card-head' },
          el('span', { class: 'name', text: cfg.title || cfg.id }),
          cfg.series.length > 1 ? legend : help,
          cfg.series.length > 1 ? null : now),
        el('div', { class: 'canvas-box' }, canvas));
      box.append(card);
      const p = { cfg, canvas, now, help, chips, card, w: 0, h: 0 };
      plots.push(p);
      canvas.addEventListener('mousemove', (ev) => hoverAt(p, ev));
      canvas.addEventListener('mouseleave', () => { S.hover = null; redraw(); });
    }
    const ro = new ResizeObserver(() => { for (const p of plots) sizeCanvas(p); redraw(); });
    for (const p of plots) ro.observe(p.canvas.parentElement);
  }

  function sizeCanvas(p) {
    const box = p.canvas.parentElement.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    p.w = Math.max(50, Math.floor(box.width));
    p.h = Math.max(40, Math.floor(box.height));
    p.canvas.width = Math.round(p.w * dpr);
    p.canvas.height = Math.round(p.h * dpr);
  }

  const M = { left: 58, right: 10, top: 8, bottom: 20 }; // plot margins, px

  function domain() {
    const x1 = lastTime();
    if (!Number.isFinite(x1)) return null;
    let x0 = x1 - S.windowMs;
    const first = S.t[S.head];
    // Until there is a window's worth of history, stretch what there is,
    // with at least 10 s on the axis.
    if (first > x0) x0 = Math.min(first, x1 - 10000);
    return [x0, x1];
  }

  function hoverAt(p, ev) {
    const d = domain();
    if (!d) return;
    const r = p.canvas.getBoundingClientRect();
    const x = ev.clientX - r.left;
    const w = p.w - M.left - M.right;
    if (x < M.left || x > M.left + w) { S.hover = null; } else {
      S.hover = d[0] + (x - M.left) / w * (d[1] - d[0]);
    }
    redraw();
  }

  // niceStep returns a round step for about n ticks over span.
  function niceStep(span, n) {
    const raw = span / n;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const f of [1, 2, 2.5, 5, 10]) if (raw <= f * mag) return f * mag;
    return 10 * mag;
  }

  const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300].map((s) => s * 1000);

  function drawPlot(p, d) {
    const ctx = p.canvas.getContext('2d');
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, p.w, p.h);
    const W = p.w - M.left - M.right;
    const H = p.h - M.top - M.bottom;
    ctx.font = '11px system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif';
    ctx.textBaseline = 'middle';

    const series = p.cfg.series;
    const unit = unitOf(series[0]);
    let i0 = 0;
    let i1 = 0;
    let max = 0;
    let any = false;
    if (d) {
      i0 = Math.max(S.head, lowerBound(d[0]) - 1);
      i1 = S.t.length;
      for (const name of series) {
        const arr = S.v.get(name);
        if (!arr) continue;
        for (let i = i0; i < i1; i++) {
          const v = arr[i];
          if (v === v) { any = true; if (v > max) max = v; }
        }
      }
    }
    // Thresholds of the rules on these signals.
    const thresholds = [];
    for (const r of S.rules) {
      const sig = ruleSignal(r.rule);
      if (series.includes(sig) && Number.isFinite(r.threshold) && r.threshold > 0) {
        thresholds.push({ rule: r, value: r.threshold, state: r.state });
      }
    }
    let ymax = max;
    const above = [];
    for (const th of thresholds) {
      // Scale to show the threshold unless it is far above the data.
      if (th.value <= Math.max(max, 1e-9) * 10 || !any) ymax = Math.max(ymax, th.value); else above.push(th);
    }
    if (!(ymax > 0)) ymax = unit === 's' ? 0.001 : unit === 's/s' ? 0.1 : 1;
    if (unit === '' && ymax < 1) ymax = 1; // counts
    const step = niceStep(ymax * 1.05, H < 90 ? 2 : 4);
    ymax = Math.ceil(ymax * 1.05 / step) * step;

    const X = (t) => M.left + (t - d[0]) / (d[1] - d[0]) * W;
    const Y = (v) => M.top + H - v / ymax * H;

    // grid and y labels
    ctx.strokeStyle = '#e6e9ee';
    ctx.lineWidth = 1;
    ctx.fillStyle = '#5b6573';
    ctx.textAlign = 'right';
    for (let v = 0; v <= ymax + step / 2; v += step) {
      const y = Math.round(Y(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(M.left, y);
      ctx.lineTo(M.left + W, y);
      ctx.stroke();
      ctx.fillText(fmt(v, unit), M.left - 6, y);
    }
    ctx.strokeStyle = '#c4cad3';
    ctx.strokeRect(M.left + 0.5, M.top + 0.5, W, H);

    if (!d) {
      noData(ctx, p, W, H, 'waiting for samples…');
      return;
    }

    // x labels: clock times
    const span = d[1] - d[0];
    const maxTicks = Math.max(2, Math.floor(W / 64));
    const tstep = TIME_STEPS.find((s) => span / s <= maxTicks) || 600000;
    ctx.textAlign = 'center';
    ctx.fillStyle = '#5b6573';
    for (let t = Math.ceil(d[0] / tstep) * tstep; t <= d[1]; t += tstep) {
      const x = Math.round(X(t)) + 0.5;
      ctx.strokeStyle = '#eef0f3';
      ctx.beginPath();
      ctx.moveTo(x, M.top);
      ctx.lineTo(x, M.top + H);
      ctx.stroke();
      if (x > M.left + 24 && x < M.left + W - 24) ctx.fillText(clock(t), x, M.top + H + 11);
    }

    ctx.save();
    ctx.beginPath();
    ctx.rect(M.left, M.top, W, H);
    ctx.clip();

    // breaches of rules on these signals: shaded from breach to recovery
    for (const e of S.episodes) {
      if (!series.includes(e.signal)) continue;
      const xa = Math.max(M.left, X(e.start));
      const xb = Math.min(M.left + W, X(Number.isFinite(e.end) ? e.end : d[1]));
      if (xb < M.left || xa > M.left + W) continue;
      ctx.fillStyle = 'rgba(207, 34, 46, 0.10)';
      ctx.fillRect(xa, M.top, Math.max(2, xb - xa), H);
      ctx.fillStyle = '#cf222e';
      ctx.fillRect(Math.round(xa), M.top, 2, H);
    }

    // snapshots: a dashed line at the trigger time
    for (const s of S.snaps.values()) {
      const t = parseTime(s.trigger && s.trigger.time) || parseTime(s.time);
      if (!(t >= d[0] && t <= d[1])) continue;
      const x = Math.round(X(t)) + 0.5;
      const sel = s.id === S.selected;
      ctx.strokeStyle = sel ? '#0b5cd5' : '#8c95a1';
      ctx.lineWidth = sel ? 2 : 1;
      ctx.setLineDash([3, 3]);
      ctx.beginPath();
      ctx.moveTo(x, M.top + 6);
      ctx.lineTo(x, M.top + H);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = sel ? '#0b5cd5' : '#8c95a1';
      ctx.beginPath();
      ctx.moveTo(x - 4, M.top);
      ctx.lineTo(x + 4, M.top);
      ctx.lineTo(x, M.top + 6);
      ctx.closePath();
      ctx.fill();
    }
    ctx.lineWidth = 1;

    // the series
    const gapMs = Math.max(S.intervalMs * 5, 2000);
    for (const name of series) {
      const arr = S.v.get(name);
      if (!arr) continue;
      const segs = polyline(arr, i0, i1, X, Y, gapMs);
      const color = COLORS[name] || '#39424e';
      for (const seg of segs) {
        if (p.cfg.fill && series.length === 1) {
          ctx.beginPath();
          ctx.moveTo(seg[0], Y(0));
          for (let k = 0; k < seg.length; k += 2) ctx.lineTo(seg[k], seg[k + 1]);
          ctx.lineTo(seg[seg.length - 2], Y(0));
          ctx.closePath();
          ctx.fillStyle = color + '22';
          ctx.fill();
        }
        ctx.beginPath();
        ctx.moveTo(seg[0], seg[1]);
        for (let k = 2; k < seg.length; k += 2) ctx.lineTo(seg[k], seg[k + 1]);
        if (seg.length === 2) ctx.lineTo(seg[0] + 1, seg[1]);
        ctx.strokeStyle = color;
        ctx.lineWidth = 1.5;
        ctx.stroke();
      }
    }

    // thresholds: dashed red line with the rule's comparison
    ctx.lineWidth = 1.5;
    for (const th of thresholds) {
      if (above.includes(th)) continue;
      const y = Math.round(Y(th.value)) + 0.5;
      ctx.strokeStyle = '#cf222e';
      ctx.setLineDash([6, 4]);
      ctx.beginPath();
      ctx.moveTo(M.left, y);
      ctx.lineTo(M.left + W, y);
      ctx.stroke();
      ctx.setLineDash([]);
      label(ctx, 'SLO > ' + fmt(th.value, unit), M.left + W - 4, y - 8, '#cf222e', 'right');
    }
    ctx.restore();
    for (const th of above) {
      label(ctx, 'SLO > ' + fmt(th.value, unit) + ' (above)', M.left + W - 4, M.top + 9, '#cf222e', 'right');
    }

    // the pointer
    if (S.hover !== null) {
      const x = Math.round(X(S.hover)) + 0.5;
      ctx.strokeStyle = 'rgba(29, 36, 48, 0.55)';
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(x, M.top);
      ctx.lineTo(x, M.top + H);
      ctx.stroke();
    }

    if (!any) noData(ctx, p, W, H, p.cfg.note ? 'no data: ' + p.cfg.note : 'no data');
  }

  function label(ctx, text, x, y, color, align) {
    ctx.textAlign = align;
    const w = ctx.measureText(text).width;
    const x0 = align === 'right' ? x - w : x;
    ctx.fillStyle = 'rgba(255, 255, 255, 0.85)';
    ctx.fillRect(x0 - 3, y - 7, w + 6, 14);
    ctx.fillStyle = color;
    ctx.fillText(text, x, y);
  }

  function noData(ctx, p, W, H, text) {
    ctx.textAlign = 'center';
    ctx.fillStyle = '#8c95a1';
    ctx.fillText(text, M.left + W / 2, M.top + H / 2);
  }

  // polyline turns samples into pixel segments (x, y pairs), one per run
  // without gaps. Several samples on one pixel column become a vertical
  // stroke from their minimum to their maximum, so that a spike is never
  // lost and drawing costs O(width) however many samples there are.
  function polyline(arr, i0, i1, X, Y, gapMs) {
    const segs = [];
    let seg = null;
    let col = null; // {px, first, min, max, last}
    let prevT = -Infinity;
    const flush = () => {
      if (!col) return;
      seg.push(col.px, Y(col.first));
      if (col.min !== col.max) seg.push(col.px, Y(col.min), col.px, Y(col.max));
      if (col.last !== col.first || col.min !== col.max) seg.push(col.px, Y(col.last));
      col = null;
    };
    for (let i = i0; i < i1; i++) {
      const v = arr[i];
      const t = S.t[i];
      if (v !== v || t - prevT > gapMs) {
        flush();
        if (seg && seg.length) segs.push(seg);
        seg = null;
        if (v !== v) { prevT = -Infinity; continue; }
      }
      prevT = t;
      if (!seg) seg = [];
      const px = Math.round(X(t) * 2) / 2;
      if (col && col.px === px) {
        if (v < col.min) col.min = v;
        if (v > col.max) col.max = v;
        col.last = v;
      } else {
        flush();
        col = { px, first: v, min: v, max: v, last: v };
      }
    }
    flush();
    if (seg && seg.length) segs.push(seg);
    return segs;
  }

  // value of a signal at time t (the sample at or before it)
  function valueAt(name, t) {
    const arr = S.v.get(name);
    if (!arr || S.t.length <= S.head) return NaN;
    let i = t === null ? S.t.length - 1 : lowerBound(t + 1) - 1;
    if (i < S.head) i = S.head;
    // the newest measured value at or before i
    for (let k = i; k >= S.head && k > i - 50; k--) if (arr[k] === arr[k]) return arr[k];
    return NaN;
  }

  function updateReadouts() {
    const t = S.hover;
    for (const p of plots) {
      if (p.cfg.series.length === 1) {
        const name = p.cfg.series[0];
        const v = valueAt(name, t);
        p.now.textContent = (t !== null ? clock(t) + '  ' : '') + fmt(v, unitOf(name));
        p.now.classList.toggle('hovering', t !== null);
      } else {
        for (const [name, val] of p.chips) val.textContent = fmt(valueAt(name, t), unitOf(name));
      }
    }
  }

  let drawPending = false;
  let lastDraw = 0;
  function redraw() {
    if (drawPending) return;
    drawPending = true;
    const wait = Math.max(0, 100 - (performance.now() - lastDraw));
    setTimeout(() => requestAnimationFrame(() => {
      drawPending = false;
      lastDraw = performance.now();
      const d = domain();
      for (const p of plots) if (p.w > 0) drawPlot(p, d);
      updateReadouts();
    }), wait);
  }

  // ---- the stream -------------------------------------------------------

  let ws = null;
  let backoff = 500;
  let retryAt = 0;
  let retryTimer = 0;

  function setConn(state, text) {
    const c = $('conn');
    c.className = 'conn ' + state;
    c.textContent = text;
    setData('conn', state);
  }

  function connect() {
    clearTimeout(retryTimer);
    const u = new URL(root + '/stream', location.href);
    u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    if (token) u.searchParams.set('token', token);
    setConn('connecting', 'connecting…');
    let sock;
    try {
      sock = new WebSocket(u.toString());
    } catch (err) {
      retry('cannot open the stream: ' + err.message);
      return;
    }
    ws = sock;
    let helloSeen = false;
    sock.onmessage = (ev) => {
      let f;
      try { f = JSON.parse(ev.data); } catch (_) { return; }
      if (f.type === 'hello') { helloSeen = true; backoff = 500; }
      handleFrame(f);
    };
    sock.onclose = (ev) => {
      if (ws !== sock) return;
      ws = null;
      let why = helloSeen ? 'stream closed' : 'cannot connect';
      if (ev.reason) why += ': ' + ev.reason;
      retry(why);
    };
  }

  function retry(why) {
    const delay = backoff * (0.8 + 0.4 * Math.random());
    backoff = Math.min(backoff * 2, 15000);
    retryAt = Date.now() + delay;
    const tick = () => {
      const left = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
      setConn('down', why + ' · retrying in ' + left + ' s');
      if (Date.now() >= retryAt) { connect(); return; }
      retryTimer = setTimeout(tick, Math.min(1000, retryAt - Date.now()));
    };
    tick();
  }

  function handleFrame(f) {
    if (typeof f.dropped === 'number') setDropped(f.dropped);
    const t = parseTime(f.time);
    switch (f.type) {
      case 'hello': onHello(f); break;
      case 'sample':
        if (addSample(f.sample)) {
          S.received++;
          setData('samples', S.received);
          redraw();
        }
        break;
      case 'breach': {
        const b = f.breach || {};
        S.episodes.push({ rule: b.rule, signal: b.signal || ruleSignal(b.rule), start: t, end: NaN });
        setRuleState(b.rule, 'breached', b.value, b.threshold);
        addEvent(t, 'breach', 'breach of ' + b.rule + ': ' + b.signal + ' = ' +
          fmt(b.value, unitOf(b.signal)) + ' > ' + fmt(b.threshold, unitOf(b.signal)) +
          (b.snapshot ? '; a snapshot follows' : ''));
        episodesChanged();
        redraw();
        break;
      }
      case 'recovered': {
        const b = f.breach || {};
        const open = S.episodes.find((e) => e.rule === b.rule && !Number.isFinite(e.end));
        if (open) open.end = t;
        else if (durMs(b.duration) > 0) S.episodes.push({ rule: b.rule, signal: b.signal || ruleSignal(b.rule), start: t - durMs(b.duration), end: t });
        setRuleState(b.rule, 'ok', b.value, b.threshold);
        addEvent(t, 'recovered', 'recovered: ' + b.rule +
          (durMs(b.duration) > 0 ? ' after ' + fmtSeconds(durMs(b.duration) / 1e3) : '') +
          (Number.isFinite(b.peak) && b.peak ? ', peak ' + fmt(b.peak, unitOf(b.signal)) : ''));
        episodesChanged();
        redraw();
        break;
      }
      case 'snapshot':
        if (f.snapshot) {
          addSnapshot(f.snapshot);
          addEvent(t, 'snapshot', 'snapshot ' + f.snapshot.id + ' (' + triggerKind(f.snapshot) + ')');
          renderSnapshots();
          redraw();
        }
        break;
      case 'snapshot_skipped':
        addEvent(t, 'skipped', 'snapshot skipped: ' + (f.reason || ''));
        break;
      case 'snapshot_failed':
        addEvent(t, 'failed', 'snapshot failed: ' + (f.reason || ''));
        break;
      case 'named_locks':
        renderNamed(f.named_locks);
        break;
      case 'lock_order_inversion':
        if (f.inversion) addEvent(t, 'breach', inversionText(f.inversion));
        break;
      default:
        break;
    }
  }

  function onHello(f) {
    S.hellos++;
    setData('hellos', S.hellos);
    S.signals = new Map();
    for (const s of f.signals || []) S.signals.set(s.name, { unit: s.unit || '', help: s.help || '' });
    const iv = parseGoDuration(f.interval);
    if (iv > 0) S.intervalMs = iv * (f.every || 1);
    resetSamples();
    let n = 0;
    for (const s of f.timeline || []) if (addSample(s)) n++;
    S.received += n;
    setData('samples', S.received);
    S.rules = f.rules || [];
    // A rule that is in breach now started an episode before we came.
    for (const r of S.rules) {
      if ((r.state === 'breached' || r.state === 'clearing') &&
          !S.episodes.some((e) => e.rule === r.rule && !Number.isFinite(e.end))) {
        const start = parseTime(r.last_breach) || parseTime(r.since);
        if (Number.isFinite(start)) {
          S.episodes.push({ rule: r.rule, signal: ruleSignal(r.rule), start, end: NaN });
          // Its shading is on the plots: say so in the events too.
          addEvent(start, 'breach', 'breached before this page opened: ' + r.rule);
        }
      }
    }
    for (const s of f.snapshots || []) addSnapshot(s);
    const meta = ['every ' + (f.interval || '?') + (f.every > 1 ? ' ×' + f.every : '')];
    if (f.trace) meta.push('trace ' + f.trace);
    $('meta').textContent = meta.join(' · ');
    $('meta').title = meta.join('\n');
    for (const p of plots) {
      const info = S.signals.get(p.cfg.series[0]);
      if (p.cfg.series.length === 1 && info) {
        p.help.textContent = info.help;
        p.card.title = p.cfg.series[0] + ': ' + info.help;
      }
    }
    setConn('live', 'live');
    renderRules();
    renderNamed(f.named_locks);
    for (const inv of f.inversions || []) {
      if (!S.events.some((e) => e.text === inversionText(inv))) addEvent(parseTime(inv.time), 'breach', inversionText(inv));
    }
    renderSnapshots();
    episodesChanged();
    redraw();
    pollStatus();
  }

  function setDropped(n) {
    S.dropped = n;
    const d = $('dropped');
    d.hidden = !(n > 0);
    d.textContent = n > 0 ? n + ' frames dropped (this page read too slowly)' : '';
  }

  function episodesChanged() {
    setData('episodes', S.episodes.length);
    setData('openEpisodes', S.episodes.filter((e) => !Number.isFinite(e.end)).length);
  }

  function setRuleState(rule, state, value, threshold) {
    const r = S.rules.find((x) => x.rule === rule);
    if (!r) return;
    r.state = state;
    if (Number.isFinite(value)) r.value = value;
    if (Number.isFinite(threshold)) r.threshold = threshold;
    renderRules();
  }

  function addEvent(t, kind, text) {
    S.events.unshift({ t, kind, text });
    S.events.length = Math.min(S.events.length, MAX_EVENTS);
    const ul = $('events');
    ul.textContent = '';
    for (const e of S.events) {
      ul.append(el('li', { class: 'ev ev-' + e.kind },
        el('span', { class: 'when', text: Number.isFinite(e.t) ? clock(e.t) : '' }),
        el('span', { class: 'what', text: e.text, title: e.text })));
    }
    $('events-empty').hidden = S.events.length > 0;
  }

  // ---- status polling ---------------------------------------------------

  let statusBusy = false;
  let statusTimer = 0;

  async function pollStatus() {
    clearTimeout(statusTimer);
    if (statusBusy) return;
    statusBusy = true;
    try {
      const resp = await fetch(apiURL('', { format: 'json' }), { headers: headers(), cache: 'no-store' });
      if (!resp.ok) throw new Error(resp.status + ' ' + (await resp.text()).trim());
      const st = await resp.json();
      S.status = st;
      S.rules = Array.isArray(st.rules) ? st.rules : [];
      for (const s of st.snapshots || []) addSnapshot(s);
      renderRules();
      renderParked(st);
      renderNamed(st.named_locks, st.named_locks_total);
      renderSnapshots();
      $('snap-state').textContent = st.snapshot_in_flight ? 'one being taken…' : '';
      if (!st.running) setConn('down', 'lockdiag is stopped');
      notice('');
      redraw();
    } catch (err) {
      notice('status: ' + err.message);
    } finally {
      statusBusy = false;
      statusTimer = setTimeout(pollStatus, STATUS_EVERY_MS);
    }
  }

  const STATE_LABEL = { ok: 'ok', pending: 'pending', breached: 'breached', clearing: 'clearing', warming_up: 'warming up' };

  function renderRules() {
    const box = $('rules');
    box.textContent = '';
    if (!S.rules.length) {
      box.append(el('p', { class: 'empty', text: 'no rules (LOCKDIAG_SLO=off)' }));
      return;
    }
    for (const r of S.rules) {
      const sig = ruleSignal(r.rule);
      const unit = unitOf(sig);
      const parts = ['now ' + fmt(r.value, unit)];
      if (Number.isFinite(r.threshold) && r.threshold > 0) parts.push('threshold ' + fmt(r.threshold, unit));
      if (r.baseline) parts.push('baseline ' + fmt(r.baseline, unit));
      const since = parseTime(r.since);
      if (Number.isFinite(since)) parts.push('since ' + clock(since));
      const state = r.state || 'ok';
      box.append(el('div', { class: 'rule rule-' + state, 'data-state': state },
        el('span', { class: 'badge st-' + state, text: STATE_LABEL[state] || state }),
        el('div', { class: 'rule-body' },
          el('code', { class: 'rule-text', text: r.rule }),
          el('div', { class: 'rule-vals', text: parts.join(' · ') }),
          r.note ? el('div', { class: 'rule-note', text: r.note }) : null)));
    }
  }

  // The named locks (package locks): exact holders and hold times, from
  // the status and the stream's named_locks frames. The panel shows only
  // when the program names locks.
  function renderNamed(list, total) {
    list = list || [];
    $('named-panel').hidden = !list.length;
    setData('named', list.length);
    if (!list.length) return;
    $('named-sub').textContent = total > list.length ? list.length + ' of ' + total : '';
    const box = $('named');
    box.textContent = '';
    const table = el('table', { class: 'sites named' });
    for (const n of list.slice(0, 8)) {
      const wait = n['lock.wait.duration'] || {};
      const hold = n['lock.held.duration'] || {};
      let held = n.held ? 'held ' + fmtSeconds((n.held_for || 0) / 1e9) + (n.holder_goroutine ? ' by g' + n.holder_goroutine : '')
        : (n.readers ? n.readers + (n.readers === 1 ? ' reader' : ' readers') : 'free');
      if (n.stuck) held += ' · STUCK';
      table.append(el('tr', {
        class: n.stuck ? 'stuck' : '',
        title: n['lock.type'] + ' ' + n['lock.id'] + '\nwait p50 ' + fmtSeconds((wait.p50 || 0) / 1e9) + ', p99 ' + fmtSeconds((wait.p99 || 0) / 1e9) +
          '\nhold p50 ' + fmtSeconds((hold.p50 || 0) / 1e9) + ', p99 ' + fmtSeconds((hold.p99 || 0) / 1e9) +
          '\n' + (n.acquisitions || 0) + ' acquisitions, ' + (n.contended || 0) + ' waited'
      },
        el('td', { class: 'num', text: String(n.waiters || 0) }),
        el('td', { class: 'kind', text: 'p99 ' + fmtSeconds((wait.p99 || 0) / 1e9) }),
        el('td', { class: 'where' }, el('b', { text: n['lock.id'] }), ' ' + held)));
    }
    box.append(table);
    if (list.length > 8) box.append(el('p', { class: 'empty', text: '… ' + (list.length - 8) + ' more named locks' }));
  }

  function inversionText(inv) {
    return 'lock order inversion (potential deadlock): ' + inv.a + ' then ' + inv.b + ' by g' + inv.goroutine_ab +
      ', ' + inv.b + ' then ' + inv.a + ' by g' + inv.goroutine_ba;
  }

  function renderParked(st) {
    const box = $('parked');
    box.textContent = '';
    const when = parseTime(st.wait_sites_time);
    const now = parseTime(st.time);
    $('parked-age').textContent = Number.isFinite(when) && Number.isFinite(now)
      ? 'scanned ' + fmtSeconds(Math.max(0, now - when) / 1000) + ' ago' : '';
    const sites = st.wait_sites || [];
    if (st.wait_sites_note) {
      box.append(el('p', { class: 'empty', text: st.wait_sites_note }));
    } else if (!sites.length) {
      box.append(el('p', { class: 'empty', text: 'none' }));
    } else {
      const table = el('table', { class: 'sites' });
      for (const s of sites.slice(0, 6)) {
        table.append(el('tr', { title: (s.func || '') + '\n' + (s.file || '') + ':' + s.line },
          el('td', { class: 'num', text: String(s.waiters) }),
          el('td', { class: 'kind', text: s.kind }),
          el('td', { class: 'where' }, el('b', { text: shortFunc(s.func) }), ' ' + basename(s.file) + ':' + s.line)));
      }
      box.append(table);
      if (sites.length > 6) box.append(el('p', { class: 'empty', text: '… ' + (sites.length - 6) + ' more sites' }));
    }

    // The critical sections others waited for lately, from the mutex
    // profile (its stacks are the Unlock's), over the span of about a
    // minute that the status states. The profile records 1 contention in
    // MutexProfileFraction, whatever its delay: a site that rests on a
    // sample or two is rough, and with few samples in all the status
    // ranks nothing (holders_note says so).
    const all = st.holders || [];
    const holders = all.slice(0, 4);
    if (holders.length || st.holders_note) {
      const win = durMs(st.holders_window) > 0 ? ', last ' + fmtSeconds(Math.round(durMs(st.holders_window) / 1e3)) : '';
      const n = st.holders_samples || 0;
      box.append(el('h3', { text: 'Released by' },
        el('span', { class: 'sub', text: ' mutex profile' + win + ', ' + n + (n === 1 ? ' sample' : ' samples') })));
      if (st.holders_note) {
        box.append(el('p', { class: 'empty', text: st.holders_note }));
      } else {
        const fraction = Math.max(st.mutex_profile_fraction || 1, 1);
        // Where the fraction adapted within the span, each sample was
        // scaled by the fraction in force when it was recorded.
        const scaled = (st.holders_fractions || []).length > 1 ? 'each scaled by the fraction in force when it was recorded' : 'each scaled by ' + fraction;
        const table = el('table', { class: 'sites holders' });
        const row = (share, delay, where, title, badge) => table.append(el('tr', { title: title },
          el('td', { class: 'num', text: (share * 100).toFixed(share < 0.1 || share > 0.99 && share < 1 ? 1 : 0) + '%' }),
          el('td', { class: 'kind', text: fmtSeconds(delay / 1e9) }),
          el('td', { class: 'where' }, ...where, badge)));
        for (const h of holders) {
          const k = h.samples != null ? h.samples : Math.floor((h.count || 0) / fraction);
          const rough = k < 5 ? el('span', { class: 'badge rough', title: 'rests on ' + k + (k === 1 ? ' sample' : ' samples') + ', ' + scaled + ': one more or less moves its share a lot', text: k + (k === 1 ? ' sample' : ' samples') }) : null;
          row(h.share || 0, h.delay || 0, [el('b', { text: shortFunc(h.func) }), ' ' + basename(h.file) + ':' + h.line + ' '],
            (h.op || '') + ' in ' + (h.func || '') + '\n' + (h.file || '') + ':' + h.line + '\n' + k + ' samples', rough);
        }
        // The rest (further sites, the runtime's own locks), so that the
        // shares add up to 100%.
        const ns = v => { const ms = durMs(v); return isFinite(ms) ? ms * 1e6 : 0; };
        const total = ns(st.holders_total);
        let other = ns(st.holders_other);
        for (const h of all.slice(4)) other += h.delay || 0;
        if (total > 0 && other > 0) row(other / total, other, ['other sites and the runtime\'s own locks'], '');
        box.append(table);
      }
    }
  }

  function notice(text) {
    const n = $('notice');
    n.hidden = !text;
    n.textContent = text;
  }

  // ---- snapshots --------------------------------------------------------

  function triggerKind(s) { return (s.trigger && s.trigger.kind) || 'manual'; }

  function addSnapshot(s) {
    if (!s || !s.id) return;
    const old = S.snaps.get(s.id);
    S.snaps.set(s.id, Object.assign({}, old, s));
    if (S.snaps.size > MAX_SNAPSHOTS) {
      const sorted = [...S.snaps.values()].sort((a, b) => parseTime(a.time) - parseTime(b.time));
      for (const x of sorted.slice(0, S.snaps.size - MAX_SNAPSHOTS)) if (x.id !== S.selected) S.snaps.delete(x.id);
    }
    setData('snapshots', S.snaps.size);
  }

  function triggerText(s) {
    const tr = s.trigger || {};
    const b = tr.breach;
    if (b) {
      const u = unitOf(b.signal);
      let text = 'rule ' + b.rule + ': ' + b.signal + ' = ' + fmt(b.value, u) + ' > ' + fmt(b.threshold, u);
      if (b.baseline) text += ' (baseline ' + fmt(b.baseline, u) + ')';
      return text;
    }
    return (tr.kind || 'manual') + (tr.reason ? ': ' + tr.reason : '');
  }

  function renderSnapshots() {
    const ul = $('snapshots');
    ul.textContent = '';
    const list = [...S.snaps.values()].sort((a, b) => parseTime(b.time) - parseTime(a.time));
    for (const s of list) {
      const kind = triggerKind(s);
      const t = parseTime(s.time);
      const btn = el('button', {
        type: 'button', class: 'snap' + (s.id === S.selected ? ' selected' : ''), 'data-id': s.id,
        title: s.id + '\n' + triggerText(s), onclick: () => openReport(s.id),
      },
      el('span', { class: 'snap-top' },
        el('span', { class: 'when', text: Number.isFinite(t) ? clock(t) : '' }),
        el('span', { class: 'badge kind-' + kind, text: kind }),
        el('span', { class: 'snap-id', text: s.id }),
        s.partial ? el('span', { class: 'badge partial', text: 'partial' }) : null),
      el('span', { class: 'headline', text: s.headline || '(no headline)' }));
      ul.append(el('li', {}, btn));
    }
    $('snaps-empty').hidden = list.length > 0;
  }

  async function openReport(id) {
    const s = S.snaps.get(id);
    if (!s) return;
    S.selected = id;
    renderSnapshots();
    redraw();
    const panel = $('report');
    panel.hidden = false;
    setData('report', '');
    $('report-title').textContent = 'Snapshot ' + id;
    const took = Number.isFinite(durMs(s.took)) ? ' · took ' + fmtSeconds(durMs(s.took) / 1e3) : '';
    $('report-trigger').textContent = triggerText(s) + took + (s.partial ? ' · analysis partial (budget ran out)' : '') +
      (s.disk_error ? ' · disk: ' + s.disk_error : '');
    renderLinks(s);
    const pre = $('report-text');
    pre.textContent = 'loading the report…';
    pre.classList.add('loading');
    panel.scrollIntoView({ block: 'nearest' });
    try {
      const resp = await fetch(apiURL('/snapshots/' + encodeURIComponent(id)), {
        headers: headers({ Accept: 'text/plain' }), cache: 'no-store',
      });
      const text = await resp.text();
      if (S.selected !== id) return;
      if (!resp.ok) throw new Error(resp.status + ' ' + text.trim());
      pre.textContent = text;
      pre.classList.remove('loading');
      setData('report', id);
    } catch (err) {
      if (S.selected !== id) return;
      pre.textContent = 'could not load the report: ' + err.message;
      pre.classList.remove('loading');
    }
  }

  function renderLinks(s) {
    const box = $('report-links');
    box.textContent = '';
    const base = '/snapshots/' + encodeURIComponent(s.id);
    const files = Array.isArray(s.files) ? s.files : [];
    const has = (name) => !files.length || files.some((f) => f.name === name);
    box.append(el('span', { class: 'links-label', text: 'download' }));
    box.append(el('a', { class: 'dl primary', href: linkURL(base + '.zip'), download: 'lockdiag-' + s.id + '.zip', text: 'bundle .zip' + (s.bytes ? ' (' + fmtBytes(s.bytes) + ')' : '') }));
    const main = ['trace.out', 'mutex.pb.gz'];
    for (const name of main) {
      if (!has(name)) continue;
      box.append(el('a', { class: 'dl primary', href: linkURL(base + '/' + encodeURIComponent(name)), download: name, text: name }));
    }
    for (const f of files) {
      if (main.includes(f.name)) continue;
      box.append(el('a', {
        class: 'dl', href: linkURL(base + '/' + encodeURIComponent(f.name)),
        title: fmtBytes(f.bytes), text: f.name,
      }));
    }
  }

  async function takeSnapshot() {
    const btn = $('snap');
    btn.disabled = true;
    btn.textContent = 'Taking snapshot…';
    setData('posting', 'true');
    try {
      const resp = await fetch(apiURL('/snapshots', { format: 'json' }), {
        method: 'POST', headers: headers({ Accept: 'application/json' }), cache: 'no-store',
      });
      if (resp.status !== 201) {
        const text = (await resp.text()).trim().replace(/^lockdiag: /, '');
        throw new Error('POST /snapshots answered ' + resp.status + (text ? ': ' + text : ''));
      }
      const info = await resp.json();
      addSnapshot(info);
      renderSnapshots();
      notice('');
      openReport(info.id);
    } catch (err) {
      notice('snapshot failed: ' + err.message);
    } finally {
      btn.disabled = false;
      btn.textContent = 'Take snapshot now';
      setData('posting', 'false');
    }
  }

  // ---- wiring -----------------------------------------------------------

  function init() {
    buildPlots();
    for (const p of plots) sizeCanvas(p);
    resetSamples();
    $('snap').addEventListener('click', takeSnapshot);
    $('report-close').addEventListener('click', () => {
      $('report').hidden = true;
      S.selected = '';
      setData('report', '');
      renderSnapshots();
      redraw();
    });
    for (const b of document.querySelectorAll('[data-window]')) {
      b.addEventListener('click', () => {
        S.windowMs = Number(b.dataset.window) * 1000;
        for (const o of document.querySelectorAll('[data-window]')) o.classList.toggle('on', o === b);
        redraw();
      });
    }
    redraw();
    connect();
  }

  init();
})();
