/*
 * WhatPro Hub: Chatwoot Dashboard Script.
 *
 * Served by the Hub at /embed/dashboard-script.js; an operator loads it through Chatwoot's
 * DASHBOARD_SCRIPTS (self-hosted Chatwoot only). It runs on the Chatwoot origin, where it can
 * read the dashboard session (cookie `cw_d_session_info`). It
 *   1. adds a launcher button (kept across the dashboard's route changes),
 *   2. on open, exchanges the session for a short-lived Hub instance token for the account in
 *      the dashboard URL (/app/accounts/{id}/...),
 *   3. opens the Hub iframe and, once the iframe says it is ready, hands the token over with
 *      postMessage to the Hub origin only.
 * Messages from any other origin, or from any other window than the Hub iframe, are ignored.
 */
(function () {
  "use strict";

  var HUB_ORIGIN = __WHATPRO_HUB_ORIGIN__;
  var APP_URL = HUB_ORIGIN + "/embed/app";
  var TOKEN_URL = HUB_ORIGIN + "/api/v1/instance-tokens";
  var SCOPES = __WHATPRO_SCOPES__;
  var TTL_MINUTES = __WHATPRO_TTL_MINUTES__;
  var ROOT_ID = "whatpro-hub-root";
  var SESSION_COOKIE = "cw_d_session_info";
  var SESSION_FIELDS = ["access-token", "client", "uid"];

  if (window.__whatproHubDashboardScript) {
    return;
  }
  window.__whatproHubDashboardScript = true;

  var state = {
    root: null,
    panel: null,
    iframe: null,
    opened: false,
    frameReady: false,
    accountId: null,
    token: null,
    tokenError: null,
    requestSeq: 0,
    renewTimer: null
  };

  function currentAccountId() {
    var match = /^\/app\/accounts\/(\d+)(?:\/|$)/.exec(window.location.pathname);
    return match ? Number(match[1]) : null;
  }

  /* The dashboard session: the devise headers the dashboard keeps in a JS cookie (js-cookie
     URL-encodes the JSON). Only the three values the Hub checks with Chatwoot are sent. */
  function readSession() {
    var cookies = document.cookie ? document.cookie.split(";") : [];
    for (var i = 0; i < cookies.length; i += 1) {
      var pair = cookies[i].replace(/^\s+/, "");
      if (pair.indexOf(SESSION_COOKIE + "=") !== 0) {
        continue;
      }
      var raw = pair.slice(SESSION_COOKIE.length + 1);
      var parsed = null;
      try {
        parsed = JSON.parse(decodeURIComponent(raw));
      } catch (ignored) {
        try {
          parsed = JSON.parse(raw);
        } catch (alsoIgnored) {
          parsed = null;
        }
      }
      if (!parsed || typeof parsed !== "object") {
        return null;
      }
      var session = {};
      for (var j = 0; j < SESSION_FIELDS.length; j += 1) {
        var value = parsed[SESSION_FIELDS[j]];
        if (typeof value !== "string" || value === "") {
          return null;
        }
        session[SESSION_FIELDS[j]] = value;
      }
      return session;
    }
    return null;
  }

  function post(message) {
    if (state.iframe && state.iframe.contentWindow) {
      state.iframe.contentWindow.postMessage(message, HUB_ORIGIN);
    }
  }

  function deliver() {
    if (!state.frameReady) {
      return;
    }
    if (state.token) {
      post({
        type: "whatpro:instance-token",
        token: state.token.token,
        account_id: state.token.account_id,
        expires_at: state.token.expires_at
      });
    } else if (state.tokenError) {
      post({ type: "whatpro:token-error", reason: state.tokenError });
    }
  }

  function scheduleRenewal() {
    if (state.renewTimer) {
      window.clearTimeout(state.renewTimer);
    }
    /* Renew at 80% of the lifetime, while the panel has been opened. */
    state.renewTimer = window.setTimeout(function () {
      requestToken(state.accountId);
    }, TTL_MINUTES * 60000 * 0.8);
  }

  function requestToken(accountId) {
    var seq = (state.requestSeq += 1);
    state.token = null;
    state.tokenError = null;
    if (accountId === null) {
      return;
    }
    var session = readSession();
    if (!session) {
      state.tokenError = "no_chatwoot_session";
      deliver();
      return;
    }
    window
      .fetch(TOKEN_URL, {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        cache: "no-store",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          account_id: accountId,
          scopes: SCOPES,
          ttl_minutes: TTL_MINUTES,
          origin: HUB_ORIGIN,
          chatwoot_session: session
        })
      })
      .then(function (response) {
        return response.json().then(
          function (body) {
            return { ok: response.ok, status: response.status, body: body };
          },
          function () {
            return { ok: false, status: response.status, body: null };
          }
        );
      })
      .then(function (answer) {
        if (seq !== state.requestSeq) {
          return;
        }
        if (answer.ok && answer.body && typeof answer.body.token === "string") {
          state.token = {
            token: answer.body.token,
            account_id: accountId,
            expires_at: answer.body.expires_at
          };
          scheduleRenewal();
        } else {
          state.tokenError =
            (answer.body && typeof answer.body.code === "string" && answer.body.code) ||
            "http_" + answer.status;
        }
        deliver();
      })
      .catch(function () {
        if (seq === state.requestSeq) {
          state.tokenError = "hub_unreachable";
          deliver();
        }
      });
  }

  window.addEventListener("message", function (event) {
    if (event.origin !== HUB_ORIGIN) {
      return;
    }
    if (!state.iframe || event.source !== state.iframe.contentWindow) {
      return;
    }
    var data = event.data;
    if (!data || typeof data !== "object") {
      return;
    }
    if (data.type === "whatpro:ready") {
      state.frameReady = true;
      deliver();
    } else if (data.type === "whatpro:token-request") {
      requestToken(state.accountId);
    }
  });

  function styleLauncher(button) {
    var s = button.style;
    s.position = "fixed";
    s.right = "16px";
    s.bottom = "16px";
    s.zIndex = "2147483000";
    s.padding = "8px 14px";
    s.border = "0";
    s.borderRadius = "8px";
    s.background = "#2781F6";
    s.color = "#ffffff";
    s.font = "500 14px Inter, -apple-system, system-ui, sans-serif";
    s.cursor = "pointer";
    s.boxShadow = "0 2px 8px rgba(0,0,0,.2)";
  }

  function stylePanel(panel) {
    var s = panel.style;
    s.position = "fixed";
    s.right = "16px";
    s.bottom = "64px";
    s.width = "420px";
    s.maxWidth = "calc(100vw - 32px)";
    s.height = "70vh";
    s.zIndex = "2147483000";
    s.borderRadius = "12px";
    s.overflow = "hidden";
    s.background = "#ffffff";
    s.boxShadow = "0 8px 32px rgba(0,0,0,.25)";
  }

  function openPanel() {
    if (!state.iframe) {
      var iframe = document.createElement("iframe");
      iframe.id = "whatpro-hub-frame";
      iframe.title = "WhatPro Hub";
      iframe.src = APP_URL;
      iframe.style.width = "100%";
      iframe.style.height = "100%";
      iframe.style.border = "0";
      /* A reloaded frame says it is ready again. */
      iframe.addEventListener("load", function () {
        state.frameReady = false;
      });
      state.iframe = iframe;
      state.panel.appendChild(iframe);
    }
    state.panel.hidden = false;
    if (!state.opened) {
      state.opened = true;
      requestToken(state.accountId);
    }
  }

  function ensureUi() {
    if (state.root) {
      if (!state.root.isConnected && document.body) {
        document.body.appendChild(state.root);
      }
      return;
    }
    if (!document.body) {
      return;
    }
    var root = document.createElement("div");
    root.id = ROOT_ID;
    var launcher = document.createElement("button");
    launcher.id = "whatpro-hub-launcher";
    launcher.type = "button";
    launcher.textContent = "WhatPro";
    styleLauncher(launcher);
    var panel = document.createElement("div");
    panel.id = "whatpro-hub-panel";
    panel.hidden = true;
    stylePanel(panel);
    launcher.addEventListener("click", function () {
      if (state.panel.hidden) {
        openPanel();
      } else {
        state.panel.hidden = true;
      }
    });
    root.appendChild(panel);
    root.appendChild(launcher);
    state.root = root;
    state.panel = panel;
    document.body.appendChild(root);
  }

  /* The dashboard is a Vue SPA: follow route changes (account switches) and keep the injected
     element attached whatever the dashboard re-renders. */
  function sync() {
    ensureUi();
    var accountId = currentAccountId();
    if (state.root) {
      state.root.hidden = accountId === null;
    }
    if (accountId !== state.accountId) {
      state.accountId = accountId;
      if (state.opened) {
        requestToken(accountId);
      }
    }
  }

  var pending = false;
  function scheduleSync() {
    if (pending) {
      return;
    }
    pending = true;
    window.setTimeout(function () {
      pending = false;
      sync();
    }, 50);
  }

  function start() {
    sync();
    new MutationObserver(scheduleSync).observe(document.body, { childList: true, subtree: true });
    window.addEventListener("popstate", scheduleSync);
  }

  if (document.body) {
    start();
  } else {
    document.addEventListener("DOMContentLoaded", start);
  }
})();
