// Benchmark peer: list every conversation or feedback item with the official TypeScript SDK.
//
// Usage: node scan_ts.mjs BASE_URL API_KEY RESOURCE
// RESOURCE is `conversations` or `feedback`.
//
// The SDK (`@inkeep/inkeep-analytics`, pinned in package.json) has no pagination helper, so this
// loops over offset pages of 100 with `conversations.list` or `feedback.list`, the way a user of the
// SDK would. Every page goes through the SDK's zod validation of the response.
// On success it prints one JSON line, `{"records": N, "max_rss_kib": K}`, and exits 0.
// On any error (HTTP status, network, response validation) it prints it on stderr and exits 1.
//
// This file is an ES module: Node resolves its imports from the node_modules folders above the
// file's own directory and ignores NODE_PATH, so it must sit next to (or below) the node_modules
// that `npm install` of package.json created.

import { InkeepAnalytics } from "@inkeep/inkeep-analytics";

const PAGE_SIZE = 100;

function fail(message) {
  process.stderr.write(`scan_ts: ${message}\n`);
  process.exit(1);
}

function count(value, name) {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    fail(`the page's ${name} is not a number: ${JSON.stringify(value)}`);
  }
  return Math.trunc(value);
}

// `GET /conversations` answers `{conversations, total, pageSize, count}`: the offset advances by
// the records received, and the scan stops at a short or empty page or once the offset reaches
// `total`, the same rule as the Rust SDK's paginator.
async function scanConversations(sdk, onRecord) {
  let offset = 0;
  for (;;) {
    const page = await sdk.conversations.list({ limit: PAGE_SIZE, offset });
    for (const record of page.conversations) onRecord(record);
    offset += page.conversations.length;
    if (page.conversations.length < PAGE_SIZE || offset >= count(page.total, "total")) return;
  }
}

// `GET /feedback` answers two lists cut by the same limit and offset, with a total for each:
// the offset advances by the page size, and the scan stops when both lists run short or the
// offset reaches the larger total, as the Rust SDK does.
async function scanFeedback(sdk, onRecord) {
  let offset = 0;
  for (;;) {
    const page = await sdk.feedback.list({ limit: PAGE_SIZE, offset });
    for (const record of page.positiveFeedback) onRecord(record);
    for (const record of page.negativeFeedback) onRecord(record);
    offset += PAGE_SIZE;
    const total = Math.max(
      count(page.positiveFeedbackCount, "positiveFeedbackCount"),
      count(page.negativeFeedbackCount, "negativeFeedbackCount"),
    );
    const short = page.positiveFeedback.length < PAGE_SIZE && page.negativeFeedback.length < PAGE_SIZE;
    if (short || offset >= total) return;
  }
}

const SCANS = { conversations: scanConversations, feedback: scanFeedback };

function describe(error) {
  // The SDK's validation errors can render which fields failed; its HTTP errors carry the status
  // and body.
  if (typeof error?.pretty === "function") return `${error.name}: ${error.pretty()}`;
  const status = error?.statusCode ?? error?.httpMeta?.response?.status;
  const message = error?.message ?? String(error);
  const body =
    typeof error?.body === "string" && !message.includes(error.body)
      ? ` ${error.body.slice(0, 500)}`
      : "";
  const prefix = status === undefined ? "" : `HTTP ${status}: `;
  return `${prefix}${error?.name ?? "Error"}: ${message}${body}`;
}

async function main() {
  const [baseUrl, apiKey, resource] = process.argv.slice(2);
  if (process.argv.length !== 5 || !Object.hasOwn(SCANS, resource)) {
    process.stderr.write("usage: node scan_ts.mjs BASE_URL API_KEY conversations|feedback\n");
    process.exit(2);
  }

  const sdk = new InkeepAnalytics({
    serverURL: baseUrl,
    apiIntegrationKey: apiKey,
    // The SDK retries 5XX, 429 and connection errors for up to an hour by default; a benchmark
    // must see errors at once.
    retryConfig: { strategy: "none" },
  });

  let records = 0;
  try {
    await SCANS[resource](sdk, (record) => {
      if (record?.id === undefined) fail(`record ${records} of ${resource} has no id`);
      records += 1;
    });
  } catch (error) {
    // Some of the SDK's messages embed the whole response body; a page is about a megabyte.
    const text = describe(error);
    fail(text.length > 4000 ? `${text.slice(0, 4000)}...` : text);
  }
  process.stdout.write(
    `${JSON.stringify({ records, max_rss_kib: process.resourceUsage().maxRSS })}\n`,
  );
}

await main();
