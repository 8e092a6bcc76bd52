// 用户管理 form (templates/admin/user_form.html): the grid picker adds each chosen grid as a
// checked chip (unchecking one drops it), and the grids appear only for a 网格员 (for other
// roles they are disabled, so not posted). Without this script the form still works: the
// chips are checkboxes and the picker's select posts the grid chosen in it.
(function () {
  "use strict";
  var form = document.getElementById("user-form");
  if (!form) return;
  var role = document.getElementById("user-role");
  var add = form.querySelector("[data-grid-add]");
  var chips = document.getElementById("grid-chips");
  var grids = form.querySelector("[data-role-only]");

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  if (add && chips) {
    add.removeAttribute("name");  // the chips post the grids
    add.addEventListener("change", function () {
      var code = add.value;
      if (!code) return;
      var option = add.options[add.selectedIndex];
      var already = chips.querySelector('input[value="' + code.replace(/[^0-9]/g, "") + '"]');
      if (already) {
        already.checked = true;
      } else {
        var group = option.parentNode.tagName === "OPTGROUP" ? option.parentNode.label + " › " : "";
        var item = el("li");
        var label = el("label", null, "chip");
        var box = el("input");
        box.type = "checkbox";
        box.name = "grids";
        box.value = code;
        box.checked = true;
        label.appendChild(box);
        label.appendChild(document.createTextNode(" " + group + option.textContent.trim() + " "));
        label.appendChild(el("span", code, "code"));
        item.appendChild(label);
        chips.appendChild(item);
      }
      add.value = "";
      if (window.HotlinePicker) window.HotlinePicker.refresh(add);
    });
  }

  function showBindings() {
    if (!grids || !role) return;
    var on = role.value === grids.getAttribute("data-role-only");
    grids.hidden = !on;
    grids.disabled = !on;
  }
  if (role) {
    role.addEventListener("change", showBindings);
    showBindings();
  }
})();
