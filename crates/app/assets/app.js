/*
 * WhatPro Hub: the embedded page (/embed/app), framed by Chatwoot.
 *
 * Identity comes only from a token the Hub verified:
 *   - the Dashboard Script (on the Chatwoot origin) posts {type: "whatpro:instance-token"};
 *     the token is checked with GET /api/v1/instance-tokens/validate before anything is shown;
 *   - without the script, the user signs in through SSO with a Chatwoot access token.
 * Chatwoot's Dashboard App context (`appContext`, an unsigned JSON string) only picks the
 * conversation. Messages are accepted only from the configured Chatwoot origins and only from
 * the parent window; everything else, and anything malformed, is ignored.
 */
(function () {
  "use strict";

  var ALLOWED_ORIGINS = __WHATPRO_ALLOWED_ORIGINS__;
  var TOKEN_MESSAGE = "whatpro:instance-token";
  var TOKEN_ERROR_MESSAGE = "whatpro:token-error";
  var READY_MESSAGE = "whatpro:ready";
  var FETCH_INFO = "chatwoot-dashboard-app:fetch-info";
  var MAX_TOKEN_CHARS = 4096;
  var MAX_CONTEXT_CHARS = 2000000;
  var SSO_AFTER_MS = 3000;

  var statusEl = document.getElementById("status");
  var conversationEl = document.getElementById("conversation");
  var conversationSummary = document.getElementById("conversation-summary");
  var ssoForm = document.getElementById("sso");
  var ssoToken = document.getElementById("sso-token");
  var ssoError = document.getElementById("sso-error");

  var ignored = 0;
  var verifySeq = 0;
  var identity = null;
  var conversation = null;

  function isAllowed(origin) {
    return typeof origin === "string" && origin !== "null" && ALLOWED_ORIGINS.indexOf(origin) !== -1;
  }

  function framed() {
    return window.parent !== window;
  }

  function ignore() {
    ignored += 1;
    statusEl.setAttribute("data-ignored", String(ignored));
  }

  function setStatus(state, text, accountId, userId) {
    statusEl.setAttribute("data-state", state);
    statusEl.setAttribute("data-account-id", accountId === null || accountId === undefined ? "" : String(accountId));
    statusEl.setAttribute("data-user-id", userId === null || userId === undefined ? "" : String(userId));
    statusEl.textContent = text;
  }

  /* Where the parent may be reached: its origin when the browser names it and it is allowed;
     otherwise each allowed origin (postMessage delivers only to the one that matches). */
  function parentOrigins() {
    if (!framed()) {
      return [];
    }
    var ancestors = window.location.ancestorOrigins;
    if (ancestors && ancestors.length > 0) {
      return isAllowed(ancestors[0]) ? [ancestors[0]] : [];
    }
    return ALLOWED_ORIGINS.slice();
  }

  function postToParent(message) {
    var origins = parentOrigins();
    for (var i = 0; i < origins.length; i += 1) {
      window.parent.postMessage(message, origins[i]);
    }
  }

  function showSso(reason) {
    if (identity) {
      return;
    }
    ssoForm.hidden = false;
    if (reason) {
      ssoError.textContent = reason;
    }
  }

  function showIdentity(state, label, accountId, userId) {
    identity = { state: state, accountId: accountId, userId: userId };
    ssoForm.hidden = true;
    ssoError.textContent = "";
    var text = label;
    if (accountId !== null) {
      text += " account " + accountId;
    }
    text += " user " + userId;
    setStatus(state, text, accountId, userId);
  }

  /* ---- instance tokens from the Dashboard Script ---- */

  function verify(token) {
    var seq = (verifySeq += 1);
    identity = null;
    setStatus("verifying", "Verifying…", null, null);
    window
      .fetch("/api/v1/instance-tokens/validate", {
        method: "GET",
        credentials: "same-origin",
        cache: "no-store",
        headers: { Authorization: "Bearer " + token }
      })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("validate answered " + response.status);
        }
        return response.json();
      })
      .then(function (body) {
        if (seq !== verifySeq) {
          return;
        }
        if (
          !body ||
          body.valid !== true ||
          typeof body.account_id !== "number" ||
          typeof body.user_id !== "number"
        ) {
          throw new Error("unexpected validate answer");
        }
        showIdentity("verified", "verified", body.account_id, body.user_id);
      })
      .catch(function () {
        if (seq !== verifySeq) {
          return;
        }
        setStatus("rejected", "The token was not accepted.", null, null);
        showSso();
      });
  }

  function onToken(data) {
    var token = data.token;
    if (typeof token !== "string" || token.length === 0 || token.length > MAX_TOKEN_CHARS) {
      ignore();
      return;
    }
    verify(token);
  }

  function onTokenError(data) {
    if (typeof data.reason !== "string") {
      ignore();
      return;
    }
    showSso("The Hub could not sign you in automatically (" + data.reason.slice(0, 80) + ").");
  }

  /* ---- Chatwoot's Dashboard App context: picks the conversation, never the identity ---- */

  function onAppContext(text) {
    if (text.length > MAX_CONTEXT_CHARS) {
      ignore();
      return;
    }
    var parsed;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      ignore();
      return;
    }
    if (!parsed || parsed.event !== "appContext" || !parsed.data || typeof parsed.data !== "object") {
      ignore();
      return;
    }
    var c = parsed.data.conversation;
    if (!c || typeof c !== "object" || typeof c.id !== "number") {
      ignore();
      return;
    }
    conversation = {
      id: c.id,
      accountId: typeof c.account_id === "number" ? c.account_id : null,
      inboxId: typeof c.inbox_id === "number" ? c.inbox_id : null
    };
    conversationEl.setAttribute("data-conversation-id", String(conversation.id));
    conversationEl.setAttribute(
      "data-account-id",
      conversation.accountId === null ? "" : String(conversation.accountId)
    );
    conversationSummary.textContent = "Conversation #" + conversation.id;
    conversationEl.hidden = false;
  }

  window.addEventListener("message", function (event) {
    if (!framed() || event.source !== window.parent || !isAllowed(event.origin)) {
      ignore();
      return;
    }
    var data = event.data;
    if (typeof data === "string") {
      onAppContext(data);
    } else if (data && typeof data === "object" && data.type === TOKEN_MESSAGE) {
      onToken(data);
    } else if (data && typeof data === "object" && data.type === TOKEN_ERROR_MESSAGE) {
      onTokenError(data);
    } else {
      ignore();
    }
  });

  /* ---- sign-in without the script: SSO with a Chatwoot access token ---- */

  ssoForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var token = ssoToken.value.trim();
    if (token === "") {
      return;
    }
    ssoError.textContent = "";
    window
      .fetch("/api/v1/auth/sso", {
        method: "POST",
        credentials: "same-origin",
        cache: "no-store",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ chatwoot_access_token: token, token_delivery: "body" })
      })
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) {
            throw new Error((body && body.message) || "sign-in failed (" + response.status + ")");
          }
          return body;
        });
      })
      .then(function (body) {
        ssoToken.value = "";
        if (!body || !body.user || typeof body.user.id !== "number") {
          throw new Error("unexpected sign-in answer");
        }
        /* The account is the conversation's only when the Hub says the user belongs to it. */
        var accounts = Array.isArray(body.accounts) ? body.accounts : [];
        var accountId = null;
        for (var i = 0; i < accounts.length; i += 1) {
          if (conversation && accounts[i] && accounts[i].id === conversation.accountId) {
            accountId = accounts[i].id;
          }
        }
        if (accountId === null && accounts.length === 1 && typeof accounts[0].id === "number") {
          accountId = accounts[0].id;
        }
        showIdentity("signed-in", "signed in", accountId, body.user.id);
      })
      .catch(function (error) {
        ssoError.textContent = String(error && error.message ? error.message : error);
      });
  });

  /* ---- start ---- */

  postToParent({ type: READY_MESSAGE });
  postToParent(FETCH_INFO);
  if (framed()) {
    window.setTimeout(function () {
      if (!identity && statusEl.getAttribute("data-state") === "waiting") {
        showSso();
      }
    }, SSO_AFTER_MS);
  } else {
    showSso();
  }
})();
