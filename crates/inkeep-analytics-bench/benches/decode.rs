//! Decoding one realistic page with the SDK's types, side by side with `serde_json::Value` and
//! the hand-written floor structs: the SDK must take at most 1.3 times the floor's time (issue 25).
//!
//! Run with `cargo bench -p inkeep-analytics-bench --bench decode`.

// criterion_group! defines an undocumented public function.
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use inkeep_analytics::listing::{RawConversationPage, RawFeedbackPage};
use inkeep_analytics::types::{ConversationList, FeedbackList};
use inkeep_analytics_bench::{data, floor};
use std::hint::black_box;

fn conversation_page(c: &mut Criterion) {
    let records = data::conversations(42, data::PAGE_SIZE);
    let page = data::conversation_pages(&records).swap_remove(0);
    let mut group = c.benchmark_group("conversation page");
    group.throughput(Throughput::Bytes(page.len() as u64));
    group.bench_function("floor structs", |b| {
        b.iter(|| {
            serde_json::from_slice::<floor::ConversationPage>(black_box(&page)).expect("decodes")
        })
    });
    group.bench_function("sdk types", |b| {
        b.iter(|| serde_json::from_slice::<ConversationList>(black_box(&page)).expect("decodes"))
    });
    // How the client decodes a page: the whole body's UTF-8 checked once with SIMD, then read
    // from a `str`, which spares serde_json a check of each string. The floor read the same way
    // shows what that step is worth on its own.
    group.bench_function("sdk types, as the client decodes", |b| {
        b.iter(|| {
            let text = simdutf8::basic::from_utf8(black_box(&page)).expect("the page is UTF-8");
            serde_json::from_str::<ConversationList>(text).expect("decodes")
        })
    });
    group.bench_function("floor structs, from a checked str", |b| {
        b.iter(|| {
            let text = simdutf8::basic::from_utf8(black_box(&page)).expect("the page is UTF-8");
            serde_json::from_str::<floor::ConversationPage>(text).expect("decodes")
        })
    });
    // Issue 25's reference: only the id, kind, times, tags, properties and messages with their
    // links, every other key skipped; how fast serde_json gets through the page at all.
    group.bench_function("minimal structs", |b| {
        b.iter(|| {
            serde_json::from_slice::<floor::minimal::ConversationPage>(black_box(&page))
                .expect("decodes")
        })
    });
    group.bench_function("sdk raw page", |b| {
        b.iter(|| serde_json::from_slice::<RawConversationPage>(black_box(&page)).expect("decodes"))
    });
    // The same page with every object's keys sorted, so that `type` comes after `messages`: the
    // case where a union must hold most of an object before it knows the kind.
    let sorted = serde_json::to_vec(
        &serde_json::from_slice::<serde_json::Value>(&page).expect("the page is JSON"),
    )
    .expect("renders");
    group.bench_function("sdk types, discriminator last", |b| {
        b.iter(|| serde_json::from_slice::<ConversationList>(black_box(&sorted)).expect("decodes"))
    });
    group.bench_function("serde_json::Value", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&page)).expect("decodes"))
    });
    group.finish();
}

fn feedback_page(c: &mut Criterion) {
    let (positive, negative) = data::feedback_items(43, 2 * data::PAGE_SIZE);
    let page = data::feedback_pages(&positive, &negative).swap_remove(0);
    let mut group = c.benchmark_group("feedback page");
    group.throughput(Throughput::Bytes(page.len() as u64));
    group.bench_function("floor structs", |b| {
        b.iter(|| serde_json::from_slice::<floor::FeedbackPage>(black_box(&page)).expect("decodes"))
    });
    group.bench_function("sdk types", |b| {
        b.iter(|| serde_json::from_slice::<FeedbackList>(black_box(&page)).expect("decodes"))
    });
    group.bench_function("sdk raw page", |b| {
        b.iter(|| serde_json::from_slice::<RawFeedbackPage>(black_box(&page)).expect("decodes"))
    });
    group.bench_function("serde_json::Value", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&page)).expect("decodes"))
    });
    group.finish();
}

criterion_group!(benches, conversation_page, feedback_page);
criterion_main!(benches);
