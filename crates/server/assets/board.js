// The holdfast availability board: signs in with a bearer token, reads a
// project's plots over POST /graphql, follows propertyChanged and holdEvents
// over /graphql/ws (graphql-transport-ws), reserves through a small form (who
// the hold is for) and releases on a click, lists the holds the viewer follows
// with a countdown that turns amber when the server warns of their end, and
// lets managers extend them. Behind a held plot is a line: the board shows how
// many wait, lets the viewer join it (the same form) and leave it, lists their
// places in it, says when one became their hold, and shows managers who waits,
// with a way to take an entry out. Each plot shows its price in its
// project's currency; managers withdraw plots from the market and restore
// them. The project picker reads every project, a page at a time.
// No framework, no build step: one grid rendered once, then one cell at a time.
'use strict';

(() => {
  const TOKEN_KEY = 'holdfast.board.token';
  const PROJECT_KEY = 'holdfast.board.project';
  const PAGE_SIZE = 100;
  /** Projects per page of the picker (the API's most); the first page is shown at once. */
  const PROJECTS_PAGE = 100;
  const PLOTS_FEED = 'board';
  const HOLDS_FEED = 'holds';
  const MAX_BACKOFF_MS = 30000;
  const MESSAGE_MS = 10000;
  /** A request with no answer by then is given up (the server's own limit is 10 s). */
  const REQUEST_TIMEOUT_MS = 20000;
  /** Retries of a reserve whose answer was lost, with the same idempotency key. */
  const RESERVE_RETRY_MS = [500, 1500];
  /**
   * Nobody is told of a join or a leave (only of what changes a plot's
   * status), so the page reads again, this often, the lines of the held plots
   * it shows and the viewer's own places in line. Reads of lines are gathered
   * for a moment and sent together, at most so many plots in one request.
   */
  const LINE_POLL_MS = 10000;
  const LINE_READ_MS = 150;
  const LINE_BATCH = 200;
  /** The viewer's places in line read at once, and the entries a plot's dialog shows. */
  const ENTRIES_PAGE = 50;
  const LINE_PAGE = 50;
  const HOLD_FIELDS = 'id expiresAt extensionCount expiryWarned note priceAtReservation buyer { name phone email } agent { id name }';
  /** A plot as the live feed gives it: no line length (see lineAfter). */
  const PLOT_FIELDS = `id code status price reservedBy { id name } reservedUntil activeReservation { ${HOLD_FIELDS} }`;
  /** A plot as a request reads it: with how many wait in its line. */
  const PLOT_READ = `${PLOT_FIELDS} queueLength`;
  /** A reservation with its plot, for the holds list and the grid. */
  const reservationFields = (plot) => `status createdAt ${HOLD_FIELDS} property { ${plot} project { id name currency } }`;
  const RESERVATION_FIELDS = reservationFields(PLOT_READ);
  /** A place in line, the viewer's or anyone's. */
  const ENTRY_FIELDS = 'id status position createdAt buyer { name phone email } agent { id name } property { id code status project { id name } }';
  /** Who waits for a plot, first in line first (buyers shown to their agent and managers only). */
  const LINE_FIELDS = `queue(first: ${LINE_PAGE}) { nodes { id position agent { id name } buyer { name phone email } } }`;
  const SUBSCRIPTIONS = {
    [PLOTS_FEED]: `subscription Board($projectId: ID) {
      propertyChanged(projectId: $projectId) {
        property { ${PLOT_FIELDS} } previousStatus status at
      }
    }`,
    // An agent gets their own holds' events; a manager or admin every agent's.
    [HOLDS_FEED]: `subscription BoardHolds {
      holdEvents { kind at reservation { ${reservationFields(PLOT_FIELDS)} } queueEntry { ${ENTRY_FIELDS} } }
    }`,
  };
  /** Codes after which the same request, sent again, may well succeed. */
  const TRANSIENT = new Set(['NETWORK', 'HTTP', 'SERVICE_UNAVAILABLE', 'BUSY']);
  const FLASH = [{ boxShadow: '0 0 0 4px #f5c542' }, { boxShadow: '0 0 0 0 transparent' }];
  const reducedMotion = window.matchMedia('(prefers-reduced-motion: reduce)');
  const STATE_WORDS = { available: 'Available', reserved: 'Reserved', mine: 'Yours', sold: 'Sold', withdrawn: 'Withdrawn' };
  /** The statuses counted above the grid; the total counts every plot, withdrawn ones too. */
  const COUNTED = ['available', 'reserved', 'sold', 'withdrawn'];
  const noCounts = () => Object.fromEntries(COUNTED.map((k) => [k, 0]));

  const $ = (id) => document.getElementById(id);
  const el = {
    signin: $('signin'), token: $('token'), remember: $('remember'),
    who: $('who'), me: $('me'), live: $('live'), signout: $('signout'),
    board: $('board'), project: $('project'), title: $('project-title'), grid: $('grid'),
    holds: $('holds'), holdsTitle: $('holds-title'), holdsHint: $('holds-hint'),
    entriesBox: $('entries-box'), entries: $('entries'), entriesTitle: $('entries-title'),
    messages: $('messages'),
    counts: { available: $('n-available'), reserved: $('n-reserved'), sold: $('n-sold'), withdrawn: $('n-withdrawn'), total: $('n-total') },
  };
  const form = {
    dialog: $('hold-dialog'), form: $('hold-form'), title: $('hold-title'), context: $('hold-context'),
    name: $('buyer-name'), noBuyer: $('no-buyer'), phone: $('buyer-phone'), email: $('buyer-email'),
    note: $('hold-note'), status: $('hold-status'), submit: $('hold-submit'), cancel: $('hold-cancel'),
    fields: $('hold-fields'), noBuyerRow: $('no-buyer-row'), noteLabel: $('note-label'),
    lineBox: $('line-box'), lineTitle: $('line-title'), lineList: $('line-list'),
    price: $('hold-price'), action: $('plot-action'),
  };

  const state = {
    token: null,
    me: null,
    projectId: null,
    /** The shown project's ISO 4217 currency, or null: its prices are then shown as they are. */
    currency: null,
    /** id -> plot: the server's view plus this page's cell. */
    plots: new Map(),
    /** ids of plots held right now, for the countdown. */
    held: new Set(),
    counts: noCounts(),
    /** reservation id -> hold: the holds listed beside the grid, with their item. */
    holds: new Map(),
    /** reservation id -> the expiresAt (ms) the server warned of (EXPIRING, or expiryWarned). */
    warned: new Map(),
    /** entry id -> the viewer's place in line (WAITING), with its item. */
    entries: new Map(),
    /** Server clock minus ours, in ms (only corrected when it is clearly off). */
    skew: 0,
    /** Bumped by every load, so that a slower, older load is dropped. */
    loadSeq: 0,
    /** Bumped by every sign-in and sign-out, so that the picker's later pages of an older one are dropped. */
    signins: 0,
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
  /** Whether the viewer follows this agent's holds: their own; a manager's, everyone's. */
  const follows = (agentId) => Boolean(state.me) && (agentId === state.me.id || isManager());

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

  /** Intl.NumberFormat is slow to make: one per currency and form, kept. */
  const moneyFormats = new Map();

  /**
   * A price (the API's Decimal: an exact string such as "12500000.00") for
   * people: with the project's currency, in the viewer's locale, short
   * ("₹1.25Cr", "€250K") or in full; with no currency, the string itself.
   * Money stays a string: the board never adds, compares or rounds it, and
   * never turns it into a float for anything but this display (format()
   * reads the string as an exact decimal where the browser can; an older
   * one makes a number of it, for the display only). Empty when there is no
   * price.
   */
  function money(price, currency, short = false) {
    if (price === null || price === undefined) return '';
    if (!currency) return price;
    const key = `${currency} ${short}`;
    let format = moneyFormats.get(key);
    if (format === undefined) {
      try {
        format = new Intl.NumberFormat(undefined, short
          ? { style: 'currency', currency, notation: 'compact', maximumSignificantDigits: 3 }
          : { style: 'currency', currency });
      } catch (e) {
        format = null; // a currency this browser does not know
      }
      moneyFormats.set(key, format);
    }
    return format ? format.format(price) : `${price} ${currency}`;
  }

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
      expiryWarned: Boolean(r && r.expiryWarned),
      // How many wait in its line; null when the source did not say (the feed).
      waiting: typeof p.queueLength === 'number' ? p.queueLength : null,
      price: p.price === undefined ? null : p.price,
      // The price its hold keeps, from the hold's start.
      quoted: r ? r.priceAtReservation : null,
    };
  }

  /**
   * The status as of now: a hold whose time has run out reads AVAILABLE,
   * event or not, unless someone waits in its line (the first of them gets
   * it, so it stays RESERVED until the change says who).
   */
  function effective(plot) {
    if (plot.status === 'RESERVED' && plot.until !== null && plot.until <= now() && !plot.waiting) return 'available';
    return plot.status.toLowerCase();
  }

  /** A hold that ran out while someone waits: the server hands it to the first in line. */
  const handingOn = (plot) => plot.status === 'RESERVED' && plot.until !== null && plot.until <= now() && plot.waiting > 0;

  /** The viewer's place in line for a plot, if they wait for it. */
  function entryOn(plotId) {
    for (const entry of state.entries.values()) if (entry.propertyId === plotId) return entry;
    return null;
  }

  /** A read hold the server says was warned of its end, if the viewer follows it: amber from the start. */
  function noteWarned(reservationId, expiresAt, expiryWarned, agentId) {
    if (expiryWarned && reservationId && expiresAt !== null && follows(agentId)) state.warned.set(reservationId, expiresAt);
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
    const price = document.createElement('span');
    price.className = 'price';
    const word = document.createElement('span');
    word.className = 'state';
    const holder = document.createElement('span');
    holder.className = 'holder';
    const left = document.createElement('span');
    left.className = 'left';
    const line = document.createElement('span');
    line.className = 'line';
    button.append(code, price, word, holder, left, line);
    li.append(button);
    plot.cell = { li, button, code, price, priceText: '', word, holder, left, line, leftText: '', ran: false };
    paint(plot);
    return li;
  }

  /** Brings one cell, the countdown set and the counts in line with the plot. */
  function paint(plot) {
    const { button, word, holder, left, line } = plot.cell;
    const kind = kindOf(plot);
    const status = effective(plot);
    button.className = `plot s-${kind}`;
    button.dataset.status = status;
    button.dataset.kind = kind;
    word.textContent = STATE_WORDS[kind];
    if (plot.code !== plot.cell.code.textContent) {
      plot.cell.code.textContent = plot.code;
      button.dataset.code = plot.code;
    }
    const short = money(plot.price, state.currency, true);
    if (short !== plot.cell.priceText) {
      plot.cell.priceText = short;
      plot.cell.price.textContent = short;
    }
    const held = status === 'reserved';
    plot.cell.ran = plot.until !== null && plot.until <= now();
    const handing = held && handingOn(plot);
    const warned = held && !handing && warnedNow(plot.reservationId, plot.until);
    holder.textContent = held ? (kind === 'mine' ? 'by you' : `by ${plot.holder || 'someone'}`) : '';
    if (held) state.held.add(plot.id);
    else state.held.delete(plot.id);
    left.classList.toggle('warned', warned);
    if (warned) button.dataset.warned = 'true';
    else delete button.dataset.warned;
    if (held && plot.until !== null) button.dataset.until = new Date(plot.until).toISOString();
    else delete button.dataset.until;
    setLeft(plot);
    // The line: how many wait, or where the viewer stands in it.
    const entry = kind === 'reserved' ? entryOn(plot.id) : null;
    const waiting = held ? Math.max(plot.waiting || 0, entry ? entry.position || 0 : 0) : 0;
    // Short enough for a phone's cell: the viewer's own place is marked by the cell's outline.
    line.textContent = entry ? `#${entry.position} of ${waiting}` : waiting ? `${waiting} waiting` : '';
    button.dataset.waiting = String(waiting);
    if (entry) button.dataset.position = String(entry.position);
    else delete button.dataset.position;
    // Its name: what a click does, the plot, and what the cell shows (the price in full).
    const about = [];
    if (held) {
      about.push(`reserved by ${kind === 'mine' ? 'you' : plot.holder || 'someone'}${forWhom(plot.buyer)}`);
      if (waiting) about.push(`${waiting} waiting`);
      if (entry) about.push(`you're #${entry.position} in line`);
      if (handing) about.push('passing to the next in line');
      else if (warned) about.push('ends soon');
    } else if (kind === 'sold' || kind === 'withdrawn') {
      about.push(kind);
    }
    const price = money(plot.price, state.currency);
    if (price) about.push(price);
    // A withdrawn plot is for managers to restore; for anyone else, like a sold one, nothing to do.
    const restorable = kind === 'withdrawn' && isManager();
    let does = '';
    if (kind === 'available') does = 'Reserve ';
    else if (kind === 'mine') does = 'Release ';
    else if (kind === 'reserved' && !entry) does = 'Join the line for ';
    else if (restorable) does = 'Restore ';
    button.setAttribute('aria-label', `${does}${plot.code}${about.length ? ` (${about.join(', ')})` : ''}`);
    if (kind === 'sold' || (kind === 'withdrawn' && !restorable)) button.setAttribute('aria-disabled', 'true');
    else button.removeAttribute('aria-disabled');
    if (kind === 'available' || kind === 'reserved' || restorable) button.setAttribute('aria-haspopup', 'dialog');
    else button.removeAttribute('aria-haspopup');
    count(plot, status);
  }

  function setLeft(plot) {
    let text = '';
    if (state.held.has(plot.id) && plot.until !== null) text = handingOn(plot) ? 'to next in line' : timeLeft(plot.until - now());
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
    for (const key of COUNTED) el.counts[key].textContent = String(state.counts[key]);
    el.counts.total.textContent = String(state.plots.size);
  }

  /**
   * Every quarter second: the countdowns (text only), lapsed holds shown as
   * available (or as passing to the line), and now and then the lines read again.
   */
  function tick() {
    for (const id of state.held) {
      const plot = state.plots.get(id);
      if (!plot) {
        state.held.delete(id);
      } else if (plot.until !== null && plot.until <= now() && !plot.cell.ran) {
        paint(plot);
      } else {
        setLeft(plot);
      }
    }
    writeCounts();
    for (const hold of state.holds.values()) {
      if (hold.expiresAt <= now()) dropHold(hold.id);
      else setHoldLeft(hold);
    }
    if (state.me && state.pending === null && !document.hidden && Date.now() - lineReads.last >= LINE_POLL_MS) {
      lineReads.last = Date.now();
      if (state.held.size || state.entries.size) readLinesSoon({ plots: [...state.held], entries: true }, 0);
    }
  }

  function renderAll(nodes) {
    state.plots = new Map();
    state.held = new Set();
    state.counts = noCounts();
    const fragment = document.createDocumentFragment();
    for (const node of nodes) {
      const plot = normalise(node);
      if (plot.waiting === null) plot.waiting = 0;
      noteWarned(plot.reservationId, plot.until, plot.expiryWarned, plot.agentId);
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
   * `change` is the live feed's change itself (its statuses).
   */
  function update(node, { at = null, live = false, flash = false, change = null } = {}) {
    let plot = state.plots.get(node.id);
    const fresh = normalise(node);
    const when = at === null ? null : Date.parse(at);
    if (when !== null && plot && plot.at && when < plot.at) return;
    if (fresh.waiting === null) fresh.waiting = lineAfter(plot, change);
    noteWarned(fresh.reservationId, fresh.until, fresh.expiryWarned, fresh.agentId);
    let before = null;
    if (!plot) {
      // A plot added to the project since the grid was drawn.
      plot = fresh;
      state.plots.set(plot.id, plot);
      el.grid.append(makeCell(plot));
    } else {
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
    if (live) {
      // A change may have moved the line the viewer waits in, or the one
      // the dialog shows.
      if (entryOn(plot.id)) readLinesSoon({ entries: true });
      if (attempt && attempt.plotId === plot.id && showsLine(attempt) && form.dialog.open) readLine(attempt);
    }
  }

  /**
   * The line's length after a change from the live feed, which does not
   * carry it (each subscriber would read it on every change): a plot that
   * became free, sold or newly held has nobody in line (a free plot has no
   * line); after a hold was handed on or extended (RESERVED to RESERVED),
   * or when a hold event re-sent the plot, the length known stays until a
   * read, asked for here, says.
   */
  function lineAfter(plot, change) {
    if (change && !(change.previousStatus === 'RESERVED' && change.status === 'RESERVED')) return 0;
    const known = plot ? plot.waiting : 0;
    if (plot && (change || known > 0)) readLinesSoon({ plots: [plot.id] });
    return known;
  }

  // ---- reading lines again ------------------------------------------------

  /** Plots whose line to read again, and whether the viewer's places in line too: one request for all. */
  const lineReads = { plots: new Set(), entries: false, timer: null, busy: false, last: 0 };

  function readLinesSoon({ plots = [], entries = false } = {}, delay = LINE_READ_MS) {
    for (const id of plots) lineReads.plots.add(id);
    if (entries) lineReads.entries = true;
    if (lineReads.timer === null && !lineReads.busy) lineReads.timer = setTimeout(readLinesNow, delay);
  }

  async function readLinesNow() {
    lineReads.timer = null;
    const ids = [];
    for (const id of lineReads.plots) {
      lineReads.plots.delete(id);
      // The project may have changed meanwhile: only plots still shown.
      if (state.plots.has(id)) ids.push(id);
      if (ids.length === LINE_BATCH) break;
    }
    const entries = lineReads.entries && state.me !== null;
    lineReads.entries = false;
    if (!ids.length && !entries) return;
    lineReads.busy = true;
    lineReads.last = Date.now();
    const variables = {};
    const params = [];
    const fields = ids.map((id, i) => {
      variables[`p${i}`] = id;
      params.push(`$p${i}: ID!`);
      return `p${i}: property(id: $p${i}) { id queueLength }`;
    });
    if (entries) {
      variables.me = state.me.id;
      params.push('$me: ID!');
      fields.push(`mine: queueEntries(agentId: $me, status: WAITING, first: ${ENTRIES_PAGE}) { nodes { ${ENTRY_FIELDS} } }`);
    }
    const asked = Date.now();
    try {
      const data = await gql(`query BoardLines(${params.join(', ')}) { ${fields.join(' ')} }`, variables);
      for (const [key, node] of Object.entries(data)) if (key !== 'mine' && node) setWaiting(node.id, node.queueLength);
      if (entries) await entriesRead(data.mine.nodes, asked);
    } catch (e) {
      // The next read catches up.
    } finally {
      lineReads.busy = false;
      if ((lineReads.plots.size || lineReads.entries) && lineReads.timer === null) {
        lineReads.timer = setTimeout(readLinesNow, LINE_READ_MS);
      }
    }
  }

  /** A plot's line length, read: its cell, and its hold in the list. */
  function setWaiting(id, waiting) {
    const plot = state.plots.get(id);
    if (!plot || plot.waiting === waiting) return;
    plot.waiting = waiting;
    paint(plot);
    writeCounts();
    holdOfPlotChanged(plot, plot.reservationId);
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
      waiting: plot.waiting,
      quoted: plot.quoted,
      currency: state.currency,
    };
  }

  function holdOfReservation(r) {
    const project = r.property.project;
    const expiresAt = Date.parse(r.expiresAt);
    noteWarned(r.id, expiresAt, r.expiryWarned, r.agent.id);
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
      expiresAt,
      extensions: r.extensionCount,
      // Known when the plot was read, not when the feed sent it.
      waiting: typeof r.property.queueLength === 'number' ? r.property.queueLength : null,
      quoted: r.priceAtReservation,
      currency: project.currency,
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
      // A plot's view has no project name: keep the one a reservation gave;
      // and the feed's has no line length: keep the one known.
      Object.assign(hold, fresh, {
        projectName: fresh.projectName || hold.projectName,
        waiting: fresh.waiting === null ? hold.waiting : fresh.waiting,
      });
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
  }

  /** An element with a class, and a text if given. */
  function make(tag, className, text = '') {
    const e = document.createElement(tag);
    e.className = className;
    if (text) e.textContent = text;
    return e;
  }

  /** A button of a list item, for the record with this id. */
  function itemButton(className, id, text) {
    const button = make('button', className, text);
    button.type = 'button';
    button.dataset.id = id;
    return button;
  }

  /** An item of the side lists (a hold, a place in line): its plot's code, a badge beside it, and the buyer. */
  function sideItem(className, record, badgeClass) {
    const li = make('li', className);
    li.dataset.id = record.id;
    li.dataset.code = record.code;
    const head = make('p', 'hold-head');
    const badge = make('span', badgeClass);
    head.append(make('span', 'hold-code', record.code), badge);
    const buyer = make('p', 'hold-buyer');
    li.append(head, buyer);
    return { li, badge, buyer };
  }

  function showBuyer(p, buyer) {
    p.textContent = buyer ? `for ${buyer.name}` : 'no buyer given';
    p.classList.toggle('none', !buyer);
  }

  /** Puts a record's item in a sorted list: before the first item whose record comes after it. */
  function placeItem(list, records, record, after) {
    let next = null;
    for (const li of list.children) {
      const other = records.get(li.dataset.id);
      if (other && other !== record && after(other, record)) {
        next = li;
        break;
      }
    }
    if (record.item.li.nextSibling !== next || record.item.li.parentNode !== list) list.insertBefore(record.item.li, next);
  }

  function makeHoldItem(hold) {
    const { li, badge: left, buyer } = sideItem('hold', hold, 'hold-left');
    const more = make('p', 'hold-more');
    const by = make('p', 'hold-by');
    const price = make('p', 'hold-price');
    const line = make('p', 'hold-line');
    const warn = make('p', 'hold-warn', 'Ends soon');
    li.append(more, price, by, line, warn);
    const extend = isManager() ? itemButton('extend', hold.id, 'Extend') : null;
    if (extend) li.append(extend);
    return { li, left, leftText: '', buyer, more, price, by, line, warn, extend };
  }

  function fillHold(hold) {
    const { li, buyer, more, price, by, line, warn, extend } = hold.item;
    const warned = warnedNow(hold.id, hold.expiresAt);
    li.classList.toggle('warned', warned);
    li.dataset.warned = String(warned);
    li.dataset.expiresAt = new Date(hold.expiresAt).toISOString();
    warn.hidden = !warned;
    showBuyer(buyer, hold.buyer);
    const details = [hold.buyer && hold.buyer.phone, hold.buyer && hold.buyer.email, hold.note].filter(Boolean);
    more.textContent = details.join(' · ');
    more.hidden = !details.length;
    // The price the hold keeps, whatever the plot's price has become since.
    const quoted = money(hold.quoted, hold.currency);
    price.textContent = quoted ? `quoted at ${quoted}` : '';
    price.hidden = !quoted;
    const mine = hold.agentId === state.me.id;
    const parts = [];
    if (isManager()) parts.push(mine ? 'by you' : `by ${hold.agentName}`);
    if (hold.projectId !== state.projectId) parts.push(`in ${hold.projectName || 'another project'}`);
    if (hold.extensions) parts.push(`extended ${hold.extensions}×`);
    by.textContent = parts.join(', ');
    by.hidden = !parts.length;
    // Who would get it if it ended unsold.
    line.textContent = hold.waiting ? `${hold.waiting} waiting in line` : '';
    line.hidden = !hold.waiting;
    li.dataset.waiting = String(hold.waiting || 0);
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
    placeItem(el.holds, state.holds, hold, (other, h) => other.expiresAt > h.expiresAt
      || (other.expiresAt === h.expiresAt && other.code > h.code));
  }

  function writeHoldsTitle() {
    const n = state.holds.size;
    el.holdsTitle.textContent = `${isManager() ? 'Holds' : 'Your holds'} (${n})`;
    if (!n) el.holdsHint.textContent = 'None right now. Click an available plot to reserve it.';
    else if (isManager()) el.holdsHint.textContent = "Every agent's holds in this project, and yours elsewhere. Extend gives a hold one hold time from now.";
    else el.holdsHint.textContent = '';
  }

  // ---- the viewer's places in line ----------------------------------------

  function entryOf(node) {
    const project = node.property.project;
    return {
      id: node.id,
      propertyId: node.property.id,
      code: node.property.code,
      projectId: project.id,
      projectName: project.name,
      position: node.position,
      buyer: node.buyer,
      // When the server last said it waits: a read sent before does not end it.
      readAt: Date.now(),
    };
  }

  function putEntry(fresh) {
    let entry = state.entries.get(fresh.id);
    const before = entry ? entry.position : null;
    if (!entry) {
      entry = { ...fresh };
      entry.item = makeEntryItem(entry);
      state.entries.set(entry.id, entry);
    } else {
      Object.assign(entry, fresh);
    }
    fillEntry(entry);
    placeEntry(entry);
    writeEntriesTitle();
    const plot = state.plots.get(entry.propertyId);
    if (plot) paint(plot);
    if (before !== null && before > 1 && entry.position === 1) say(`You're next in line for ${entry.code}${forWhom(entry.buyer)}.`, 'ok');
  }

  function dropEntry(id) {
    const entry = state.entries.get(id);
    if (!entry) return;
    state.entries.delete(id);
    entry.item.li.remove();
    writeEntriesTitle();
    const plot = state.plots.get(entry.propertyId);
    if (plot) paint(plot);
  }

  function clearEntries() {
    state.entries = new Map();
    el.entries.replaceChildren();
    writeEntriesTitle();
  }

  function makeEntryItem(entry) {
    const { li, badge: pos, buyer } = sideItem('entry', entry, 'entry-pos');
    const more = make('p', 'entry-more');
    const leave = itemButton('leave', entry.id, 'Leave');
    li.append(more, leave);
    return { li, pos, buyer, more, leave };
  }

  function fillEntry(entry) {
    const { li, pos, buyer, more, leave } = entry.item;
    li.dataset.position = String(entry.position);
    pos.textContent = `you're #${entry.position}`;
    showBuyer(buyer, entry.buyer);
    const parts = [entry.buyer && entry.buyer.phone, entry.buyer && entry.buyer.email].filter(Boolean);
    if (entry.projectId !== state.projectId) parts.push(`in ${entry.projectName}`);
    more.textContent = parts.join(' · ');
    more.hidden = !parts.length;
    leave.setAttribute('aria-label', `Leave the line for ${entry.code} (you're #${entry.position}${forWhom(entry.buyer)})`);
  }

  /** First in line first, then by code. */
  function placeEntry(entry) {
    placeItem(el.entries, state.entries, entry, (other, e) => other.position > e.position
      || (other.position === e.position && other.code > e.code));
  }

  function writeEntriesTitle() {
    const n = state.entries.size;
    el.entriesBox.hidden = !n;
    el.entriesTitle.textContent = `Your places in line (${n})`;
  }

  /** The viewer's places in line as read at `asked`: those no longer there are read once more, to say why. */
  async function entriesRead(nodes, asked) {
    const seen = new Set(nodes.map((n) => n.id));
    for (const node of nodes) putEntry(entryOf(node));
    const gone = [...state.entries.values()].filter((e) => !seen.has(e.id) && e.readAt <= asked);
    if (!gone.length) return;
    // An agent waits at most once per plot: the newest entry of the plot is this one.
    const variables = { me: state.me.id };
    const fields = gone.map((entry, i) => {
      variables[`g${i}`] = entry.propertyId;
      return `g${i}: queueEntries(agentId: $me, propertyId: $g${i}, first: 1) { nodes { ${ENTRY_FIELDS} reservation { ${RESERVATION_FIELDS} } } }`;
    });
    const params = ['$me: ID!', ...gone.map((_, i) => `$g${i}: ID!`)].join(', ');
    const data = await gql(`query BoardEntriesEnded(${params}) { ${fields.join(' ')} }`, variables);
    gone.forEach((entry, i) => {
      const node = data[`g${i}`].nodes[0];
      if (node && node.id === entry.id && node.status === 'WAITING') putEntry(entryOf(node));
      else if (node && node.id === entry.id) entryEnded(node);
      else entryEnded({ id: entry.id, status: null, buyer: entry.buyer, property: { code: entry.code } });
    });
  }

  /** Entries whose end was said already (an event and a read may both tell it). */
  const endedSaid = new Set();
  /** Holds whose "is now yours" was said already (the join's answer and the PROMOTED event). */
  const yoursSaid = new Set();

  function sayYours(hold) {
    if (yoursSaid.has(hold.id)) return;
    yoursSaid.add(hold.id);
    say(`${hold.code} is now yours (held${forWhom(hold.buyer)} until ${localTime(hold.expiresAt)}).`, 'ok');
  }

  /** One of the viewer's places in line ended: off the list, and why, in words. */
  function entryEnded(node) {
    dropEntry(node.id);
    if (endedSaid.has(node.id)) return;
    endedSaid.add(node.id);
    const what = `Your place in line for ${node.property.code}${forWhom(node.buyer)}`;
    switch (node.status) {
      case 'PROMOTED':
        if (node.reservation) gotFromLine(node.reservation, null);
        break;
      case 'SKIPPED':
        say(`${what} ended: passed over, as you were at your hold limit when your turn came.`, 'error');
        break;
      case 'CLOSED':
        say(`${what} ended: the plot was ${node.property.status === 'SOLD' ? 'sold' : 'withdrawn'}.`, 'error');
        break;
      case 'LEFT':
        say(`${what} ended: it was taken out of the line.`, 'error');
        break;
      default:
        say(`${what} ended.`, 'error');
        break;
    }
  }

  /** A place in line of the viewer's became this hold (r): the plot is theirs now. */
  function gotFromLine(r, at) {
    const hold = holdOfReservation(r);
    if (r.property.project.id === state.projectId) update(r.property, { at });
    if (r.status !== 'ACTIVE') return; // it has ended since: its own event says how
    putHold(hold);
    sayYours(hold);
  }

  // ---- hold events (holdEvents) -------------------------------------------

  function onHoldEvent(event) {
    if (state.pending) {
      state.pending.push({ hold: event });
      return;
    }
    if (event.kind === 'QUEUE_ENDED') {
      const entry = event.queueEntry;
      if (!entry) return;
      // A manager follows everyone's lines: the one the dialog shows may have moved.
      if (attempt && attempt.plotId === entry.property.id && showsLine(attempt) && form.dialog.open) readLine(attempt);
      if (state.me && entry.agent.id === state.me.id) entryEnded(entry);
      return;
    }
    const r = event.reservation;
    if (!r) return;
    const hold = holdOfReservation(r);
    const mine = state.me && hold.agentId === state.me.id;
    const inView = r.property.project.id === state.projectId;
    switch (event.kind) {
      case 'EXPIRING': {
        if (r.status !== 'ACTIVE') return;
        state.warned.set(r.id, hold.expiresAt);
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
      case 'PROMOTED':
        if (mine) {
          // One of the viewer's places in line became this hold.
          if (event.queueEntry) {
            endedSaid.add(event.queueEntry.id);
            dropEntry(event.queueEntry.id);
          }
          gotFromLine(r, event.at);
          break;
        }
        if (inView) update(r.property, { at: event.at });
        if (r.status === 'ACTIVE' && listed(hold)) putHold(hold);
        break;
      case 'RESERVED':
      case 'EXTENDED':
        if (inView) update(r.property, { at: event.at });
        if (r.status === 'ACTIVE' && listed(hold)) putHold(hold);
        if (mine && event.kind === 'EXTENDED') say(`${hold.code}${forWhom(hold.buyer)} was extended: it now ends at ${localTime(hold.expiresAt)}.`, 'ok');
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
    let currency = null;
    let after = null;
    let own = [];
    let waiting = [];
    const asked = Date.now();
    try {
      for (;;) {
        // The first page also reads the viewer's own holds and places in
        // line, in every project.
        const first = after === null;
        const data = await gql(
          `query BoardPlots($id: ID!, $after: String${first ? ', $me: ID!' : ''}) {
            project(id: $id) { name currency properties(first: ${PAGE_SIZE}, after: $after) {
              nodes { ${PLOT_READ} } pageInfo { hasNextPage endCursor } } }
            ${first ? `me { activeReservations { ${HOLD_FIELDS} status property { id code project { id name currency } } } }
              queueEntries(agentId: $me, status: WAITING, first: ${ENTRIES_PAGE}) { nodes { ${ENTRY_FIELDS} } }` : ''}
          }`,
          first ? { id, after, me: state.me.id } : { id, after },
        );
        if (seq !== state.loadSeq) return;
        if (!data.project) throw new GraphQLError('this project does not exist (any more)', 'NOT_FOUND');
        if (first) {
          own = data.me.activeReservations;
          waiting = data.queueEntries.nodes;
        }
        name = data.project.name;
        currency = data.project.currency;
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
    state.currency = currency;
    renderAll(nodes);
    rebuildHolds(own);
    // Places in line that ended while the page was not listening are said too.
    for (const entry of state.entries.values()) fillEntry(entry);
    entriesRead(waiting, asked).catch(() => { /* the next read of the lines catches up */ });
    lineReads.last = Date.now();
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

  // ---- reserve or join the line (the hold form), release, extend, leave ----

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
    if (kind === 'withdrawn' && !isManager()) {
      say(`${plot.code} is withdrawn: off the market, until a manager restores it.`);
      return;
    }
    if (busy.has(plot.id)) return;
    if (kind === 'mine') release(plot);
    else openHoldForm(plot);
  }

  /**
   * What the form does for a plot: reserve a free one (or, for a manager,
   * withdraw it), join the line of a held one, show the line the viewer
   * waits in, or restore a withdrawn one (managers).
   */
  function formMode(plot) {
    const kind = kindOf(plot);
    if (kind === 'available') return 'reserve';
    if (kind === 'withdrawn') return 'restore';
    return entryOn(plot.id) ? 'line' : 'join';
  }

  /** Whether the form shows the plot's line. */
  const showsLine = (att) => att.mode === 'join' || att.mode === 'line';

  /**
   * One opening of the form is one attempt: its idempotency key goes with
   * every send of it (the automatic retries, and "Try again"), so that a
   * send whose answer was lost, sent again, answers the hold it made
   * instead of making a second one.
   */
  let attempt = null;

  function openHoldForm(plot) {
    const mode = formMode(plot);
    attempt = { plotId: plot.id, code: plot.code, key: newKey(), busy: false, mode };
    form.form.reset();
    noBuyerChanged();
    form.name.setCustomValidity('');
    // Joining the line is for a buyer, and keeps no note; the line's own
    // view, and a withdrawn plot's, ask for nothing.
    const asks = mode === 'reserve' || mode === 'join';
    form.fields.hidden = !asks;
    form.noBuyerRow.hidden = mode !== 'reserve';
    form.noteLabel.hidden = mode !== 'reserve';
    form.note.hidden = mode !== 'reserve';
    form.submit.hidden = !asks;
    form.cancel.textContent = asks ? 'Cancel' : 'Close';
    // Managers take a free plot off the market, or put a withdrawn one back.
    const action = mode === 'restore' ? 'Restore' : 'Withdraw';
    form.action.hidden = !isManager() || (mode !== 'reserve' && mode !== 'restore');
    form.action.textContent = action;
    form.action.setAttribute('aria-label', `${action} ${plot.code}`);
    form.action.removeAttribute('aria-disabled');
    const until = plot.until ? ` until ${localTime(plot.until)}` : '';
    const held = `Reserved by ${plot.holder || 'someone'}${until}`;
    if (mode === 'reserve') {
      form.title.textContent = `Reserve ${plot.code}`;
      form.context.textContent = 'Who is it for? The buyer is shown to you and your managers only.';
    } else if (mode === 'join') {
      form.title.textContent = `Join the line for ${plot.code}`;
      form.context.textContent = `${held}. If the hold ends without a sale, the plot goes to the first in line, for their buyer (shown to you and your managers only).`;
    } else if (mode === 'restore') {
      form.title.textContent = `${plot.code} is withdrawn`;
      form.context.textContent = 'It is off the market: nobody can reserve it or join a line for it. Restore puts it back, available.';
    } else {
      const entry = entryOn(plot.id);
      form.title.textContent = `${plot.code}: you're #${entry.position} in line`;
      form.context.textContent = `${held}. You wait${forWhom(entry.buyer)}.`;
    }
    const price = money(plot.price, state.currency);
    form.price.textContent = price ? `Price: ${price}` : '';
    form.price.hidden = !price;
    lineShown = new Map();
    form.lineList.replaceChildren();
    delete form.lineBox.dataset.waiting;
    form.lineBox.hidden = !showsLine(attempt);
    if (showsLine(attempt)) readLine(attempt);
    showFormStatus('', '');
    form.submit.textContent = mode === 'join' ? 'Join the line' : 'Reserve';
    form.submit.removeAttribute('aria-disabled');
    form.form.removeAttribute('aria-busy');
    form.dialog.dataset.code = plot.code;
    form.dialog.dataset.mode = mode;
    if (!form.dialog.open) form.dialog.showModal();
    if (mode === 'restore') form.action.focus();
    else if (mode === 'line') form.cancel.focus();
    else form.name.focus();
  }

  // ---- a plot's line, in its dialog ----------------------------------------

  /** entry id -> the entry the dialog's line shows. */
  let lineShown = new Map();

  /** Reads the dialog's plot and its line, and shows them (the cell too). */
  async function readLine(att) {
    if (!lineShown.size) form.lineTitle.textContent = 'In line: reading…';
    try {
      const data = await gql(`query BoardLine($id: ID!) { property(id: $id) { ${PLOT_READ} ${LINE_FIELDS} } }`, { id: att.plotId });
      if (!data.property) return;
      if (state.plots.has(data.property.id)) update(data.property);
      if (attempt === att) showLine(data.property);
    } catch (e) {
      if (attempt === att) form.lineTitle.textContent = `In line: could not read it (${e.message})`;
    }
  }

  function showLine(node) {
    const entries = node.queue.nodes;
    lineShown = new Map(entries.map((e) => [e.id, e]));
    form.lineTitle.textContent = entries.length ? `In line (${node.queueLength})` : 'Nobody in line yet';
    form.lineBox.dataset.waiting = String(node.queueLength);
    form.lineList.replaceChildren(...entries.map((e) => lineItem(e, node.code)));
  }

  function lineItem(e, code) {
    const li = document.createElement('li');
    li.dataset.id = e.id;
    li.dataset.position = String(e.position);
    const own = e.agent.id === state.me.id;
    const who = make('span', 'who');
    const pos = make('span', 'pos', `#${e.position}`);
    const buyer = e.buyer ? [`for ${e.buyer.name}`, e.buyer.phone, e.buyer.email].filter(Boolean).join(' · ') : '';
    who.append(pos, `${own ? 'you' : e.agent.name}${buyer ? `, ${buyer}` : ''}`);
    li.append(who);
    // Its agent leaves it; a manager or an admin takes anyone's out.
    if (own || isManager()) {
      const button = itemButton('line-remove', e.id, own ? 'Leave' : 'Remove');
      button.setAttribute('aria-label', own
        ? `Leave the line for ${code} (you're #${e.position}${forWhom(e.buyer)})`
        : `Remove ${e.agent.name}${forWhom(e.buyer)} (#${e.position}) from the line for ${code}`);
      li.append(button);
    }
    return li;
  }

  function closeHoldForm() {
    attempt = null;
    lineShown = new Map();
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

  /**
   * Sends the form's attempt: the plot and the form busy meanwhile
   * (aria-disabled, not disabled: a disabled button would lose the focus).
   * `send(onForm)` makes the request and says how it went; a failure is
   * said where the user looks (see formFailed). `failure.button` is the
   * button that sent it, if not the form's own.
   */
  async function sendForm(att, doing, send, failure) {
    if (att.busy) return;
    const button = failure.button || form.submit;
    const plot = state.plots.get(att.plotId);
    if (!plot) {
      closeHoldForm();
      return;
    }
    att.busy = true;
    setBusy(plot, true);
    button.setAttribute('aria-disabled', 'true');
    form.form.setAttribute('aria-busy', 'true');
    showFormStatus(`${doing}…`, '');
    const onForm = () => attempt === att && form.dialog.open;
    try {
      await send(onForm);
    } catch (e) {
      formFailed(att, e, onForm, failure);
    } finally {
      att.busy = false;
      setBusy(plot, false);
      if (attempt === att) {
        button.removeAttribute('aria-disabled');
        form.form.removeAttribute('aria-busy');
      }
    }
  }

  /**
   * A send of the form failed. An answer that may be lost (the request may
   * have acted) leaves the form open with Try again; a refusal of the input,
   * or one `stays` says the form can mend, shows in the form; any other
   * refusal closes it and says why. `after(e)` reads again what was shown.
   */
  function formFailed(att, e, onForm, { what, retry, lost, button = form.submit, stays = () => false, after = () => {} }) {
    const text = `${what}: ${refusal(e)}`;
    const maybe = TRANSIENT.has(e.code) || e.code === 'INTERNAL';
    if (e.code === 'UNAUTHENTICATED') {
      closeHoldForm();
      failed(e, what);
    } else if (maybe && onForm()) {
      showFormStatus(`${text}. ${retry}`, 'error');
      button.textContent = 'Try again';
    } else if (e.code === 'BAD_USER_INPUT' && onForm()) {
      showFormStatus(`${text}.`, 'error');
    } else if (stays(e) && onForm()) {
      showFormStatus(`${text}.`, 'error');
      after(e);
    } else {
      if (attempt === att) closeHoldForm();
      // The form was closed while no answer came: the request may have acted.
      say(`${text}${maybe ? `; ${lost}` : ''}.`, 'error');
      after(e);
    }
  }

  function submitHold(att) {
    const input = holdInput();
    if (!input) {
      form.name.setCustomValidity('Type the buyer\'s name, or tick "No buyer yet".');
      form.name.reportValidity();
      return;
    }
    sendForm(att, `Reserving ${att.code}`, async (onForm) => {
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
    }, {
      what: `Could not reserve ${att.code}`,
      // The hold may or may not have been made: the same attempt, sent
      // again, says which, and never makes two.
      retry: 'Try again: it is the same request, so it cannot make a second hold.',
      lost: 'if it was made, the board shows it once the server answers',
      // Whatever we showed was out of date: read this plot again.
      after: (e) => { if (e.code === 'PROPERTY_UNAVAILABLE' || e.code === 'NOT_FOUND') refresh(att.plotId); },
    });
  }

  /** Why the server refused a reserve or a join, in words. */
  function refusal(e) {
    const { limit, reservedUntil } = e.extensions;
    switch (e.code) {
      case 'PROPERTY_UNAVAILABLE':
        if (e.extensions.propertyStatus === 'WITHDRAWN' && !e.extensions.projectArchived) return 'it is withdrawn: off the market';
        return reservedUntil ? `${e.message} (${localTime(Date.parse(reservedUntil))} your time)` : e.message;
      case 'RESERVATION_LIMIT_REACHED':
        return `you already hold ${limit} plots, the most allowed`;
      case 'ALREADY_QUEUED':
        return 'you hold it already, or wait in its line';
      case 'QUEUE_FULL':
        return limit === 0 ? 'the line is turned off on this server' : `its line is full (${limit} waiting, the most allowed)`;
      default:
        return e.message;
    }
  }

  /** joinQueue for the attempt's plot: a place at the end of its line, or the plot at once if it is free. */
  function submitJoin(att) {
    const name = clean(form.name.value);
    if (!name) {
      form.name.setCustomValidity("Type the buyer's name: a place in line is for a buyer.");
      form.name.reportValidity();
      return;
    }
    const buyer = { name, phone: clean(form.phone.value), email: clean(form.email.value) };
    sendForm(att, `Joining the line for ${att.code}`, async () => {
      const data = await gql(
        `mutation BoardJoin($id: ID!, $buyer: BuyerInput) {
          joinQueue(propertyId: $id, buyer: $buyer) { ${ENTRY_FIELDS} property { ${PLOT_READ} } reservation { ${RESERVATION_FIELDS} } }
        }`,
        { id: att.plotId, buyer },
      );
      const entry = data.joinQueue;
      if (attempt === att) closeHoldForm();
      if (entry.status === 'PROMOTED' && entry.reservation) {
        // Free, and nobody waited: it is the viewer's hold now.
        endedSaid.add(entry.id);
        gotFromLine(entry.reservation, entry.reservation.createdAt);
      } else {
        update(entry.property, { at: entry.createdAt });
        putEntry(entryOf(entry));
        say(`You're #${entry.position} in line for ${att.code}${forWhom(entry.buyer)}.`, 'ok');
      }
    }, {
      what: `Could not join the line for ${att.code}`,
      // Sent again, a join that went through answers ALREADY_QUEUED, which
      // reads the viewer's places in line: never two places.
      retry: 'Try again: if the first try went through, the server says so.',
      lost: 'if it went through, your places in line show it shortly',
      // A full line is right there, read again: someone may leave it (or a
      // manager take someone out), and the same form be sent again.
      stays: (e) => e.code === 'QUEUE_FULL' && e.extensions.limit > 0,
      after: (e) => {
        if (e.code === 'QUEUE_FULL' && attempt === att) readLine(att);
        else refresh(att.plotId);
        readLinesSoon({ entries: true }, 0);
      },
    });
  }

  /**
   * withdrawProperty or restoreProperty for the attempt's plot (managers).
   * Either one twice is harmless, so an answer that may be lost is simply
   * sent again. A plot held meanwhile is refused (PROPERTY_UNAVAILABLE, with
   * its end): said in words, and the plot read again.
   */
  function submitAvailability(att) {
    const withdraw = att.mode === 'reserve';
    const [verb, doing] = withdraw ? ['withdraw', 'Withdrawing'] : ['restore', 'Restoring'];
    sendForm(att, `${doing} ${att.code}`, async () => {
      const data = await gql(
        `mutation BoardAvailability($id: ID!) { plot: ${verb}Property(propertyId: $id) { ${PLOT_READ} } }`,
        { id: att.plotId },
      );
      if (attempt === att) closeHoldForm();
      update(data.plot);
      say(withdraw
        ? `Withdrew ${att.code}: off the market until it is restored.`
        : `Restored ${att.code}: available again.`, 'ok');
    }, {
      what: `Could not ${verb} ${att.code}`,
      retry: `Try again: ${withdraw ? 'withdrawing' : 'restoring'} twice is harmless.`,
      lost: 'if it went through, the board shows it shortly',
      button: form.action,
      after: () => refresh(att.plotId),
    });
  }

  /** Entry ids being taken out of the line. */
  const leaving = new Set();

  /** leaveQueue: the viewer's own place in line, or (a manager) anyone's. */
  async function leaveLine(entryId, code, button) {
    if (leaving.has(entryId)) return;
    leaving.add(entryId);
    const shown = lineShown.get(entryId);
    const own = state.entries.has(entryId) || (shown && shown.agent.id === state.me.id);
    button.setAttribute('aria-disabled', 'true');
    button.setAttribute('aria-busy', 'true');
    try {
      const data = await gql(
        `mutation BoardLeave($id: ID!) { leaveQueue(entryId: $id) { id endedAt property { ${PLOT_READ} ${LINE_FIELDS} } } }`,
        { id: entryId },
      );
      const left = data.leaveQueue;
      if (state.plots.has(left.property.id)) update(left.property, { at: left.endedAt });
      endedSaid.add(left.id);
      dropEntry(left.id);
      if (attempt && attempt.plotId === left.property.id && form.dialog.open) {
        if (own && attempt.mode === 'line') closeHoldForm();
        else showLine(left.property);
      }
      if (own) say(`You left the line for ${code}.`, 'ok');
      else say(`Took ${shown ? `${shown.agent.name}${forWhom(shown.buyer)}` : 'the entry'} out of the line for ${code}.`, 'ok');
    } catch (e) {
      if (e.code === 'UNAUTHENTICATED') failed(e, `Could not leave the line for ${code}`);
      else say(`Could not ${own ? 'leave' : 'change'} the line for ${code}: ${e.message}.`, 'error');
      readLinesSoon({ entries: true }, 0);
    } finally {
      leaving.delete(entryId);
      button.removeAttribute('aria-disabled');
      button.removeAttribute('aria-busy');
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
        `mutation BoardRelease($id: ID!) { releaseReservation(reservationId: $id) { id endedAt property { ${PLOT_READ} } } }`,
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
      const data = await gql(`query BoardPlot($id: ID!) { property(id: $id) { ${PLOT_READ} } }`, { id });
      if (data.property && state.plots.has(data.property.id)) update(data.property);
    } catch (e) { /* the live feed will catch up */ }
  }

  // ---- live updates (graphql-transport-ws) --------------------------------

  function onChange(change) {
    if (state.pending) {
      state.pending.push(change);
      return;
    }
    update(change.property, { at: change.at, live: true, flash: true, change });
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
    state.currency = null;
    state.loadSeq += 1;
    state.signins += 1;
    state.plots = new Map();
    state.held = new Set();
    state.warned = new Map();
    state.holdsRefused = false;
    clearHolds();
    clearEntries();
    el.grid.replaceChildren();
    try {
      sessionStorage.removeItem(TOKEN_KEY);
      localStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* storage may be off */ }
    showSignin();
    if (message) say(message, 'error');
  }

  /** The picker's option for a project, added at its end (or moved there: pages come in order). */
  function offerProject(p) {
    let option = el.project.querySelector(`option[value="${CSS.escape(p.id)}"]`);
    if (!option) {
      option = document.createElement('option');
      option.value = p.id;
    }
    option.textContent = p.name;
    el.project.append(option);
  }

  const offered = (id) => Boolean(id) && el.project.querySelector(`option[value="${CSS.escape(id)}"]`) !== null;

  /** One project, if it exists and is not archived (the link's, or the one this tab last showed). */
  async function findProject(id) {
    try {
      const data = await gql('query BoardProject($id: ID!) { project(id: $id) { id name archived } }', { id });
      return data.project && !data.project.archived ? data.project : null;
    } catch (e) {
      return null; // a malformed id, say: the first project instead
    }
  }

  /**
   * The picker's other pages, after the first is shown: every project (the
   * archived ones are left out by the server), in creation order.
   */
  async function moreProjects(signin, after) {
    let cursor = after;
    try {
      while (cursor !== null) {
        const data = await gql(
          `query BoardProjects($after: String) { projects(first: ${PROJECTS_PAGE}, after: $after) { nodes { id name } pageInfo { hasNextPage endCursor } } }`,
          { after: cursor },
        );
        if (signin !== state.signins) return;
        for (const p of data.projects.nodes) offerProject(p);
        if (state.projectId) el.project.value = state.projectId;
        cursor = data.projects.pageInfo.hasNextPage ? data.projects.pageInfo.endCursor : null;
      }
      el.project.dataset.complete = 'true';
    } catch (e) {
      if (signin === state.signins) failed(e, 'Could not list every project');
    }
  }

  async function start(wantedProject) {
    const signin = ++state.signins;
    let data;
    try {
      data = await gql(`query BoardStart { me { id name role }
        projects(first: ${PROJECTS_PAGE}) { nodes { id name } pageInfo { hasNextPage endCursor } } }`);
    } catch (e) {
      signOut(`Could not sign in: ${e.message}`);
      return;
    }
    if (signin !== state.signins) return;
    state.me = data.me;
    el.me.textContent = `${data.me.name} (${data.me.role.replace('_', ' ').toLowerCase()})`;
    el.signin.hidden = true;
    el.who.hidden = false;
    el.board.hidden = false;
    clearHolds();
    // The first page at once; the rest while the plots load.
    const { nodes: projects, pageInfo } = data.projects;
    el.project.replaceChildren();
    delete el.project.dataset.complete;
    for (const p of projects) offerProject(p);
    if (!projects.length) {
      el.project.dataset.complete = 'true';
      el.title.textContent = 'No projects yet';
      say('Your workspace has no projects yet.');
      return;
    }
    let remembered = null;
    try {
      remembered = sessionStorage.getItem(PROJECT_KEY);
    } catch (e) { /* storage may be off */ }
    const wanted = [wantedProject, remembered].filter(Boolean);
    let chosen = wanted.find(offered);
    if (!chosen && pageInfo.hasNextPage) {
      // Further down the list: read that one alone rather than wait for every page.
      for (const id of wanted) {
        const p = await findProject(id);
        if (signin !== state.signins) return;
        if (p) {
          offerProject(p);
          chosen = p.id;
          break;
        }
      }
    }
    chosen = chosen || projects[0].id;
    el.project.value = chosen;
    choose(chosen);
    if (pageInfo.hasNextPage) moreProjects(signin, pageInfo.endCursor);
    else el.project.dataset.complete = 'true';
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
    if (!attempt) return;
    if (attempt.mode === 'join') submitJoin(attempt);
    else if (attempt.mode === 'reserve') submitHold(attempt);
  });
  el.entries.addEventListener('click', (event) => {
    const button = event.target.closest('button.leave');
    if (!button) return;
    const entry = state.entries.get(button.dataset.id);
    if (entry) leaveLine(entry.id, entry.code, button);
  });
  form.lineList.addEventListener('click', (event) => {
    const button = event.target.closest('button.line-remove');
    if (button && attempt) leaveLine(button.dataset.id, attempt.code, button);
  });
  form.action.addEventListener('click', () => {
    if (attempt && (attempt.mode === 'reserve' || attempt.mode === 'restore')) submitAvailability(attempt);
  });
  form.noBuyer.addEventListener('change', noBuyerChanged);
  form.name.addEventListener('input', () => form.name.setCustomValidity(''));
  form.cancel.addEventListener('click', closeHoldForm);
  // Escape, or the form closed any other way: the attempt is over (one in
  // flight still finishes, and says how it went).
  form.dialog.addEventListener('close', () => {
    attempt = null;
    lineShown = new Map();
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
