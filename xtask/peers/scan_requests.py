"""Benchmark peer: list every conversation or feedback item the way the API docs' Python snippet does.

Usage: python3 scan_requests.py BASE_URL API_KEY RESOURCE [--session]
RESOURCE is `conversations` or `feedback`.

The docs' snippet for both operations is:

    import requests
    url = "https://api.analytics.inkeep.com/conversations?limit=20&offset=0"
    response = requests.request("GET", url, headers = {"Authorization": "Bearer <token>"})
    print(response.text)

This program runs that snippet in a loop over offset pages of 100 (the API's maximum), and
nothing more, so that it measures what a user copying the docs would get.
With `--session`, every page goes through one `requests.Session()` instead, which keeps the
connection open between pages: what a Python user who writes a loop over many pages does.
On success it prints one JSON line, `{"records": N, "max_rss_kib": K}`, and exits 0.
On any HTTP, network or decoding error it prints a message on stderr and exits 1.
"""

import json
import os
import resource
import sys

import requests

PAGE_SIZE = 100

# The one session of a `--session` run; `None` sends each page with plain `requests.request`.
SESSION = None


def fail(message):
    print(f"{os.path.basename(sys.argv[0])}: {message}", file=sys.stderr)
    sys.exit(1)


def get_page(base_url, api_key, path, offset):
    """Fetches one page and returns its decoded JSON body.

    Without `--session`, each request goes through plain `requests.request`, exactly as in the
    docs' snippet, which opens a connection for every page; with it, through the shared session.
    Like the snippet, no timeout is set: the harness bounds the whole run instead.
    """
    url = f"{base_url}/{path}?limit={PAGE_SIZE}&offset={offset}"
    send = SESSION.request if SESSION is not None else requests.request
    try:
        response = send("GET", url, headers={"Authorization": f"Bearer {api_key}"})
    except requests.RequestException as error:
        fail(f"GET {url} failed: {error}")
    if not response.ok:
        fail(f"GET {url} returned HTTP {response.status_code}: {response.text[:500]}")
    try:
        return response.json()
    except ValueError as error:
        fail(f"GET {url} returned a body that is not JSON: {error}")


def as_count(value, name):
    """Reads one of the page's counts, which the API sends as JSON numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(f"the page's {name} is not a number: {value!r}")
    return int(value)


def scan_conversations(base_url, api_key, on_record):
    """Pages `GET /conversations`, which answers `{conversations, total, pageSize, count}`.

    The offset advances by the number of records the page held, and the scan stops at a short or
    empty page or once the offset reaches `total`, the same rule as the Rust SDK's paginator.
    """
    offset = 0
    while True:
        page = get_page(base_url, api_key, "conversations", offset)
        try:
            records = page["conversations"]
            total = as_count(page["total"], "total")
        except (KeyError, TypeError) as error:
            fail(f"a page of conversations lacks {error} (offset {offset})")
        for record in records:
            on_record(record)
        offset += len(records)
        if len(records) < PAGE_SIZE or offset >= total:
            return


def scan_feedback(base_url, api_key, on_record):
    """Pages `GET /feedback`, which answers two lists cut by the same limit and offset.

    The body is `{positiveFeedbackCount, negativeFeedbackCount, positiveFeedback, negativeFeedback}`
    (see the API's reference page), so the offset advances by the page size, and the scan stops
    when both lists run short or the offset reaches the larger count, as the Rust SDK does.
    """
    offset = 0
    while True:
        page = get_page(base_url, api_key, "feedback", offset)
        try:
            positive = page["positiveFeedback"]
            negative = page["negativeFeedback"]
            total = max(
                as_count(page["positiveFeedbackCount"], "positiveFeedbackCount"),
                as_count(page["negativeFeedbackCount"], "negativeFeedbackCount"),
            )
        except (KeyError, TypeError) as error:
            fail(f"a page of feedback lacks {error} (offset {offset})")
        for record in positive:
            on_record(record)
        for record in negative:
            on_record(record)
        offset += PAGE_SIZE
        if (len(positive) < PAGE_SIZE and len(negative) < PAGE_SIZE) or offset >= total:
            return


SCANS = {"conversations": scan_conversations, "feedback": scan_feedback}


def take_session_flag(args):
    """Removes `--session` from `args` and, when it was there, opens the session every page uses."""
    global SESSION
    if "--session" in args:
        args.remove("--session")
        SESSION = requests.Session()
    return args


def main():
    args = take_session_flag(sys.argv[1:])
    if len(args) != 3 or args[2] not in SCANS:
        print("usage: python3 scan_requests.py BASE_URL API_KEY conversations|feedback [--session]", file=sys.stderr)
        sys.exit(2)
    base_url, api_key, resource_name = args[0].rstrip("/"), args[1], args[2]

    records = 0

    def count(record):
        nonlocal records
        try:
            record["id"]
        except (KeyError, TypeError):
            fail(f"record {records} of {resource_name} has no id")
        records += 1

    SCANS[resource_name](base_url, api_key, count)
    summary = {"records": records, "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
