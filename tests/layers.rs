//! The dependencies between the crate's top-level modules run one way, as
//! docs/architecture.md draws them:
//!
//! ```text
//! domain ◄── lookup, http, pem, config ◄── store, channels, api, tls ◄── sources ◄── gateway, client
//!                                                                                      ▲
//!                                                                        console ──────┘
//! ```
//!
//! `client` (the gateway's clients' side of the wire) and `gateway` share a
//! layer, so neither may use the other; only `console` (the TUI) is above
//! `client`.
//!
//! A module may use only modules of a lower layer (a cycle is impossible
//! then). Read from the source text: every `crate::MODULE` outside test
//! code. Runs with a plain `cargo test`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed run

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each top-level module's layer.
const LAYERS: [(&str, u8); 15] = [
    ("domain", 0),
    ("lookup", 1),
    ("http", 1),
    ("pem", 1),
    ("random", 1),
    ("config", 1),
    ("store", 2),
    ("channels", 2),
    ("api", 2),
    ("tls", 2),
    ("sources", 3),
    ("gateway", 4),
    ("client", 4),
    ("console", 5),
    // The binary's library root only declares modules.
    ("lib", 6),
];

/// `crate::X` used by `text`, outside `#[cfg(test)]` modules.
fn uses(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let name: String = code[i + 7..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        out.insert(name);
    }
    out
}

/// Top-level module → the top-level modules its non-test code uses.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap();
            let top = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string();
            // The binary (main.rs and its cli/) is above every layer; a
            // file named tests.rs is test code.
            if top == "main" || top == "cli" || rel.file_name().is_some_and(|f| f == "tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let deps = g.entry(top.clone()).or_default();
            deps.extend(uses(&text).into_iter().filter(|d| *d != top));
        }
    }
    g
}

/// Every use of a module of the same or a higher layer, in words.
fn violations(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let layer: BTreeMap<&str, u8> = LAYERS.into_iter().collect();
    let mut out = Vec::new();
    for (m, deps) in g {
        let Some(&lm) = layer.get(m.as_str()) else {
            out.push(format!("{m}: a top-level module with no layer in LAYERS"));
            continue;
        };
        for d in deps {
            match layer.get(d.as_str()) {
                Some(&ld) if ld < lm => {}
                Some(&ld) => out.push(format!(
                    "{m} (layer {lm}) uses {d} (layer {ld}): only lower layers may be used"
                )),
                None => {}
            }
        }
    }
    out
}

#[test]
fn dependencies_between_top_level_modules_run_one_way() {
    let g = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(
        g.contains_key("domain") && g.contains_key("console"),
        "{g:?}"
    );
    let v = violations(&g);
    assert!(
        v.is_empty(),
        "layering broken (see docs/architecture.md):\n{}\ngraph: {g:#?}",
        v.join("\n")
    );
}

#[test]
fn the_check_sees_a_cycle_and_an_unknown_module() {
    let g: BTreeMap<String, BTreeSet<String>> = [
        ("channels", vec!["console"]),
        ("console", vec!["channels", "domain"]),
        ("newthing", vec!["domain"]),
    ]
    .into_iter()
    .map(|(m, d)| (m.to_string(), d.into_iter().map(String::from).collect()))
    .collect();
    let v = violations(&g);
    assert!(
        v.iter()
            .any(|x| x.starts_with("channels (layer 2) uses console")),
        "{v:?}"
    );
    assert!(v.iter().any(|x| x.starts_with("newthing")), "{v:?}");
    assert!(
        !v.iter().any(|x| x.starts_with("console")),
        "console may use channels"
    );
    // The client sits beside the gateway: neither uses the other, and the
    // client never uses the TUI.
    let g: BTreeMap<String, BTreeSet<String>> = [
        ("gateway", vec!["client"]),
        ("client", vec!["console", "api"]),
        ("console", vec!["client", "api"]),
    ]
    .into_iter()
    .map(|(m, d)| (m.to_string(), d.into_iter().map(String::from).collect()))
    .collect();
    let v = violations(&g);
    assert!(
        v.iter()
            .any(|x| x.starts_with("gateway (layer 4) uses client")),
        "{v:?}"
    );
    assert!(
        v.iter()
            .any(|x| x.starts_with("client (layer 4) uses console")),
        "{v:?}"
    );
    assert!(!v.iter().any(|x| x.starts_with("console")), "{v:?}");
    assert_eq!(
        uses("use crate::domain::X;\n#[cfg(test)]\nmod tests { use crate::sources; }"),
        BTreeSet::from(["domain".to_string()])
    );
}

/// The console (the TUI) gets domain types from `client`: outside its test
/// code it names neither the wire's messages (`pb::`) nor `crate::api`.
#[test]
fn the_console_never_names_the_wire_messages() {
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src/console")];
    let mut seen = 0;
    let mut found = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs")
                || path.file_name().is_some_and(|f| f == "tests.rs")
            {
                continue;
            }
            seen += 1;
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for (n, line) in code.lines().enumerate() {
                if line.contains("pb::") || line.contains("crate::api") {
                    found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(seen > 10, "read only {seen} files");
    assert!(found.is_empty(), "{}", found.join("\n"));
}
