// Installed by the tests into every page before the page's own script runs
// (Page.addScriptToEvaluateOnNewDocument, which the page's CSP does not
// apply to). It only watches: it records what the page shows, when, so the
// test can tell how long after a write another browser showed it, and which
// connection states the page went through.
(() => {
  const probe = {
    // CSP violations the page caused (none expected).
    csp: [],
    // One entry per batch of DOM changes: { at, state, version, topics }.
    log: [],
  };
  Object.defineProperty(window, '__e2e', { value: probe });

  document.addEventListener('securitypolicyviolation', (ev) => {
    probe.csp.push(`${ev.violatedDirective} blocked ${ev.blockedURI || '(inline)'}`);
  });

  // What the page shows: the list as a reader sees it, the connection
  // state and the version the list is at.
  probe.read = () => {
    const list = document.getElementById('topics');
    const status = document.getElementById('status');
    return {
      at: Date.now(),
      state: status ? status.dataset.state : '',
      version: list && list.dataset.version ? Number(list.dataset.version) : -1,
      topics: list ? [...list.querySelectorAll('li.topic')].map((li) => {
        const p = li.querySelector('p.comment');
        return { id: Number(li.dataset.id), comment: p ? p.textContent : '' };
      }) : [],
    };
  };

  // Observing the document itself works before <body> exists.
  new MutationObserver(() => probe.log.push(probe.read())).observe(document, {
    subtree: true,
    childList: true,
    characterData: true,
    attributes: true,
    attributeFilter: ['data-state', 'data-version'],
  });
})();
