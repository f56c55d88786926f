// Stepgate push approvals. Two roles, chosen by what the page contains:
//
// Device page (#push-device): listens to the pending approvals with
// Server-Sent Events (data-stream), falling back to polling data-pending
// every 3 seconds, shows each approval's three numbers and POSTs the
// choice as JSON to data-answer. The device cookie authenticates every
// request; no token is read or stored by this script.
//
// Waiting page (#push-wait, inside the step-up form): polls
// data-status?approval=<data-approval> every 2 seconds and submits the
// enclosing form once the status is no longer "pending", so the server
// verifies the answer. Markup:
//   <form method="post" action="/stepup"> ...
//     <div id="push-wait" data-approval="ID" data-status="/stepup/push/status">
//       Choose <strong>42</strong> on your device.</div>
//   </form>
(function () {
  "use strict";

  var device = document.getElementById("push-device");
  if (device && document.getElementById("push-list")) {
    var list = document.getElementById("push-list");
    var empty = document.getElementById("push-empty");
    var errorBox = document.getElementById("push-error");
    var itemTemplate = document.getElementById("push-item");
    var answered = {};

    var showError = function (msg) {
      errorBox.textContent = msg;
      errorBox.hidden = !msg;
    };

    var answer = function (approval, choice) {
      answered[approval] = true;
      fetch(device.dataset.answer, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ approval: approval, choice: choice })
      }).then(function (resp) {
        return resp.json().then(function (body) {
          if (!resp.ok) {
            showError(body.error || "The answer was not accepted.");
          } else if (body.result === "wrong-number") {
            showError("That was not the number on the sign-in screen, so the sign-in was refused.");
          } else {
            showError("");
          }
        });
      }).catch(function () {
        showError("The answer could not be sent. Check your connection.");
      });
      var el = document.getElementById("push-" + approval);
      if (el) {
        el.remove();
      }
      empty.hidden = list.children.length > 0;
    };

    var render = function (pending) {
      list.replaceChildren();
      pending.forEach(function (p) {
        if (answered[p.approval]) {
          return;
        }
        var node = itemTemplate.content.firstElementChild.cloneNode(true);
        node.id = "push-" + p.approval;
        var choices = node.querySelector(".push-choices");
        p.choices.forEach(function (n) {
          var b = document.createElement("button");
          b.type = "button";
          b.textContent = String(n);
          b.addEventListener("click", function () { answer(p.approval, n); });
          choices.appendChild(b);
          choices.appendChild(document.createTextNode(" "));
        });
        node.querySelector(".push-deny").addEventListener("click", function () { answer(p.approval, "deny"); });
        node.querySelector(".push-not-me").addEventListener("click", function () { answer(p.approval, "not-me"); });
        list.appendChild(node);
      });
      empty.hidden = list.children.length > 0;
    };

    var poll = function () {
      fetch(device.dataset.pending, { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (body) { render(body.pending || []); })
        .catch(function () {})
        .finally(function () { setTimeout(poll, 3000); });
    };

    if (window.EventSource) {
      var es = new EventSource(device.dataset.stream);
      var opened = false;
      es.addEventListener("open", function () { opened = true; });
      es.addEventListener("pending", function (ev) {
        render(JSON.parse(ev.data).pending || []);
      });
      es.addEventListener("error", function () {
        // Never connected (a proxy that blocks streams): poll instead.
        // After a drop, EventSource reconnects by itself.
        if (!opened) {
          es.close();
          poll();
        }
      });
    } else {
      poll();
    }
  }

  var wait = document.getElementById("push-wait");
  if (wait) {
    var form = wait.closest("form");
    var url = wait.dataset.status + "?approval=" + encodeURIComponent(wait.dataset.approval);
    var check = function () {
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (body) {
          if (body.status === "pending") {
            setTimeout(check, 2000);
          } else {
            form.submit();
          }
        })
        .catch(function () { setTimeout(check, 4000); });
    };
    setTimeout(check, 2000);
  }
})();
