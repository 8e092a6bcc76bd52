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
  var area = $("area");  // the area cascade (区县 → 街道 → 社区 → 网格), picker.js
  var areaBox = $("area-picker"), areaNote = $("area-note"), categoryTop = $("category-top");
  var PREFILL = Number(areaBox.getAttribute("data-prefill-confidence")) || 1;
  var prefilled = areaBox.getAttribute("data-prefilled") || "";  // the code we filled in
  var picker = window.HotlinePicker;
  var sealed = $("suggestion");  // the signed suggestion handed back at receive
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

  // -- category: the searchable picker, with the suggestion's top 3 beside it -------------------
  function takeCategory(index) {
    var c = topCategories[index];
    if (!c) return;
    var known = Array.prototype.some.call(category.options, function (o) { return o.value === c.code; });
    if (!known) return;  // not offered (deactivated, or a 一级 class)
    category.value = c.code;
    // As if chosen by hand: marks it touched and updates the picker's text.
    category.dispatchEvent(new Event("change", { bubbles: true }));
  }
  function drawCategoryTop() {
    clear(categoryTop);
    topCategories.forEach(function (c, i) {
      var b = el("button", null, "category-choice" + (category.value === c.code ? " chosen" : ""));
      b.type = "button";
      b.title = "采用建议分类：" + c.name + "（Alt+" + (i + 1) + "）";
      b.appendChild(el("kbd", "Alt+" + (i + 1)));
      b.appendChild(document.createTextNode(" " + c.name + " "));
      b.appendChild(el("small", Math.round(c.probability * 100) + "%", "muted"));
      b.addEventListener("click", function () { takeCategory(i); });
      categoryTop.appendChild(b);
    });
  }
  category.addEventListener("change", drawCategoryTop);

  // -- area: pre-filled from a confident suggested place until the operator chooses -----------
  function areaCode() { return picker ? picker.areaCode(area) : ""; }
  function confidentPlace(place) {
    return !!(place && place.code && !(place.candidates || []).length && (place.confidence || 0) >= PREFILL);
  }
  function prefillArea(s) {
    if (touched.area || !picker) return;
    var place = s && s.area;
    var code = confidentPlace(place) ? place.code : "";
    if (code !== prefilled && (code || prefilled)) {
      picker.setArea(area, code);
      prefilled = code;
    }
    if (code) {
      areaNote.textContent = "已按智能建议预填区域（把握 " + Math.round(place.confidence * 100) + "%），请核对；可修改，清空则由系统定位。";
    } else if (place && place.code) {
      areaNote.textContent = "智能定位把握不大（" + Math.round((place.confidence || 0) * 100) + "%），未预填；核实后可点“采用此区域”或手动选择。";
    } else {
      areaNote.textContent = "";
    }
  }
  function takeSuggestedArea() {
    if (!suggestedArea || !picker) return;
    picker.setArea(area, suggestedArea);
    touched.area = true;
    areaNote.textContent = "已采用建议区域。";
    later();
  }
  area.addEventListener("change", function () { areaNote.textContent = ""; });
  if (areaCode() && areaCode() !== prefilled) touched.area = true;  // chosen before a reload

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
    var tier = el("div", "紧急程度：" + (TIERS[u.tier] || "—") + (u.evidence ? "（" + u.evidence + "）" : ""));
    if (u.tier === "urgent") {
      // Only a suggestion: the operator decides (an emergency gets the warning instead).
      tier.appendChild(document.createTextNode(" "));
      tier.appendChild(answerButton("采用", null, function () { urgency.value = "urgent"; touched.urgency = true; }));
    }
    panel.appendChild(tier);
    var place = (names && names.place) || [];
    var line = el("div", "定位：");
    if (place.length) {
      line.appendChild(document.createTextNode(place.map(function (p) { return p.name || p.code; }).join(" → ") + " "));
      line.appendChild(el("span", place[place.length - 1].code + " ", "muted"));
      var use = el("button", "采用此区域");
      use.type = "button";
      use.addEventListener("click", takeSuggestedArea);
      line.appendChild(use);
    } else {
      line.appendChild(document.createTextNode("未能定位"));
    }
    panel.appendChild(line);
    var units = (names && names.units) || [];
    panel.appendChild(el("div", "建议承办单位：" + (units.length ? units.map(function (x) { return x.name || x.code; }).join("、") : "—")));
    // Fill what the operator has not chosen yet; they can still change it.
    // The urgency is never filled in: it stays what the operator chose (default 一般).
    if (!touched.request_type && s.request_type) requestType.value = s.request_type;
  }

  // The emergency warning: the classifier's emergency is never the ticket's urgency by
  // itself. The operator transfers, keeps it as 紧急 (Alt+9) or dismisses it (Esc / Alt+0);
  // the answer travels in the hidden "emergency_decision" field and is recorded at receive.
  var decision = $("emergency_decision");
  var warning = null;  // {key, transfer_to, evidence} of the warning on screen
  // A form the server sent back (a refused submit) keeps the answer already given.
  var restored = !!decision.value;
  function warningPending() {
    return warning !== null && !decision.value;
  }
  function keepEmergency() {
    if (!warning) return;
    decision.value = "kept";
    urgency.value = "emergency";
    touched.urgency = true;
    drawWarning();
  }
  function dismissEmergency() {
    if (!warning) return;
    if (decision.value === "kept" && urgency.value === "emergency") urgency.value = "normal";
    decision.value = "dismissed";
    drawWarning();
    content.focus();
  }
  function answerButton(label, cls, onClick) {
    var b = el("button", label, cls);
    b.type = "button";
    b.addEventListener("click", onClick);
    return b;
  }
  function drawWarning(reminder) {
    var slot = clear($("emergency-slot"));
    if (!warning) return;
    var said = warning.evidence ? "（来电提及“" + warning.evidence + "”）" : "";
    if (decision.value === "dismissed") {
      var note = el("div", "已忽略紧急情况预警" + said + "，紧急程度按所选办理。", "emergency-dismissed");
      note.setAttribute("role", "status");
      note.appendChild(answerButton("重新显示预警", null, function () { decision.value = ""; drawWarning(); }));
      slot.appendChild(note);
      return;
    }
    var box = el("div", null, "emergency");
    box.setAttribute("role", "alert");
    box.appendChild(el("strong", "紧急情况预警："));
    box.appendChild(document.createTextNode("来电可能涉及紧急情况" + (warning.evidence ? "（“" + warning.evidence + "”）" : "") + "，请核实后选择处理方式。"));
    if (decision.value === "kept") box.appendChild(el("p", "已确认为紧急：将按紧急时限受理派单，也可直接转接。", "decided"));
    if (reminder) box.appendChild(el("p", "请先处理紧急预警：转接、保持紧急（Alt+9）或忽略（Esc / Alt+0），再受理。", "decided"));
    var row = el("div", null, "transfers");
    Object.keys(EMERGENCY).forEach(function (code) {
      var b = actionButton("转 " + EMERGENCY[code], "transfer:" + code);
      if (code === warning.transfer_to) b.className = "suggested";
      row.appendChild(b);
    });
    box.appendChild(row);
    var answers = el("div", null, "answers");
    if (decision.value !== "kept") answers.appendChild(answerButton("保持紧急（Alt+9）", "keep", keepEmergency));
    answers.appendChild(answerButton("不紧急，忽略预警（Esc / Alt+0）", "dismiss", dismissEmergency));
    box.appendChild(answers);
    slot.appendChild(box);
    if (reminder) (box.querySelector("button.suggested") || box.querySelector("button")).focus();
  }
  function drawEmergency(s) {
    var u = (s && s.urgency) || {};
    var shown = u.tier === "emergency" && EMERGENCY[u.transfer_to];
    var key = shown ? u.transfer_to + "|" + (u.evidence || "") : null;
    if (restored) {
      restored = false;
      warning = key ? { key: key, transfer_to: u.transfer_to, evidence: u.evidence } : null;
    } else if (!warning || key !== warning.key) {
      // A new warning (other words, other line) needs a new answer; "kept" stays kept.
      if (decision.value !== "kept" || !key) {
        if (decision.value === "kept" && urgency.value === "emergency" && !key) urgency.value = "normal";
        decision.value = "";
      }
      warning = key ? { key: key, transfer_to: u.transfer_to, evidence: u.evidence } : null;
    }
    drawWarning();
  }
  urgency.addEventListener("change", function () {
    // Choosing 紧急 by hand answers the warning; choosing anything else after "keep" undoes it.
    if (!warning) return;
    if (urgency.value === "emergency") decision.value = "kept";
    else if (decision.value === "kept") decision.value = "dismissed";
    drawWarning();
  });

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
      details.setAttribute("data-code", a.code);
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

  // 命中: opening an article's answer counts once per article for this call (the page is
  // new after every submit); the server counts only articles in force.
  var opened = {};
  $("knowledge-panel").addEventListener("toggle", function (e) {
    var code = e.target.getAttribute && e.target.getAttribute("data-code");
    if (!code || !e.target.open || opened[code]) return;
    opened[code] = true;
    api("POST", "/api/v1/knowledge/articles/" + encodeURIComponent(code) + "/hit", {});
  }, true);

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
      // The ticket opens in a new tab: the call being typed stays in this one.
      var link = el("a", c.number);
      link.href = "/tickets/" + encodeURIComponent(c.number);
      link.target = "_blank";
      link.rel = "noopener";
      li.appendChild(el("strong")).appendChild(link);
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
        if (!s) topCategories = [];
        drawSuggestion(s, names);
        drawCategoryTop();
        prefillArea(s);
        drawEmergency(s);
      });
      var body = {
        phone: phone.value.trim() || null,
        address: address.value.trim() || null,
        area: areaCode() || suggestedArea || null,
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
    } else if (warning && e.altKey && !e.ctrlKey && e.code === "Digit9") {
      e.preventDefault();
      keepEmergency();
    } else if (warning && e.altKey && !e.ctrlKey && e.code === "Digit0") {
      e.preventDefault();
      dismissEmergency();
    } else if (warningPending() && e.key === "Escape" && !e.defaultPrevented) {
      // A picker that closes its list on Escape prevents the default first.
      e.preventDefault();
      dismissEmergency();
    }
  });
  // One click, one request: a second click while the page is submitting is ignored (the
  // server's idempotency key covers what gets through anyway).
  var sent = false;
  form.addEventListener("submit", function (e) {
    if (sent) { e.preventDefault(); return; }
    var submitter = e.submitter;
    if (warningPending() && submitter && submitter.value === "receive") {
      // 受理 waits for the operator's answer to the emergency warning.
      e.preventDefault();
      drawWarning(true);
      return;
    }
    sent = true;
  });
  if (content.value.trim()) refresh();
})();
