// Drives the npm `graphql-sse` client (distinct connections mode) against the gateway for the end-to-end tests.
// Usage: node graphql-sse-client.mjs '<plan JSON>'
// plan: { url, headers?, operations: [{ query, variables?, take? }] }
// Prints one JSON line per happening: {"op":i,"next":payload}, {"op":i,"complete":true},
// {"op":i,"error":...}; an operation with `take` unsubscribes after that many events.
// Exits when every operation has ended, or after 20 s.
import { createClient } from "graphql-sse";

const plan = JSON.parse(process.argv[2]);
const print = (line) => process.stdout.write(JSON.stringify(line) + "\n");
setTimeout(() => {
  print({ timeout: true });
  process.exit(2);
}, 20000).unref();

const client = createClient({
  url: plan.url,
  singleConnection: false,
  headers: plan.headers,
  retryAttempts: 0,
});

const errorOf = (e) =>
  e && e.response
    ? { status: e.response.status }
    : Array.isArray(e)
      ? e
      : { message: String(e && e.message ? e.message : e) };

const ended = plan.operations.map(
  (op, i) =>
    new Promise((resolve) => {
      let seen = 0;
      const stop = client.subscribe(
        { query: op.query, variables: op.variables },
        {
          next: (payload) => {
            print({ op: i, next: payload });
            seen += 1;
            if (op.take && seen >= op.take) {
              stop();
              print({ op: i, unsubscribed: true });
              resolve();
            }
          },
          error: (e) => {
            print({ op: i, error: errorOf(e) });
            resolve();
          },
          complete: () => {
            print({ op: i, complete: true });
            resolve();
          },
        },
      );
    }),
);

await Promise.all(ended);
await client.dispose();
process.exit(0);
