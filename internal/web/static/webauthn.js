// webauthn.js runs a WebAuthn ceremony (register a passkey, or sign in /
// step up with one) for a page that describes it in markup. It is a file,
// not an inline script, because the pages' CSP is script-src 'self'.
//
// Markup:
//
//   <div id="webauthn"
//        data-kind="webauthn-register | webauthn-login"
//        data-options="{...PublicKeyCredentialCreationOptions or RequestOptions JSON...}"
//        data-ceremony="CEREMONY-ID"
//        data-action="/URL/TO/POST"
//        data-csrf="CSRF-TOKEN"
//        data-return-to="/PATH"          (optional)
//        data-name-field="INPUT-ID">     (optional: the credential's name)
//   </div>
//   <p id="webauthn-error" hidden></p>
//   <button type="button" id="webauthn-start">Use a passkey</button>   (optional)
//
// With a #webauthn-start button (or a [data-webauthn-start] one inside the
// div), the ceremony starts when it is clicked, and can be retried after
// a cancel (Safari only lets a user gesture start one); without, it starts
// when the page loads.
//
// Answer: the script submits an ordinary HTML form (POST,
// application/x-www-form-urlencoded) with the fields csrf_token, ceremony,
// data (the credential as JSON), return_to and name. It does not use
// fetch: the server answers a form post with a redirect, often to an
// application's redirect URI on another origin carrying a one-time
// authorization code. fetch would follow that redirect itself — CORS
// refuses it cross-origin, and on the same origin it would spend the code
// in the background before the browser got there. A real form submission
// lets the browser navigate as for any sign-in form, and the server's
// error pages render as usual.
(function () {
  "use strict";

  function b64urlToBuffer(s) {
    var pad = s.length % 4 === 0 ? "" : "====".slice(s.length % 4);
    var bin = atob(s.replace(/-/g, "+").replace(/_/g, "/") + pad);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function bufferToB64url(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      var out = { type: d.type, id: b64urlToBuffer(d.id) };
      if (d.transports) out.transports = d.transports;
      return out;
    });
  }

  // creationOptions and requestOptions turn the server's JSON into the
  // objects navigator.credentials expects: base64url fields become
  // ArrayBuffers. Browsers that have the standard parsers use them.
  function creationOptions(json) {
    if (window.PublicKeyCredential && PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    var o = Object.assign({}, json);
    o.challenge = b64urlToBuffer(json.challenge);
    o.user = Object.assign({}, json.user, { id: b64urlToBuffer(json.user.id) });
    o.excludeCredentials = descriptors(json.excludeCredentials);
    return o;
  }

  function requestOptions(json) {
    if (window.PublicKeyCredential && PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    var o = Object.assign({}, json);
    o.challenge = b64urlToBuffer(json.challenge);
    o.allowCredentials = descriptors(json.allowCredentials);
    return o;
  }

  // credentialJSON is PublicKeyCredential.toJSON(), written out for
  // browsers that lack it.
  function credentialJSON(cred) {
    if (typeof cred.toJSON === "function") {
      try { return cred.toJSON(); } catch (e) { /* fall through: some password managers' objects throw */ }
    }
    var r = cred.response, response = { clientDataJSON: bufferToB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = bufferToB64url(r.attestationObject);
      response.transports = typeof r.getTransports === "function" ? r.getTransports() : [];
    } else {
      response.authenticatorData = bufferToB64url(r.authenticatorData);
      response.signature = bufferToB64url(r.signature);
      if (r.userHandle) response.userHandle = bufferToB64url(r.userHandle);
    }
    return {
      id: cred.id,
      rawId: bufferToB64url(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: response
    };
  }

  function showError(msg) {
    var el = document.getElementById("webauthn-error");
    if (!el) return;
    el.textContent = msg;
    el.hidden = false;
  }

  function explain(err) {
    switch (err && err.name) {
      case "NotAllowedError":
        return "The passkey request was cancelled or timed out. Try again.";
      case "InvalidStateError":
        return "This passkey or security key is already registered to your account.";
      case "SecurityError":
        return "This page's address does not match the passkey settings of this server. Ask your administrator to check webauthn.rp_id and webauthn.origins.";
      case "NotSupportedError":
        return "This browser or authenticator does not support the requested passkey type.";
    }
    return "The passkey could not be used: " + (err && err.message ? err.message : String(err));
  }

  function submit(box, credential) {
    var d = box.dataset;
    var nameField = d.nameField ? document.getElementById(d.nameField) : null;
    var fields = {
      csrf_token: d.csrf || "",
      ceremony: d.ceremony || "",
      data: JSON.stringify(credentialJSON(credential)),
      return_to: d.returnTo || "",
      name: nameField ? nameField.value : ""
    };
    var form = document.createElement("form");
    form.method = "POST";
    form.action = d.action;
    form.hidden = true;
    Object.keys(fields).forEach(function (k) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = k;
      input.value = fields[k];
      form.appendChild(input);
    });
    document.body.appendChild(form);
    form.submit();
  }

  function run(box, button) {
    if (!window.PublicKeyCredential || !navigator.credentials) {
      showError("This browser does not support passkeys. Use another sign-in method.");
      return;
    }
    var options;
    try {
      options = JSON.parse(box.dataset.options);
      if (typeof options === "string") options = JSON.parse(options);
    } catch (e) {
      showError("The passkey request from the server is malformed. Reload the page.");
      return;
    }
    if (button) button.disabled = true;
    var pending = box.dataset.kind === "webauthn-register"
      ? navigator.credentials.create({ publicKey: creationOptions(options) })
      : navigator.credentials.get({ publicKey: requestOptions(options) });
    pending.then(function (cred) {
      if (!cred) throw new Error("no credential was returned");
      submit(box, cred);
    }).catch(function (err) {
      if (button) button.disabled = false;
      showError(explain(err));
    });
  }

  function start() {
    var box = document.getElementById("webauthn");
    if (!box) return;
    var button = document.getElementById("webauthn-start") || box.querySelector("[data-webauthn-start]");
    if (button) {
      button.addEventListener("click", function () { run(box, button); });
    } else {
      run(box, null);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
