// Sigil web UI behaviour. Signed-in pages call the JSON API (/api/v1) with the session
// cookie; every state-changing call carries the session's CSRF token. No inline code:
// the page's CSP allows scripts from our own hashed files only.
(function () {
  "use strict";
  var API = "/api/v1";
  var session = null; // {user, csrf_token}

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $$(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "class") e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { e.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return e;
  }
  function toast(msg) {
    var t = $("#toast");
    if (!t) return;
    t.textContent = msg;
    t.classList.add("show");
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { t.classList.remove("show"); }, 2200);
  }
  function day(s) { return s ? String(s).slice(0, 10) : "—"; }

  // Errors from the API keep their stable code, message and hint.
  function ApiError(status, body) {
    var e = (body && body.error) || {};
    this.status = status;
    this.code = e.code || "http_" + status;
    this.message = e.message || "request failed (" + status + ")";
    this.hint = e.hint || "";
    this.details = e.details || null;
  }
  ApiError.prototype.toString = function () { return this.message + (this.hint ? " — " + this.hint : ""); };

  function api(method, path, body) {
    var headers = { "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && session && session.csrf_token) headers["X-CSRF-Token"] = session.csrf_token;
    return fetch(API + path, {
      method: method, headers: headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      if (r.status === 204) return null;
      return r.text().then(function (t) {
        var j = null;
        try { j = t ? JSON.parse(t) : null; } catch (_) { j = null; }
        if (!r.ok) throw new ApiError(r.status, j);
        return j;
      });
    });
  }
  function showError(node, err) {
    if (!node) return;
    node.textContent = String(err);
    node.hidden = false;
  }
  function clearError(node) { if (node) { node.textContent = ""; node.hidden = true; } }

  function loginUrl() {
    return "/login?next=" + encodeURIComponent(location.pathname + location.search);
  }
  function userOf(s) { return (s && (s.user || s)) || {}; }
  function mustChange(u) { return !!(u.must_change_password || u.mustChangePassword); }

  // The header: who is signed in, and a logout button.
  function renderWho() {
    var who = $("#who");
    if (!who || !session) return;
    var u = userOf(session);
    who.textContent = "";
    who.appendChild(el("span", { class: "muted", id: "who-name", text: u.username }));
    var b = el("button", { class: "btn btn-small", type: "button", id: "logout", text: "Log out" });
    b.addEventListener("click", function () {
      api("POST", "/auth/logout").catch(function () {}).then(function () { location.href = "/"; });
    });
    who.appendChild(b);
  }

  function loadSession() {
    return api("GET", "/auth/session").then(function (s) { session = s; renderWho(); return s; },
      function () { session = null; return null; });
  }

  // Pages under the dashboard need a session: redirect to login without one.
  function requireLogin() {
    return loadSession().then(function (s) {
      if (!s) { location.replace(loginUrl()); return new Promise(function () {}); }
      if (mustChange(userOf(s)) && document.body.dataset.page !== "password") {
        location.replace("/account/password?first=1&next=" + encodeURIComponent(location.pathname + location.search));
        return new Promise(function () {});
      }
      var w = $("#auth-wait"); if (w) w.hidden = true;
      var a = $("#authed"); if (a) a.hidden = false;
      return s;
    });
  }

  function confirmDialog(text) {
    var d = $("#confirm");
    if (!d || !d.showModal) return Promise.resolve(window.confirm(text));
    $("#confirm-text").textContent = text;
    return new Promise(function (resolve) {
      d.addEventListener("close", function h() { d.removeEventListener("close", h); resolve(d.returnValue === "ok"); });
      d.showModal();
      $("#confirm-ok").focus();
    });
  }

  // Copy buttons: data-copy="#id" copies that element's text.
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest && ev.target.closest("[data-copy]");
    if (!b) return;
    var src = $(b.getAttribute("data-copy"));
    if (!src) return;
    var text = src.textContent;
    var done = function () { var old = b.textContent; b.textContent = "Copied"; toast("Copied to the clipboard"); setTimeout(function () { b.textContent = old; }, 1500); };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(done, function () { toast("Copy failed: select the text and copy it"); });
    } else {
      var r = document.createRange(); r.selectNodeContents(src);
      var s = getSelection(); s.removeAllRanges(); s.addRange(r);
      toast("Selected: press Ctrl+C");
    }
  });

  // Tabs (package install snippets): arrow keys move between tabs.
  function setupTabs() {
    $$('.tabs').forEach(function (list) {
      var tabs = $$('button[role="tab"]', list);
      if (!tabs.length) return;
      function select(t) {
        tabs.forEach(function (o) {
          var on = o === t;
          o.setAttribute("aria-selected", on ? "true" : "false");
          o.tabIndex = on ? 0 : -1;
          var p = document.getElementById(o.getAttribute("aria-controls"));
          if (p) p.hidden = !on;
        });
        t.focus();
      }
      tabs.forEach(function (t, i) {
        t.addEventListener("click", function () { select(t); });
        t.addEventListener("keydown", function (e) {
          if (e.key === "ArrowRight") select(tabs[(i + 1) % tabs.length]);
          if (e.key === "ArrowLeft") select(tabs[(i - 1 + tabs.length) % tabs.length]);
        });
      });
    });
  }

  var pages = {};

  pages.login = function () {
    var f = $("#login-form");
    f.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var err = $("#login-error"); clearError(err);
      api("POST", "/auth/login", { username: $("#username").value, password: $("#password").value })
        .then(function (s) {
          session = s;
          var next = f.dataset.next || "/dashboard";
          if (mustChange(userOf(s))) location.href = "/account/password?first=1&next=" + encodeURIComponent(next);
          else location.href = next;
        }, function (e) {
          if (e.code === "invalid_credentials") e.hint = "";
          showError(err, e);
          $("#password").focus();
        });
    });
  };

  pages.password = function () {
    requireLogin().then(function () {
      var params = new URLSearchParams(location.search);
      if (params.get("first")) $("#pw-why").textContent = "This is your first sign-in: choose your own password before continuing.";
      $("#password-form").addEventListener("submit", function (ev) {
        ev.preventDefault();
        var err = $("#pw-error"); clearError(err);
        if ($("#new_password").value !== $("#new_password2").value) { showError(err, "The two new passwords differ."); return; }
        api("POST", "/me/password", { current_password: $("#current_password").value, new_password: $("#new_password").value })
          .then(function () {
            var next = params.get("next") || "/dashboard";
            if (next.charAt(0) !== "/" || next.charAt(1) === "/") next = "/dashboard";
            location.href = next;
          }, function (e) { showError(err, e); });
      });
    });
  };

  function statusSpan(s) { return el("span", { class: "status status-" + s, text: s }); }

  pages.dashboard = function () {
    requireLogin().then(function () {
      var body = $("#deployments tbody");
      function load() {
        api("GET", "/deployments").then(function (r) {
          body.textContent = "";
          var list = (r && r.deployments) || [];
          if (!list.length) {
            body.appendChild(el("tr", {}, [el("td", { colspan: "8", class: "muted" }, ["No deployments yet. Open a package in ", el("a", { href: "/", text: "Explore" }), " and press Deploy."])]));
          }
          list.forEach(function (d) {
            var running = (d.instances || []).filter(function (i) { return i.state === "running"; }).length;
            body.appendChild(el("tr", { "data-id": d.id }, [
              el("td", {}, [el("a", { href: "/dashboard/deployments/" + encodeURIComponent(d.id), text: d.package })]),
              el("td", {}, [el("code", { text: d.version })]),
              el("td", {}, [statusSpan(d.status)]),
              el("td", { text: running + " / " + (d.instances || []).length }),
              el("td", { text: String(d.restarts || 0) }),
              el("td", { class: "num", text: String(d.requestsToday || 0) }),
              el("td", { class: "num", text: d.requestsToday ? (100 * (d.errorsToday || 0) / d.requestsToday).toFixed(1) + " %" : "—" }),
              el("td", { text: day(d.createdAt) })
            ]));
          });
        }, function (e) { body.textContent = ""; body.appendChild(el("tr", {}, [el("td", { colspan: "8", class: "form-error", text: String(e) })])); });
      }
      load();
      setInterval(load, 5000);
    });
  };

  // Event kinds that say something about a deployment's health, for its history.
  var HEALTH_KINDS = { created: 1, installing: 1, installed: 1, install_failed: 1, scan_blocked: 1, started: 1,
    restarting: 1, restart_requested: 1, failed: 1, stopped: 1, idle_stopped: 1, deleted: 1, scaled: 1 };

  function toolText(t) {
    if (!t) return el("span", { class: "muted", text: "—" });
    var box = el("div", {}, [el("div", { text: t.tool.description || "(no description)" })]);
    if (t.tool.inputSchema) {
      box.appendChild(el("details", {}, [el("summary", { text: "input schema" }),
        el("pre", { class: "schema", text: JSON.stringify(t.tool.inputSchema, null, 2) })]));
    }
    return box;
  }

  pages.deployment = function () {
    requireLogin().then(function () {
      var id = $("#deployment").dataset.id;
      var path = "/deployments/" + encodeURIComponent(id);
      var health = "…";
      var history = [];
      function paintHistory() {
        var ol = $("#health-history"); ol.textContent = "";
        ol.appendChild(el("li", {}, [el("strong", { text: "now " }), statusSpan(health)]));
        history.forEach(function (e) {
          ol.appendChild(el("li", {}, [el("time", { datetime: e.at, text: e.at.replace("T", " ").slice(0, 19) }), " ",
            statusSpan(e.kind), " " + e.message]));
        });
      }
      // The rug-pull pins: what changed since the owner approved the tools, and approval.
      var pendingSeen = null;
      function loadTools() {
        api("GET", path + "/tools").then(function (v) {
          var pinned = v.pinned || [];
          $("#tools-pinned-count").textContent = String(pinned.length);
          var ul = $("#tools-pinned"); ul.textContent = "";
          pinned.forEach(function (p) { ul.appendChild(el("li", {}, [el("code", { text: p.tool.name }), " — " + (p.tool.description || "")])); });
          $("#tools-state").textContent = v.pinnedAt
            ? pinned.length + " tool" + (pinned.length === 1 ? "" : "s") + " approved since " + new Date(v.pinnedAt).toISOString().slice(0, 19).replace("T", " ") + " UTC" + (v.pending ? "." : "; nothing has changed since.")
            : "No tools seen yet: they are pinned when a client first lists them.";
          var box = $("#tools-pending");
          if (!v.pending) { box.hidden = true; pendingSeen = null; return; }
          if (pendingSeen === v.pending.seenAt) return;
          pendingSeen = v.pending.seenAt;
          var changes = v.pending.changes || [];
          $("#tools-warning").textContent = changes.length + " tool change" + (changes.length === 1 ? "" : "s") +
            " since approval (a server changing what it tells the model can be a rug pull). " +
            (v.mode === "block" ? "Changed and added tools are hidden from clients and refused until you approve them." : "They are passed through (warn mode), but wait for your review.");
          var body = $("#tools-diff tbody"); body.textContent = "";
          changes.forEach(function (c) {
            var what = c.kind === "changed" ? "changed " + (c.fields || []).join(" and ") : c.kind;
            body.appendChild(el("tr", { "data-tool": c.name, "data-kind": c.kind }, [el("td", {}, [el("code", { text: c.name })]),
              el("td", {}, [el("span", { class: "status status-" + (c.kind === "removed" ? "stopped" : c.kind === "added" ? "installing" : "failed"), text: what })]),
              el("td", {}, [toolText(c.before)]), el("td", {}, [toolText(c.after)])]));
          });
          var fl = $("#tools-findings"); fl.textContent = "";
          (v.findings || []).forEach(function (f) {
            fl.appendChild(el("li", {}, [el("span", { class: "badge badge-warn", text: f.severity }), " ", el("code", { text: f.rule }), " " + f.message]));
          });
          box.hidden = false;
        }, function (e) { $("#tools-state").textContent = String(e); });
      }
      $("#approve-form").addEventListener("submit", function (ev) {
        ev.preventDefault();
        var err = $("#approve-error"); clearError(err);
        confirmDialog("Approve the listed tool changes? Clients will see and call the new tools.").then(function (ok) {
          if (!ok) return;
          api("POST", path + "/tools/approve").then(function () { toast("Tool changes approved"); pendingSeen = null; loadTools(); refresh(); },
            function (e) { showError(err, e); });
        });
      });
      function refresh() {
        api("GET", path).then(function (d) {
          $("#dep-title").textContent = d.package + " " + d.version;
          var s = $("#dep-status"); s.textContent = d.status; s.className = "status status-" + d.status;
          $("#dep-url").textContent = d.url;
          $("#dep-restarts").textContent = String(d.restarts || 0);
          $("#dep-error").textContent = d.lastError || "none";
        }, function (e) { $("#dep-status").textContent = String(e); });
        fetch(API + path + "/health", { credentials: "same-origin", headers: { Accept: "application/json" } })
          .then(function (r) { return r.json(); }).then(function (h) {
            health = h.status || (h.error && h.error.code) || "unknown";
            var n = $("#dep-health"); n.textContent = health; n.className = "status status-" + health;
            paintHistory();
          }).catch(function () {});
        api("GET", path + "/events").then(function (r) {
          var all = (r.events || []);
          var ol = $("#events"); ol.textContent = "";
          all.slice(-50).reverse().forEach(function (e) {
            ol.appendChild(el("li", {}, [el("time", { datetime: e.at, text: e.at.replace("T", " ").slice(0, 19) }), " " + e.kind + ": " + e.message]));
          });
          history = all.filter(function (e) { return HEALTH_KINDS[e.kind]; }).slice(-30).reverse();
          paintHistory();
        }).catch(function () {});
      }
      loadTools();
      setInterval(loadTools, 5000);
      refresh();
      setInterval(refresh, 2000);
      var chart = $("#usage-chart");
      setInterval(function () { chart.src = chart.src.split("?")[0] + "?t=" + Date.now(); }, 30000);
      // Live logs over SSE (EventSource sends the session cookie).
      var logs = $("#logs");
      var es = new EventSource(API + path + "/logs?follow=true&limit=500");
      es.addEventListener("open", function () { $("#log-state").textContent = "(live)"; });
      es.addEventListener("log", function (m) {
        try {
          var l = JSON.parse(m.data);
          var atEnd = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 8;
          logs.appendChild(document.createTextNode(l.at.slice(11, 19) + " [" + l.stream + "] " + l.text + "\n"));
          if (atEnd) logs.scrollTop = logs.scrollHeight;
        } catch (_) {}
      });
      es.addEventListener("error", function () { $("#log-state").textContent = "(reconnecting…)"; });
      $("#restart").addEventListener("click", function () {
        confirmDialog("Restart this deployment? Connected clients lose their sessions.").then(function (ok) {
          if (!ok) return;
          api("POST", path + "/restart").then(function () { toast("Restarting"); refresh(); }, function (e) { toast(String(e)); });
        });
      });
      $("#delete").addEventListener("click", function () {
        confirmDialog("Delete this deployment? Its gateway URL stops working.").then(function (ok) {
          if (!ok) return;
          api("DELETE", path).then(function () { location.href = "/dashboard"; }, function (e) { toast(String(e)); });
        });
      });
    });
  };

  // Type checks for an inline secret or config value, by the manifest's declared format.
  function formatProblem(format, value) {
    if (format === "number" && !/^-?\d+(\.\d+)?$/.test(value.trim())) return "must be a number";
    if (format === "boolean" && !/^(true|false)$/.test(value.trim())) return "must be true or false";
    if (format === "filepath" && value.indexOf("\0") >= 0) return "must be a file path";
    return null;
  }

  pages.deploy = function () {
    requireLogin().then(function () {
      var form = $("#deploy-form");
      var pkg = form.dataset.package;
      var have = {};     // the caller's own secrets
      var haveTeam = {}; // the chosen team's secrets
      function team() { return $("#team").value; }
      function target() { var r = $('input[name="target"]:checked'); return r ? r.value : "local"; }
      function paint() {
        $$(".secret-row").forEach(function (row) {
          var name = row.dataset.secret;
          var st = $(".secret-state", row);
          var own = !!have[name], shared = !own && !!haveTeam[name];
          var set = own || shared;
          st.textContent = own ? "set ✓" : shared ? "set by team " + team() + " ✓" : (row.dataset.required === "true" ? "missing" : "not set (optional)");
          st.className = "secret-state " + (set ? "set" : "missing");
          $(".inline-set", row).hidden = set;
        });
      }
      function names(r) { var m = {}; ((r && r.secrets) || []).forEach(function (s) { m[s.name] = true; }); return m; }
      function loadSecrets() {
        var t = team();
        return Promise.all([
          api("GET", "/secrets"),
          t ? api("GET", "/secrets?team=" + encodeURIComponent(t)) : Promise.resolve(null)
        ]).then(function (rs) { have = names(rs[0]); haveTeam = names(rs[1]); paint(); });
      }
      loadSecrets().catch(function (e) { showError($("#deploy-error"), e); });
      // Deploy as yourself or as one of your teams.
      api("GET", "/me").then(function (u) {
        var sel = $("#team");
        (u.teams || []).forEach(function (t) { sel.appendChild(el("option", { value: t.name, text: "Team " + t.name + " (" + t.role + ")" })); });
      }).catch(function () {});
      $("#team").addEventListener("change", function () { loadSecrets().catch(function (e) { showError($("#deploy-error"), e); }); });
      // The tier list follows the target.
      function showTiers() {
        var cloud = target() === "cloudrun";
        $("#tier-local").hidden = cloud;
        $("#tier-cloud").hidden = !cloud;
      }
      $$('input[name="target"]').forEach(function (r) { r.addEventListener("change", showTiers); });
      showTiers();
      form.addEventListener("click", function (ev) {
        var b = ev.target.closest("[data-set-secret]");
        if (!b) return;
        var name = b.getAttribute("data-set-secret");
        var row = b.closest(".secret-row");
        var input = $("input", row);
        var err = $("#deploy-error"); clearError(err);
        var problem = formatProblem(row.dataset.format, input.value);
        if (!input.value) { showError(err, name + ": enter a value first."); input.focus(); return; }
        if (problem) { showError(err, name + " " + problem + "."); input.focus(); return; }
        api("POST", "/secrets", { name: name, value: input.value }).then(function () {
          input.value = ""; toast(name + " saved"); return loadSecrets();
        }, function (e) {
          if (e.code === "conflict") return api("PUT", "/secrets/" + encodeURIComponent(name), { value: input.value }).then(function () { input.value = ""; return loadSecrets(); });
          showError(err, e);
        }).catch(function (e) { showError(err, e); });
      });
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var err = $("#deploy-error"); clearError(err);
        var missing = $$(".secret-row").filter(function (r) { return r.dataset.required === "true" && !have[r.dataset.secret] && !haveTeam[r.dataset.secret]; })
          .map(function (r) { return r.dataset.secret; });
        if (missing.length) {
          showError(err, "Set the required secret" + (missing.length > 1 ? "s " : " ") + missing.join(", ") +
            " before deploying: the server cannot start without " + (missing.length > 1 ? "them." : "it."));
          var first = $('.secret-row[data-secret="' + missing[0] + '"] input'); if (first) first.focus();
          return;
        }
        var config = {};
        var bad = null;
        $$("[data-config]").forEach(function (i) {
          if (i.value === "") { if (i.required && !bad) bad = i.dataset.config + " is required."; return; }
          var p = formatProblem(i.dataset.format, i.value);
          if (p && !bad) bad = i.dataset.config + " " + p + ".";
          config[i.dataset.config] = i.value;
        });
        if (bad) { showError(err, bad); return; }
        var body = { package: pkg, version: $("#version").value, config: config, target: target() };
        var tier = target() === "cloudrun" ? $("#tier-cloud-select").value : $("#tier-local-select").value;
        if (tier) body.tier = tier;
        if (team()) body.team = team();
        var button = $("#deploy-button"); button.disabled = true;
        var steps = $("#progress-steps"); steps.textContent = "";
        $("#deploy-done").hidden = true;
        $("#progress").hidden = false;
        function step(t) { steps.appendChild(el("li", { text: t })); }
        step("Requesting deployment of " + pkg + " " + body.version + (body.target === "cloudrun" ? " on Cloud Run" : "") +
          (tier ? ", tier " + tier : "") + (body.team ? ", for team " + body.team : "") + "…");
        api("POST", "/deploy", body).then(function (d) {
          step("Created " + d.id + " (" + d.status + ")");
          var last = d.status, lastHealth = null, started = Date.now();
          var depPath = "/deployments/" + encodeURIComponent(d.id);
          var poll = setInterval(function () {
            api("GET", depPath).then(function (x) {
              if (x.status !== last) { last = x.status; step("Status: " + x.status); }
              if (x.status === "ready" || x.status === "running") {
                $("#deploy-url").textContent = x.url;
                $("#deploy-page").href = "/dashboard/deployments/" + encodeURIComponent(x.id);
                $("#deploy-done").hidden = false;
                // Then health, until it is healthy (a local server starts on first use).
                return fetch(API + depPath + "/health", { credentials: "same-origin", headers: { Accept: "application/json" } })
                  .then(function (r) { return r.json(); }).then(function (h) {
                    if (h.status !== lastHealth) {
                      lastHealth = h.status;
                      step("Health: " + h.status + (h.status === "idle" ? " (it starts when the first client connects)" : ""));
                    }
                    if (h.status === "healthy" || h.status === "failed" || Date.now() - started > 600000) clearInterval(poll);
                  });
              } else if (x.status === "failed" || x.status === "blocked") {
                clearInterval(poll);
                showError(err, (x.status === "blocked" ? "The deploy-time scan blocked it: " : "Deployment failed: ") + (x.lastError || "see its page"));
                $("#deploy-page").href = "/dashboard/deployments/" + encodeURIComponent(x.id);
                button.disabled = false;
              }
            }).catch(function () {});
          }, 1000);
        }, function (e) { showError(err, e); button.disabled = false; });
      });
    });
  };

  pages.secrets = function () {
    requireLogin().then(function () {
      if ($("#tab-secrets")) secretsTab(); else keysTab();
    });
  };

  function secretsTab() {
    var body = $("#secrets-table tbody");
    var owner = $("#secret-owner");
    function q() { return owner.value ? "?team=" + encodeURIComponent(owner.value) : ""; }
    function load() {
      clearError($("#secret-error"));
      api("GET", "/secrets" + q()).then(function (r) {
        body.textContent = "";
        var list = (r && r.secrets) || [];
        if (!list.length) body.appendChild(el("tr", {}, [el("td", { colspan: "5", class: "muted", text: owner.value ? "Team " + owner.value + " has no secrets yet." : "No secrets yet." })]));
        list.forEach(function (s) {
          var del = el("button", { class: "btn btn-small btn-danger", type: "button", text: "Delete", "aria-label": "Delete " + s.name });
          del.addEventListener("click", function () {
            confirmDialog("Delete the secret " + s.name + "? Servers that need it will stop accepting " + (owner.value ? "the team's" : "your") + " connections.").then(function (ok) {
              if (ok) api("DELETE", "/secrets/" + encodeURIComponent(s.name) + q()).then(load, function (e) { toast(String(e)); });
            });
          });
          body.appendChild(el("tr", { "data-secret": s.name }, [el("td", {}, [el("code", { text: s.name })]), el("td", { text: s.description || "" }),
            el("td", { text: day(s.updatedAt) }), el("td", { text: day(s.lastUsedAt) }), el("td", {}, [del])]));
        });
      }, function (e) { showError($("#secret-error"), e); });
    }
    api("GET", "/me").then(function (u) {
      (u.teams || []).forEach(function (t) { owner.appendChild(el("option", { value: t.name, text: "Team " + t.name + " (" + t.role + ")" })); });
      var want = new URLSearchParams(location.search).get("team");
      if (want && $$("option", owner).some(function (o) { return o.value === want; })) { owner.value = want; load(); }
    }).catch(function () {});
    owner.addEventListener("change", load);
    load();
    $("#secret-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var err = $("#secret-error"); clearError(err);
      var b = { name: $("#secret-name").value.trim(), value: $("#secret-value").value };
      if ($("#secret-desc").value) b.description = $("#secret-desc").value;
      api("POST", "/secrets" + q(), b).then(function () {
        $("#secret-value").value = ""; $("#secret-name").value = ""; $("#secret-desc").value = "";
        toast("Secret saved"); load();
      }, function (e) { showError(err, e); });
    });
  }

  function keysTab() {
    var body = $("#keys-table tbody");
    function load() {
      api("GET", "/keys").then(function (r) {
        body.textContent = "";
        var list = (r && r.keys) || [];
        if (!list.length) body.appendChild(el("tr", {}, [el("td", { colspan: "7", class: "muted", text: "No keys yet." })]));
        list.forEach(function (k) {
          var active = k.active !== undefined ? k.active : !k.revokedAt;
          var actions = el("td", { class: "actions" });
          var act = function (label, cls, question, method, suffix, done) {
            var b = el("button", { class: "btn btn-small " + cls, type: "button", text: label, "aria-label": label + " key " + k.name });
            b.addEventListener("click", function () {
              (question ? confirmDialog(question) : Promise.resolve(true)).then(function (ok) {
                if (ok) api(method, "/keys/" + encodeURIComponent(k.id) + suffix).then(function () { toast(done); load(); }, function (e) { toast(String(e)); });
              });
            });
            actions.appendChild(b);
          };
          if (active) {
            act("Revoke", "btn-danger", "Revoke the key " + k.name + "? Anything using it stops working at once.", "POST", "/deactivate", "Key revoked");
          } else {
            act("Reactivate", "", null, "POST", "/reactivate", "Key reactivated");
            act("Delete", "btn-danger", "Delete the key " + k.name + " for good?", "DELETE", "", "Key deleted");
          }
          body.appendChild(el("tr", { "data-key": k.name }, [el("td", { text: k.name }), el("td", {}, [el("code", { text: k.prefix || "" })]),
            el("td", { text: (k.scopes || []).join(", ") }), el("td", { text: day(k.created_at || k.createdAt) }),
            el("td", { text: k.expires_at ? day(k.expires_at) : "never" }),
            el("td", { class: "key-state", text: active ? "active" : "revoked" }), actions]));
        });
      }, function (e) { showError($("#key-error"), e); });
    }
    load();
    $("#key-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var err = $("#key-error"); clearError(err);
      var scopes = $$('input[name="scopes"]:checked').map(function (i) { return i.value; });
      if (!scopes.length) { showError(err, "Choose at least one scope."); return; }
      var b = { name: $("#key-name").value.trim(), scopes: scopes };
      var exp = $("#key-expiry").value; if (exp) b.expires_in_days = parseInt(exp, 10);
      api("POST", "/keys", b).then(function (k) {
        $("#new-key-value").textContent = k.key;
        $("#new-key").hidden = false;
        $("#key-name").value = "";
        load();
      }, function (e) { showError(err, e); });
    });
  }

  pages.settings = function () {
    requireLogin().then(function (s) {
      api("GET", "/me").then(function (u) {
        $("#p-username").textContent = u.username;
        $("#p-role").textContent = u.role;
        $("#p-namespaces").textContent = (u.namespaces || []).join(", ") || "none";
        $("#p-teams").textContent = (u.teams || []).map(function (t) { return t.name + " (" + t.role + ")"; }).join(", ") || "none";
        if (u.role === "admin") { $("#admin").hidden = false; loadUsers(); }
        me = u;
        loadTeams();
      }, function () { loadTeams(); });
      var me = null;
      function loadTeams() {
        api("GET", "/teams").then(function (r) {
          var ul = $("#teams-list"); ul.textContent = "";
          var list = (r && r.teams) || [];
          if (!list.length) ul.appendChild(el("li", { class: "muted", text: "You are in no team." }));
          list.forEach(function (t) {
            var li = el("li", { class: "team", "data-team": t.name }, [el("h3", {}, [t.name + " ", el("span", { class: "badge", text: t.role || "" })])]);
            var members = el("ul", { class: "plain members" });
            li.appendChild(members);
            ul.appendChild(li);
            var manage = t.role === "owner" || (me && me.role === "admin");
            api("GET", "/teams/" + encodeURIComponent(t.name)).then(function (d) {
              (d.members || []).forEach(function (m) {
                var row = el("li", {}, [m.username + " — " + m.role + " "]);
                if (manage) {
                  var rm = el("button", { class: "btn btn-small", type: "button", text: "Remove", "aria-label": "Remove " + m.username + " from " + t.name });
                  rm.addEventListener("click", function () {
                    confirmDialog("Remove " + m.username + " from team " + t.name + "?").then(function (ok) {
                      if (ok) api("DELETE", "/teams/" + encodeURIComponent(t.name) + "/members/" + encodeURIComponent(m.username)).then(loadTeams, function (e) { toast(String(e)); });
                    });
                  });
                  row.appendChild(rm);
                }
                members.appendChild(row);
              });
            }).catch(function () {});
            if (manage) {
              var uid = "add-" + t.name.replace(/[^a-z0-9_-]/gi, "_");
              var user = el("input", { id: uid, required: "required", autocomplete: "off" });
              var role = el("select", { id: uid + "-role", "aria-label": "Role in " + t.name }, [el("option", { value: "member", text: "member" }), el("option", { value: "owner", text: "owner" })]);
              var err = el("p", { class: "form-error", role: "alert", hidden: "hidden" });
              var f = el("form", { class: "form form-inline", novalidate: "novalidate" }, [el("label", { for: uid, text: "Add member" }), user, role,
                el("button", { class: "btn btn-small", type: "submit", text: "Add" }), err]);
              f.addEventListener("submit", function (ev) {
                ev.preventDefault(); clearError(err);
                api("POST", "/teams/" + encodeURIComponent(t.name) + "/members", { username: user.value.trim(), role: role.value })
                  .then(function () { toast("Member added"); loadTeams(); }, function (e) { showError(err, e); });
              });
              li.appendChild(f);
            }
          });
        }).catch(function (e) { showError($("#team-error"), e); });
      }
      $("#team-form").addEventListener("submit", function (ev) {
        ev.preventDefault(); var err = $("#team-error"); clearError(err);
        api("POST", "/teams", { name: $("#team-name").value.trim() }).then(function () { $("#team-name").value = ""; toast("Team created"); loadTeams(); }, function (e) { showError(err, e); });
      });
      function loadUsers() {
        api("GET", "/users").then(function (r) {
          var body = $("#users-table tbody"); body.textContent = "";
          ((r && r.users) || []).forEach(function (u) {
            var acts = el("td", { class: "actions" });
            var tog = el("button", { class: "btn btn-small", type: "button", text: u.disabled ? "Enable" : "Disable" });
            tog.addEventListener("click", function () {
              api("POST", "/users/" + encodeURIComponent(u.username) + (u.disabled ? "/enable" : "/disable")).then(loadUsers, function (e) { toast(String(e)); });
            });
            var reset = el("button", { class: "btn btn-small", type: "button", text: "Reset password" });
            reset.addEventListener("click", function () { resetPassword(u.username); });
            acts.appendChild(tog); acts.appendChild(reset);
            body.appendChild(el("tr", { "data-user": u.username }, [el("td", { text: u.username }), el("td", { text: u.role }),
              el("td", { text: (u.namespaces || []).join(", ") || "—" }),
              el("td", { text: u.disabled ? "disabled" : (u.must_change_password ? "active (must change password)" : "active") }), acts]));
          });
        }).catch(function (e) { showError($("#user-error"), e); });
      }
      var resetFor = null;
      function resetPassword(username) {
        resetFor = username;
        $("#reset-user").textContent = username;
        $("#reset-password").value = "";
        clearError($("#reset-error"));
        $("#reset-dialog").showModal();
        $("#reset-password").focus();
      }
      $("#reset-cancel").addEventListener("click", function () { $("#reset-dialog").close(); });
      $("#reset-form").addEventListener("submit", function (ev) {
        ev.preventDefault();
        var err = $("#reset-error"); clearError(err);
        api("POST", "/users/" + encodeURIComponent(resetFor) + "/password", { new_password: $("#reset-password").value })
          .then(function () { $("#reset-dialog").close(); toast("Password reset for " + resetFor); loadUsers(); }, function (e) { showError(err, e); });
      });
      $("#user-form").addEventListener("submit", function (ev) {
        ev.preventDefault(); var err = $("#user-error"); clearError(err);
        api("POST", "/users", { username: $("#new-username").value.trim(), password: $("#new-user-password").value, role: $("#new-user-role").value })
          .then(function () { $("#new-username").value = ""; $("#new-user-password").value = ""; toast("User created"); loadUsers(); }, function (e) { showError(err, e); });
      });
      $("#ns-form").addEventListener("submit", function (ev) {
        ev.preventDefault(); var err = $("#ns-error"); clearError(err);
        api("POST", "/namespaces/" + encodeURIComponent($("#ns-name").value.trim()) + "/members", { user: $("#ns-user").value.trim() })
          .then(function () { toast("Namespace granted"); loadUsers(); }, function (e) { showError(err, e); });
      });
      return s;
    });
  };

  document.addEventListener("DOMContentLoaded", function () {
    setupTabs();
    var page = document.body.dataset.page;
    if (pages[page]) pages[page]();
    else loadSession();
  });
})();
