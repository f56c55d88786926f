// The admin console works without this script; it only makes the policy
// editor nicer to use: a problem's line number puts the cursor on that
// line of the text, and Tab indents instead of leaving the text area.
"use strict";

(function () {
  const text = document.getElementById("yaml");
  if (!text) {
    return;
  }

  // Selects line n (1-based) of the text area and scrolls it into view.
  function goToLine(n) {
    const lines = text.value.split("\n");
    if (n < 1 || n > lines.length) {
      return;
    }
    let start = 0;
    for (let i = 0; i < n - 1; i++) {
      start += lines[i].length + 1;
    }
    text.focus();
    text.setSelectionRange(start, start + lines[n - 1].length);
    const lineHeight = text.scrollHeight / Math.max(lines.length, 1);
    text.scrollTop = Math.max(0, (n - 4) * lineHeight);
  }

  document.querySelectorAll("a.at[data-line]").forEach(function (a) {
    const n = parseInt(a.dataset.line, 10);
    if (n > 0) {
      a.addEventListener("click", function (e) {
        e.preventDefault();
        goToLine(n);
      });
    }
  });

  // YAML is indented with spaces; a Tab key press inserts two. Escape
  // then Tab still moves the focus on, for keyboard users.
  let escaped = false;
  text.addEventListener("keydown", function (e) {
    if (e.key === "Escape") {
      escaped = true;
      return;
    }
    if (e.key !== "Tab" || e.shiftKey || escaped) {
      escaped = false;
      return;
    }
    e.preventDefault();
    const s = text.selectionStart;
    text.setRangeText("  ", s, text.selectionEnd, "end");
  });
})();
