//! Property tests: the configuration parser never panics, whatever it reads.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use xvrrp_control::config;

const EXAMPLE: &str = include_str!("../../xvrrp.example.toml");

/// One edit of the example text: replace a byte range with arbitrary text.
fn mutation() -> impl Strategy<Value = (usize, usize, String)> {
    (
        0..EXAMPLE.len(),
        0usize..16,
        "\\PC{0,12}|[\\[\\]{}=\",.#\n0-9a-z\\-]{0,8}",
    )
}

fn apply(text: &str, (at, len, with): &(usize, usize, String)) -> String {
    // Cut at character boundaries so the result stays valid UTF-8.
    let mut start = (*at).min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (start + len).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    format!("{}{}{}", &text[..start], with, &text[end..])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = config::parse(&text, "fuzz.toml");
    }

    #[test]
    fn toml_shaped_text_never_panics(text in "([\\[\\]{}=\",.#\n ]|[a-z_]{1,10}|[0-9]{1,4}|\"[a-z0-9./:]{0,12}\"){0,60}") {
        let _ = config::parse(&text, "fuzz.toml");
    }

    #[test]
    fn mutated_example_never_panics(edits in proptest::collection::vec(mutation(), 1..4)) {
        let mut text = EXAMPLE.to_string();
        for e in &edits {
            text = apply(&text, e);
        }
        match config::parse(&text, "fuzz.toml") {
            Ok(c) => { let _ = c.plan(); }
            Err(e) => {
                // Every diagnostic points inside the text.
                let lines = text.split('\n').count();
                for d in e.errors() {
                    prop_assert!(d.line >= 1 && d.line <= lines, "{d:?}");
                    prop_assert!(d.col >= 1);
                    prop_assert!(!d.message.contains('\n'));
                }
                prop_assert!(!e.errors().is_empty());
            }
        }
    }
}
