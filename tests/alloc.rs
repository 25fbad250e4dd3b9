//! A warmed-up `recommend_into` makes no heap allocation: counted through a
//! counting global allocator (this test binary's own).

#[path = "support/synthetic.rs"]
mod synthetic;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use tactful::{Customer, Decision, Engine, Request, Workspace};

struct Counting;

thread_local! {
    /// Allocations made by this thread (other test threads do not count).
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the allocator may run while thread-locals are torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards to the system allocator unchanged; the
// counter is a thread-local `Cell`, which allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

const WARM_UP_ROUNDS: usize = 2;

/// A workspace and a decision after every customer has been ranked a few
/// times, so that every buffer (the audit alternates two lists, and spare
/// reason lists circulate through pools) has grown to its largest size.
fn warmed_up(engine: &Engine, customers: &[Customer], request: &Request) -> (Workspace, Decision) {
    let (mut workspace, mut decision) = (Workspace::new(), Decision::default());
    for _ in 0..WARM_UP_ROUNDS {
        for c in customers {
            engine.recommend_into(c, request, &mut workspace, &mut decision).unwrap();
        }
    }
    (workspace, decision)
}

#[test]
#[cfg_attr(debug_assertions, ignore = "debug builds cross-check the fast path against allocating code")]
fn recommend_into_allocates_nothing_after_warm_up() {
    for n in [100, 1_000] {
        let engine = Engine::builder().catalog(synthetic::catalog(n, 42)).params(synthetic::params()).build().unwrap();
        // The plain offers scored from the f32 rows and from the grouped
        // 16-bit weights, bf16 and integer.
        let grouped = engine.clone().with_grouped_from(0);
        let variants = [
            grouped.clone().with_integer_scoring(false),
            grouped.with_integer_scoring(true),
            engine.with_grouped_from(usize::MAX),
        ];
        for engine in variants {
            allocates_nothing(n, &engine);
        }
    }
}

/// No allocation in warmed-up decisions, for 64 customers in turn and for
/// one again and again.
fn allocates_nothing(n: usize, engine: &Engine) {
    let customers: Vec<_> = (0..64).map(|i| synthetic::customer(n, i)).collect();
    let request = synthetic::request();
    let (mut workspace, mut decision) = warmed_up(engine, &customers, &request);
    let before = allocations();
    let mut ranked = 0;
    for _ in 0..3 {
        for c in &customers {
            engine.recommend_into(c, &request, &mut workspace, &mut decision).unwrap();
            ranked += decision.recommendations.len();
        }
    }
    let made = allocations() - before;
    assert!(ranked > 0);
    assert_eq!(made, 0, "{n} offers: {made} allocations in {} decisions", 3 * customers.len());

    // The same customer again and again, the latency benchmark's case.
    let before = allocations();
    for _ in 0..100 {
        engine.recommend_into(&customers[0], &request, &mut workspace, &mut decision).unwrap();
    }
    assert_eq!(allocations() - before, 0);
}

/// Longer lists take other selection paths (beyond 16 and 64 kept).
#[test]
#[cfg_attr(debug_assertions, ignore = "debug builds cross-check the fast path against allocating code")]
fn long_lists_allocate_nothing_after_warm_up() {
    let n = 1_000;
    let mut params = synthetic::params();
    params.contact.frequency_cap = 1_000;
    params.fatigue.budget = 1e6;
    let engine = Engine::builder().catalog(synthetic::catalog(n, 42)).params(params).build().unwrap();
    let customers: Vec<_> = (0..16).map(|i| synthetic::customer(n, i)).collect();
    for k in [17, 65, 200] {
        let request = Request { k, ..synthetic::request() };
        let (mut workspace, mut decision) = warmed_up(&engine, &customers, &request);
        let before = allocations();
        let mut longest = 0;
        for c in &customers {
            engine.recommend_into(c, &request, &mut workspace, &mut decision).unwrap();
            longest = longest.max(decision.recommendations.len());
        }
        assert!(longest > k / 2, "k = {k}: {longest} recommended at most");
        assert_eq!(allocations() - before, 0, "k = {k}");
    }
}

#[test]
fn the_counter_sees_allocations() {
    let before = allocations();
    let v: Vec<u64> = std::hint::black_box(vec![1, 2, 3]);
    assert_eq!(v.len(), 3);
    assert!(allocations() > before);
}

/// [`Engine::recommend`] returns a new decision: each recommendation in it
/// costs three blocks (its contributions, its rules and its sentence,
/// which gets its room at once), whatever the catalog.
#[test]
#[cfg_attr(debug_assertions, ignore = "debug builds cross-check the fast path against allocating code")]
fn each_new_recommendation_costs_three_blocks() {
    for n in [100, 1_000] {
        let engine = Engine::new(synthetic::catalog(n, 42)).expect("valid");
        for i in 0..4 {
            let c = synthetic::customer(n, i);
            let blocks = |k: usize| {
                let request = Request { k, ..synthetic::request() };
                engine.recommend(&c, &request).expect("ranked");
                let before = allocations();
                let decision = engine.recommend(&c, &request).expect("ranked");
                (allocations() - before, decision.recommendations.len() as u64)
            };
            let ((one, r1), (five, r5)) = (blocks(1), blocks(5));
            assert!(r5 > r1, "{n} offers, customer {i}: {r1} and {r5} recommendations");
            // The recommendations' vector may grow once more with k.
            assert!(
                five - one <= 3 * (r5 - r1) + 1,
                "{n} offers, customer {i}: {one} blocks for {r1}, {five} for {r5}"
            );
        }
    }
}
