// Receipts and checkpoints verified in the browser, with WebCrypto only (Ed25519 and SHA-256).
//
// The same checks as ledger/tlog/receipt.py's verify_receipt, minus decoding the Avro value:
//   1. format     the receipt (c2sp.org/tlog-proof@v1) and its checkpoint note parse strictly;
//   2. signature  the checkpoint note carries a valid Ed25519 signature by a log key whose name
//                 covers the origin and whose key ID matches (c2sp.org/signed-note);
//   3. inclusion  SHA-256(00 || extra) is at `index` under the checkpoint's root (RFC 6962 2.1.3);
//   3b. cosignature  every cosignature by a given witness key (type 04, c2sp.org/tlog-cosignature v1)
//                 verifies, and at least `minWitnesses` distinct witnesses cosigned;
//   4. record     the extra data is a record of the checkpoint's topic-partition.
// Nothing here touches the network or writes HTML: results go into the page with textContent.
// Exposed as window.ledgerVerify for the pages and for the tests that run the RFC 6962 vectors.
"use strict";
(function () {
  const HEADER = "c2sp.org/tlog-proof@v1";
  const EM_DASH = "\u2014";
  const ED25519 = 0x01;
  const COSIGNATURE_V1 = 0x04;
  const MAX_PROOF_LINES = 63;
  const enc = new TextEncoder();

  class VerifyError extends Error {
    constructor(step, message) {
      super(message);
      this.step = step; // format | signature | inclusion | record
    }
  }

  // -- bytes ---------------------------------------------------------------------------------------
  function b64decode(text, what, line) {
    const where = line ? ` (line ${line})` : "";
    if (typeof text !== "string" || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
      throw new VerifyError("format", `${what}${where}: not standard base64`);
    }
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    if (b64encode(out) !== text) throw new VerifyError("format", `${what}${where}: not canonical base64`);
    return out;
  }

  function b64encode(bytes) {
    let bin = "";
    for (const b of bytes) bin += String.fromCharCode(b);
    return btoa(bin);
  }

  function hex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }

  function equal(a, b) {
    if (a.length !== b.length) return false;
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
    return diff === 0;
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  // -- RFC 6962 -----------------------------------------------------------------------------------
  const leafHash = (data) => sha256(concat(new Uint8Array([0]), data));
  const nodeHash = (left, right) => sha256(concat(new Uint8Array([1]), left, right));

  function bitLength(n) { // n: BigInt >= 0
    let bits = 0;
    while (n > 0n) { n >>= 1n; bits++; }
    return bits;
  }

  function popcount(n) {
    let c = 0;
    while (n > 0n) { c += Number(n & 1n); n >>= 1n; }
    return c;
  }

  // The root a proof yields for leaf hash `leaf` at `index` of a tree of `size` (BigInts);
  // throws VerifyError("inclusion") when a precondition fails (transparency-dev/merkle proof/verify.go).
  async function rootFromInclusionProof(index, size, leaf, proof) {
    index = BigInt(index); size = BigInt(size);
    if (index < 0n || index >= size) throw new VerifyError("inclusion", `leaf index ${index} is beyond the tree size ${size}`);
    if (leaf.length !== 32) throw new VerifyError("inclusion", `leaf hash is ${leaf.length} bytes, not 32`);
    const inner = bitLength(index ^ (size - 1n));
    const border = popcount(index >> BigInt(inner));
    if (proof.length !== inner + border) {
      throw new VerifyError("inclusion", `inclusion proof has ${proof.length} hashes; index ${index} in a tree of size ${size} needs ${inner + border}`);
    }
    proof.forEach((h, i) => { if (h.length !== 32) throw new VerifyError("inclusion", `inclusion proof hash ${i} is ${h.length} bytes, not 32`); });
    let seed = leaf;
    for (let i = 0; i < inner; i++) {
      seed = ((index >> BigInt(i)) & 1n) === 0n ? await nodeHash(seed, proof[i]) : await nodeHash(proof[i], seed);
    }
    for (let i = inner; i < proof.length; i++) seed = await nodeHash(proof[i], seed);
    return seed;
  }

  async function verifyInclusion(index, size, leaf, proof, root) {
    const computed = await rootFromInclusionProof(index, size, leaf, proof);
    if (!equal(computed, root)) {
      throw new VerifyError("inclusion", `computed root ${hex(computed)} does not match the checkpoint's root ${hex(root)}`);
    }
    return computed;
  }

  // -- keys and notes (c2sp.org/signed-note) ------------------------------------------------------
  function checkKeyName(name, what) {
    if (!name || /[\s+\u0000-\u001f]/u.test(name)) throw new VerifyError("format", `${what}: ${JSON.stringify(name)} is not a key name`);
  }

  async function keyId(name, type, publicKey) {
    const digest = await sha256(concat(enc.encode(name), new Uint8Array([0x0a, type]), publicKey));
    return ((digest[0] << 24) | (digest[1] << 16) | (digest[2] << 8) | digest[3]) >>> 0;
  }

  // `<name>+<hex key ID>+base64(type || key)`; the key ID must be the one the key hashes to.
  async function parseVkey(text) {
    text = text.trim();
    if (text.startsWith("PRIVATE+KEY+")) throw new VerifyError("format", "this is a signer key: paste the .vkey, never the .key");
    const first = text.indexOf("+"), second = text.indexOf("+", first + 1);
    if (first < 0 || second < 0) throw new VerifyError("format", "the verifier key is not <name>+<hex key ID>+<base64 key>");
    const name = text.slice(0, first), hexId = text.slice(first + 1, second);
    checkKeyName(name, "verifier key name");
    if (!/^[0-9a-f]{8}$/.test(hexId)) throw new VerifyError("format", `verifier key ID ${JSON.stringify(hexId)} is not 8 lowercase hex digits`);
    const raw = b64decode(text.slice(second + 1), "verifier key material");
    if (raw.length !== 33 || (raw[0] !== ED25519 && raw[0] !== COSIGNATURE_V1)) {
      throw new VerifyError("format", "the verifier key must be type 01 (or 04) followed by a 32-byte Ed25519 public key");
    }
    const type = raw[0], publicKey = raw.slice(1);
    const computed = await keyId(name, type, publicKey);
    if (computed !== parseInt(hexId, 16)) {
      throw new VerifyError("format", `verifier key ID ${hexId} does not match the key (computed ${computed.toString(16).padStart(8, "0")})`);
    }
    return { name, keyId: computed, type, publicKey, text };
  }

  // A note: text ending in a newline, a blank line, then "— <name> base64(key ID || signature)" lines.
  function parseNote(data, firstLine) {
    const split = data.lastIndexOf("\n\n");
    if (split < 0) throw new VerifyError("format", "the checkpoint has no blank line before its signatures");
    const text = data.slice(0, split + 1), block = data.slice(split + 2);
    if (!block || !block.endsWith("\n")) throw new VerifyError("format", "the checkpoint's signature lines must end with a newline");
    let line = firstLine + text.split("\n").length;
    const signatures = [];
    for (const sigLine of block.slice(0, -1).split("\n")) {
      if (!sigLine.startsWith(EM_DASH + " ")) throw new VerifyError("format", `line ${line}: a signature line starts with an em dash and a space`);
      const parts = sigLine.slice(2).split(" ");
      if (parts.length !== 2) throw new VerifyError("format", `line ${line}: a signature line is '— <key name> <base64>'`);
      checkKeyName(parts[0], `line ${line}: signature key name`);
      const raw = b64decode(parts[1], "signature", line);
      if (raw.length < 5) throw new VerifyError("format", `line ${line}: the signature is too short`);
      const id = ((raw[0] << 24) | (raw[1] << 16) | (raw[2] << 8) | raw[3]) >>> 0;
      signatures.push({ name: parts[0], keyId: id, signature: raw.slice(4), line });
      line++;
    }
    return { text, signatures };
  }

  function parseDecimal(text, what, line) {
    if (!/^(0|[1-9][0-9]{0,19})$/.test(text) || BigInt(text) >= 2n ** 64n) {
      throw new VerifyError("format", `line ${line}: ${what} ${JSON.stringify(text.slice(0, 40))} is not a decimal without leading zeroes`);
    }
    return BigInt(text);
  }

  function parseCheckpoint(noteText, firstLine) {
    const lines = noteText.slice(0, -1).split("\n");
    if (lines.length < 3 || lines.some((l) => !l)) throw new VerifyError("format", `line ${firstLine}: a checkpoint needs origin, size and root lines`);
    const root = b64decode(lines[2], "checkpoint root", firstLine + 2);
    if (root.length !== 32) throw new VerifyError("format", `line ${firstLine + 2}: the root is ${root.length} bytes, not 32`);
    return { origin: lines[0], size: parseDecimal(lines[1], "tree size", firstLine + 1), root };
  }

  const covers = (keyName, origin) => origin === keyName || origin.startsWith(keyName + "/");

  const idText = (id) => id.toString(16).padStart(8, "0");

  // A note signed by one of `keys` (type 01): a signature line with the key's name and key ID whose
  // Ed25519 signature over the note text verifies. Lines by other keys are ignored, as signed-note says;
  // a line by a given key that does not verify is an error. Resolves to {note, key, others}.
  async function openNote(noteData, keys, firstLine = 1) {
    const note = parseNote(noteData, firstLine);
    const message = enc.encode(note.text);
    let verifiedBy = null;
    for (const sig of note.signatures) {
      const key = keys.find((k) => k.type === ED25519 && k.name === sig.name && k.keyId === sig.keyId);
      if (!key) continue;
      if (sig.signature.length !== 64) throw new VerifyError("signature", `line ${sig.line}: the signature by ${key.name} is ${sig.signature.length} bytes, not 64`);
      const pub = await crypto.subtle.importKey("raw", key.publicKey, { name: "Ed25519" }, false, ["verify"]);
      if (!(await crypto.subtle.verify({ name: "Ed25519" }, pub, sig.signature, message))) {
        throw new VerifyError("signature", `line ${sig.line}: the Ed25519 signature by ${key.name} (key ID ${idText(key.keyId)}) does not verify`);
      }
      verifiedBy = key;
    }
    if (!verifiedBy) {
      const signed = note.signatures.map((s) => `${s.name}+${idText(s.keyId)}`).join(", ");
      const trusted = keys.map((k) => `${k.name}+${idText(k.keyId)}`).join(", ");
      throw new VerifyError("signature", `the note is not signed by the given log key (signed by ${signed}; given: ${trusted})`);
    }
    const others = note.signatures.filter((s) => !(s.name === verifiedBy.name && s.keyId === verifiedBy.keyId)).map((s) => s.name);
    return { note, key: verifiedBy, others };
  }

  // The log signature of a checkpoint note, by a given log key whose name covers the origin.
  // Resolves to {checkpoint, key, otherSignatures}.
  async function openCheckpoint(noteData, vkeys, firstLine = 1) {
    const note = parseNote(noteData, firstLine);
    const checkpoint = parseCheckpoint(note.text, firstLine);
    const logKeys = vkeys.filter((k) => k.type === ED25519 && covers(k.name, checkpoint.origin));
    if (!logKeys.length) {
      throw new VerifyError("signature", `no given log key covers origin ${checkpoint.origin} (keys: ${vkeys.map((k) => k.name).join(", ") || "none"})`);
    }
    const opened = await openNote(noteData, logKeys, firstLine);
    return { checkpoint, key: opened.key, otherSignatures: opened.others, note };
  }

  // The witnesses among `witnessKeys` (type 04) whose timestamped cosignature of the note verifies:
  // u64 timestamp || Ed25519("cosignature/v1\ntime <timestamp>\n" || note text). A cosignature line by
  // a given witness key that does not verify is an error; lines by unknown keys are ignored.
  async function verifiedCosigners(note, witnessKeys) {
    const names = new Set();
    for (const sig of note.signatures) {
      const key = witnessKeys.find((k) => k.type === COSIGNATURE_V1 && k.name === sig.name && k.keyId === sig.keyId);
      if (!key) continue;
      if (sig.signature.length !== 72) throw new VerifyError("cosignature", `line ${sig.line}: the cosignature by ${key.name} is ${sig.signature.length} bytes, not 72`);
      const timestamp = new DataView(sig.signature.buffer, sig.signature.byteOffset, 8).getBigUint64(0);
      if (timestamp >= 2n ** 63n) throw new VerifyError("cosignature", `line ${sig.line}: the cosignature timestamp is above 2^63-1`);
      const message = concat(enc.encode(`cosignature/v1\ntime ${timestamp}\n`), enc.encode(note.text));
      const pub = await crypto.subtle.importKey("raw", key.publicKey, { name: "Ed25519" }, false, ["verify"]);
      if (!(await crypto.subtle.verify({ name: "Ed25519" }, pub, sig.signature.slice(8), message))) {
        throw new VerifyError("cosignature", `line ${sig.line}: the cosignature by witness ${key.name} (key ID ${idText(key.keyId)}) does not verify`);
      }
      names.add(`${key.name}+${idText(key.keyId)}`);
    }
    return [...names].sort();
  }

  // -- receipts (c2sp.org/tlog-proof@v1) ------------------------------------------------------------
  function parseReceipt(text) {
    text = text.replace(/\r\n/g, "\n");
    const end = text.indexOf("\n\n");
    if (end < 0) throw new VerifyError("format", "no empty line between the proof and the checkpoint");
    const lines = text.slice(0, end).split("\n");
    if (lines[0] !== HEADER) throw new VerifyError("format", `line 1: the first line must be ${HEADER}`);
    let n = 1, extra = null;
    if (lines.length > 1 && lines[1].startsWith("extra")) {
      if (!lines[1].startsWith("extra ")) throw new VerifyError("format", "line 2: the extra line must be 'extra <base64>'");
      extra = b64decode(lines[1].slice(6), "extra", 2);
      n = 2;
    }
    if (lines.length <= n || !lines[n].startsWith("index ")) throw new VerifyError("format", `line ${n + 1}: expected 'index <decimal>'`);
    const index = parseDecimal(lines[n].slice(6), "index", n + 1);
    const proofLines = lines.slice(n + 1);
    if (proofLines.length > MAX_PROOF_LINES) throw new VerifyError("format", `${proofLines.length} proof lines is more than ${MAX_PROOF_LINES}`);
    const proof = proofLines.map((l, i) => {
      const h = b64decode(l, "proof hash", n + 2 + i);
      if (h.length !== 32) throw new VerifyError("format", `line ${n + 2 + i}: a proof hash is ${h.length} bytes, not 32`);
      return h;
    });
    return { extra, index, proof, checkpoint: text.slice(end + 2), checkpointLine: lines.length + 2 };
  }

  // The Kafka record the leaf data encodes (ledger/tlog/chain.py): topic, partition, offset, timestamp,
  // key, headers, value; bytes(x) = u32 length || x, 0xFFFFFFFF for null.
  function decodeLeafData(data) {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    let pos = 0;
    const need = (n, what) => { if (pos + n > data.length) throw new VerifyError("record", `the leaf data ends inside ${what} (byte ${pos})`); };
    const bytes = (what, nullable = true) => {
      need(4, `the length of ${what}`);
      const size = view.getUint32(pos); pos += 4;
      if (size === 0xffffffff) {
        if (!nullable) throw new VerifyError("record", `${what} is null`);
        return null;
      }
      need(size, what);
      const out = data.slice(pos, pos + size); pos += size;
      return out;
    };
    const text = (what) => {
      try { return new TextDecoder("utf-8", { fatal: true }).decode(bytes(what, false)); } catch (e) {
        if (e instanceof VerifyError) throw e;
        throw new VerifyError("record", `${what} is not UTF-8`);
      }
    };
    const topic = text("the topic");
    need(20, "partition, offset and timestamp");
    const partition = view.getInt32(pos), offset = view.getBigInt64(pos + 4), timestamp = view.getBigInt64(pos + 12);
    pos += 20;
    const key = bytes("the key");
    need(4, "the header count");
    const count = view.getUint32(pos); pos += 4;
    if (count > data.length) throw new VerifyError("record", `header count ${count} exceeds the data`);
    const headers = [];
    for (let i = 0; i < count; i++) headers.push([text(`header ${i} name`), bytes(`header ${i} value`)]);
    const value = bytes("the value");
    if (pos !== data.length) throw new VerifyError("record", `${data.length - pos} trailing byte(s) after the value`);
    return { topic, partition, offset, timestamp, key, headers, value };
  }

  // Every check of a receipt against the given log verifier key strings; resolves to what it proved,
  // rejects with a VerifyError whose `step` names the check that failed.
  async function verifyReceipt(text, vkeyTexts, witnessTexts = [], minWitnesses = 0) {
    const vkeys = [], witnesses = [];
    for (const v of vkeyTexts) if (v.trim()) vkeys.push(await parseVkey(v));
    for (const v of witnessTexts) if (v.trim()) witnesses.push(await parseVkey(v));
    if (!vkeys.length) throw new VerifyError("format", "no log verifier key given");
    if (vkeys.some((k) => k.type !== ED25519)) throw new VerifyError("format", "a log key has signature type 01; a type 04 key is a witness's");
    if (witnesses.some((k) => k.type !== COSIGNATURE_V1)) throw new VerifyError("format", "a witness key has signature type 04 (timestamped cosignature)");
    const receipt = parseReceipt(text);
    const opened = await openCheckpoint(receipt.checkpoint, vkeys, receipt.checkpointLine);
    const cp = opened.checkpoint;
    const cosigners = await verifiedCosigners(opened.note, witnesses);
    if (cosigners.length < minWitnesses) {
      throw new VerifyError("cosignature", `${cosigners.length} valid witness cosignature(s) (${cosigners.join(", ") || "none"}), ${minWitnesses} required`);
    }
    if (receipt.extra === null) throw new VerifyError("record", "the receipt has no extra line: the entry's leaf data is missing");
    const leaf = await leafHash(receipt.extra);
    await verifyInclusion(receipt.index, cp.size, leaf, receipt.proof, cp.root);
    const record = decodeLeafData(receipt.extra);
    if (!cp.origin.endsWith(`/${record.topic}/${record.partition}`)) {
      throw new VerifyError("record", `the entry is from ${record.topic}[${record.partition}] but the checkpoint is for ${cp.origin}`);
    }
    const header = (name) => {
      const h = record.headers.find(([n]) => n === name);
      return h && h[1] ? new TextDecoder().decode(h[1]) : null;
    };
    return {
      origin: cp.origin, index: receipt.index.toString(), treeSize: cp.size.toString(), root: b64encode(cp.root),
      leafHash: hex(leaf), key: `${opened.key.name}+${opened.key.keyId.toString(16).padStart(8, "0")}`,
      cosigners, otherSignatures: opened.otherSignatures.filter((n) => !cosigners.some((c) => c.startsWith(n + "+"))), topic: record.topic, partition: record.partition,
      offset: record.offset.toString(), recordedAt: new Date(Number(record.timestamp)).toISOString(),
      eventType: header("event_type"), recordKey: record.key ? new TextDecoder().decode(record.key) : null,
      valueBytes: record.value ? record.value.length : 0,
    };
  }

  // -- the pages ------------------------------------------------------------------------------------
  function show(list, rows) {
    list.replaceChildren();
    for (const [term, value] of rows) {
      const dt = document.createElement("dt"); dt.textContent = term;
      const dd = document.createElement("dd"); dd.textContent = value;
      list.append(dt, dd);
    }
  }

  function wireReceiptForm(form) {
    const status = document.getElementById("verify-status");
    const facts = document.getElementById("verify-facts");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      status.className = "status pending";
      status.textContent = "Checking…";
      facts.replaceChildren();
      try {
        const keys = document.getElementById("vkey").value.split("\n");
        let text = document.getElementById("receipt").value;
        if (!text.endsWith("\n")) text += "\n"; // a paste often loses the final newline (not signed)
        const witnesses = document.getElementById("witness-vkeys").value.split("\n");
        const minimum = parseInt(document.getElementById("min-witnesses").value || "0", 10) || 0;
        const r = await verifyReceipt(text, keys, witnesses, minimum);
        status.className = "status ok";
        status.dataset.result = "verified";
        status.textContent = `Verified: entry ${r.index} of ${r.origin} is in the log's tree of ${r.treeSize} entries, signed by ${r.key}.`;
        show(facts, [["Log (origin)", r.origin], ["Position in the log", `entry ${r.index} of ${r.treeSize}`],
          ["Tree root (signed)", r.root], ["Signed by", r.key],
          ["Witness cosignatures verified", r.cosigners.join(", ") || "none"],
          ["Other signatures (unknown keys, not checked)", r.otherSignatures.join(", ") || "none"],
          ["Kafka record", `${r.topic}[${r.partition}] offset ${r.offset}`], ["Recorded at", r.recordedAt],
          ["Event type (record header)", r.eventType || "none"], ["Record key", r.recordKey || "none"],
          ["Leaf hash, SHA-256(00 ‖ extra)", r.leafHash], ["Event body", `${r.valueBytes} bytes (Avro), not decoded here`]]);
      } catch (err) {
        status.className = "status bad";
        status.dataset.result = err instanceof VerifyError ? err.step : "error";
        status.textContent = err instanceof VerifyError
          ? `Not verified (${err.step}): ${err.message}`
          : `Not verified: this browser cannot check it (${err && err.name}: ${err && err.message})`;
      }
    });
  }

  async function checkCheckpoints(table) {
    const keys = [];
    for (const v of (table.dataset.vkeys || "").split("\n")) {
      if (v.trim()) { try { keys.push(await parseVkey(v)); } catch (e) { /* shown per row below */ } }
    }
    for (const row of table.querySelectorAll("tr[data-note]")) {
      const cell = row.querySelector(".sig-status");
      try {
        if (!keys.length) throw new VerifyError("signature", "no log verifier key to check against");
        const opened = await openCheckpoint(row.dataset.note, keys);
        if (opened.checkpoint.origin !== row.dataset.origin) throw new VerifyError("format", "the note names another origin");
        cell.textContent = `signature verified in your browser (${opened.key.name})`;
        cell.dataset.result = "verified";
      } catch (err) {
        cell.textContent = `NOT verified: ${err.message}`;
        cell.dataset.result = err instanceof VerifyError ? err.step : "error";
      }
    }
  }

  window.ledgerVerify = {
    VerifyError, b64decode, b64encode, hex, sha256, leafHash, nodeHash, rootFromInclusionProof, verifyInclusion,
    keyId, parseVkey, parseNote, openNote, parseCheckpoint, openCheckpoint, verifiedCosigners, parseReceipt, decodeLeafData, verifyReceipt,
  };
  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("receipt-form");
    if (form) wireReceiptForm(form);
    const table = document.getElementById("checkpoints");
    if (table) checkCheckpoints(table);
  });
})();
