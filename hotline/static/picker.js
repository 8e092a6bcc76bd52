// Searchable pickers (选择器) for every page: each <select data-picker> gets a search box that
// matches Chinese, pinyin initials ("ldgz" → 路灯故障), full pinyin or part of a name or path;
// ↑/↓ move, Enter chooses, Esc cancels. The select stays in the form (visually hidden) and is
// what is submitted, so a page works the same without this script. Options carry data-py
// (initials) and data-pinyin (full pinyin) computed on the server (hotline/pickers.py);
// an optgroup's data-py holds its parent path's initials.
//
// An area cascade (<fieldset data-area-cascade>: one select per level, 区县 → 街道 → 社区 →
// 网格, named alike) narrows each level to the children of the level chosen above, fills the
// levels above from a choice below, and submits only the most specific code.
//
// Names from the database are written with textContent only, never parsed as HTML.
// window.HotlinePicker: enhance(root), refresh(select), setArea(cascade, code), areaCode(cascade).
(function () {
  "use strict";
  var SEP = " › ";
  var MAX_SHOWN = 200;
  var counter = 0;

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function fold(text) { return (text || "").toLowerCase().replace(/[\s›·,，、]+/g, ""); }

  // -- matching -------------------------------------------------------------------------------

  function entryOf(option) {
    var group = option.parentNode && option.parentNode.tagName === "OPTGROUP" ? option.parentNode : null;
    var name = option.textContent.trim();
    var parents = group && group.label ? group.label : "";
    return {
      option: option,
      value: option.value,
      name: name,
      parents: parents,
      path: parents ? parents + SEP + name : name,
      py: option.getAttribute("data-py") || "",
      pinyin: option.getAttribute("data-pinyin") || "",
      groupPy: group ? (group.getAttribute("data-py") || "") : ""
    };
  }

  // Lower is better; -1: no match. Every space-separated word of the query must match.
  function score(entry, words) {
    var worst = 0;
    for (var i = 0; i < words.length; i++) {
      var s = scoreWord(entry, words[i]);
      if (s < 0) return -1;
      worst = Math.max(worst, s);
    }
    return worst;
  }
  function scoreWord(entry, q) {
    var name = fold(entry.name);
    var ascii = /^[a-z0-9]+$/.test(q);
    if (name === q || (ascii && entry.py === q)) return 0;
    if (name.indexOf(q) === 0) return 1;
    if (ascii && entry.py.indexOf(q) === 0) return 1;
    if (name.indexOf(q) > 0) return 2;
    if (ascii && entry.pinyin.indexOf(q) === 0) return 2;
    if (ascii && entry.py.indexOf(q) > 0) return 3;
    if (ascii && entry.pinyin.indexOf(q) > 0) return 4;
    if (fold(entry.parents).indexOf(q) >= 0) return 5;
    if (ascii && entry.groupPy.split(" ").some(function (p) { return p && p.indexOf(q) === 0; })) return 5;
    if (/^[0-9]+$/.test(q) && entry.value.indexOf(q) === 0) return 6;
    return -1;
  }

  function matches(select, query) {
    var words = query.toLowerCase().split(/\s+/).map(fold).filter(Boolean);
    var found = [];
    Array.prototype.forEach.call(select.options, function (option, index) {
      if (option.disabled) return;
      if (option.value === "") {
        if (!words.length) found.push({ entry: entryOf(option), rank: -1, index: index });
        return;
      }
      var entry = entryOf(option);
      var rank = words.length ? score(entry, words) : 0;
      if (rank >= 0) found.push({ entry: entry, rank: rank, index: index });
    });
    found.sort(function (a, b) { return a.rank - b.rank || a.index - b.index; });
    return found.map(function (f) { return f.entry; });
  }

  // -- one picker -----------------------------------------------------------------------------

  function enhance(select) {
    if (select.hotlinePicker) return select.hotlinePicker;
    var id = select.id || ("picker-" + (++counter));
    if (!select.id) select.id = id;
    var wrap = el("div", null, "picker");
    var input = el("input", null, "picker-input");
    var list = el("ul", null, "picker-list");
    var error = el("div", null, "picker-error");
    input.type = "text";
    input.id = id + "-search";
    input.autocomplete = "off";
    input.spellcheck = false;
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", id + "-list");
    if (select.getAttribute("accesskey")) {
      input.setAttribute("accesskey", select.getAttribute("accesskey"));
      select.removeAttribute("accesskey");
    }
    list.id = id + "-list";
    list.setAttribute("role", "listbox");
    list.hidden = true;
    // Pressing on the list (an item, its scroll bar) must not take the focus from the box.
    list.addEventListener("mousedown", function (e) { e.preventDefault(); });
    error.hidden = true;
    error.setAttribute("role", "alert");
    select.parentNode.insertBefore(wrap, select);
    wrap.appendChild(input);
    wrap.appendChild(list);
    wrap.appendChild(select);
    wrap.appendChild(error);
    select.classList.add("picker-native");
    select.tabIndex = -1;
    select.setAttribute("aria-hidden", "true");
    document.querySelectorAll('label[for="' + id + '"]').forEach(function (label) {
      label.htmlFor = input.id;
    });

    var inCascade = !!select.closest("[data-area-cascade]");
    var hint = "可输入名称、拼音首字母或全拼搜索；↑↓ 选择，Enter 确定，Esc 取消";
    var shown = [];
    var active = -1;
    var typed = false;

    function blankOption() {
      for (var i = 0; i < select.options.length; i++) if (select.options[i].value === "") return select.options[i];
      return null;
    }
    function show() {
      var option = select.selectedIndex >= 0 ? select.options[select.selectedIndex] : null;
      var blank = blankOption();
      input.placeholder = blank ? blank.textContent.trim() : "请选择";
      // In a cascade the levels stand side by side, so each shows its own name only.
      var entry = option && option.value ? entryOf(option) : null;
      input.value = entry ? (inCascade ? entry.name : entry.path) : "";
      input.title = entry ? entry.path + "（" + entry.value + "）" : hint;
      input.disabled = select.disabled;
      input.required = false;
      typed = false;
    }
    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }
    function mark(index) {
      var items = list.querySelectorAll("[role=option]");
      if (!items.length) { active = -1; return; }
      active = Math.max(0, Math.min(index, items.length - 1));
      items.forEach(function (item, i) {
        var on = i === active;
        item.classList.toggle("active", on);
        item.setAttribute("aria-selected", on ? "true" : "false");
      });
      input.setAttribute("aria-activedescendant", items[active].id);
      items[active].scrollIntoView({ block: "nearest" });
    }
    function open(query) {
      shown = matches(select, query);
      clear(list);
      if (!shown.length) {
        list.appendChild(el("li", "无匹配项（可输入名称、拼音首字母或全拼）", "picker-empty"));
      }
      shown.slice(0, MAX_SHOWN).forEach(function (entry, i) {
        var item = el("li", null, entry.value ? null : "picker-blank");
        item.id = id + "-opt-" + i;
        item.setAttribute("role", "option");
        if (entry.parents) item.appendChild(el("span", entry.parents + SEP, "picker-path"));
        item.appendChild(el("span", entry.name, "picker-name"));
        if (entry.value) item.appendChild(el("small", entry.value, "picker-code"));
        item.addEventListener("click", function () { choose(entry.option); });
        list.appendChild(item);
      });
      if (shown.length > MAX_SHOWN) {
        list.appendChild(el("li", "另有 " + (shown.length - MAX_SHOWN) + " 项，请输入更多文字缩小范围", "picker-empty"));
      }
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
      var current = shown.findIndex(function (entry) { return entry.option.selected && entry.value; });
      // A search starts at its best match; an emptied box at the blank choice (if any).
      mark(query || typed || current < 0 ? 0 : current);
    }
    function choose(option) {
      close();
      error.hidden = true;
      var changed = select.value !== option.value;
      select.value = option.value;
      show();
      if (document.activeElement === input) input.select();  // typing again starts a new search
      if (changed) {
        select.dispatchEvent(new Event("input", { bubbles: true }));
        select.dispatchEvent(new Event("change", { bubbles: true }));
      }
    }

    input.addEventListener("focus", function () { input.select(); });
    input.addEventListener("click", function () { if (list.hidden) open(""); });
    input.addEventListener("input", function () { typed = true; open(input.value.trim()); });
    input.addEventListener("keydown", function (e) {
      if (e.altKey && e.key !== "ArrowDown") return;  // the page's own shortcuts (Alt+1…)
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        if (list.hidden) { open(typed ? input.value.trim() : ""); return; }
        mark(active + (e.key === "ArrowDown" ? 1 : -1));
      } else if (e.key === "PageDown" || e.key === "PageUp") {
        if (list.hidden) return;
        e.preventDefault();
        mark(active + (e.key === "PageDown" ? 10 : -10));
      } else if (e.key === "Enter") {
        if (e.ctrlKey || e.metaKey) return;  // the page's submit shortcut
        e.preventDefault();  // Enter in a search box must never submit the form
        if (!list.hidden && active >= 0 && shown[active]) choose(shown[active].option);
        else if (list.hidden) open("");
      } else if (e.key === "Escape") {
        if (!list.hidden || typed) {
          e.preventDefault();
          e.stopPropagation();
          close();
          show();
        }
      } else if (e.key === "Tab") {
        if (!list.hidden && typed && active >= 0 && shown[active]) choose(shown[active].option);
        else close();
      }
    });
    input.addEventListener("blur", function () {
      if (list.hidden && !typed) return;
      var blank = blankOption();
      if (typed && input.value.trim() === "" && blank) { choose(blank); return; }
      close();
      show();
    });
    select.addEventListener("change", show);
    // The browser's own "please choose" bubble would point at the hidden select.
    select.addEventListener("invalid", function (e) {
      e.preventDefault();
      error.textContent = "请选择" + (input.placeholder && input.placeholder !== "请选择" ? "（" + input.placeholder + "）" : "");
      error.hidden = false;
      input.focus();
    });
    show();
    select.hotlinePicker = { refresh: show, input: input, close: close };
    return select.hotlinePicker;
  }

  // -- area cascade ---------------------------------------------------------------------------

  function cascadeOf(fieldset) {
    if (fieldset.hotlineCascade) return fieldset.hotlineCascade;
    var selects = Array.prototype.slice.call(fieldset.querySelectorAll("select[data-level]"));
    selects.sort(function (a, b) { return Number(a.getAttribute("data-level")) - Number(b.getAttribute("data-level")); });
    // Each level's full list, kept aside: the select shows the part under the level above.
    var masters = selects.map(function (select) {
      var groups = [];
      Array.prototype.forEach.call(select.children, function (child) {
        if (child.tagName === "OPTGROUP") {
          groups.push({ shell: child.cloneNode(false), options: Array.prototype.slice.call(child.children) });
        } else if (child.value !== "") {
          groups.push({ shell: null, options: [child] });
        }
      });
      return groups;
    });
    function has(level, code) {
      return masters[level].some(function (g) { return g.options.some(function (o) { return o.value === code; }); });
    }
    // Which level a code belongs to, and its ancestors' codes (prefixes found in levels above).
    function levelOf(code) {
      for (var i = selects.length - 1; i >= 0; i--) if (has(i, code)) return i;
      return -1;
    }
    function ancestorOn(level, code) {
      var found = "";
      masters[level].some(function (g) {
        return g.options.some(function (o) {
          if (code.indexOf(o.value) === 0) { found = o.value; return true; }
          return false;
        });
      });
      return found;
    }
    function rebuild(level, under, value) {
      var select = selects[level];
      var blank = null;
      Array.prototype.forEach.call(select.options, function (o) { if (o.value === "") blank = o; });
      clear(select);
      if (blank) select.appendChild(blank);
      masters[level].forEach(function (g) {
        var keep = g.options.filter(function (o) { return !under || o.value.indexOf(under) === 0; });
        if (!keep.length) return;
        var parent = select;
        if (g.shell) { parent = g.shell; clear(parent); select.appendChild(parent); }
        keep.forEach(function (o) { parent.appendChild(o); });
      });
      select.value = value;
      if (select.value !== value) select.value = "";
    }
    // Make ``code`` (on ``level``) the choice: levels above follow it, levels below keep a
    // choice under it or are cleared; each list shows only what lies under the level above.
    function apply(level, code) {
      var values = selects.map(function (s) { return s.value; });
      for (var i = 0; i < selects.length; i++) {
        if (i < level) values[i] = code ? ancestorOn(i, code) : values[i];
        else if (i === level) values[i] = code;
        else if (!code || values[i].indexOf(code) !== 0) values[i] = "";
      }
      var under = "";
      for (var j = 0; j < selects.length; j++) {
        rebuild(j, under, values[j]);
        if (selects[j].value) under = selects[j].value;
        if (selects[j].hotlinePicker) selects[j].hotlinePicker.refresh();
      }
    }
    function code() {
      for (var i = selects.length - 1; i >= 0; i--) if (selects[i].value) return selects[i].value;
      return "";
    }
    selects.forEach(function (select, level) {
      select.addEventListener("change", function () { apply(level, select.value); });
    });
    var form = fieldset.form || fieldset.closest("form");
    var name = fieldset.getAttribute("data-name") || (selects[0] && selects[0].name);
    if (form && name) {
      // Post the most specific level only (the server also accepts one value per level).
      form.addEventListener("formdata", function (e) {
        e.formData.delete(name);
        e.formData.append(name, code());
      });
    }
    var cascade = {
      selects: selects,
      code: code,
      set: function (value) {
        value = value || "";
        var level = value ? levelOf(value) : 0;
        if (level < 0) return false;
        apply(level, value);
        return true;
      }
    };
    fieldset.hotlineCascade = cascade;
    apply(selects.length - 1, code());  // narrow the lists to what is chosen already
    return cascade;
  }

  // -- wiring ---------------------------------------------------------------------------------

  function enhanceAll(root) {
    var scope = root || document;
    if (scope.querySelectorAll) {
      scope.querySelectorAll("fieldset[data-area-cascade]").forEach(cascadeOf);
      scope.querySelectorAll("select[data-picker]").forEach(enhance);
    }
  }

  window.HotlinePicker = {
    enhance: enhanceAll,
    refresh: function (select) { if (select.hotlinePicker) select.hotlinePicker.refresh(); },
    setArea: function (fieldset, code) { return cascadeOf(fieldset).set(code); },
    areaCode: function (fieldset) { return cascadeOf(fieldset).code(); }
  };

  enhanceAll(document);
  // Forms drawn later by other scripts are enhanced too.
  if (window.MutationObserver && document.body) {
    new MutationObserver(function (changes) {
      changes.forEach(function (change) {
        change.addedNodes.forEach(function (node) {
          if (node.nodeType !== 1) return;
          if (node.matches && (node.matches("select[data-picker]") || node.matches("fieldset[data-area-cascade]"))) {
            enhanceAll(node.parentNode);
          } else if (node.querySelector && node.querySelector("select[data-picker], fieldset[data-area-cascade]")) {
            enhanceAll(node);
          }
        });
      });
    }).observe(document.body, { childList: true, subtree: true });
  }
})();
