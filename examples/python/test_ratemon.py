"""Run by examples/python/python_test.go (make test-examples) against a
real ratemon daemon; the environment names its Redis, NATS and prefixes."""

import json
import os
import time
import unittest
from urllib.parse import urlparse

import ratemon


def env(name: str) -> str:
    v = os.environ.get(name)
    if not v:
        raise RuntimeError(f"{name} is not set: run this through examples/python/python_test.go")
    return v


class RatemonTest(unittest.TestCase):
    def setUp(self):
        r, n = urlparse(env("REDIS_URL")), urlparse(env("NATS_URL"))
        self.redis = ratemon.Redis(r.hostname, r.port)
        self.nats = ratemon.NATS(n.hostname, n.port)
        self.prefix, self.subjects = env("RATEMON_PREFIX"), env("RATEMON_SUBJECT_PREFIX")

    def tearDown(self):
        self.redis.sock.close()
        self.nats.sock.close()

    def test_limit_keys_are_built_as_the_daemon_builds_them(self):
        for case in json.loads(env("RATEMON_ESCAPE_CASES")):
            self.assertEqual(ratemon.escape_value(case["value"]), case["escaped"], repr(case["value"]))
        self.assertEqual(ratemon.limit_key(("client", "acme"), ("route", "POST /login")), "client=acme|route=POST /login")

    def test_a_client_over_its_limit_is_refused_with_one_redis_call(self):
        client = f"py-{os.getpid()}-{time.time_ns()}"
        for _ in range(int(env("RATEMON_LIMIT")) + 1):
            self.nats.publish(f"{self.subjects}.events.stocks", ratemon.event(client, "stocks", route="GET /stocks/{symbol}/history"))
        self.nats.flush()
        key, secs, deadline = ratemon.limit_key(("client", client)), None, time.time() + 10
        while secs is None and time.time() < deadline:
            secs = ratemon.retry_after(self.redis, key, self.prefix)
            time.sleep(0.005)
        self.assertIsNotNone(secs, "the daemon never denied the client")
        self.assertTrue(1 <= secs <= int(env("RATEMON_WINDOW_SECONDS")), secs)
        self.assertIsNone(ratemon.retry_after(self.redis, ratemon.limit_key(("client", client + "-calm")), self.prefix))


if __name__ == "__main__":
    unittest.main()
