// The holdfast availability board: signs in with a bearer token, reads a
// project's plots over POST /graphql, follows propertyChanged over
// /graphql/ws (graphql-transport-ws), and reserves or releases on a click.
// No framework, no build step: one grid rendered once, then one cell at a time.
'use strict';

(() => {
  const TOKEN_KEY = 'holdfast.board.token';
  const PROJECT_KEY = 'holdfast.board.project';
  const PAGE_SIZE = 100;
  const SUBSCRIPTION_ID = 'board';
  const MAX_BACKOFF_MS = 30000;
  const MESSAGE_MS = 10000;
  const PLOT_FIELDS =
    'id code status reservedBy { id name } reservedUntil activeReservation { id agent { id } }';
  const SUBSCRIPTION = `subscription Board($projectId: ID) {
    propertyChanged(projectId: $projectId) {
      property { ${PLOT_FIELDS} } previousStatus status at
    }
  }`;
  const FLASH = [{ boxShadow: '0 0 0 4px #f5c542' }, { boxShadow: '0 0 0 0 transparent' }];
  const reducedMotion = window.matchMedia('(prefers-reduced-motion: reduce)');
  const STATE_WORDS = { available: 'Available', reserved: 'Reserved', mine: 'Yours', sold: 'Sold' };

  const $ = (id) => document.getElementById(id);
  const el = {
    signin: $('signin'), token: $('token'), remember: $('remember'),
    who: $('who'), me: $('me'), live: $('live'), signout: $('signout'),
    board: $('board'), project: $('project'), title: $('project-title'), grid: $('grid'),
    messages: $('messages'),
    counts: { available: $('n-available'), reserved: $('n-reserved'), sold: $('n-sold'), total: $('n-total') },
  };

  const state = {
    token: null,
    me: null,
    projectId: null,
    /** id -> plot: the server's view plus this page's cell. */
    plots: new Map(),
    /** ids of plots held right now, for the countdown. */
    held: new Set(),
    counts: { available: 0, reserved: 0, sold: 0 },
    /** Server clock minus ours, in ms (only corrected when it is clearly off). */
    skew: 0,
    /** Bumped by every load, so that a slower, older load is dropped. */
    loadSeq: 0,
    /** Changes that arrive while the plots load, applied after. */
    pending: null,
    ws: null,
    retries: 0,
    retryTimer: null,
  };

  const now = () => Date.now() + state.skew;

  // ---- messages -----------------------------------------------------------

  function say(text, kind = 'info') {
    const p = document.createElement('p');
    p.className = `msg ${kind}`;
    p.textContent = text;
    el.messages.append(p);
    while (el.messages.childElementCount > 3) el.messages.firstElementChild.remove();
    setTimeout(() => p.remove(), MESSAGE_MS);
  }

  function setLive(mode, text) {
    el.live.dataset.state = mode;
    el.live.textContent = text;
  }

  // ---- GraphQL over HTTP --------------------------------------------------

  class GraphQLError extends Error {
    constructor(message, code, extensions) {
      super(message);
      this.code = code;
      this.extensions = extensions || {};
    }
  }

  async function gql(query, variables = {}) {
    let res;
    try {
      res = await fetch('/graphql', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${state.token}` },
        body: JSON.stringify({ query, variables }),
      });
    } catch (e) {
      throw new GraphQLError('the server cannot be reached; check your connection', 'NETWORK');
    }
    noteServerClock(res.headers.get('date'));
    let body;
    try {
      body = await res.json();
    } catch (e) {
      throw new GraphQLError(`the server answered ${res.status} without a GraphQL body`, 'HTTP');
    }
    if (body.errors && body.errors.length) {
      const first = body.errors[0];
      const ext = first.extensions || {};
      throw new GraphQLError(first.message, ext.code || 'INTERNAL', ext);
    }
    return body.data;
  }

  function noteServerClock(date) {
    const server = Date.parse(date || '');
    if (Number.isNaN(server)) return;
    // The Date header has whole seconds: only a clock off by more than
    // that is worth correcting.
    const diff = server + 500 - Date.now();
    state.skew = Math.abs(diff) > 2000 ? diff : 0;
  }

  // ---- plots and cells ----------------------------------------------------

  function normalise(p) {
    return {
      id: p.id,
      code: p.code,
      status: p.status,
      holderId: p.reservedBy ? p.reservedBy.id : null,
      holder: p.reservedBy ? p.reservedBy.name : null,
      until: p.reservedUntil ? Date.parse(p.reservedUntil) : null,
      reservationId: p.activeReservation ? p.activeReservation.id : null,
      agentId: p.activeReservation ? p.activeReservation.agent.id : p.reservedBy ? p.reservedBy.id : null,
    };
  }

  /** The status as of now: a hold whose time has run out reads AVAILABLE, event or not. */
  function effective(plot) {
    if (plot.status === 'RESERVED' && plot.until !== null && plot.until <= now()) return 'available';
    return plot.status.toLowerCase();
  }

  function kindOf(plot) {
    const status = effective(plot);
    if (status === 'reserved' && state.me && plot.agentId === state.me.id) return 'mine';
    return status;
  }

  function timeLeft(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    const pad = (n) => String(n).padStart(2, '0');
    if (s >= 86400) return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h left`;
    if (s >= 3600) return `${Math.floor(s / 3600)}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)} left`;
    return `${Math.floor(s / 60)}:${pad(s % 60)} left`;
  }

  function localTime(ms) {
    return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  function makeCell(plot) {
    const li = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'plot';
    button.dataset.id = plot.id;
    button.dataset.code = plot.code;
    const code = document.createElement('span');
    code.className = 'code';
    code.textContent = plot.code;
    const word = document.createElement('span');
    word.className = 'state';
    const holder = document.createElement('span');
    holder.className = 'holder';
    const left = document.createElement('span');
    left.className = 'left';
    button.append(code, word, holder, left);
    li.append(button);
    plot.cell = { li, button, word, holder, left, leftText: '' };
    paint(plot);
    return li;
  }

  /** Brings one cell, the countdown set and the counts in line with the plot. */
  function paint(plot) {
    const { button, word, holder } = plot.cell;
    const kind = kindOf(plot);
    const status = effective(plot);
    button.className = `plot s-${kind}`;
    button.dataset.status = status;
    button.dataset.kind = kind;
    word.textContent = STATE_WORDS[kind];
    const held = status === 'reserved';
    holder.textContent = held ? (kind === 'mine' ? 'by you' : `by ${plot.holder || 'someone'}`) : '';
    if (held) state.held.add(plot.id);
    else state.held.delete(plot.id);
    setLeft(plot);
    if (kind === 'available') button.setAttribute('aria-label', `Reserve ${plot.code}`);
    else if (kind === 'mine') button.setAttribute('aria-label', `Release ${plot.code} (reserved by you)`);
    else if (kind === 'reserved') button.setAttribute('aria-label', `Reserve ${plot.code} (reserved by ${plot.holder || 'someone'})`);
    else button.setAttribute('aria-label', `${plot.code} (sold)`);
    if (kind === 'sold') button.setAttribute('aria-disabled', 'true');
    else button.removeAttribute('aria-disabled');
    count(plot, status);
  }

  function setLeft(plot) {
    const text = state.held.has(plot.id) && plot.until !== null ? timeLeft(plot.until - now()) : '';
    if (text !== plot.cell.leftText) {
      plot.cell.leftText = text;
      plot.cell.left.textContent = text;
    }
  }

  function count(plot, status) {
    if (plot.counted === status) return;
    if (plot.counted) state.counts[plot.counted] -= 1;
    state.counts[status] += 1;
    plot.counted = status;
    countsDirty = true;
  }

  let countsDirty = false;
  function writeCounts() {
    if (!countsDirty) return;
    countsDirty = false;
    for (const key of ['available', 'reserved', 'sold']) el.counts[key].textContent = String(state.counts[key]);
    el.counts.total.textContent = String(state.plots.size);
  }

  /** Every quarter second: the countdowns (text only), and lapsed holds shown as available. */
  function tick() {
    for (const id of state.held) {
      const plot = state.plots.get(id);
      if (!plot) {
        state.held.delete(id);
      } else if (plot.until !== null && plot.until <= now()) {
        paint(plot);
      } else {
        setLeft(plot);
      }
    }
    writeCounts();
  }

  function renderAll(nodes) {
    state.plots = new Map();
    state.held = new Set();
    state.counts = { available: 0, reserved: 0, sold: 0 };
    const fragment = document.createDocumentFragment();
    for (const node of nodes) {
      const plot = normalise(node);
      state.plots.set(plot.id, plot);
      fragment.append(makeCell(plot));
    }
    el.grid.replaceChildren(fragment);
    countsDirty = true;
    writeCounts();
  }

  /** One plot's new state, from a change, a mutation's answer or a re-read. */
  /**
   * `at` is when the change was made, by the database's clock: a change's
   * `at`, or the time a mutation answered with. A change older than what the
   * cell shows (a late event after our own mutation's answer) is dropped.
   */
  function update(node, { at = null, live = false, flash = false } = {}) {
    let plot = state.plots.get(node.id);
    const fresh = normalise(node);
    const when = at === null ? null : Date.parse(at);
    if (!plot) {
      // A plot added to the project since the grid was drawn.
      plot = fresh;
      state.plots.set(plot.id, plot);
      el.grid.append(makeCell(plot));
    } else {
      if (when !== null && plot.at && when < plot.at) return;
      Object.assign(plot, fresh);
      paint(plot);
    }
    if (when !== null) plot.at = when;
    if (live) plot.cell.button.dataset.changedAt = at;
    if (flash && !reducedMotion.matches) {
      // The Web Animations API: no forced layout of the whole grid, as a
      // class toggled off and on again would need.
      plot.cell.button.animate(FLASH, { duration: 1200, easing: 'ease-out' });
    }
    writeCounts();
  }

  // ---- loading ------------------------------------------------------------

  async function loadProject(id) {
    const seq = ++state.loadSeq;
    state.projectId = id;
    state.pending = [];
    try {
      sessionStorage.setItem(PROJECT_KEY, id);
    } catch (e) { /* storage may be off */ }
    el.grid.setAttribute('aria-busy', 'true');
    const nodes = [];
    let name = '';
    let after = null;
    try {
      for (;;) {
        const data = await gql(
          `query BoardPlots($id: ID!, $after: String) {
            project(id: $id) { name properties(first: ${PAGE_SIZE}, after: $after) {
              nodes { ${PLOT_FIELDS} } pageInfo { hasNextPage endCursor } } }
          }`,
          { id, after },
        );
        if (seq !== state.loadSeq) return;
        if (!data.project) throw new GraphQLError('this project does not exist (any more)', 'NOT_FOUND');
        name = data.project.name;
        const page = data.project.properties;
        nodes.push(...page.nodes);
        if (!page.pageInfo.hasNextPage) break;
        after = page.pageInfo.endCursor;
      }
    } catch (e) {
      if (seq !== state.loadSeq) return;
      el.grid.removeAttribute('aria-busy');
      failed(e, 'Could not load the plots');
      return;
    }
    el.title.textContent = name;
    renderAll(nodes);
    el.grid.removeAttribute('aria-busy');
    el.grid.dataset.loaded = String(seq);
    el.grid.dataset.loadedAt = new Date(now()).toISOString();
    const pending = state.pending;
    state.pending = null;
    for (const change of pending) onChange(change);
  }

  function failed(e, what) {
    if (e.code === 'UNAUTHENTICATED') {
      signOut(`${what}: ${e.message}. Sign in again with a valid token.`);
    } else {
      say(`${what}: ${e.message}`, 'error');
    }
  }

  // ---- reserve and release ------------------------------------------------

  const busy = new Set();

  async function act(plot) {
    const kind = kindOf(plot);
    if (kind === 'sold') {
      say(`${plot.code} is sold.`);
      return;
    }
    if (busy.has(plot.id)) return;
    busy.add(plot.id);
    plot.cell.button.setAttribute('aria-busy', 'true');
    try {
      if (kind === 'mine') {
        if (!plot.reservationId) await refresh(plot.id);
        const data = await gql(
          `mutation BoardRelease($id: ID!) { releaseReservation(reservationId: $id) { id endedAt property { ${PLOT_FIELDS} } } }`,
          { id: plot.reservationId },
        );
        update(data.releaseReservation.property, { at: data.releaseReservation.endedAt });
        say(`Released ${plot.code}.`, 'ok');
      } else {
        const data = await gql(
          `mutation BoardReserve($id: ID!) { reserveProperty(propertyId: $id) { id createdAt expiresAt property { ${PLOT_FIELDS} } } }`,
          { id: plot.id },
        );
        update(data.reserveProperty.property, { at: data.reserveProperty.createdAt });
        say(`Reserved ${plot.code} until ${localTime(Date.parse(data.reserveProperty.expiresAt))}.`, 'ok');
      }
    } catch (e) {
      const verb = kind === 'mine' ? 'release' : 'reserve';
      let text = `Could not ${verb} ${plot.code}: ${e.message}`;
      if (e.code === 'PROPERTY_UNAVAILABLE' && e.extensions.reservedUntil) {
        text += ` (${localTime(Date.parse(e.extensions.reservedUntil))} your time)`;
      }
      if (e.code === 'UNAUTHENTICATED') failed(e, `Could not ${verb} ${plot.code}`);
      else say(`${text}.`, 'error');
      // Whatever we showed was out of date: read this plot again.
      if (e.code === 'PROPERTY_UNAVAILABLE' || e.code === 'RESERVATION_NOT_ACTIVE' || e.code === 'NOT_FOUND') {
        refresh(plot.id);
      }
    } finally {
      busy.delete(plot.id);
      plot.cell.button.removeAttribute('aria-busy');
    }
  }

  async function refresh(id) {
    try {
      const data = await gql(`query BoardPlot($id: ID!) { property(id: $id) { ${PLOT_FIELDS} } }`, { id });
      if (data.property) update(data.property);
    } catch (e) { /* the live feed will catch up */ }
  }

  // ---- live updates (graphql-transport-ws) --------------------------------

  function onChange(change) {
    if (state.pending) {
      state.pending.push(change);
      return;
    }
    update(change.property, { at: change.at, live: true, flash: true });
  }

  function closeLive() {
    clearTimeout(state.retryTimer);
    state.retryTimer = null;
    const ws = state.ws;
    state.ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, 'bye');
  }

  /** Opens the feed; the promise settles once subscribed, or once that failed. */
  function connectLive() {
    closeLive();
    if (!state.token || !state.projectId) return Promise.resolve();
    let subscribed;
    const ready = new Promise((resolve) => { subscribed = resolve; });
    const projectId = state.projectId;
    const url = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/graphql/ws`;
    const ws = new WebSocket(url, 'graphql-transport-ws');
    state.ws = ws;
    setLive('retrying', state.retries ? 'Live updates: reconnecting…' : 'Live updates: connecting…');
    const send = (msg) => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify(msg));
    ws.onopen = () => send({ type: 'connection_init', payload: { Authorization: `Bearer ${state.token}` } });
    ws.onmessage = (event) => {
      if (ws !== state.ws) return;
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      switch (msg.type) {
        case 'connection_ack':
          send({ id: SUBSCRIPTION_ID, type: 'subscribe', payload: { query: SUBSCRIPTION, variables: { projectId } } });
          setLive('on', 'Live updates: on');
          subscribed();
          if (state.retries > 0) {
            // Changes made while we were away were missed: read everything again.
            state.retries = 0;
            say('Live updates are back.', 'ok');
            if (state.pending === null) loadProject(projectId);
          }
          break;
        case 'next': {
          const payload = msg.payload || {};
          if (payload.errors && payload.errors.length) say(`Live updates: ${payload.errors[0].message}`, 'error');
          const change = payload.data && payload.data.propertyChanged;
          if (change) onChange(change);
          break;
        }
        case 'error': {
          const first = Array.isArray(msg.payload) ? msg.payload[0] : msg.payload;
          say(`Live updates refused: ${(first && first.message) || 'unknown error'}`, 'error');
          retryLater(ws);
          break;
        }
        case 'complete':
          // The server ended the feed (its Redis subscription was lost, say).
          retryLater(ws);
          break;
        case 'ping':
          send({ type: 'pong', payload: msg.payload });
          break;
        default:
          break;
      }
    };
    ws.onclose = (event) => {
      subscribed();
      if (ws !== state.ws) return;
      state.ws = null;
      if (event.code === 4401 || event.code === 4403) {
        setLive('off', 'Live updates: off');
        const why = event.code === 4401 ? 'the token is not valid' : 'this workspace may not use them';
        say(`Live updates refused (${event.code}${event.reason ? `: ${event.reason}` : ''}): ${why}.`, 'error');
        return;
      }
      if (event.code >= 4000) {
        say(`Live updates closed by the server (${event.code}${event.reason ? `: ${event.reason}` : ''}); reconnecting.`, 'error');
      } else if (state.retries === 0) {
        say('Live updates were cut; reconnecting.', 'error');
      }
      scheduleReconnect();
    };
    return ready;
  }

  function retryLater(ws) {
    if (ws !== state.ws) return;
    state.ws = null;
    ws.close(1000, 'retrying');
    scheduleReconnect();
  }

  function scheduleReconnect() {
    clearTimeout(state.retryTimer);
    // 0.5 s, 1 s, 2 s, ... up to 30 s, each give or take a quarter.
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** state.retries) * (0.75 + Math.random() * 0.5);
    state.retries += 1;
    setLive('retrying', `Live updates: reconnecting in ${Math.round(delay / 1000)} s`);
    state.retryTimer = setTimeout(connectLive, delay);
  }

  // ---- sign in, projects --------------------------------------------------

  function readToken() {
    const fragment = new URLSearchParams(location.hash.slice(1));
    const fromUrl = fragment.get('token');
    if (fromUrl) {
      // Keep it for this tab, and out of the address bar and history.
      try {
        sessionStorage.setItem(TOKEN_KEY, fromUrl);
      } catch (e) { /* storage may be off */ }
      fragment.delete('token');
      const rest = fragment.toString();
      history.replaceState(null, '', `${location.pathname}${location.search}${rest ? `#${rest}` : ''}`);
      return { token: fromUrl, project: fragment.get('project') };
    }
    let token = null;
    try {
      token = sessionStorage.getItem(TOKEN_KEY) || localStorage.getItem(TOKEN_KEY);
    } catch (e) { /* storage may be off */ }
    return { token, project: fragment.get('project') };
  }

  function showSignin() {
    el.board.hidden = true;
    el.who.hidden = true;
    el.signin.hidden = false;
    el.token.value = '';
    el.token.focus();
  }

  function signOut(message) {
    closeLive();
    state.token = null;
    state.me = null;
    state.projectId = null;
    state.loadSeq += 1;
    state.plots = new Map();
    state.held = new Set();
    el.grid.replaceChildren();
    try {
      sessionStorage.removeItem(TOKEN_KEY);
      localStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* storage may be off */ }
    showSignin();
    if (message) say(message, 'error');
  }

  async function start(wantedProject) {
    let data;
    try {
      data = await gql('query BoardStart { me { id name role } projects(first: 100) { nodes { id name } } }');
    } catch (e) {
      signOut(`Could not sign in: ${e.message}`);
      return;
    }
    state.me = data.me;
    el.me.textContent = `${data.me.name} (${data.me.role.replace('_', ' ').toLowerCase()})`;
    el.signin.hidden = true;
    el.who.hidden = false;
    el.board.hidden = false;
    const projects = data.projects.nodes;
    el.project.replaceChildren(
      ...projects.map((p) => {
        const option = document.createElement('option');
        option.value = p.id;
        option.textContent = p.name;
        return option;
      }),
    );
    if (!projects.length) {
      el.title.textContent = 'No projects yet';
      say('Your workspace has no projects yet.');
      return;
    }
    let remembered = null;
    try {
      remembered = sessionStorage.getItem(PROJECT_KEY);
    } catch (e) { /* storage may be off */ }
    const chosen = [wantedProject, remembered].find((id) => id && projects.some((p) => p.id === id)) || projects[0].id;
    el.project.value = chosen;
    choose(chosen);
  }

  async function choose(projectId) {
    state.projectId = projectId;
    state.retries = 0;
    // Subscribe first, then read: a change made in between is queued, not lost.
    const ready = connectLive();
    await Promise.race([ready, new Promise((resolve) => { setTimeout(resolve, 3000); })]);
    if (state.projectId === projectId) loadProject(projectId);
  }

  el.signin.addEventListener('submit', (event) => {
    event.preventDefault();
    const token = el.token.value.trim().replace(/^Bearer\s+/i, '');
    if (!token) return;
    state.token = token;
    try {
      (el.remember.checked ? localStorage : sessionStorage).setItem(TOKEN_KEY, token);
    } catch (e) { /* storage may be off */ }
    start(null);
  });
  el.signout.addEventListener('click', () => signOut());
  el.project.addEventListener('change', () => choose(el.project.value));
  // One listener for the whole grid, however many plots it has.
  el.grid.addEventListener('click', (event) => {
    const button = event.target.closest('button.plot');
    if (!button) return;
    const plot = state.plots.get(button.dataset.id);
    if (plot) act(plot);
  });

  setInterval(tick, 250);
  const { token, project } = readToken();
  if (token) {
    state.token = token;
    start(project);
  } else {
    showSignin();
  }
})();
