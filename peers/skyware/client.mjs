// Runs @skyware/jetstream against a server and prints what it receives, one JSON line per
// event, then {"done":true,"cursor":N} once the stream has been quiet for IDLE_MS.
//
// node client.mjs ENDPOINT IDLE_MS [CURSOR] [COLLECTION,...]
import { Jetstream } from "@skyware/jetstream";
import WebSocket from "ws";

const [endpoint, idleArg, cursorArg, collectionsArg] = process.argv.slice(2);
const idleMs = Number(idleArg);
const options = { endpoint, ws: WebSocket };
if (cursorArg && cursorArg !== "-") options.cursor = Number(cursorArg);
if (collectionsArg) options.wantedCollections = collectionsArg.split(",");

const jetstream = new Jetstream(options);
let timer;
const quiet = () => {
  clearTimeout(timer);
  timer = setTimeout(() => {
    process.stdout.write(JSON.stringify({ done: true, cursor: jetstream.cursor ?? null }) + "\n");
    jetstream.close();
    process.exit(0);
  }, idleMs);
};
const print = (event) => {
  process.stdout.write(
    JSON.stringify({
      kind: event.kind,
      did: event.did,
      time_us: event.time_us,
      collection: event.commit?.collection ?? null,
      rkey: event.commit?.rkey ?? null,
    }) + "\n",
  );
  quiet();
};
jetstream.on("commit", print);
jetstream.on("identity", print);
jetstream.on("account", print);
jetstream.on("error", (e) => {
  process.stderr.write(`skyware client error: ${e}\n`);
});
jetstream.on("open", quiet);
jetstream.start();
