// Berth's dashboard: one page, plain JavaScript, no dependency.
//
// Every data call goes to the REST API with "Authorization: Harbor-Secret
// <secret>". The secret is typed once and kept in this tab's
// sessionStorage; it never goes into a URL or a cookie. Live updates come
// from GET /api/v1/events, read with fetch (the browser's own client of
// server-sent events cannot send a header); polling covers what that
// stream cannot see (changes made by other hosts).
//
// The DOM is built with createElement and textContent only: nothing the
// service sends is ever parsed as HTML (the page's CSP forbids it too).
'use strict';

(() => {
  const API = '/api/v1';
  const SECRET_KEY = 'berth.secret';
  const STATUSES = ['Pending', 'Scheduled', 'Running', 'Stopped', 'Error', 'Success'];
  const FINAL = new Set(['Stopped', 'Error', 'Success']);
  const POLL_MS = 5000; // pools, lists, a job: what other hosts change
  const LOG_MS = 1500; // a running job's log
  const MAX_CHECKINS = 200;
  const ID_RE = /^[0-9a-f]{24}(@[0-9]+)?$/;

  const $ = (id) => document.getElementById(id);

  const state = {
    secret: null,
    view: '',
    names: [],
    list: { cursors: [''], index: 0, next: '', page: 1, total: -1, seq: 0, refresh: null },
    policies: { page: 1, total: 0, seq: 0, refresh: null },
    job: null, // the job page's state, see openJob
    stream: { ctrl: null, backoff: 1000, timer: null, lastByte: 0, keepalive: 15, live: false },
    poll: null,
  };

  // ---- The API ----

  class ApiError extends Error {
    constructor(status, body, text) {
      const b = body && typeof body === 'object' ? body : {};
      super(b.details || text || 'HTTP ' + status);
      this.status = status;
      this.code = b.code;
      this.apiMessage = b.message || '';
      this.details = b.details || (typeof text === 'string' ? text.trim() : '');
    }
  }

  // describe says what the service answered, as a person reads it.
  function describe(err) {
    if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
    if (err.status === 0) return err.details;
    let s = 'HTTP ' + err.status;
    if (err.apiMessage) s += ' ' + err.apiMessage;
    if (err.code) s += ' (code ' + err.code + ')';
    if (err.details) s += ': ' + err.details;
    return s;
  }

  function authHeader(secret) {
    return { Authorization: 'Harbor-Secret ' + (secret === undefined ? state.secret : secret) };
  }

  async function call(method, path, body, secret) {
    const headers = authHeader(secret);
    const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error', referrerPolicy: 'no-referrer' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, null, 'Cannot reach the job service: ' + e.message);
    }
    const text = await res.text();
    if (!res.ok) {
      let parsed = null;
      try { parsed = JSON.parse(text); } catch (_) { /* not JSON */ }
      const err = new ApiError(res.status, parsed, text);
      if (res.status === 401 && secret === undefined && state.secret) {
        signOut('The service refused the secret: ' + describe(err));
      }
      throw err;
    }
    return { status: res.status, headers: res.headers, text };
  }

  async function getJSON(path) {
    const r = await call('GET', path);
    return { data: r.text ? JSON.parse(r.text) : null, headers: r.headers };
  }

  const jobPath = (id) => API + '/jobs/' + encodeURIComponent(id);

  // ---- Small DOM helpers ----

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('data-')) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function showError(id, text) {
    const e = $(id);
    if (!e) return;
    e.textContent = text || '';
    e.hidden = !text;
  }

  function statusBadge(status) {
    return el('span', { class: 'status status-' + (STATUSES.includes(status) ? status : 'unknown'), text: status || '?', 'data-status': status || '' });
  }

  function time(unix) {
    if (!unix) return '';
    const d = new Date(unix * 1000);
    if (isNaN(d)) return '';
    return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  }

  function bytes(n) {
    if (typeof n !== 'number' || !isFinite(n)) return String(n);
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(1)) + ' ' + units[i];
  }

  function clip(s, n) {
    s = String(s);
    return s.length > n ? s.slice(0, n - 1) + '…' : s;
  }

  // ---- Check-ins, readable ----

  // parseCheckin turns a check-in into {json} (an object), {percent}, or
  // plain text.
  function parseCheckin(text) {
    const out = { text: text || '' };
    const t = out.text.trim();
    if (t.startsWith('{')) {
      try {
        const v = JSON.parse(t);
        if (v && typeof v === 'object' && !Array.isArray(v)) out.json = v;
      } catch (_) { /* text */ }
    }
    if (!out.json) {
      const m = t.match(/%\s*(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)\s*%/);
      if (m) out.percent = Math.max(0, Math.min(100, parseFloat(m[1] || m[2])));
    }
    return out;
  }

  const isBytesKey = (k) => /bytes|space|size/i.test(k);

  function valueText(k, v) {
    if (typeof v === 'number' && isBytesKey(k)) return bytes(v) + ' (' + v + ')';
    if (v !== null && typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }

  function hasFraction(j) {
    return j && typeof j.index === 'number' && typeof j.total === 'number' && j.total > 0;
  }

  // summarize is one line for a table cell.
  function summarize(text) {
    if (!text) return '';
    const c = parseCheckin(text);
    if (!c.json) return clip(c.text, 120);
    const j = c.json;
    const parts = [];
    if (hasFraction(j)) parts.push((j.blob !== undefined ? 'blob ' : '') + j.index + '/' + j.total);
    for (const [k, v] of Object.entries(j)) {
      if (k === 'index' || k === 'total') continue;
      parts.push(k + ': ' + clip(valueText(k, v), 60));
    }
    return clip(parts.join(' · '), 160);
  }

  // progressView shows the latest check-in readably.
  function progressView(text, at) {
    const box = el('div', { class: 'progress-view' });
    if (!text) {
      box.append(el('p', { class: 'hint', text: 'No check-in yet.' }));
      return box;
    }
    const c = parseCheckin(text);
    let value = null, max = 100, label = '';
    if (c.json && hasFraction(c.json)) {
      value = Math.min(c.json.index, c.json.total);
      max = c.json.total;
      label = c.json.index + ' of ' + c.json.total;
    } else if (c.percent !== undefined) {
      value = c.percent;
      label = c.percent + '%';
    }
    if (value !== null) {
      box.append(el('div', { class: 'progress' },
        el('progress', { id: 'progress-bar', max, value }),
        el('span', { id: 'progress-label', text: label })));
    }
    if (c.json) {
      const dl = el('dl', { class: 'summary', id: 'progress-fields' });
      for (const [k, v] of Object.entries(c.json)) {
        dl.append(el('dt', { text: k }), el('dd', { text: valueText(k, v), 'data-key': k }));
      }
      box.append(dl);
    } else {
      box.append(el('p', { id: 'progress-text', text: c.text }));
    }
    if (at) box.append(el('p', { class: 'hint', text: 'Checked in at ' + time(at) }));
    return box;
  }

  // ---- Sign in and out ----

  function showView(name) {
    state.view = name;
    for (const id of ['login', 'overview', 'policies', 'job']) $(id).hidden = id !== name;
    $('nav').hidden = name === 'login';
    $('logout').hidden = name === 'login';
  }

  async function signIn(ev) {
    ev.preventDefault();
    const input = $('secret');
    const secret = input.value.trim();
    showError('login-error', '');
    if (!secret) {
      showError('login-error', 'Type the secret first.');
      return;
    }
    $('login-button').disabled = true;
    try {
      await call('GET', API + '/config', undefined, secret);
    } catch (err) {
      if (err.status === 401) {
        showError('login-error', 'Wrong secret: the service refused it. Check CORE_SECRET and type it again.' +
          (err.details ? '\n(The service said: ' + err.details + ')' : ''));
      } else {
        showError('login-error', 'Cannot sign in: ' + describe(err));
      }
      input.select();
      return;
    } finally {
      $('login-button').disabled = false;
    }
    sessionStorage.setItem(SECRET_KEY, secret);
    input.value = '';
    start(secret);
  }

  function signOut(message) {
    state.secret = null;
    sessionStorage.removeItem(SECRET_KEY);
    stopStream();
    clearInterval(state.poll);
    state.poll = null;
    closeJob();
    setLive('off', 'not connected');
    showView('login');
    showError('login-error', message || '');
    $('secret').focus();
  }

  function start(secret) {
    state.secret = secret;
    route();
    loadPools();
    connect();
    clearInterval(state.poll);
    state.poll = setInterval(poll, POLL_MS);
  }

  function poll() {
    if (!state.secret || document.hidden) return;
    if (state.view === 'overview') {
      loadPools();
      if (firstPage()) loadJobs();
    } else if (state.view === 'policies') {
      loadPolicies();
    } else if (state.view === 'job' && state.job) {
      refreshJob();
      // Only a job known to have executions: asking another one is a
      // refused request in the service's log each time.
      if (state.job.hasExec) loadExecutions();
    }
  }

  // ---- Routing (the hash holds no secret: only a job ID) ----

  function route() {
    if (!state.secret) {
      showView('login');
      return;
    }
    const h = location.hash.replace(/^#/, '');
    const m = h.match(/^\/jobs\/([^/]+)$/);
    if (m) {
      const id = decodeURIComponent(m[1]);
      if (ID_RE.test(id)) {
        openJob(id);
        return;
      }
    }
    closeJob();
    if (h === '/policies') {
      showView('policies');
      loadPolicies();
      return;
    }
    showView('overview');
    loadPools();
    loadJobs();
  }

  // ---- Worker pools ----

  async function loadPools() {
    let pools = [];
    try {
      const r = await getJSON(API + '/stats');
      pools = (r.data && r.data.worker_pools) || [];
      showError('pools-error', '');
    } catch (err) {
      showError('pools-error', 'Worker pools: ' + describe(err));
    }
    const box = $('pools');
    box.replaceChildren();
    const names = new Set();
    for (const p of pools) {
      for (const n of p.job_names || []) names.add(n);
      const chips = el('div', { class: 'chips' });
      for (const n of (p.job_names || []).slice().sort()) chips.append(el('span', { class: 'chip', text: n }));
      box.append(el('div', { class: 'card pool', 'data-pool-id': p.worker_pool_id },
        el('h3', { text: p.worker_pool_id }),
        el('div', {}, statusBadge(p.status), ' ', p.concurrency + ' workers'),
        el('div', { class: 'hint', text: 'started ' + time(p.started_at) + ' · heartbeat ' + time(p.heartbeat_at) }),
        chips));
    }
    if (pools.length) setNames([...names].sort());
  }

  function setNames(names) {
    if (names.join() === state.names.join()) return;
    state.names = names;
    const sel = $('filter-name');
    const cur = sel.value;
    sel.replaceChildren(el('option', { value: '', text: 'any' }));
    for (const n of names) sel.append(el('option', { value: n, text: n }));
    if (cur && !names.includes(cur)) sel.append(el('option', { value: cur, text: cur }));
    sel.value = cur;
  }

  // ---- Counts (from the stream) ----

  function renderCounts(c) {
    const jobs = (c && c.jobs) || {};
    const head = $('counts-head');
    head.replaceChildren(el('th', { scope: 'col', text: 'Job type' }));
    for (const s of STATUSES) head.append(el('th', { scope: 'col', text: s }));
    head.append(el('th', { scope: 'col', text: 'Queued' }));
    const body = $('counts-body');
    body.replaceChildren();
    for (const name of Object.keys(jobs).sort()) {
      const tr = el('tr', { 'data-name': name }, el('th', { scope: 'row', text: name }));
      for (const s of STATUSES) {
        const n = (jobs[name] || {})[s] || 0;
        tr.append(el('td', { class: 'num', text: String(n), 'data-status': s }));
      }
      tr.append(el('td', { class: 'num', text: String((c.queued || {})[name] || 0), 'data-status': 'queued' }));
      body.append(tr);
    }
    const total = el('tr', {}, el('th', { scope: 'row', text: 'Waiting: scheduled ' + (c.scheduled || 0) + ', retrying ' + (c.retrying || 0) }));
    total.firstChild.colSpan = STATUSES.length + 2;
    body.append(total);
    $('counts').hidden = false;
    $('counts-empty').hidden = true;
  }

  // ---- The jobs list ----

  function filters() {
    return {
      status: $('filter-status').value,
      name: $('filter-name').value,
      kind: $('filter-kind').value,
      size: parseInt($('filter-size').value, 10) || 25,
    };
  }

  const pagedKind = (kind) => kind === 'Scheduled' || kind === 'Periodic';

  function firstPage() {
    return pagedKind(filters().kind) ? state.list.page === 1 : state.list.index === 0;
  }

  function resetPaging() {
    state.list.cursors = [''];
    state.list.index = 0;
    state.list.page = 1;
  }

  async function loadJobs() {
    const f = filters();
    const q = new URLSearchParams({ page_size: String(f.size) });
    if (f.status) q.set('status', f.status);
    if (f.name) q.set('name', f.name);
    if (f.kind) q.set('kind', f.kind);
    const paged = pagedKind(f.kind);
    if (paged) q.set('page_number', String(state.list.page));
    else if (state.list.cursors[state.list.index]) q.set('cursor', state.list.cursors[state.list.index]);
    const seq = ++state.list.seq;
    let r;
    try {
      r = await getJSON(API + '/jobs?' + q.toString());
    } catch (err) {
      if (seq !== state.list.seq) return;
      showError('jobs-error', 'Jobs: ' + describe(err));
      $('jobs-body').replaceChildren();
      updatePager(paged, false);
      return;
    }
    if (seq !== state.list.seq) return; // a newer load is on its way
    showError('jobs-error', '');
    const list = (r.data || []).map((e) => e.job).filter(Boolean);
    const body = $('jobs-body');
    // Rows first seen on the stream keep saying so (data-source).
    const known = new Map([...body.children].map((tr) => [tr.dataset.id, tr.dataset.source]));
    body.replaceChildren(...list.map((st) => jobRow(st, known.size > 0 && !known.has(st.id), known.get(st.id))));
    $('jobs-empty').hidden = list.length > 0;
    state.list.next = r.headers.get('Next-Cursor') || '';
    const tc = r.headers.get('Total-Count');
    state.list.total = tc === null ? -1 : parseInt(tc, 10);
    const more = paged ? state.list.page * f.size < state.list.total : (state.list.next !== '' && state.list.next !== '0');
    updatePager(paged, more);
  }

  function updatePager(paged, more) {
    const first = paged ? state.list.page === 1 : state.list.index === 0;
    $('jobs-first').disabled = first;
    $('jobs-prev').disabled = first;
    $('jobs-next').disabled = !more;
    const n = paged ? state.list.page : state.list.index + 1;
    $('jobs-page').textContent = 'page ' + n + (state.list.total >= 0 ? ' of ' + Math.max(1, Math.ceil(state.list.total / filters().size)) + ' (' + state.list.total + ' jobs)' : '');
  }

  function jobRow(st, fresh, source) {
    const tr = el('tr', { class: fresh ? 'fresh' : '', 'data-id': st.id, 'data-status': st.status, 'data-name': st.name,
      'data-source': source || 'list' });
    tr.append(
      el('td', {}, el('a', { href: '#/jobs/' + encodeURIComponent(st.id) }, el('code', { text: st.id }))),
      el('td', { text: st.kind || '', 'data-col': 'kind' }),
      el('td', { text: st.name || '', 'data-col': 'name' }),
      el('td', { 'data-col': 'status' }, statusBadge(st.status)),
      el('td', { class: 'checkin', text: summarize(st.check_in), title: st.check_in || '', 'data-col': 'checkin' }),
      el('td', { text: time(st.enqueue_time), 'data-col': 'enqueued' }),
      el('td', { text: time(st.update_time), 'data-col': 'updated' }));
    return tr;
  }

  function matches(f, ev) {
    return (!f.status || f.status === ev.status) && (!f.name || f.name === ev.name) && (!f.kind || f.kind === ev.kind);
  }

  // onListEvent applies an event to the list at once; a reload follows.
  function onListEvent(ev) {
    const body = $('jobs-body');
    const secs = Math.floor((ev.time || Date.now()) / 1000);
    let tr = null;
    for (const row of body.children) if (row.dataset.id === ev.job_id) { tr = row; break; }
    if (tr) {
      tr.dataset.status = ev.status;
      tr.querySelector('[data-col=status]').replaceChildren(statusBadge(ev.status));
      if (ev.check_in) {
        const c = tr.querySelector('[data-col=checkin]');
        c.textContent = summarize(ev.check_in);
        c.title = ev.check_in;
      }
      tr.querySelector('[data-col=updated]').textContent = time(secs);
    } else if (ev.from === undefined || ev.from === '' || ev.reason === 'submitted' || ev.reason === 'fired') {
      const f = filters();
      if (firstPage() && !pagedKind(f.kind) && matches(f, ev)) {
        body.prepend(jobRow({ id: ev.job_id, kind: ev.kind, name: ev.name, status: ev.status, check_in: ev.check_in, enqueue_time: secs, update_time: secs }, true, 'stream'));
        while (body.children.length > f.size) body.lastChild.remove();
        $('jobs-empty').hidden = true;
      }
    }
    if (firstPage()) later(state.list, 'refresh', loadJobs, 1000);
  }

  // later runs fn once, delay ms after the first of a burst of calls.
  function later(holder, key, fn, delay) {
    if (holder[key]) return;
    holder[key] = setTimeout(() => {
      holder[key] = null;
      fn();
    }, delay);
  }

  // ---- Periodic policies ----

  async function loadPolicies() {
    const size = 25;
    const seq = ++state.policies.seq;
    let r;
    try {
      r = await getJSON(API + '/jobs?kind=Periodic&page_size=' + size + '&page_number=' + state.policies.page);
    } catch (err) {
      if (seq === state.policies.seq) showError('policies-error', 'Periodic policies: ' + describe(err));
      return;
    }
    if (seq !== state.policies.seq) return;
    showError('policies-error', '');
    const list = (r.data || []).map((e) => e.job).filter(Boolean);
    $('policies-body').replaceChildren(...list.map((st) => el('tr', { 'data-id': st.id },
      el('td', {}, el('a', { href: '#/jobs/' + encodeURIComponent(st.id) }, el('code', { text: st.id }))),
      el('td', { text: st.name }),
      el('td', {}, el('code', { text: st.cron_spec || '' })),
      el('td', {}, statusBadge(st.status)),
      el('td', { text: time(st.enqueue_time) }),
      el('td', { class: 'checkin', text: clip(JSON.stringify(st.parameters || {}), 200) }))));
    $('policies-empty').hidden = list.length > 0;
    state.policies.total = parseInt(r.headers.get('Total-Count') || '0', 10);
    $('policies-prev').disabled = state.policies.page <= 1;
    $('policies-next').disabled = state.policies.page * size >= state.policies.total;
    $('policies-page').textContent = state.policies.total + ' policies, page ' + state.policies.page;
  }

  // ---- A job's page ----

  function openJob(id) {
    if (!state.job || state.job.id !== id) {
      closeJob();
      state.job = { id, stats: null, lastCheckin: null, lastCheckinMs: null, logText: null, logTimer: null,
        refresh: null, execRefresh: null, execPage: 1, hasExec: false, seq: 0 };
      $('job-id').textContent = id;
      $('job-status').replaceChildren();
      $('job-summary').replaceChildren();
      $('job-stats').textContent = '';
      $('log').textContent = '';
      $('checkins').replaceChildren();
      $('progress').replaceChildren(progressView(''));
      $('executions-section').hidden = true;
      showError('job-error', '');
      showError('action-error', '');
      $('action-result').textContent = '';
    }
    showView('job');
    refreshJob();
    loadExecutions();
  }

  function closeJob() {
    if (!state.job) return;
    clearTimeout(state.job.logTimer);
    clearTimeout(state.job.refresh);
    clearTimeout(state.job.execRefresh);
    state.job = null;
  }

  async function refreshJob() {
    const j = state.job;
    if (!j) return;
    const seq = ++j.seq;
    let st;
    try {
      st = (await getJSON(jobPath(j.id))).data.job;
    } catch (err) {
      if (state.job === j && seq === j.seq) showError('job-error', 'Job ' + j.id + ': ' + describe(err));
      return;
    }
    if (state.job !== j || seq !== j.seq) return;
    showError('job-error', '');
    renderJob(st);
    loadLog();
  }

  function renderJob(st) {
    const j = state.job;
    j.stats = st;
    $('job-status').replaceChildren(statusBadge(st.status));
    const rows = [
      ['Name', st.name], ['Kind', st.kind], ['Status', st.status], ['Unique', st.unique ? 'yes' : 'no'],
      ['Enqueued', time(st.enqueue_time)], ['Updated', time(st.update_time)], ['Run at', time(st.run_at)],
      ['Cron', st.cron_spec], ['Revision', st.revision], ['Check-in at', time(st.check_in_at)],
      ['Upstream', st.upstream_job_id], ['Status hook', st.web_hook_url],
    ];
    const dl = $('job-summary');
    dl.replaceChildren();
    for (const [k, v] of rows) {
      if (v === undefined || v === null || v === '') continue;
      const dd = el('dd', { 'data-field': k.toLowerCase().replace(/\W+/g, '-') });
      if (k === 'Upstream') dd.append(el('a', { href: '#/jobs/' + encodeURIComponent(v) }, el('code', { text: v })));
      else dd.textContent = String(v);
      dl.append(el('dt', { text: k }), dd);
    }
    $('job-stats').textContent = JSON.stringify(st, null, 2);
    // The stats keep the latest check-in to the second; the stream's are
    // to the millisecond. One from the stats that is not newer than the
    // last one shown is that one, or older: the stream was first.
    if (st.check_in && (j.lastCheckinMs === null || (st.check_in_at || 0) * 1000 > j.lastCheckinMs)) {
      addCheckin(st.check_in, st.check_in_at ? st.check_in_at * 1000 : null);
      j.lastCheckinMs = (st.check_in_at || 0) * 1000 - 1; // another in the same second is still newer
    }
    if (!j.lastCheckin) $('progress').replaceChildren(progressView(''));
    if (st.kind === 'Periodic') $('executions-section').hidden = false;
  }

  // addCheckin records a check-in once and shows it as the progress.
  function addCheckin(text, ms) {
    const j = state.job;
    if (!j || j.lastCheckin === text) return;
    j.lastCheckin = text;
    const at = ms ? new Date(ms) : new Date();
    const list = $('checkins');
    list.append(el('li', {}, el('time', { text: at.toISOString().slice(11, 23) + 'Z' }), el('span', { class: 'mono', text: text })));
    while (list.children.length > MAX_CHECKINS) list.firstChild.remove();
    list.scrollTop = list.scrollHeight;
    $('progress').replaceChildren(progressView(text, Math.floor(at.getTime() / 1000)));
  }

  async function loadLog() {
    const j = state.job;
    if (!j) return;
    clearTimeout(j.logTimer);
    j.logTimer = null;
    let text = null;
    try {
      text = (await call('GET', jobPath(j.id) + '/log')).text;
    } catch (err) {
      if (state.job === j && err.status !== 404) $('log').textContent = 'The log cannot be read: ' + describe(err);
    }
    if (state.job !== j) return;
    if (text !== null && text !== j.logText) {
      j.logText = text;
      const pre = $('log');
      pre.textContent = text || '(nothing logged yet)';
      if ($('log-follow').checked) pre.scrollTop = pre.scrollHeight;
    }
    // Follow while it runs (and a little after: the last lines land late).
    const running = j.stats && !FINAL.has(j.stats.status);
    if (running || (j.stats && Date.now() / 1000 - j.stats.update_time < 3)) {
      const delay = text && text.length > (1 << 20) ? 4 * LOG_MS : LOG_MS;
      j.logTimer = setTimeout(() => { if (!document.hidden) loadLog(); else j.logTimer = setTimeout(loadLog, LOG_MS); }, delay);
    }
  }

  async function loadExecutions() {
    const j = state.job;
    if (!j) return;
    const size = 10;
    let r;
    try {
      r = await getJSON(jobPath(j.id) + '/executions?page_size=' + size + '&page_number=' + j.execPage);
    } catch (err) {
      if (state.job !== j) return;
      // 400: neither periodic nor a job with sub-jobs: nothing to show.
      if (err.status !== 400) {
        $('executions-section').hidden = false;
        $('executions-body').replaceChildren(el('tr', {}, el('td', { colSpan: 7, class: 'error', text: describe(err) })));
      }
      return;
    }
    if (state.job !== j) return;
    j.hasExec = true;
    const list = (r.data || []).map((e) => e.job).filter(Boolean);
    const total = parseInt(r.headers.get('Total-Count') || '0', 10);
    $('executions-section').hidden = false;
    $('executions-body').replaceChildren(...list.map((st) => el('tr', { 'data-id': st.id, 'data-status': st.status },
      el('td', {}, el('a', { href: '#/jobs/' + encodeURIComponent(st.id) }, el('code', { text: st.id }))),
      el('td', { text: st.kind }),
      el('td', { text: st.name }),
      el('td', {}, statusBadge(st.status)),
      el('td', { class: 'checkin', text: summarize(st.check_in) }),
      el('td', { text: time(st.run_at) }),
      el('td', { text: time(st.update_time) }))));
    if (!list.length) $('executions-body').replaceChildren(el('tr', {}, el('td', { colSpan: 7, class: 'hint', text: 'No execution yet.' })));
    $('executions-prev').disabled = j.execPage <= 1;
    $('executions-next').disabled = j.execPage * size >= total;
    $('executions-page').textContent = total + ' in all, page ' + j.execPage;
  }

  function onJobPageEvent(ev) {
    const j = state.job;
    if (!j) return;
    if (ev.job_id === j.id) {
      $('job-status').replaceChildren(statusBadge(ev.status));
      if (j.stats) j.stats.status = ev.status;
      if (ev.reason === 'checked_in' && ev.check_in) {
        addCheckin(ev.check_in, ev.time);
        j.lastCheckinMs = Math.max(j.lastCheckinMs || 0, ev.time || Date.now());
      }
      later(j, 'refresh', refreshJob, 300);
    }
    if (ev.upstream_job_id === j.id) later(j, 'execRefresh', loadExecutions, 500);
  }

  async function act(action) {
    const j = state.job;
    if (!j) return;
    const buttons = document.querySelectorAll('.actions button');
    buttons.forEach((b) => { b.disabled = true; });
    showError('action-error', '');
    $('action-result').textContent = action + '…';
    try {
      await call('POST', jobPath(j.id), { action });
      $('action-result').textContent = {
        stop: 'Stop requested: the job ends Stopped once its plugin returns (a job that had ended is left as it is).',
        cancel: 'Cancel requested: the job ends Stopped.',
        retry: 'Retry requested: the job runs again.',
      }[action];
    } catch (err) {
      $('action-result').textContent = '';
      showError('action-error', 'The service refused ' + action + ': ' + describe(err));
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
    if (state.job === j) refreshJob();
  }

  // ---- The live stream ----

  function setLive(kind, text) {
    const e = $('live');
    e.className = 'live ' + kind;
    e.textContent = text;
    e.dataset.state = kind;
  }

  function stopStream() {
    const s = state.stream;
    clearTimeout(s.timer);
    s.timer = null;
    const ctrl = s.ctrl;
    s.ctrl = null; // before abort: an aborted stream that is not current does not reconnect
    if (ctrl) ctrl.abort();
  }

  function reconnectLater() {
    const s = state.stream;
    if (!state.secret || s.timer) return;
    const delay = s.backoff;
    s.backoff = Math.min(s.backoff * 2, 15000);
    s.timer = setTimeout(() => {
      s.timer = null;
      connect();
    }, delay);
  }

  async function connect() {
    const s = state.stream;
    if (!state.secret || s.ctrl) return;
    const ctrl = new AbortController();
    s.ctrl = ctrl;
    s.lastByte = Date.now();
    setLive('off', 'connecting…');
    const watchdog = setInterval(() => {
      // Silence past the keep-alive: the connection is dead.
      if (Date.now() - s.lastByte > (s.keepalive + 10) * 1000) ctrl.abort();
    }, 2000);
    let why = '';
    try {
      const res = await fetch(API + '/events', {
        headers: Object.assign({ Accept: 'text/event-stream' }, authHeader()),
        signal: ctrl.signal, cache: 'no-store', credentials: 'omit', redirect: 'error', referrerPolicy: 'no-referrer',
      });
      if (!res.ok) {
        const text = await res.text();
        let body = null;
        try { body = JSON.parse(text); } catch (_) { /* not JSON */ }
        const err = new ApiError(res.status, body, text);
        if (res.status === 401) {
          signOut('The service refused the secret: ' + describe(err));
          return;
        }
        throw err;
      }
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        s.lastByte = Date.now();
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          onBlock(block);
        }
        if (buf.length > (4 << 20)) throw new Error('an event larger than 4 MiB');
      }
      why = 'the stream ended';
    } catch (err) {
      why = describe(err);
    } finally {
      clearInterval(watchdog);
      if (s.ctrl === ctrl) {
        s.ctrl = null;
        s.live = false;
        if (state.secret) {
          setLive('off', 'reconnecting…');
          $('live').title = 'Live updates paused: ' + why;
          reconnectLater();
        }
      }
    }
  }

  function onBlock(block) {
    let name = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue; // a comment: keep-alive
      const k = line.indexOf(':');
      const field = k < 0 ? line : line.slice(0, k);
      let value = k < 0 ? '' : line.slice(k + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') name = value;
      else if (field === 'data') data.push(value);
    }
    if (!data.length) return;
    let v;
    try { v = JSON.parse(data.join('\n')); } catch (_) { return; }
    onEvent(name, v);
  }

  function onEvent(name, v) {
    const s = state.stream;
    switch (name) {
      case 'ready':
        s.live = true;
        s.backoff = 1000;
        s.keepalive = v.keepalive_seconds || 15;
        setLive('on', 'live');
        $('live').title = 'Live updates from this host; other hosts\u2019 changes show within ' + POLL_MS / 1000 + ' s';
        resync();
        break;
      case 'counts':
        renderCounts(v);
        break;
      case 'job':
        // How many job events this page got live (shown on hover; tests read it).
        $('live').dataset.events = String((parseInt($('live').dataset.events || '0', 10) || 0) + 1);
        if (state.view === 'overview') onListEvent(v);
        else if (state.view === 'policies' && v.kind === 'Periodic') later(state.policies, 'refresh', loadPolicies, 1000);
        onJobPageEvent(v);
        break;
      case 'overflow':
        setLive('off', 'catching up…');
        break; // the server ends the stream: reconnecting reloads
      case 'end':
        setLive('off', 'host stopping');
        break;
    }
  }

  // resync reloads what the stream missed while it was down.
  function resync() {
    if (state.view === 'overview' && firstPage()) loadJobs();
    else if (state.view === 'policies') loadPolicies();
    else if (state.view === 'job' && state.job) { refreshJob(); if (state.job.hasExec) loadExecutions(); }
  }

  // ---- Wiring ----

  function init() {
    $('login-form').addEventListener('submit', signIn);
    $('logout').addEventListener('click', () => signOut(''));
    $('filters').addEventListener('submit', (e) => e.preventDefault());
    $('filters').addEventListener('change', () => { resetPaging(); loadJobs(); });
    $('jobs-first').addEventListener('click', () => { resetPaging(); loadJobs(); });
    $('jobs-prev').addEventListener('click', () => {
      if (pagedKind(filters().kind)) state.list.page = Math.max(1, state.list.page - 1);
      else state.list.index = Math.max(0, state.list.index - 1);
      loadJobs();
    });
    $('jobs-next').addEventListener('click', () => {
      if (pagedKind(filters().kind)) state.list.page++;
      else {
        state.list.cursors.length = state.list.index + 1;
        state.list.cursors.push(state.list.next);
        state.list.index++;
      }
      loadJobs();
    });
    $('policies-prev').addEventListener('click', () => { state.policies.page = Math.max(1, state.policies.page - 1); loadPolicies(); });
    $('policies-next').addEventListener('click', () => { state.policies.page++; loadPolicies(); });
    $('executions-prev').addEventListener('click', () => { if (state.job) { state.job.execPage = Math.max(1, state.job.execPage - 1); loadExecutions(); } });
    $('executions-next').addEventListener('click', () => { if (state.job) { state.job.execPage++; loadExecutions(); } });
    for (const b of document.querySelectorAll('.actions button')) b.addEventListener('click', () => act(b.dataset.action));
    $('log-follow').addEventListener('change', () => { if ($('log-follow').checked) { const p = $('log'); p.scrollTop = p.scrollHeight; } });
    window.addEventListener('hashchange', route);
    document.addEventListener('visibilitychange', () => { if (!document.hidden) poll(); });

    const saved = sessionStorage.getItem(SECRET_KEY);
    if (saved) start(saved);
    else {
      showView('login');
      $('secret').focus();
    }
  }

  init();
})();
