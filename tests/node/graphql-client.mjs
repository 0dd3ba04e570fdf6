// Drives the npm `graphql-ws` or `graphql-sse` client (distinct connections mode)
// against the gateway for the end-to-end tests.
// Usage: node graphql-client.mjs '<plan JSON>'
// plan: { transport: "ws" | "sse", url, connectionParams? (ws), headers? (sse),
//         operations: [{ query, variables?, take? }] }
// Prints one JSON line per happening: {"op":i,"next":payload}, {"op":i,"complete":true},
// {"op":i,"error":...}; an operation with `take` unsubscribes after that many events.
// Exits when every operation has ended, or after 20 s.
import * as graphqlSse from "graphql-sse";
import * as graphqlWs from "graphql-ws";
import WebSocket from "ws";

const plan = JSON.parse(process.argv[2]);
const print = (line) => process.stdout.write(JSON.stringify(line) + "\n");
setTimeout(() => {
  print({ timeout: true });
  process.exit(2);
}, 20000).unref();

const client =
  plan.transport === "sse"
    ? graphqlSse.createClient({
        url: plan.url,
        singleConnection: false,
        headers: plan.headers,
        retryAttempts: 0,
      })
    : graphqlWs.createClient({
        url: plan.url,
        webSocketImpl: WebSocket,
        connectionParams: plan.connectionParams,
        retryAttempts: 0,
        lazy: true,
      });

// A close event (ws), a refused response (sse), GraphQL errors, or anything else.
const errorOf = (e) =>
  e && typeof e.code === "number"
    ? { code: e.code, reason: e.reason }
    : e && e.response
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
