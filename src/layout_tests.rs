//! The module layout stays a tree of layers: no import loop among the modules of `src/`
//! (a `use crate::…` or `super::…` path outside comments and `#[cfg(test)]` items is an edge
//! from the file's module to the longest module prefix the path names).
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`failover::runner`) → source file text, for every `.rs` file under `dir`.
fn modules(dir: &Path, prefix: &[String], out: &mut BTreeMap<Vec<String>, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            let mut p = prefix.to_vec();
            p.push(name);
            modules(&path, &p, out);
        } else if let Some(stem) = name.strip_suffix(".rs") {
            // Unit-test files (`#[cfg(test)] #[path = "…_tests.rs"] mod tests;`) are no layer.
            if stem == "tests" || stem.ends_with("_tests") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let mut m = prefix.to_vec();
            if !matches!(stem, "mod" | "lib" | "main") {
                m.push(stem.to_string());
            }
            out.insert(m, text);
        }
    }
}

/// The text without line comments and without the items marked `#[cfg(test)]`.
fn production_text(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            let (mut depth, mut opened) = (0i64, false);
            for l in lines.by_ref() {
                depth += l.matches('{').count() as i64 - l.matches('}').count() as i64;
                opened |= l.contains('{');
                if (opened && depth <= 0) || (!opened && l.trim_end().ends_with(';')) {
                    break;
                }
            }
            continue;
        }
        out.push_str(line.split("//").next().unwrap_or(""));
        out.push('\n');
    }
    out
}

/// The `crate::a::b` / `super::a` paths of `text`, as segments after the root keyword.
fn paths(text: &str) -> Vec<(bool, Vec<String>)> {
    let mut out = Vec::new();
    for root in ["crate::", "super::"] {
        let mut rest = text;
        while let Some(i) = rest.find(root) {
            let before = rest[..i].chars().last();
            rest = &rest[i + root.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let segs: Vec<String> = rest
                .split("::")
                .map(|s| {
                    s.chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .take_while(|s| !s.is_empty())
                .collect();
            out.push((root == "crate::", segs));
        }
    }
    out
}

fn edges() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut mods = BTreeMap::new();
    modules(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &[],
        &mut mods,
    );
    let mut edges = BTreeMap::new();
    for (m, text) in &mods {
        let targets: &mut BTreeSet<Vec<String>> = edges.entry(m.clone()).or_default();
        for (from_crate, segs) in paths(&production_text(text)) {
            // `super` of `a/b.rs` and of `a/b/mod.rs` (both module `a::b`) is `a`.
            let mut t: Vec<String> = if from_crate {
                Vec::new()
            } else {
                m[..m.len().saturating_sub(1)].to_vec()
            };
            let mut segs = segs.into_iter().peekable();
            while segs.peek().is_some_and(|s| s == "super") {
                segs.next();
                t.pop();
            }
            t.extend(segs);
            let known = (1..=t.len())
                .rev()
                .map(|k| t[..k].to_vec())
                .find(|p| mods.contains_key(p));
            if let Some(p) = known
                && p != *m
                && !m.starts_with(&p)
            {
                targets.insert(p);
            }
        }
    }
    edges
}

/// Modules on a loop (strongly connected components of more than one module).
fn loops(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<String>> {
    let reach = |from: &Vec<String>| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(n) = todo.pop() {
            for t in edges.get(&n).into_iter().flatten() {
                if seen.insert(t.clone()) {
                    todo.push(t.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<_, _> = edges.keys().map(|m| (m.clone(), reach(m))).collect();
    let mut out: Vec<Vec<String>> = Vec::new();
    for m in edges.keys() {
        let comp: Vec<String> = edges
            .keys()
            .filter(|o| *o != m && reachable[m].contains(*o) && reachable[*o].contains(m))
            .chain(std::iter::once(m))
            .map(|p| p.join("::"))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if comp.len() > 1 && !out.contains(&comp) {
            out.push(comp);
        }
    }
    out
}

#[test]
fn the_modules_of_src_import_each_other_without_loops() {
    let edges = edges();
    assert!(edges.len() > 50, "src/ was read: {} modules", edges.len());
    assert!(
        edges[&vec!["failover".to_string(), "runner".to_string()]]
            .contains(&vec!["state".to_string()]),
        "edges are found"
    );
    assert_eq!(loops(&edges), Vec::<Vec<String>>::new());
}

#[test]
fn a_loop_is_found() {
    let e = |a: &str, b: &str| (vec![a.to_string()], [vec![b.to_string()]].into());
    let edges: BTreeMap<_, _> = [e("a", "b"), e("b", "c"), e("c", "a")].into();
    assert_eq!(loops(&edges), vec![vec!["a", "b", "c"]]);
}
