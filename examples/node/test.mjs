// Run by examples/node/node_test.go (make test-examples) against a real
// ratemon daemon; the environment names its Redis, NATS and prefixes.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createClient } from "redis";
import { connect } from "nats";
import { escapeValue, limitKey, retryAfter, report } from "./ratemon.mjs";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this through examples/node/node_test.go`);
  return v;
};
const prefix = env("RATEMON_PREFIX");
const subjects = env("RATEMON_SUBJECT_PREFIX");
const redis = await createClient({ url: env("REDIS_URL") }).connect();
const nc = await connect({ servers: env("NATS_URL") });
after(async () => {
  await nc.drain();
  await redis.quit();
});

test("limit keys are built as the daemon builds them", () => {
  for (const { value, escaped } of JSON.parse(env("RATEMON_ESCAPE_CASES"))) {
    assert.equal(escapeValue(value), escaped, JSON.stringify(value));
  }
  assert.equal(limitKey([["client", "acme"], ["route", "POST /login"]]), "client=acme|route=POST /login");
});

test("a client over its limit is refused with one Redis call, and others are not", async () => {
  const client = `node-${process.pid}-${Date.now()}`;
  const limit = Number(env("RATEMON_LIMIT"));
  for (let i = 0; i <= limit; i++) {
    report(nc, "stocks", { client, route: "GET /stocks/{symbol}/history", method: "GET", status: 200 }, subjects);
  }
  await nc.flush();
  const deadline = Date.now() + 10000;
  let secs = null;
  while (secs === null && Date.now() < deadline) {
    secs = await retryAfter(redis, limitKey([["client", client]]), prefix);
    if (secs === null) await new Promise((r) => setTimeout(r, 5));
  }
  assert.notEqual(secs, null, "the daemon never denied the client");
  assert.ok(secs >= 1 && secs <= Number(env("RATEMON_WINDOW_SECONDS")), `Retry-After ${secs}`);
  assert.equal(await retryAfter(redis, limitKey([["client", `${client}-calm`]]), prefix), null);
});
