//! What decoding a realistic page costs each decoder, in instructions and allocations, which
//! unlike times do not depend on what else the machine runs:
//!
//! ```sh
//! cargo build --release -p inkeep-analytics-bench --example decode_cost
//! valgrind --tool=callgrind --toggle-collect='decode_cost::decode_*' \
//!     target/release/examples/decode_cost --only sdk --pages 20
//! valgrind --tool=dhat --dhat-out-file=/dev/null \
//!     target/release/examples/decode_cost --only sdk --pages 20   # minus `--only none`
//! ```
//!
//! The pages are the harness's (the same seed as the criterion bench, 100 conversations a page).
//! With `--only NAME` (`none` renders the pages and decodes nothing), only that decoder runs over
//! `--pages N` pages, so that callgrind's total, or DHAT's blocks less those of `none`, divided by
//! N is the cost of one page.

use std::hint::black_box;
use std::time::Instant;

use inkeep_analytics::listing::RawConversationPage;
use inkeep_analytics::types::ConversationList;
use inkeep_analytics_bench::{data, floor};

#[inline(never)]
fn decode_floor(page: &[u8]) {
    drop(black_box(
        serde_json::from_slice::<floor::ConversationPage>(page).expect("the floor reads the page"),
    ));
}

#[inline(never)]
fn decode_minimal(page: &[u8]) {
    drop(black_box(
        serde_json::from_slice::<floor::minimal::ConversationPage>(page)
            .expect("the minimal structs read the page"),
    ));
}

#[inline(never)]
fn decode_sdk(page: &[u8]) {
    drop(black_box(
        serde_json::from_slice::<ConversationList>(page).expect("the SDK reads the page"),
    ));
}

/// The SDK's types as the client decodes a page: the whole body's UTF-8 checked once with SIMD,
/// then read from a `str`, which spares serde_json a check of each string.
#[inline(never)]
fn decode_sdk_str(page: &[u8]) {
    let text = simdutf8::basic::from_utf8(page).expect("the page is UTF-8");
    drop(black_box(
        serde_json::from_str::<ConversationList>(text).expect("the SDK reads the page"),
    ));
}

#[inline(never)]
fn decode_raw(page: &[u8]) {
    drop(black_box(
        serde_json::from_slice::<RawConversationPage>(page).expect("the SDK splits the page"),
    ));
}

/// The export's split of a page, and its test of each record for line breaks as it was: two
/// `str::contains` scans.
#[inline(never)]
fn decode_split_contains(page: &[u8]) {
    let page =
        serde_json::from_slice::<RawConversationPage>(page).expect("the SDK splits the page");
    for record in &page.conversations {
        let text = record.get();
        black_box(text.contains('\n') || text.contains('\r'));
    }
}

/// The same with one `memchr2` pass, as the export does now.
#[inline(never)]
fn decode_split_memchr(page: &[u8]) {
    let page =
        serde_json::from_slice::<RawConversationPage>(page).expect("the SDK splits the page");
    for record in &page.conversations {
        black_box(memchr::memchr2(b'\n', b'\r', record.get().as_bytes()).is_some());
    }
}

#[inline(never)]
fn decode_value(page: &[u8]) {
    drop(black_box(
        serde_json::from_slice::<serde_json::Value>(page).expect("the page is JSON"),
    ));
}

type Decoder = (&'static str, fn(&[u8]));

const DECODERS: &[Decoder] = &[
    ("minimal", decode_minimal),
    ("floor", decode_floor),
    ("sdk", decode_sdk),
    ("sdk-str", decode_sdk_str),
    ("raw", decode_raw),
    ("split-contains", decode_split_contains),
    ("split-memchr", decode_split_memchr),
    ("value", decode_value),
];

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value_of = |flag: &str| {
        args.iter()
            .position(|arg| arg == flag)
            .and_then(|at| args.get(at + 1))
    };
    let only = value_of("--only");
    let pages: usize = match value_of("--pages") {
        Some(count) => count.parse().map_err(|_| "--pages takes a number")?,
        None => 20,
    };
    let records = data::conversations(42, pages * data::PAGE_SIZE);
    let mut rendered = data::conversation_pages(&records);
    rendered.pop(); // The empty last page.
    let bytes: usize = rendered.iter().map(|page| page.len()).sum();
    for (name, decode) in DECODERS {
        if only.is_some_and(|only| only != name) {
            continue;
        }
        let started = Instant::now();
        for page in &rendered {
            decode(page);
        }
        let elapsed = started.elapsed();
        println!(
            "{name:>8}: {:>6.1} MB/s over {} pages of {:.0} KB (wall time on a shared machine)",
            bytes as f64 / elapsed.as_secs_f64() / 1e6,
            rendered.len(),
            bytes as f64 / rendered.len() as f64 / 1e3,
        );
    }
    Ok(())
}
