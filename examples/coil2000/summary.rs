//! The readable stdout summary of a report.

use std::fmt;

use crate::experiment::Report;

/// Displays a [`Report`].
pub struct Summary<'a>(pub &'a Report);

/// Holders the `CoIL` 2000 winner found among 800 of the 4,000 evaluation
/// customers, and the holders there.
const WINNER: (f64, f64) = (121.0, 238.0);

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        writeln!(f, "CoIL 2000, {}", r.evaluation)?;
        writeln!(f, "l2 penalty {}, class weight {:?}\n", r.params.l2_penalty, r.params.class_weight)?;

        let t = &r.task1;
        writeln!(f, "Task 1: caravan holders found in {}", t.selection)?;
        if t.holders == 0 {
            writeln!(f, "  the test file has no CARAVAN column: {} rows selected (in the JSON report)\n", t.selected)?;
        } else {
            writeln!(f, "  {} holders among {} customers\n", t.holders, t.customers)?;
            writeln!(f, "  {:<22} {:>7} {:>8}  {:>6}", "model", "found", "recall", "AUC")?;
            for s in &t.results {
                let auc = s.auc.map_or("-".to_owned(), |a| format!("{a:.3}"));
                let recall = s.found / t.holders as f64;
                writeln!(f, "  {:<22} {:>7.1} {:>7.1}%  {:>6}", s.model, s.found, 100.0 * recall, auc)?;
            }
            if let Some(g) = t.results.iter().find(|s| s.model == "guarded") {
                let scaled = g.found / t.holders as f64 * WINNER.1;
                writeln!(
                    f,
                    "  guarded recall applied to the evaluation part's {} holders: about {scaled:.0} (challenge winner: {} of {}, random about 48)",
                    WINNER.1, WINNER.0, WINNER.1
                )?;
            }
        }

        let t2 = &r.task2;
        writeln!(f, "\nTask 2: leave-one-product-out next best offer over {} products", t2.products.len())?;
        writeln!(
            f,
            "  {:<16} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9}",
            "method", "cases", "hit@1", "hit@3", "hit@5", "MRR", "withheld"
        )?;
        for h in &t2.overall {
            writeln!(
                f,
                "  {:<16} {:>7} {:>7.3} {:>7.3} {:>7.3} {:>7.3} {:>9}",
                h.method, h.cases, h.hit_at_1, h.hit_at_3, h.hit_at_5, h.mrr, h.withheld_by_guard
            )?;
        }
        writeln!(f, "  (withheld: the hidden product was withheld by guard rule 3 as proxy-driven)")?;
        writeln!(f, "  per hidden product, hit@3: guarded / proxies marked / popularity")?;
        for p in t2.per_product.iter().filter(|p| p.guarded.cases > 0) {
            writeln!(
                f,
                "    {:<9} {:>5} cases  {:.3} / {:.3} / {:.3}",
                p.product, p.guarded.cases, p.guarded.hit_at_3, p.proxies_marked.hit_at_3, p.popularity.hit_at_3
            )?;
        }
        let rare: Vec<&String> =
            t2.intercept_only.iter().flatten().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        if !rare.is_empty() {
            let names: Vec<&str> = rare.iter().map(|s| s.as_str()).collect();
            writeln!(f, "  prevalence only (too few holders in some training split): {}", names.join(", "))?;
        }

        writeln!(f, "\n{}", r.proxy_audit.table(15))?;
        if r.marked_proxies.is_empty() {
            writeln!(f, "No feature of any guarded model is flagged as a proxy.")?;
        } else {
            writeln!(
                f,
                "Marked `proxy` in the catalog (flagged in any product's audit): {}",
                r.marked_proxies.join(", ")
            )?;
        }
        Ok(())
    }
}
