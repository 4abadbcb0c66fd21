// Starts GraphiQL (served from the server itself, see vendor/SOURCES.md) on
// this server's API: queries and mutations are POSTed to /graphql with the
// headers typed in GraphiQL's Headers pane, and subscriptions go over
// /graphql/ws (graphql-transport-ws), with those same headers as the
// connection_init payload, which is where the server reads the token.
//
// A link may carry a token in its fragment (/graphql#token=...), as `just dev`
// prints: it is put in the Headers pane and removed from the address bar. A
// fragment is never sent to the server, so the token stays out of its logs.
'use strict';

(function start() {
  // GraphiQL's dialogs add one <style> element of their own (react-remove-
  // scroll's, which stops the page scrolling behind a dialog). The page's
  // policy allows it by this response's nonce, given to this script's tag;
  // the library reads it from `__webpack_nonce__`.
  window.__webpack_nonce__ = document.currentScript && document.currentScript.nonce;

  const root = document.getElementById('graphiql');
  if (!window.React || !window.ReactDOM || !window.GraphiQL || !window.graphqlWs) {
    root.textContent = 'GraphiQL did not load: one of its scripts is missing (see the browser console).';
    return;
  }

  const endpoint = '/graphql';
  const wsEndpoint = `${window.location.protocol === 'https:' ? 'wss' : 'ws'}://${window.location.host}/graphql/ws`;

  /** The token in the address's fragment, removed from the address bar. */
  function tokenFromFragment() {
    const fragment = new URLSearchParams(window.location.hash.slice(1));
    const token = fragment.get('token');
    if (token === null) return null;
    fragment.delete('token');
    const rest = fragment.toString();
    window.history.replaceState(null, '', `${window.location.pathname}${window.location.search}${rest ? `#${rest}` : ''}`);
    return token.trim() || null;
  }

  /** The operation GraphiQL is about to run: `query`, `mutation` or `subscription`. */
  function operationType(params, documentAST) {
    const operations = (documentAST && documentAST.definitions || [])
      .filter((d) => d.kind === 'OperationDefinition');
    const chosen = params.operationName
      ? operations.find((d) => d.name && d.name.value === params.operationName)
      : operations[0];
    if (chosen) return chosen.operation;
    return /^\s*subscription\b/.test(params.query || '') ? 'subscription' : 'query';
  }

  // One WebSocket client, for the headers it was made with: the token is
  // read once per connection, so other headers need another connection.
  // `lazy` opens the socket with the first subscription and closes it after
  // the last one; a dropped connection ends its subscriptions with an error
  // in the result pane rather than retrying behind the user's back.
  let socket = null;
  function wsClient(headers) {
    const key = JSON.stringify(headers);
    if (socket && socket.key === key) return socket.client;
    if (socket) socket.client.dispose();
    const client = window.graphqlWs.createClient({
      url: wsEndpoint,
      connectionParams: headers,
      lazy: true,
      retryAttempts: 0,
    });
    socket = { key, client };
    return client;
  }

  /** Why a subscription ended badly, in words GraphiQL's result pane can show. */
  function describe(error) {
    if (error && typeof error.code === 'number' && 'reason' in error) {
      return `the subscription's connection closed (${error.code}${error.reason ? `: ${error.reason}` : ''})`;
    }
    if (Array.isArray(error)) return error.map((e) => e.message).join('; ');
    return (error && error.message) || String(error);
  }

  function subscribe(params, headers) {
    return {
      subscribe(observer) {
        const stop = wsClient(headers).subscribe(params, {
          next: (result) => observer.next(result),
          error: (error) => {
            observer.next({ errors: [{ message: describe(error) }] });
            observer.complete();
          },
          complete: () => observer.complete(),
        });
        return { unsubscribe: stop };
      },
    };
  }

  async function post(params, headers) {
    const response = await fetch(endpoint, {
      method: 'POST',
      headers: { ...headers, 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(params),
      credentials: 'omit',
    });
    const text = await response.text();
    try {
      return JSON.parse(text);
    } catch (e) {
      return { errors: [{ message: `HTTP ${response.status}: ${text.slice(0, 500)}` }] };
    }
  }

  function fetcher(params, options) {
    const headers = (options && options.headers) || {};
    if (operationType(params, options && options.documentAST) === 'subscription') {
      return subscribe(params, headers);
    }
    return post(params, headers);
  }

  // GraphiQL's own storage (localStorage, under `graphiql:`), except that
  // its history and favourites keep no headers unless GraphiQL's "Persist
  // headers" setting is on: it already keeps them out of its saved tabs, but
  // the history would keep the bearer token of every query run.
  const NAMESPACE = 'graphiql:';
  const WITH_HEADERS = [`${NAMESPACE}queries`, `${NAMESPACE}favorites`];
  function withoutHeaders(value) {
    try {
      const saved = JSON.parse(value);
      for (const list of Object.values(saved || {})) {
        if (Array.isArray(list)) list.forEach((item) => { if (item) delete item.headers; });
      }
      return JSON.stringify(saved);
    } catch (e) {
      return value;
    }
  }
  const local = window.localStorage;
  const storage = {
    getItem: (key) => local.getItem(key),
    setItem(key, value) {
      const persist = local.getItem(`${NAMESPACE}shouldPersistHeaders`) === 'true';
      local.setItem(key, WITH_HEADERS.includes(key) && !persist ? withoutHeaders(value) : value);
    },
    removeItem: (key) => local.removeItem(key),
    get length() {
      return Object.keys(local).filter((key) => key.startsWith(NAMESPACE)).length;
    },
    clear() {
      Object.keys(local).filter((key) => key.startsWith(NAMESPACE)).forEach((key) => local.removeItem(key));
    },
  };

  const defaultQuery = `# Welcome to holdfast's GraphiQL.
#
# Every request needs a bearer token: put it in the Headers pane below as
#   {"Authorization": "Bearer <token>"}
# (\`just dev\` prints a link that does it for you). The Docs button on the
# left lists every query, mutation and subscription.

query FirstPlots {
  projects(first: 1) {
    nodes {
      name
      availablePlots
      properties(first: 5) { nodes { id code status } }
    }
  }
}

# Runs until you stop it; reserve a plot (in another tab) to see it arrive.
subscription PlotChanges {
  propertyChanged { property { code status } previousStatus at }
}
`;

  const token = tokenFromFragment();
  const props = {
    fetcher,
    storage,
    defaultQuery,
    defaultHeaders: JSON.stringify({ Authorization: 'Bearer <token>' }, null, 2),
    defaultEditorToolsVisibility: 'headers',
  };
  if (token) props.headers = JSON.stringify({ Authorization: `Bearer ${token}` }, null, 2);

  window.ReactDOM.createRoot(root).render(window.React.createElement(window.GraphiQL, props));
}());
