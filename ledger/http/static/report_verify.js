// A signed subject report verified in the browser, with WebCrypto only: the checks of
// ledger/tlog/signed_report.py's check_report_signature and the checkpoint part of
// ledger/tlog/report_check.py, in this order:
//   1. format      the report is a JSON object with a `report_signature` note;
//   2. signature   the note is signed (Ed25519, c2sp.org/signed-note) by the given report key, which
//                  must neither cover a log origin nor be a log key's material (one key, one statement);
//   3. statement   the note text is "ledger.report/v1\n<subject>\n<generated_at>\n<digest>\n" with the
//                  report's own subject and generated_at;
//   4. content     <digest> is the SHA-256 of the RFC 8785 canonical JSON of the report without
//                  `report_signature` (recomputed here exactly as ledger/tlog/jcs.py does);
//   (checkpoint)   every embedded checkpoint is signed by a given log key covering its origin (checked
//                  first: the origins it names are what step 2 compares the report key's name with);
//   5. position    every timeline line's log position falls under one of those checkpoints.
// Needs /static/verify.js first (window.ledgerVerify: notes, keys, checkpoints). Nothing here writes
// HTML: results go into the page with textContent. Exposed as window.ledgerReport for the tests.
"use strict";
(function () {
  const V = window.ledgerVerify;
  const VerifyError = V.VerifyError;
  const CONTEXT = "ledger.report/v1";
  const SIGNATURE_FIELD = "report_signature";
  const ED25519 = 0x01;

  // RFC 8785: ECMAScript's JSON.stringify already gives the number form (ES6 Number::toString) and
  // the minimal string escapes the RFC requires; members are sorted by UTF-16 code units, which is
  // what Array.prototype.sort compares with no comparator.
  function canonical(value, where = "$") {
    if (value === null || typeof value === "boolean" || typeof value === "string") return JSON.stringify(value);
    if (typeof value === "number") {
      if (!Number.isFinite(value)) throw new VerifyError("format", `${where}: ${value} is not a JSON number`);
      return JSON.stringify(value);
    }
    if (Array.isArray(value)) return "[" + value.map((v, i) => canonical(v, `${where}[${i}]`)).join(",") + "]";
    if (typeof value === "object") {
      return "{" + Object.keys(value).sort().map((k) => JSON.stringify(k) + ":" + canonical(value[k], `${where}.${k}`)).join(",") + "}";
    }
    throw new VerifyError("format", `${where}: not a JSON value`);
  }

  // JSON read the way ledger/tlog/jcs.py's loads_strict reads it: a key repeated in one object is
  // refused (JSON.parse keeps the last, another reader the first, so two verifiers could see two
  // documents). Strings and numbers are still decoded by JSON.parse, token by token.
  const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
  const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
  const WS = /[ \t\n\r]*/y;
  function parseStrict(text) {
    let at = 0;
    const fail = (why) => {
      const before = text.slice(0, at);
      const line = before.split("\n").length, column = at - before.lastIndexOf("\n");
      throw new VerifyError("format", `the report is not JSON: ${why} (line ${line}, column ${column})`);
    };
    const skip = () => { WS.lastIndex = at; WS.exec(text); at = WS.lastIndex; };
    const token = (re, what) => {
      re.lastIndex = at;
      const m = re.exec(text);
      if (!m) fail(`expected ${what}`);
      at = re.lastIndex;
      return JSON.parse(m[0]);
    };
    const value = () => {
      skip();
      const c = text[at];
      if (c === "{") {
        at++;
        const out = {}, seen = new Set();
        skip();
        if (text[at] === "}") { at++; return out; }
        for (;;) {
          skip();
          const key = token(STRING, "a key in quotes");
          if (seen.has(key)) fail(`the key ${JSON.stringify(key)} appears twice in one object`);
          seen.add(key);
          skip();
          if (text[at] !== ":") fail("expected ':'");
          at++;
          // defineProperty: a "__proto__" member is data, not the object's prototype.
          Object.defineProperty(out, key, { value: value(), enumerable: true, writable: true, configurable: true });
          skip();
          if (text[at] === ",") { at++; continue; }
          if (text[at] === "}") { at++; return out; }
          fail("expected ',' or '}'");
        }
      }
      if (c === "[") {
        at++;
        const out = [];
        skip();
        if (text[at] === "]") { at++; return out; }
        for (;;) {
          out.push(value());
          skip();
          if (text[at] === ",") { at++; continue; }
          if (text[at] === "]") { at++; return out; }
          fail("expected ',' or ']'");
        }
      }
      if (c === '"') return token(STRING, "a string");
      for (const [word, v] of [["true", true], ["false", false], ["null", null]]) {
        if (text.startsWith(word, at)) { at += word.length; return v; }
      }
      return token(NUMBER, "a value");
    };
    const out = value();
    skip();
    if (at !== text.length) fail("text after the JSON value");
    return out;
  }

  async function reportDigest(report) {
    const unsigned = {};
    for (const k of Object.keys(report)) if (k !== SIGNATURE_FIELD) unsigned[k] = report[k];
    return V.hex(await V.sha256(new TextEncoder().encode(canonical(unsigned))));
  }

  async function keysOf(texts, what) {
    const keys = [];
    for (const t of texts) if (t && t.trim()) keys.push(await V.parseVkey(t));
    if (!keys.length) throw new VerifyError("format", `no ${what} given`);
    if (keys.some((k) => k.type !== ED25519)) throw new VerifyError("format", `the ${what} must have signature type 01`);
    return keys;
  }

  const covers = (keyName, origin) => origin === keyName || origin.startsWith(keyName + "/");

  // Every check of a signed report (its JSON text) against the report vkey(s) and log vkey(s);
  // resolves to what it proved, rejects with a VerifyError whose `step` names the check that failed.
  async function verifySignedReport(text, reportVkeyTexts, logVkeyTexts) {
    const report = parseStrict(text);
    if (report === null || typeof report !== "object" || Array.isArray(report)) throw new VerifyError("format", "the report is not a JSON object");
    const noteText = report[SIGNATURE_FIELD];
    if (typeof noteText !== "string") throw new VerifyError("format", `${SIGNATURE_FIELD} is missing: the report is not signed`);
    const reportKeys = await keysOf(reportVkeyTexts, "report verifier key");
    const logKeys = await keysOf(logVkeyTexts, "log verifier key");
    const checkpoints = report.checkpoints === undefined ? [] : report.checkpoints;
    if (!Array.isArray(checkpoints) || checkpoints.some((c) => typeof c !== "string")) throw new VerifyError("format", "checkpoints must be a list of checkpoint notes");
    const opened = [];
    for (const [i, note] of checkpoints.entries()) {
      try { opened.push(await V.openCheckpoint(note, logKeys)); } catch (err) {
        if (err instanceof VerifyError) throw new VerifyError("checkpoint", `checkpoint ${i + 1}: ${err.message}`);
        throw err;
      }
    }
    for (const k of reportKeys) {
      const clash = opened.find((o) => covers(k.name, o.checkpoint.origin));
      if (clash) throw new VerifyError("signature", `the report key ${k.name} also covers the log origin ${clash.checkpoint.origin}: a report must be signed by a key of its own`);
    }
    for (const k of reportKeys) {
      const twin = logKeys.find((l) => V.hex(l.publicKey) === V.hex(k.publicKey));
      if (twin) throw new VerifyError("signature", `the report key ${k.name} is the log key ${twin.name}'s key material: a report must be signed by a key of its own`);
    }
    let signed;
    try { signed = await V.openNote(noteText, reportKeys); } catch (err) {
      if (err instanceof VerifyError && err.step === "signature" && err.message.startsWith("the note is not signed")) {
        throw new VerifyError("signature", err.message.replace("given log key", "given report key"));
      }
      throw err;
    }
    const lines = signed.note.text.split("\n").slice(0, -1);
    if (lines.length !== 4 || lines[0] !== CONTEXT) throw new VerifyError("statement", `the signed statement is not a ${CONTEXT} statement (first line ${JSON.stringify(lines[0].slice(0, 40))})`);
    if (lines[1] !== report.subject) throw new VerifyError("statement", `the signature is for subject ${JSON.stringify(lines[1])}, the report is about ${JSON.stringify(report.subject)}`);
    if (lines[2] !== report.generated_at) throw new VerifyError("statement", `the signature is of a report generated at ${lines[2]}, this one says ${report.generated_at}`);
    const digest = await reportDigest(report);
    if (lines[3] !== digest) throw new VerifyError("content", `the report's content does not match what was signed (canonical JSON SHA-256 ${digest}, signed ${lines[3].slice(0, 64)}): the report was changed after signing`);
    const sizes = new Map();
    for (const [i, o] of opened.entries()) {
      if (sizes.has(o.checkpoint.origin)) throw new VerifyError("checkpoint", `checkpoint ${i + 1}: a second checkpoint of ${o.checkpoint.origin}: one per origin`);
      sizes.set(o.checkpoint.origin, o.checkpoint.size);
    }
    const timeline = Array.isArray(report.timeline) ? report.timeline : [];
    const subject = report.audience === "subject"; // an auditor's copy carries receipts, not checked here
    timeline.forEach((line, i) => {
      const log = line && line.log;
      if (!log && !subject) return;
      if (subject && line && (line.receipt !== undefined || line.earliest_copy_receipt !== undefined)) {
        throw new VerifyError("position", `timeline line ${i + 1}: a subject report must not carry receipts`);
      }
      if (!log || typeof log.origin !== "string") throw new VerifyError("position", `timeline line ${i + 1}: no log position (log: {origin, index})`);
      const size = sizes.get(log.origin);
      if (size === undefined) throw new VerifyError("position", `timeline line ${i + 1}: no checkpoint of its log ${JSON.stringify(log.origin)} in the report`);
      if (!Number.isSafeInteger(log.index) || log.index < 0 || BigInt(log.index) >= size) {
        throw new VerifyError("position", `timeline line ${i + 1}: index ${log.index} is not under the checkpoint of ${log.origin} (size ${size})`);
      }
    });
    return {
      subject: report.subject, generatedAt: report.generated_at, digest, lines: timeline.length,
      reportKey: `${signed.key.name}+${signed.key.keyId.toString(16).padStart(8, "0")}`,
      checkpoints: opened.map((o) => `${o.checkpoint.origin} (${o.checkpoint.size} entries, ${o.key.name})`),
    };
  }

  function wirePortal(section) {
    const button = section.querySelector("#report-check");
    const status = section.querySelector("#report-status");
    if (!button || !status) return;
    button.hidden = false;
    button.addEventListener("click", async () => {
      status.className = "status pending";
      status.dataset.result = "pending";
      status.textContent = "Fetching and checking your signed report…";
      try {
        const response = await fetch(section.dataset.report, { credentials: "same-origin", headers: { Accept: "application/json" } });
        const text = await response.text();
        if (!response.ok) {
          let message = `the server answered ${response.status}`;
          try { message = JSON.parse(text).error.message; } catch (e) { /* not the JSON error shape */ }
          throw new VerifyError("download", message);
        }
        const r = await verifySignedReport(text, [section.dataset.reportVkey], (section.dataset.logVkeys || "").split("\n"));
        status.className = "status ok";
        status.dataset.result = "verified";
        status.textContent = `Verified in your browser: this report about ${r.subject}, generated ${r.generatedAt}, ` +
          `with ${r.lines} timeline line(s), is exactly what the report key ${r.reportKey} signed, and it points at ` +
          `entries under ${r.checkpoints.length} checkpoint(s) signed by the log: ${r.checkpoints.join("; ") || "none"}.`;
      } catch (err) {
        status.className = "status bad";
        status.dataset.result = err instanceof VerifyError ? err.step : "error";
        status.textContent = err instanceof VerifyError
          ? `NOT verified (${err.step}): ${err.message}`
          : `Not verified: this browser cannot check it (${err && err.name}: ${err && err.message})`;
      }
    });
  }

  window.ledgerReport = { parseStrict, canonical, reportDigest, verifySignedReport };
  document.addEventListener("DOMContentLoaded", () => {
    const section = document.getElementById("signed-report");
    if (section) wirePortal(section);
  });
})();
