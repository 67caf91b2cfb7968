"""Benchmark peer: export every conversation as JSON Lines the way the API docs' Python snippet would.

Usage: python3 export_requests.py BASE_URL API_KEY OUT_FILE [--session]

It pages `GET /conversations` exactly as scan_requests.py does (plain `requests.request` per page,
or one `requests.Session()` with `--session`; limit 100, the same stop rule), and writes each record as `json.dumps(record)` plus a newline.
`json.dumps` re-encodes each record: key order is kept, but spacing and escaping are Python's
(non-ASCII text comes out as `\\uXXXX`), so the file is not byte-identical to the server's JSON.
On success it prints one JSON line, `{"records": N, "max_rss_kib": K}`, and exits 0.
On any HTTP, network, decoding or file error it prints a message on stderr and exits 1.
"""

import json
import resource
import sys

# Python puts this script's directory first on sys.path, so the sibling module is found
# wherever the harness runs it from, as long as both files stay side by side.
# Importing it would otherwise leave a __pycache__ folder in the source tree.
sys.dont_write_bytecode = True
from scan_requests import fail, scan_conversations, take_session_flag  # noqa: E402


def main():
    args = take_session_flag(sys.argv[1:])
    if len(args) != 3:
        print("usage: python3 export_requests.py BASE_URL API_KEY OUT_FILE [--session]", file=sys.stderr)
        sys.exit(2)
    base_url, api_key, out_path = args[0].rstrip("/"), args[1], args[2]

    records = 0
    try:
        with open(out_path, "w", encoding="utf-8") as out:

            def write(record):
                nonlocal records
                out.write(json.dumps(record) + "\n")
                records += 1

            scan_conversations(base_url, api_key, write)
    except OSError as error:
        fail(f"cannot write {out_path}: {error}")

    summary = {"records": records, "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
