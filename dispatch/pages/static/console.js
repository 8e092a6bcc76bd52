// The operator console's live panels: while the operator types, ask the JSON API for the
// classifier's suggestion, knowledge-base answers and possible duplicates (debounced), and
// draw them with textContent only (what citizens typed is never parsed as HTML).
// Without this script the form still works: "查询建议" renders the same panels on the server.
(function () {
  "use strict";
  var form = document.getElementById("intake-form");
  if (!form) return;
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var $ = function (id) { return document.getElementById(id); };
  var content = $("content"), address = $("address"), phone = $("requester_phone");
  var category = $("category"), requestType = $("request_type"), urgency = $("urgency");
  var area = $("area"), sealed = $("suggestion");
  var EMERGENCY = { "110": "110 报警", "119": "119 火警", "120": "120 急救", "122": "122 交通事故" };
  var TYPES = {}, TIERS = {};
  Array.prototype.forEach.call(requestType.options, function (o) { TYPES[o.value] = o.text; });
  Array.prototype.forEach.call(urgency.options, function (o) { TIERS[o.value] = o.text; });
  var touched = {};  // fields the operator chose by hand: suggestions never overwrite them
  [requestType, urgency, category, area].forEach(function (el) {
    el.addEventListener("change", function () { touched[el.id] = true; });
  });
  if (requestType.value) touched.request_type = true;
  var topCategories = [];
  var suggestedArea = null;
  var seq = 0;

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function actionButton(label, value) {
    var b = el("button", label);
    b.type = "submit"; b.name = "action"; b.value = value; b.setAttribute("form", "intake-form");
    return b;
  }
  function api(method, path, body) {
    var options = { method: method, headers: { "Accept": "application/json" }, credentials: "same-origin" };
    if (body) {
      options.headers["Content-Type"] = "application/json";
      options.headers["X-CSRF-Token"] = csrf;
      options.body = JSON.stringify(body);
    }
    return fetch(path, options).then(function (r) {
      return r.json().then(function (j) { return j.success ? j.data : null; });
    }).catch(function () { return null; });
  }

  function takeCategory(index) {
    var c = topCategories[index];
    if (!c) return;
    category.value = c.code;
    touched.category = true;
  }

  function drawSuggestion(s, names) {
    var panel = clear($("suggestion-panel"));
    panel.appendChild(el("h2", "智能建议"));
    if (!s) { panel.appendChild(el("p", "暂无建议（未启用分类模型或内容过短）。", "muted")); return; }
    topCategories = ((s.category || {}).top || []).slice(0, 3);
    var cats = el("div", "事项分类：");
    var list = el("ol");
    topCategories.forEach(function (c, i) {
      var li = el("li");
      var b = el("button", c.name);
      b.type = "button";
      b.addEventListener("click", function () { takeCategory(i); });
      li.appendChild(b);
      li.appendChild(el("span", " " + c.code + " · " + Math.round(c.probability * 100) + "% ", "muted"));
      li.appendChild(el("kbd", "Alt+" + (i + 1)));
      list.appendChild(li);
    });
    cats.appendChild(list);
    panel.appendChild(cats);
    panel.appendChild(el("div", "诉求类型：" + (TYPES[s.request_type] || "—")));
    var u = s.urgency || {};
    panel.appendChild(el("div", "紧急程度：" + (TIERS[u.tier] || "—") + (u.evidence ? "（" + u.evidence + "）" : "")));
    var place = (names && names.place) || [];
    var line = el("div", "定位：");
    if (place.length) {
      line.appendChild(document.createTextNode(place.map(function (p) { return p.name || p.code; }).join(" → ") + " "));
      line.appendChild(el("span", place[place.length - 1].code + " ", "muted"));
      var use = el("button", "采用此区域");
      use.type = "button";
      use.addEventListener("click", function () { area.value = suggestedArea; touched.area = true; });
      line.appendChild(use);
    } else {
      line.appendChild(document.createTextNode("未能定位"));
    }
    panel.appendChild(line);
    var units = (names && names.units) || [];
    panel.appendChild(el("div", "建议承办单位：" + (units.length ? units.map(function (x) { return x.name || x.code; }).join("、") : "—")));
    // Fill what the operator has not chosen yet; they can still change it.
    if (!touched.request_type && s.request_type) requestType.value = s.request_type;
    if (!touched.urgency && u.tier) urgency.value = u.tier;
  }

  function drawEmergency(s) {
    var slot = clear($("emergency-slot"));
    var u = (s && s.urgency) || {};
    if (u.tier !== "emergency" || !EMERGENCY[u.transfer_to]) return;
    var box = el("div", null, "emergency");
    box.setAttribute("role", "alert");
    box.appendChild(el("strong", "紧急情况预警："));
    box.appendChild(document.createTextNode("来电可能涉及紧急情况" + (u.evidence ? "（“" + u.evidence + "”）" : "") + "，请核实后转接。"));
    var row = el("div", null, "transfers");
    Object.keys(EMERGENCY).forEach(function (code) {
      var b = actionButton("转 " + EMERGENCY[code], "transfer:" + code);
      if (code === u.transfer_to) b.className = "suggested";
      row.appendChild(b);
    });
    box.appendChild(row);
    slot.appendChild(box);
  }

  // An article closes the call only once opened, read out and confirmed (the server checks
  // the confirmation too).
  function drawKnowledge(articles) {
    var panel = clear($("knowledge-panel"));
    panel.appendChild(el("h2", "知识库（首问即答）"));
    if (!articles || !articles.length) { panel.appendChild(el("p", "暂无与来电相关的知识库条目。", "muted")); return; }
    panel.appendChild(el("p", "仅列出与来电相关的条目。展开条目、向来电人读出答复并勾选确认后，才能以此办结。", "muted"));
    var list = el("ol");
    articles.forEach(function (a) {
      var li = el("li");
      var details = el("details", null, "article");
      var summary = el("summary");
      summary.appendChild(el("strong", a.title));
      if (a.category) summary.appendChild(el("span", " " + a.category.name, "muted"));
      summary.appendChild(el("span", " 相关度 " + Math.round(a.relevance * 100) + "%", "muted"));
      details.appendChild(summary);
      details.appendChild(el("div", a.answer, "answer"));
      if (a.source) details.appendChild(el("div", "依据：" + a.source, "muted"));
      var label = el("label", null, "confirm");
      var box = el("input");
      box.type = "checkbox"; box.name = "confirm_article"; box.value = a.code;
      box.setAttribute("form", "intake-form");
      label.appendChild(box);
      label.appendChild(document.createTextNode(" 已向来电人完整读出上述答复，来电人无其他诉求"));
      details.appendChild(label);
      var button = actionButton("以此答复办结", "resolve:" + a.code);
      button.className = "resolve";
      button.disabled = true;
      box.addEventListener("change", function () { button.disabled = !box.checked; });
      details.appendChild(button);
      li.appendChild(details);
      list.appendChild(li);
    });
    panel.appendChild(list);
  }

  // 来电历史: every earlier ticket of the number, newest first; one click opens it.
  function drawCaller(history, call) {
    var panel = clear($("caller-panel"));
    panel.appendChild(el("h2", "来电历史"));
    if (call) {
      var ring = el("div", null, "ringing");
      ring.setAttribute("role", "status");
      ring.appendChild(document.createTextNode("来电接入："));
      ring.appendChild(el("strong", call.caller_phone || "号码未显示"));
      ring.appendChild(el("span", " 呼叫编号 " + call.call_id, "muted"));
      panel.appendChild(ring);
    }
    if (!history) {
      panel.appendChild(el("p", "输入联系电话（或来电接入）后，显示该号码此前的全部工单。", "muted"));
      return;
    }
    if (!history.tickets.length) { panel.appendChild(el("p", history.phone + " 此前没有工单。")); return; }
    var more = history.total > history.tickets.length ? "，显示最近 " + history.tickets.length + " 件" : "";
    panel.appendChild(el("p", history.phone + " 此前共 " + history.total + " 件工单" + more + "（新的在前）", "muted"));
    var list = el("ul", null, "caller-history");
    history.tickets.forEach(function (t) {
      var li = el("li");
      var link = el("a", t.number);
      link.href = "/tickets/" + encodeURIComponent(t.number);
      link.target = "_blank"; link.rel = "noopener";
      li.appendChild(link);
      li.appendChild(el("span", " " + localTime(t.received_at) + " ", "muted"));
      li.appendChild(el("span", t.status.label, "status"));
      li.appendChild(el("div", t.title + (t.category ? " · " + t.category.name : "")));
      var facts = [];
      if (t.lead_unit) facts.push("承办：" + t.lead_unit.name);
      if (t.satisfaction) facts.push("回访：" + t.satisfaction.label);
      if (t.reopen_count) facts.push("重办 " + t.reopen_count + " 次");
      if (facts.length) li.appendChild(el("div", facts.join(" · "), "muted"));
      if (t.result) li.appendChild(el("div", "结果：" + t.result, "result"));
      list.appendChild(li);
    });
    panel.appendChild(list);
  }
  function localTime(isoText) {
    var d = new Date(isoText);
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  var ringing = null;  // the call the phone system put through to this seat, if any
  var shownPhone = null;
  function refreshCaller() {
    var number = phone.value.replace(/[\s-]/g, "");
    if (number === shownPhone) return;
    shownPhone = number;
    if (!/^(\+86)?\d{5,12}$/.test(number)) { drawCaller(null, ringing); return; }
    api("GET", "/api/v1/intake/caller?phone=" + encodeURIComponent(number)).then(function (h) {
      if (number === shownPhone) drawCaller(h, ringing);
    });
  }
  phone.addEventListener("input", function () { clearTimeout(phone.timer); phone.timer = setTimeout(refreshCaller, 300); });

  // 来电弹屏: ask every few seconds whether the switch put a call through to this seat; a
  // new call fills in the caller's number (unless one is typed) and shows their history.
  var lastCall = 0;
  var callField = $("call_id");
  function pollCall() {
    api("GET", "/api/v1/calls/pending?after=" + lastCall).then(function (call) {
      if (call) {
        lastCall = call.id;
        ringing = call;
        callField.value = call.call_id;
        if (!phone.value.trim() && call.caller_phone) phone.value = call.caller_phone;
        shownPhone = phone.value.replace(/[\s-]/g, "");
        drawCaller(call.history, call);
        if (!call.history && shownPhone) { shownPhone = null; refreshCaller(); }
      }
      setTimeout(pollCall, CALL_POLL_MS);
    });
  }
  var CALL_POLL_MS = 3000;
  if (form.getAttribute("data-call")) {  // the page was drawn with a call already ringing
    lastCall = Number(form.getAttribute("data-call"));
    ringing = { call_id: callField.value, caller_phone: form.getAttribute("data-call-phone") };
  }
  setTimeout(pollCall, CALL_POLL_MS);

  function drawDuplicates(candidates) {
    var panel = clear($("duplicates-panel"));
    panel.appendChild(el("h2", "可能的重复件（并单）"));
    if (!candidates || !candidates.length) { panel.appendChild(el("p", "暂无可能的重复件。", "muted")); return; }
    var list = el("ul");
    candidates.forEach(function (c) {
      var li = el("li");
      li.appendChild(el("strong", c.number));
      li.appendChild(document.createTextNode(" " + c.status.label + " · " + c.title));
      li.appendChild(el("div", c.reasons.join("；") + (c.address ? " · " + c.address : ""), "muted"));
      if (c.mergeable) li.appendChild(actionButton("并单", "merge:" + c.number));
      else li.appendChild(el("span", "该工单已结束，仅供参考，不能并入", "muted"));
      list.appendChild(li);
    });
    panel.appendChild(list);
  }

  function refresh() {
    var mine = ++seq;
    var text = content.value.trim();
    var current = function () { return mine === seq; };
    var suggested = text.length >= 4
      ? api("POST", "/api/v1/suggest", { content: text, address: address.value.trim() || null })
      : Promise.resolve(null);
    suggested.then(function (s) {
      if (!current()) return;
      // Handed back on submit: the server reuses it if it still matches the text.
      sealed.value = s && s.seal ? JSON.stringify(s) : "";
      suggestedArea = s && s.area ? s.area.code : null;
      var units = s && s.units ? s.units.map(function (u) { return u.code; }) : [];
      var query = "?area=" + encodeURIComponent(suggestedArea || "") + "&units=" + encodeURIComponent(units.join(","));
      var named = s ? api("GET", "/api/v1/intake/names" + query) : Promise.resolve(null);
      named.then(function (names) {
        if (!current()) return;
        drawSuggestion(s, names);
        drawEmergency(s);
      });
      var body = {
        phone: phone.value.trim() || null,
        address: address.value.trim() || null,
        area: area.value.trim() || suggestedArea || null,
        content: text || null
      };
      if (body.phone || body.address || body.area) {
        api("POST", "/api/v1/duplicates", body).then(function (d) { if (current()) drawDuplicates(d); });
      } else {
        drawDuplicates([]);
      }
    });
    if (text.length >= 2) {
      api("GET", "/api/v1/knowledge?q=" + encodeURIComponent(text.slice(0, 2000)))
        .then(function (a) { if (current()) drawKnowledge(a); });
    }
  }

  var timer = null;
  function later() { clearTimeout(timer); timer = setTimeout(refresh, 300); }
  [content, address, phone, area].forEach(function (f) { f.addEventListener("input", later); });

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey && e.key === "Enter") {
      e.preventDefault();
      var primary = $("submit-receive");
      if (form.requestSubmit) form.requestSubmit(primary); else primary.click();
    } else if (e.altKey && !e.ctrlKey && /^Digit[123]$/.test(e.code)) {
      e.preventDefault();
      takeCategory(Number(e.code.slice(5)) - 1);
    }
  });
  // One click, one request: a second click while the page is submitting is ignored (the
  // server's idempotency key covers what gets through anyway).
  var sent = false;
  form.addEventListener("submit", function (e) {
    if (sent) { e.preventDefault(); return; }
    sent = true;
  });
  if (content.value.trim()) refresh();
})();
