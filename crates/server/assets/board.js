// The holdfast availability board: signs in with a bearer token, reads a
// project's plots over POST /graphql, follows propertyChanged and holdEvents
// over /graphql/ws (graphql-transport-ws), reserves through a small form (who
// the hold is for) and releases on a click, lists the holds the viewer follows
// with a countdown that turns amber when the server warns of their end, and
// lets managers extend them.
// No framework, no build step: one grid rendered once, then one cell at a time.
'use strict';

(() => {
  const TOKEN_KEY = 'holdfast.board.token';
  const PROJECT_KEY = 'holdfast.board.project';
  const WARNED_KEY = 'holdfast.board.warned';
  const PAGE_SIZE = 100;
  const PLOTS_FEED = 'board';
  const HOLDS_FEED = 'holds';
  const MAX_BACKOFF_MS = 30000;
  const MESSAGE_MS = 10000;
  /** A request with no answer by then is given up (the server's own limit is 10 s). */
  const REQUEST_TIMEOUT_MS = 20000;
  /** Retries of a reserve whose answer was lost, with the same idempotency key. */
  const RESERVE_RETRY_MS = [500, 1500];
  /** How long after a countdown's end a plot no change has come for is read again. */
  const RECHECK_MS = 1500;
  const RECHECK_BATCH = 50;
  const HOLD_FIELDS = 'id expiresAt extensionCount note buyer { name phone email } agent { id name }';
  const PLOT_FIELDS = `id code status reservedBy { id name } reservedUntil activeReservation { ${HOLD_FIELDS} }`;
  /** A reservation with its plot, for the holds list and the grid. */
  const RESERVATION_FIELDS = `status createdAt ${HOLD_FIELDS} property { ${PLOT_FIELDS} project { id name } }`;
  const SUBSCRIPTIONS = {
    [PLOTS_FEED]: `subscription Board($projectId: ID) {
      propertyChanged(projectId: $projectId) {
        property { ${PLOT_FIELDS} } previousStatus status at
      }
    }`,
    // An agent gets their own holds' events; a manager or admin every agent's.
    [HOLDS_FEED]: `subscription BoardHolds {
      holdEvents { kind at reservation { ${RESERVATION_FIELDS} } }
    }`,
  };
  /** Codes after which the same request, sent again, may well succeed. */
  const TRANSIENT = new Set(['NETWORK', 'HTTP', 'SERVICE_UNAVAILABLE', 'BUSY']);
  const FLASH = [{ boxShadow: '0 0 0 4px #f5c542' }, { boxShadow: '0 0 0 0 transparent' }];
  const reducedMotion = window.matchMedia('(prefers-reduced-motion: reduce)');
  const STATE_WORDS = { available: 'Available', reserved: 'Reserved', mine: 'Yours', sold: 'Sold' };

  const $ = (id) => document.getElementById(id);
  const el = {
    signin: $('signin'), token: $('token'), remember: $('remember'),
    who: $('who'), me: $('me'), live: $('live'), signout: $('signout'),
    board: $('board'), project: $('project'), title: $('project-title'), grid: $('grid'),
    holds: $('holds'), holdsTitle: $('holds-title'), holdsHint: $('holds-hint'),
    messages: $('messages'),
    counts: { available: $('n-available'), reserved: $('n-reserved'), sold: $('n-sold'), total: $('n-total') },
  };
  const form = {
    dialog: $('hold-dialog'), form: $('hold-form'), title: $('hold-title'), context: $('hold-context'),
    name: $('buyer-name'), noBuyer: $('no-buyer'), phone: $('buyer-phone'), email: $('buyer-email'),
    note: $('hold-note'), status: $('hold-status'), submit: $('hold-submit'), cancel: $('hold-cancel'),
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
    /** reservation id -> hold: the holds listed beside the grid, with their item. */
    holds: new Map(),
    /** reservation id -> the expiresAt (ms) the server warned of (EXPIRING). */
    warned: new Map(),
    /** Server clock minus ours, in ms (only corrected when it is clearly off). */
    skew: 0,
    /** Bumped by every load, so that a slower, older load is dropped. */
    loadSeq: 0,
    /** Changes and hold events that arrive while the plots load, applied after. */
    pending: null,
    ws: null,
    retries: 0,
    retryTimer: null,
    /** The server refused holdEvents for good (an older server, say): plots only. */
    holdsRefused: false,
  };

  const now = () => Date.now() + state.skew;
  const isManager = () => Boolean(state.me) && (state.me.role === 'MANAGER' || state.me.role === 'ADMIN');

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
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
    try {
      res = await fetch('/graphql', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${state.token}` },
        body: JSON.stringify({ query, variables }),
        signal: abort.signal,
      });
    } catch (e) {
      clearTimeout(timer);
      const why = abort.signal.aborted ? `no answer within ${REQUEST_TIMEOUT_MS / 1000} s` : 'the server cannot be reached';
      throw new GraphQLError(`${why}; check your connection`, 'NETWORK');
    }
    noteServerClock(res.headers.get('date'));
    let body;
    try {
      body = await res.json();
    } catch (e) {
      throw new GraphQLError(`the server answered ${res.status} without a GraphQL body`, 'HTTP');
    } finally {
      clearTimeout(timer);
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

  /** A fresh idempotency key; crypto.randomUUID needs a secure context, getRandomValues does not. */
  function newKey() {
    if (window.crypto.randomUUID) return window.crypto.randomUUID();
    const b = window.crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  // ---- words and times ----------------------------------------------------

  function timeLeft(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    const pad = (n) => String(n).padStart(2, '0');
    if (s >= 86400) return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h left`;
    if (s >= 3600) return `${Math.floor(s / 3600)}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)} left`;
    return `${Math.floor(s / 60)}:${pad(s % 60)} left`;
  }

  /** "4 s", "59 min", "2 h 5 min": a time left, to be read. */
  function inWords(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    if (s < 60) return `${s} s`;
    const min = Math.floor(s / 60);
    if (min < 60) return `${min} min`;
    const h = Math.floor(min / 60);
    return min % 60 ? `${h} h ${min % 60} min` : `${h} h`;
  }

  function localTime(ms) {
    return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  const forWhom = (buyer) => (buyer ? ` for ${buyer.name}` : '');

  // ---- plots and cells ----------------------------------------------------

  function normalise(p) {
    const r = p.activeReservation;
    const holderId = p.reservedBy ? p.reservedBy.id : null;
    return {
      id: p.id,
      code: p.code,
      status: p.status,
      holderId,
      holder: p.reservedBy ? p.reservedBy.name : null,
      until: p.reservedUntil ? Date.parse(p.reservedUntil) : null,
      reservationId: r ? r.id : null,
      agentId: r ? r.agent.id : holderId,
      // Null for another agent's hold, unless the viewer is a manager.
      buyer: r && r.buyer ? r.buyer : null,
      note: r ? r.note : null,
      extensions: r ? r.extensionCount : 0,
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

  const warnedNow = (reservationId, expiresAt) =>
    reservationId !== null && expiresAt !== null && state.warned.get(reservationId) === expiresAt;

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
    const { button, word, holder, left } = plot.cell;
    const kind = kindOf(plot);
    const status = effective(plot);
    button.className = `plot s-${kind}`;
    button.dataset.status = status;
    button.dataset.kind = kind;
    word.textContent = STATE_WORDS[kind];
    const held = status === 'reserved';
    const warned = held && warnedNow(plot.reservationId, plot.until);
    holder.textContent = held ? (kind === 'mine' ? 'by you' : `by ${plot.holder || 'someone'}`) : '';
    if (held) state.held.add(plot.id);
    else state.held.delete(plot.id);
    left.classList.toggle('warned', warned);
    if (warned) button.dataset.warned = 'true';
    else delete button.dataset.warned;
    if (held && plot.until !== null) button.dataset.until = new Date(plot.until).toISOString();
    else delete button.dataset.until;
    setLeft(plot);
    const buyer = held ? forWhom(plot.buyer) : '';
    const soon = warned ? ', ends soon' : '';
    if (kind === 'available') button.setAttribute('aria-label', `Reserve ${plot.code}`);
    else if (kind === 'mine') button.setAttribute('aria-label', `Release ${plot.code} (reserved by you${buyer}${soon})`);
    else if (kind === 'reserved') button.setAttribute('aria-label', `Reserve ${plot.code} (reserved by ${plot.holder || 'someone'}${buyer}${soon})`);
    else button.setAttribute('aria-label', `${plot.code} (sold)`);
    if (kind === 'sold') button.setAttribute('aria-disabled', 'true');
    else button.removeAttribute('aria-disabled');
    if (kind === 'available' || kind === 'reserved') button.setAttribute('aria-haspopup', 'dialog');
    else button.removeAttribute('aria-haspopup');
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
        recheckLater(plot.id);
      } else {
        setLeft(plot);
      }
    }
    writeCounts();
    for (const hold of state.holds.values()) {
      if (hold.expiresAt <= now()) dropHold(hold.id);
      else setHoldLeft(hold);
    }
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

  /**
   * One plot's new state, from a change, a mutation's answer or a re-read.
   * `at` is when the change was made, by the database's clock: a change's
   * `at`, or the time a mutation answered with. A change older than what the
   * cell shows (a late event after our own mutation's answer) is dropped.
   */
  function update(node, { at = null, live = false, flash = false } = {}) {
    let plot = state.plots.get(node.id);
    const fresh = normalise(node);
    const when = at === null ? null : Date.parse(at);
    let before = null;
    if (!plot) {
      // A plot added to the project since the grid was drawn.
      plot = fresh;
      state.plots.set(plot.id, plot);
      el.grid.append(makeCell(plot));
    } else {
      if (when !== null && plot.at && when < plot.at) return;
      before = plot.reservationId;
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
    holdOfPlotChanged(plot, before);
  }

  // A plot whose countdown ran out reads available at once; if no change
  // confirms it soon, it is read again: a hold can have been extended, and
  // an extension sends no propertyChanged (only a hold event, to its agent
  // and managers).
  const recheck = new Set();
  let recheckTimer = null;

  function recheckLater(id) {
    recheck.add(id);
    if (recheckTimer === null) recheckTimer = setTimeout(recheckNow, RECHECK_MS);
  }

  async function recheckNow() {
    recheckTimer = null;
    const ids = [...recheck].filter((id) => {
      const plot = state.plots.get(id);
      return plot && plot.status === 'RESERVED' && plot.until !== null && plot.until <= now();
    });
    recheck.clear();
    if (ids.length > RECHECK_BATCH) for (const id of ids.splice(RECHECK_BATCH)) recheckLater(id);
    if (!ids.length) return;
    const variables = {};
    const fields = ids.map((id, i) => {
      variables[`p${i}`] = id;
      return `p${i}: property(id: $p${i}) { ${PLOT_FIELDS} }`;
    });
    const params = ids.map((_, i) => `$p${i}: ID!`).join(', ');
    try {
      const data = await gql(`query BoardRecheck(${params}) { ${fields.join(' ')} }`, variables);
      // The project may have changed meanwhile: only plots still shown.
      for (const node of Object.values(data)) if (node && state.plots.has(node.id)) update(node);
    } catch (e) { /* the live feed will catch up */ }
  }

  // ---- the holds list -----------------------------------------------------

  /** Whether the list shows a hold: your own anywhere; as a manager, anyone's in this project. */
  function listed(hold) {
    if (!state.me) return false;
    return hold.agentId === state.me.id || (isManager() && hold.projectId === state.projectId);
  }

  function holdOfPlot(plot) {
    return {
      id: plot.reservationId,
      propertyId: plot.id,
      code: plot.code,
      projectId: state.projectId,
      projectName: null,
      agentId: plot.agentId,
      agentName: plot.holder,
      buyer: plot.buyer,
      note: plot.note,
      expiresAt: plot.until,
      extensions: plot.extensions,
    };
  }

  function holdOfReservation(r) {
    const project = r.property.project;
    return {
      id: r.id,
      propertyId: r.property.id,
      code: r.property.code,
      projectId: project.id,
      projectName: project.name,
      agentId: r.agent.id,
      agentName: r.agent.name,
      buyer: r.buyer,
      note: r.note,
      expiresAt: Date.parse(r.expiresAt),
      extensions: r.extensionCount,
    };
  }

  /** After a plot changed: its hold joins, stays in or leaves the list. */
  function holdOfPlotChanged(plot, before) {
    if (before && before !== plot.reservationId) dropHold(before);
    if (!plot.reservationId) return;
    const hold = holdOfPlot(plot);
    if (effective(plot) === 'reserved' && listed(hold)) putHold(hold);
    else dropHold(plot.reservationId);
  }

  function putHold(fresh) {
    if (fresh.expiresAt === null || fresh.expiresAt <= now()) {
      dropHold(fresh.id);
      return;
    }
    let hold = state.holds.get(fresh.id);
    if (!hold) {
      hold = { ...fresh };
      hold.item = makeHoldItem(hold);
      state.holds.set(hold.id, hold);
      placeHold(hold);
      writeHoldsTitle();
    } else {
      const moved = hold.expiresAt !== fresh.expiresAt;
      // A plot's view has no project name: keep the one a reservation gave.
      Object.assign(hold, fresh, { projectName: fresh.projectName || hold.projectName });
      if (moved) placeHold(hold);
    }
    fillHold(hold);
  }

  function dropHold(id) {
    const hold = state.holds.get(id);
    if (!hold) return;
    state.holds.delete(id);
    hold.item.li.remove();
    writeHoldsTitle();
  }

  function clearHolds() {
    state.holds = new Map();
    el.holds.replaceChildren();
    writeHoldsTitle();
  }

  /** The list again, from the plots just drawn and the viewer's own holds anywhere. */
  function rebuildHolds(own) {
    clearHolds();
    for (const plot of state.plots.values()) {
      if (plot.reservationId && effective(plot) === 'reserved') {
        const hold = holdOfPlot(plot);
        if (listed(hold)) putHold(hold);
      }
    }
    for (const r of own) if (r.status === 'ACTIVE') putHold(holdOfReservation(r));
    // Warnings of holds that have ended are of no more use.
    for (const [id, at] of state.warned) if (at < now() - 60000) state.warned.delete(id);
    saveWarned();
  }

  function makeHoldItem(hold) {
    const li = document.createElement('li');
    li.className = 'hold';
    li.dataset.id = hold.id;
    li.dataset.code = hold.code;
    const head = document.createElement('p');
    head.className = 'hold-head';
    const code = document.createElement('span');
    code.className = 'hold-code';
    code.textContent = hold.code;
    const left = document.createElement('span');
    left.className = 'hold-left';
    head.append(code, left);
    const buyer = document.createElement('p');
    buyer.className = 'hold-buyer';
    const more = document.createElement('p');
    more.className = 'hold-more';
    const by = document.createElement('p');
    by.className = 'hold-by';
    const warn = document.createElement('p');
    warn.className = 'hold-warn';
    warn.textContent = 'Ends soon';
    li.append(head, buyer, more, by, warn);
    let extend = null;
    if (isManager()) {
      extend = document.createElement('button');
      extend.type = 'button';
      extend.className = 'extend';
      extend.dataset.id = hold.id;
      extend.textContent = 'Extend';
      li.append(extend);
    }
    return { li, left, leftText: '', buyer, more, by, warn, extend };
  }

  function fillHold(hold) {
    const { li, buyer, more, by, warn, extend } = hold.item;
    const warned = warnedNow(hold.id, hold.expiresAt);
    li.classList.toggle('warned', warned);
    li.dataset.warned = String(warned);
    li.dataset.expiresAt = new Date(hold.expiresAt).toISOString();
    warn.hidden = !warned;
    buyer.textContent = hold.buyer ? `for ${hold.buyer.name}` : 'no buyer given';
    buyer.classList.toggle('none', !hold.buyer);
    const details = [hold.buyer && hold.buyer.phone, hold.buyer && hold.buyer.email, hold.note].filter(Boolean);
    more.textContent = details.join(' · ');
    more.hidden = !details.length;
    const mine = hold.agentId === state.me.id;
    const parts = [];
    if (isManager()) parts.push(mine ? 'by you' : `by ${hold.agentName}`);
    if (hold.projectId !== state.projectId) parts.push(`in ${hold.projectName || 'another project'}`);
    if (hold.extensions) parts.push(`extended ${hold.extensions}×`);
    by.textContent = parts.join(', ');
    by.hidden = !parts.length;
    if (extend) {
      const whose = mine ? 'your hold' : `${hold.agentName}'s hold`;
      extend.setAttribute('aria-label', `Extend ${hold.code} (${whose}${forWhom(hold.buyer)})`);
    }
    setHoldLeft(hold);
  }

  function setHoldLeft(hold) {
    const text = timeLeft(hold.expiresAt - now());
    if (text !== hold.item.leftText) {
      hold.item.leftText = text;
      hold.item.left.textContent = text;
    }
  }

  /** Soonest end first. */
  function placeHold(hold) {
    let next = null;
    for (const li of el.holds.children) {
      const other = state.holds.get(li.dataset.id);
      if (other && other !== hold && (other.expiresAt > hold.expiresAt
          || (other.expiresAt === hold.expiresAt && other.code > hold.code))) {
        next = li;
        break;
      }
    }
    el.holds.insertBefore(hold.item.li, next);
  }

  function writeHoldsTitle() {
    const n = state.holds.size;
    el.holdsTitle.textContent = `${isManager() ? 'Holds' : 'Your holds'} (${n})`;
    if (!n) el.holdsHint.textContent = 'None right now. Click an available plot to reserve it.';
    else if (isManager()) el.holdsHint.textContent = "Every agent's holds in this project, and yours elsewhere. Extend gives a hold one hold time from now.";
    else el.holdsHint.textContent = '';
  }

  function saveWarned() {
    try {
      sessionStorage.setItem(WARNED_KEY, JSON.stringify(Object.fromEntries(state.warned)));
    } catch (e) { /* storage may be off */ }
  }

  function loadWarned() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(WARNED_KEY) || '{}');
      state.warned = new Map(Object.entries(saved).filter(([, at]) => typeof at === 'number'));
    } catch (e) {
      state.warned = new Map();
    }
  }

  // ---- hold events (holdEvents) -------------------------------------------

  function onHoldEvent(event) {
    if (state.pending) {
      state.pending.push({ hold: event });
      return;
    }
    const r = event.reservation;
    if (!r) return; // a place in line that ended: the board shows no lines yet
    const hold = holdOfReservation(r);
    const mine = state.me && hold.agentId === state.me.id;
    const inView = r.property.project.id === state.projectId;
    switch (event.kind) {
      case 'EXPIRING': {
        if (r.status !== 'ACTIVE') return;
        state.warned.set(r.id, hold.expiresAt);
        saveWarned();
        if (listed(hold)) {
          putHold(hold);
          const item = state.holds.get(r.id);
          if (item) item.item.li.dataset.warnedAt = new Date().toISOString();
          const whose = mine ? '' : ` (${hold.agentName}'s hold)`;
          say(`${hold.code}${forWhom(hold.buyer)}${whose} expires in ${inWords(hold.expiresAt - now())}, at ${localTime(hold.expiresAt)}.`, 'warn');
        }
        const plot = state.plots.get(hold.propertyId);
        if (plot && plot.reservationId === r.id) paint(plot);
        break;
      }
      case 'EXTENDED':
      case 'PROMOTED':
        if (inView) update(r.property, { at: event.at });
        if (r.status === 'ACTIVE' && listed(hold)) putHold(hold);
        if (mine && event.kind === 'EXTENDED') say(`${hold.code}${forWhom(hold.buyer)} was extended: it now ends at ${localTime(hold.expiresAt)}.`, 'ok');
        if (mine && event.kind === 'PROMOTED') say(`${hold.code} is yours: your place in line became a hold until ${localTime(hold.expiresAt)}.`, 'ok');
        break;
      case 'EXPIRED':
        // Its countdown took it off the list already, at zero.
        if (mine) say(`Your hold on ${hold.code}${forWhom(hold.buyer)} ran out.`);
        dropHold(r.id);
        break;
      case 'RELEASED':
      case 'CONVERTED':
        dropHold(r.id);
        break;
      default:
        break;
    }
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
    let own = [];
    try {
      for (;;) {
        // The first page also reads the viewer's own holds, in every project.
        const first = after === null;
        const data = await gql(
          `query BoardPlots($id: ID!, $after: String) {
            project(id: $id) { name properties(first: ${PAGE_SIZE}, after: $after) {
              nodes { ${PLOT_FIELDS} } pageInfo { hasNextPage endCursor } } }
            ${first ? `me { activeReservations { ${HOLD_FIELDS} status property { id code project { id name } } } }` : ''}
          }`,
          { id, after },
        );
        if (seq !== state.loadSeq) return;
        if (!data.project) throw new GraphQLError('this project does not exist (any more)', 'NOT_FOUND');
        if (first) own = data.me.activeReservations;
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
    rebuildHolds(own);
    el.grid.removeAttribute('aria-busy');
    el.grid.dataset.loaded = String(seq);
    el.grid.dataset.loadedAt = new Date(now()).toISOString();
    const pending = state.pending;
    state.pending = null;
    for (const item of pending) {
      if (item.hold) onHoldEvent(item.hold);
      else onChange(item);
    }
  }

  function failed(e, what) {
    if (e.code === 'UNAUTHENTICATED') {
      signOut(`${what}: ${e.message}. Sign in again with a valid token.`);
    } else {
      say(`${what}: ${e.message}`, 'error');
    }
  }

  // ---- reserve (the hold form), release, extend ---------------------------

  const busy = new Set();

  function setBusy(plot, on) {
    if (on) busy.add(plot.id);
    else busy.delete(plot.id);
    if (!plot.cell) return;
    if (on) plot.cell.button.setAttribute('aria-busy', 'true');
    else plot.cell.button.removeAttribute('aria-busy');
  }

  function act(plot) {
    const kind = kindOf(plot);
    if (kind === 'sold') {
      say(`${plot.code} is sold.`);
      return;
    }
    if (busy.has(plot.id)) return;
    if (kind === 'mine') release(plot);
    else openHoldForm(plot);
  }

  /**
   * One opening of the form is one attempt: its idempotency key goes with
   * every send of it (the automatic retries, and "Try again"), so that a
   * send whose answer was lost, sent again, answers the hold it made
   * instead of making a second one.
   */
  let attempt = null;

  function openHoldForm(plot) {
    attempt = { plotId: plot.id, code: plot.code, key: newKey(), busy: false };
    form.form.reset();
    noBuyerChanged();
    form.name.setCustomValidity('');
    form.title.textContent = `Reserve ${plot.code}`;
    if (kindOf(plot) === 'reserved') {
      const until = plot.until ? ` until ${localTime(plot.until)}` : '';
      form.context.textContent = `Reserved by ${plot.holder || 'someone'}${until}: the server will say whether it can be had.`;
    } else {
      form.context.textContent = 'Who is it for? The buyer is shown to you and your managers only.';
    }
    showFormStatus('', '');
    form.submit.textContent = 'Reserve';
    form.submit.removeAttribute('aria-disabled');
    form.form.removeAttribute('aria-busy');
    form.dialog.dataset.code = plot.code;
    if (!form.dialog.open) form.dialog.showModal();
    form.name.focus();
  }

  function closeHoldForm() {
    attempt = null;
    if (form.dialog.open) form.dialog.close();
  }

  function showFormStatus(text, kind) {
    form.status.textContent = text;
    form.status.className = `form-status ${kind}`;
  }

  function noBuyerChanged() {
    const none = form.noBuyer.checked;
    for (const input of [form.name, form.phone, form.email]) input.disabled = none;
    form.name.required = !none;
  }

  /** One line, no control characters, no outer spaces: what the server accepts. Empty is null. */
  function clean(value) {
    const text = value.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').replace(/\s+/g, ' ').trim();
    return text || null;
  }

  function holdInput() {
    const note = clean(form.note.value);
    if (form.noBuyer.checked) return { buyer: null, note };
    const name = clean(form.name.value);
    if (!name) return null;
    return { buyer: { name, phone: clean(form.phone.value), email: clean(form.email.value) }, note };
  }

  async function submitHold(att) {
    if (att.busy) return;
    const input = holdInput();
    if (!input) {
      form.name.setCustomValidity('Type the buyer\'s name, or tick "No buyer yet".');
      form.name.reportValidity();
      return;
    }
    const plot = state.plots.get(att.plotId);
    if (!plot) {
      closeHoldForm();
      return;
    }
    att.busy = true;
    setBusy(plot, true);
    // aria-disabled, not disabled: a disabled button would lose the focus.
    form.submit.setAttribute('aria-disabled', 'true');
    form.form.setAttribute('aria-busy', 'true');
    showFormStatus(`Reserving ${att.code}…`, '');
    const onForm = () => attempt === att && form.dialog.open;
    try {
      const r = await sendReserve(att, input, (n) => {
        if (onForm()) showFormStatus(`No answer from the server; sending it again (${n} of ${RESERVE_RETRY_MS.length}). This cannot make a second hold.`, 'error');
      });
      if (attempt === att) closeHoldForm();
      update(r.property, { at: r.createdAt });
      if (r.status === 'ACTIVE') {
        putHold(holdOfReservation(r));
        say(`Reserved ${att.code}${forWhom(r.buyer)} until ${localTime(Date.parse(r.expiresAt))}.`, 'ok');
      } else {
        say(`${att.code}: this reservation was made by an earlier try, and has ended since (${r.status.toLowerCase()}).`);
      }
    } catch (e) {
      const text = `Could not reserve ${att.code}: ${e.message}`;
      if (e.code === 'UNAUTHENTICATED') {
        closeHoldForm();
        failed(e, `Could not reserve ${att.code}`);
      } else if ((TRANSIENT.has(e.code) || e.code === 'INTERNAL') && onForm()) {
        // The hold may or may not have been made: the same attempt, sent
        // again, says which, and never makes two.
        showFormStatus(`${text}. Try again: it is the same request, so it cannot make a second hold.`, 'error');
        form.submit.textContent = 'Try again';
      } else if (e.code === 'BAD_USER_INPUT' && onForm()) {
        showFormStatus(`${text}.`, 'error');
      } else {
        if (attempt === att) closeHoldForm();
        let said = text;
        if (e.code === 'PROPERTY_UNAVAILABLE' && e.extensions.reservedUntil) {
          said += ` (${localTime(Date.parse(e.extensions.reservedUntil))} your time)`;
        }
        // The form was closed while no answer came: the hold may have been made.
        if (TRANSIENT.has(e.code) || e.code === 'INTERNAL') said += '; if it was made, the board shows it once the server answers';
        say(`${said}.`, 'error');
        // Whatever we showed was out of date: read this plot again.
        if (e.code === 'PROPERTY_UNAVAILABLE' || e.code === 'NOT_FOUND') refresh(att.plotId);
      }
    } finally {
      att.busy = false;
      setBusy(plot, false);
      if (attempt === att) {
        form.submit.removeAttribute('aria-disabled');
        form.form.removeAttribute('aria-busy');
      }
    }
  }

  /** reserveProperty with the attempt's key, sent again (same key) when the answer was lost. */
  async function sendReserve(att, { buyer, note }, retrying) {
    for (let i = 0; ; i += 1) {
      try {
        const data = await gql(
          `mutation BoardReserve($id: ID!, $buyer: BuyerInput, $note: String, $key: String) {
            reserveProperty(propertyId: $id, buyer: $buyer, note: $note, idempotencyKey: $key) { ${RESERVATION_FIELDS} }
          }`,
          { id: att.plotId, buyer, note, key: att.key },
        );
        return data.reserveProperty;
      } catch (e) {
        if (!TRANSIENT.has(e.code) || i >= RESERVE_RETRY_MS.length) throw e;
        retrying(i + 1);
        await new Promise((resolve) => { setTimeout(resolve, RESERVE_RETRY_MS[i]); });
      }
    }
  }

  async function release(plot) {
    setBusy(plot, true);
    try {
      if (!plot.reservationId) await refresh(plot.id);
      const data = await gql(
        `mutation BoardRelease($id: ID!) { releaseReservation(reservationId: $id) { id endedAt property { ${PLOT_FIELDS} } } }`,
        { id: plot.reservationId },
      );
      update(data.releaseReservation.property, { at: data.releaseReservation.endedAt });
      dropHold(data.releaseReservation.id);
      say(`Released ${plot.code}.`, 'ok');
    } catch (e) {
      if (e.code === 'UNAUTHENTICATED') failed(e, `Could not release ${plot.code}`);
      else say(`Could not release ${plot.code}: ${e.message}.`, 'error');
      if (e.code === 'RESERVATION_NOT_ACTIVE' || e.code === 'NOT_FOUND') refresh(plot.id);
    } finally {
      setBusy(plot, false);
    }
  }

  /** Reservation ids being extended. */
  const extending = new Set();

  async function extend(hold, button) {
    if (extending.has(hold.id)) return;
    extending.add(hold.id);
    button.setAttribute('aria-disabled', 'true');
    button.setAttribute('aria-busy', 'true');
    try {
      const data = await gql(
        `mutation BoardExtend($id: ID!) { extendReservation(reservationId: $id) { ${RESERVATION_FIELDS} } }`,
        { id: hold.id },
      );
      const r = data.extendReservation;
      if (r.property.project.id === state.projectId) update(r.property);
      putHold(holdOfReservation(r));
      say(`Extended ${hold.code}${forWhom(r.buyer)}: it now ends at ${localTime(Date.parse(r.expiresAt))}.`, 'ok');
    } catch (e) {
      if (e.code === 'UNAUTHENTICATED') failed(e, `Could not extend ${hold.code}`);
      else say(`Could not extend ${hold.code}: ${e.message}.`, 'error');
      if (e.code === 'RESERVATION_NOT_ACTIVE' || e.code === 'NOT_FOUND') {
        dropHold(hold.id);
        if (state.plots.has(hold.propertyId)) refresh(hold.propertyId);
      }
    } finally {
      extending.delete(hold.id);
      button.removeAttribute('aria-disabled');
      button.removeAttribute('aria-busy');
    }
  }

  async function refresh(id) {
    try {
      const data = await gql(`query BoardPlot($id: ID!) { property(id: $id) { ${PLOT_FIELDS} } }`, { id });
      if (data.property && state.plots.has(data.property.id)) update(data.property);
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

  /** Errors on the holds feed that sending it again will not cure. */
  function refusesHolds(errors) {
    const code = errors && errors[0] && errors[0].extensions && errors[0].extensions.code;
    return code !== 'SERVICE_UNAVAILABLE' && code !== 'SUBSCRIBER_TOO_SLOW';
  }

  /** Opens the feeds; the promise settles once subscribed, or once that failed. */
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
          send({ id: PLOTS_FEED, type: 'subscribe', payload: { query: SUBSCRIPTIONS[PLOTS_FEED], variables: { projectId } } });
          if (!state.holdsRefused) send({ id: HOLDS_FEED, type: 'subscribe', payload: { query: SUBSCRIPTIONS[HOLDS_FEED] } });
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
          const data = payload.data || {};
          if (msg.id === HOLDS_FEED) {
            if (payload.errors && payload.errors.length) {
              if (refusesHolds(payload.errors)) state.holdsRefused = true;
              say(`Hold warnings: ${payload.errors[0].message}`, 'error');
            }
            if (data.holdEvents) onHoldEvent(data.holdEvents);
            break;
          }
          if (payload.errors && payload.errors.length) say(`Live updates: ${payload.errors[0].message}`, 'error');
          if (data.propertyChanged) onChange(data.propertyChanged);
          break;
        }
        case 'error': {
          const first = Array.isArray(msg.payload) ? msg.payload[0] : msg.payload;
          const why = (first && first.message) || 'unknown error';
          if (msg.id === HOLDS_FEED) {
            // The plots' feed goes on without it.
            state.holdsRefused = true;
            say(`Hold warnings are unavailable: ${why}`, 'error');
            break;
          }
          say(`Live updates refused: ${why}`, 'error');
          retryLater(ws);
          break;
        }
        case 'complete':
          // The server ended a feed (its Redis subscription was lost, say).
          if (msg.id === HOLDS_FEED && state.holdsRefused) break;
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
    closeHoldForm();
    state.token = null;
    state.me = null;
    state.projectId = null;
    state.loadSeq += 1;
    state.plots = new Map();
    state.held = new Set();
    state.warned = new Map();
    state.holdsRefused = false;
    clearHolds();
    el.grid.replaceChildren();
    try {
      sessionStorage.removeItem(TOKEN_KEY);
      sessionStorage.removeItem(WARNED_KEY);
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
    clearHolds();
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
  el.holds.addEventListener('click', (event) => {
    const button = event.target.closest('button.extend');
    if (!button) return;
    const hold = state.holds.get(button.dataset.id);
    if (hold) extend(hold, button);
  });
  form.form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (attempt) submitHold(attempt);
  });
  form.noBuyer.addEventListener('change', noBuyerChanged);
  form.name.addEventListener('input', () => form.name.setCustomValidity(''));
  form.cancel.addEventListener('click', closeHoldForm);
  // Escape, or the form closed any other way: the attempt is over (one in
  // flight still finishes, and says how it went).
  form.dialog.addEventListener('close', () => { attempt = null; });

  loadWarned();
  setInterval(tick, 250);
  const { token, project } = readToken();
  if (token) {
    state.token = token;
    start(project);
  } else {
    showSignin();
  }
})();
