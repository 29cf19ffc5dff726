// Takes a PNG of the live heap map page (clusterheap web) as headless Chromium renders it, the way
// docs/heapmap.png was taken during a stress run (README "Observability"):
//
//   node --experimental-websocket scripts/heapmap-screenshot.mjs URL OUT.png [SECONDS] [WIDTHxHEIGHT]
//
// Starts Chromium ($CLUSTERHEAP_CHROMIUM or /usr/bin/chromium) with a fresh profile and remote
// debugging, opens URL, lets the page run for SECONDS (default 3: it updates a few times a second),
// then captures the whole page over the DevTools protocol. Node 20+ (its WebSocket), no packages.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [url, out, seconds = "3", size = "1400x1000"] = process.argv.slice(2);
if (!url || !out) {
  console.error("usage: node --experimental-websocket scripts/heapmap-screenshot.mjs URL OUT.png [SECONDS] [WIDTHxHEIGHT]");
  process.exit(2);
}
const profile = mkdtempSync(join(tmpdir(), "heapmap-shot-"));
const browser = spawn(process.env.CLUSTERHEAP_CHROMIUM || "/usr/bin/chromium", [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", `--user-data-dir=${profile}`, "--remote-debugging-port=0",
  `--window-size=${size.replace("x", ",")}`, "about:blank"], { stdio: ["ignore", "ignore", "pipe"] });

const endpoint = await new Promise((resolve, reject) => {
  let text = "";
  browser.stderr.on("data", chunk => {
    text += chunk;
    const m = /DevTools listening on (ws:\S+)/.exec(text);
    if (m) resolve(m[1]);
  });
  browser.on("exit", code => reject(new Error(`chromium exited (${code}) before listening:\n${text}`)));
});

const socket = new WebSocket(endpoint);
await new Promise(resolve => socket.addEventListener("open", resolve, { once: true }));
let next = 0;
const pending = new Map();
socket.addEventListener("message", ev => {
  const msg = JSON.parse(ev.data);
  if (msg.id && pending.has(msg.id)) {
    const { resolve, reject } = pending.get(msg.id);
    pending.delete(msg.id);
    msg.error ? reject(new Error(JSON.stringify(msg.error))) : resolve(msg.result);
  }
});
const send = (method, params = {}, sessionId) => new Promise((resolve, reject) => {
  const id = ++next;
  pending.set(id, { resolve, reject });
  socket.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
});

try {
  const { targetId } = await send("Target.createTarget", { url });
  const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
  await new Promise(resolve => setTimeout(resolve, Number(seconds) * 1000));
  const [w, h] = size.split("x").map(Number);
  await send("Emulation.setDeviceMetricsOverride", { width: w, height: h, deviceScaleFactor: 1, mobile: false }, sessionId);
  const { data } = await send("Page.captureScreenshot", { format: "png", captureBeyondViewport: true }, sessionId);
  writeFileSync(out, Buffer.from(data, "base64"));
  console.log(`wrote ${out}`);
} finally {
  socket.close();
  const exited = new Promise(resolve => browser.once("exit", resolve));
  browser.kill();
  await exited;
  rmSync(profile, { recursive: true, force: true, maxRetries: 5 });
}
