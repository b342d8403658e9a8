//! Config files as users write them: every valid fixture loads, every
//! invalid one fails with exactly the message in its `.err` file, and the
//! JSON schema in docs/ describes exactly the keys the parser accepts.

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

use std::path::Path;

use warroom::config::Config;

fn fixtures(kind: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(kind);
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    assert!(!v.is_empty());
    v
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn valid_configs_load() {
    for p in fixtures("valid") {
        let text = std::fs::read_to_string(&p).unwrap();
        Config::parse(&name(&p), &text).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn invalid_configs_fail_with_the_expected_message() {
    for p in fixtures("invalid") {
        let text = std::fs::read_to_string(&p).unwrap();
        let want = std::fs::read_to_string(p.with_extension("err")).unwrap();
        let got = Config::parse(&name(&p), &text)
            .expect_err(&name(&p))
            .to_string();
        assert!(
            got.starts_with(want.trim()),
            "{}:\n  got:  {got}\n  want: {}",
            name(&p),
            want.trim()
        );
    }
}

#[test]
fn missing_file_is_an_empty_config_and_unreadable_is_an_error() {
    assert_eq!(
        Config::load(Path::new("/nonexistent/warroom/config.toml")).unwrap(),
        Config::default()
    );
    let dir = std::env::temp_dir().join(format!("wr-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("config.toml");
    std::fs::write(&bad, [0xff, 0xfe, b'\n']).unwrap();
    let e = Config::load(&bad).unwrap_err();
    assert!(e.message.contains("not UTF-8"), "{e}");
}

fn toml_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => format!("{s:?}"),
        serde_json::Value::Object(m) => {
            let inner: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k} = {}", toml_value(v)))
                .collect();
            format!("{{ {} }}", inner.join(", "))
        }
        other => other.to_string(),
    }
}

#[test]
fn json_schema_matches_what_the_parser_accepts() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/config.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let check_object = |props: &serde_json::Map<String, serde_json::Value>, table: Option<&str>| {
        for (key, spec) in props {
            let example = &spec["examples"][0];
            assert!(!example.is_null(), "{key} has an example");
            let text = match table {
                None => format!("{key} = {}\n", toml_value(example)),
                Some(t) => format!("[{t}]\n{key} = {}\n", toml_value(example)),
            };
            Config::parse("schema", &text).unwrap_or_else(|e| panic!("schema key {key}: {e}"));
        }
        let text = match table {
            None => "not_in_schema = 1\n".to_string(),
            Some(t) => format!("[{t}]\nnot_in_schema = 1\n"),
        };
        assert!(
            Config::parse("schema", &text).is_err(),
            "unknown keys are rejected"
        );
    };
    let top = schema["properties"].as_object().unwrap();
    check_object(top, None);
    check_object(top["demo"]["properties"].as_object().unwrap(), Some("demo"));
    // Every field of Config is in the schema: a full config uses them all.
    let full = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/valid/full.toml"),
    )
    .unwrap();
    for key in ["gateway", "keymap", "theme", "mouse", "refresh_ms", "demo"] {
        assert!(full.contains(key) && top.contains_key(key), "{key}");
    }
    // Every key the parser knows (it lists them when it meets an unknown
    // one) is described in the schema, and nothing else.
    let e = Config::parse("schema", "not_in_schema = 1\n").unwrap_err();
    let mut known: Vec<&str> = e
        .message
        .split("expected one of ")
        .nth(1)
        .expect("the parser lists the keys")
        .split(", ")
        .map(|k| k.trim_matches('`'))
        .collect();
    known.sort_unstable();
    let mut described: Vec<&str> = top.keys().map(String::as_str).collect();
    described.sort_unstable();
    assert_eq!(known, described, "docs/config.schema.json top-level keys");
}
