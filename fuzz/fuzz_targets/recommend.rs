//! `recommend` on arbitrary, structurally valid catalogs, customers,
//! requests and parameters: the decision's invariants, and agreement of
//! `recommend`, `recommend_into` on a reused workspace, every kernel
//! variant (each also with the value cut always on) and `recommend_batch`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tactful::Engine;
use tactful_fuzz::{run_world, Input};

fuzz_target!(|input: Input| {
    let catalog = input.catalog();
    let Ok(engine) = Engine::builder().catalog(catalog.clone()).params(input.params()).build() else { return };
    let customer = input.customer_from(&input.customer, "c", &catalog);
    let other = input.customer_from(&input.other, "other", &catalog);
    run_world(&engine, &catalog, &customer, &other, &input.request());
});
