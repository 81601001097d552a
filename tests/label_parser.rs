//! The seed's parser on the answer shapes small models really produce, and fuzzed: it never panics,
//! keeps its invariants on arbitrary input, and recovers exactly what a well-formed answer says.

use std::panic::catch_unwind;

use revmod::label::parser::{extract_json, normalize_violation, parse_output, MAX_RATIONALE_CHARS, VIOLATIONS};

#[test]
fn seed_failure_shapes() {
    // (raw answer, parse_success, relevant, [ads, irrelevant, non_visit, spam])
    let cases: &[(&str, bool, bool, [bool; 4])] = &[
        (r#"{"is_relevant": true, "violations": [], "rationale": "Describes the food."}"#, true, true, [false; 4]),
        ("```json\n{\"is_relevant\": false, \"violations\": [\"SPAM\"], \"rationale\": \"gibberish\"}\n```", true, false, [false, false, false, true]),
        ("Here is my answer:\n```json\n{\"is_relevant\": true, \"violations\": [\"ads\", \"Non Visit Rant\"], \"rationale\": \"x\"}\n```\nHope it helps {:)}", true, true, [true, false, true, false]),
        // truncated by max_new_tokens in the middle of the rationale
        ("```json\n{\"is_relevant\": true, \"violations\": [\"ADS\"], \"rationale\": \"The review mentions a promo co", false, false, [false; 4]),
        // Python dict style, trailing comma: not JSON
        ("{'is_relevant': True, 'violations': ['ADS'], 'rationale': 'x'}", false, false, [false; 4]),
        (r#"{"is_relevant": true, "violations": ["ADS",], "rationale": "x"}"#, false, false, [false; 4]),
        // a key missing: values kept, parse_success 0
        (r#"{"is_relevant": true, "violations": ["IRRELEVANT"]}"#, false, true, [false, true, false, false]),
        // string instead of a list, unknown names dropped
        (r#"{"is_relevant": false, "violations": "SPAM", "rationale": "x"}"#, true, false, [false, false, false, true]),
        (r#"{"is_relevant": false, "violations": ["HATE_SPEECH", "PROFANITY"], "rationale": "x"}"#, true, false, [false; 4]),
        (r#"{"is_relevant": "false", "violations": null, "rationale": null}"#, true, false, [false; 4]),
        // an XML answer after a prompt injection, an empty answer, prose only
        ("<answer><relevant>true</relevant></answer>", false, false, [false; 4]),
        ("", false, false, [false; 4]),
        ("I cannot help with that.", false, false, [false; 4]),
        // braces inside the rationale and around the object
        (r#"Note {draft} {"is_relevant": true, "violations": [], "rationale": "a {b} c"}"#, false, false, [false; 4]),
        (r#"{"is_relevant": true, "violations": [], "rationale": "a {b} c"} trailing"#, true, true, [false; 4]),
        // unclosed fence: its content is still read
        ("```json\n{\"is_relevant\": true, \"violations\": [\"SPAM\"], \"rationale\": \"r\"}", true, true, [false, false, false, true]),
    ];
    for (raw, ok, rel, v) in cases {
        let p = parse_output(raw);
        assert_eq!(p.parse_success, *ok, "parse_success of {raw:?}: {p:?}");
        assert_eq!(p.is_relevant, *rel, "is_relevant of {raw:?}");
        assert_eq!([p.ads, p.irrelevant, p.non_visit, p.spam], *v, "violations of {raw:?}");
    }
    assert_eq!(normalize_violation(" non visit rant "), Some("NON_VISIT_RANT"));
    assert_eq!(normalize_violation("NON-VISIT"), None);
}

/// The fuzzers' seeded stream (reproducible failures): the crate's one RNG.
use revmod::rng::SplitMix64 as Rng;

const FRAGMENTS: &[&str] = &[
    "```json", "```", "{", "}", "[", "]", "\"", ":", ",", " ", "\n", "\\", "\\u12", "\\ud800", "\"is_relevant\"",
    "\"violations\"", "\"rationale\"", "true", "false", "null", "1e999", "-0", "\"ADS\"", "\"spam\"", "\"non visit rant\"",
    "é", "日本", "😀", "\u{0}", "\u{feff}", "<end_of_turn>", "{\"is_relevant\": true, ", "\"violations\": [\"ADS\"], ",
    "\"rationale\": \"x\"}", "'", "NaN", "{{{{", "}}}}", "\u{2028}",
];

fn random_text(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..rng.below(40) {
        if rng.below(4) == 0 {
            // raw bytes, made text the way a decoder would (lossy)
            let bytes: Vec<u8> = (0..rng.below(8)).map(|_| rng.next_u64() as u8).collect();
            s.push_str(&String::from_utf8_lossy(&bytes));
        } else {
            s.push_str(FRAGMENTS[rng.below(FRAGMENTS.len())]);
        }
    }
    s
}

#[test]
fn fuzz_never_panics_and_keeps_invariants() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for case in 0..200_000 {
        let raw = random_text(&mut rng);
        let p = catch_unwind(|| parse_output(&raw)).unwrap_or_else(|_| panic!("parse_output panicked on case {case}: {raw:?}"));
        assert!(p.rationale.chars().count() <= MAX_RATIONALE_CHARS);
        if p.parse_success {
            // success means a JSON object with all three keys was found where the seed looks
            let cand = extract_json(&raw).expect("a candidate exists when parsing succeeded");
            let v: serde_json::Value = serde_json::from_str(cand).expect("candidate is JSON");
            for k in ["is_relevant", "violations", "rationale"] {
                assert!(v.get(k).is_some(), "case {case}: {k} missing in {cand:?}");
            }
        }
    }
}

#[test]
fn fuzz_round_trip_of_well_formed_answers() {
    let mut rng = Rng(0xfeed_beef_0000_0042);
    let noise = ["", "Sure!\n", "Answer: ", "```json\n", "Here you go (no braces here)\n"];
    for case in 0..20_000 {
        let rel = rng.below(2) == 1;
        let mut v: Vec<&str> = VIOLATIONS.iter().copied().filter(|_| rng.below(2) == 1).collect();
        // the seed accepts case and spaces variations
        let written: Vec<String> = v
            .iter()
            .map(|n| match rng.below(3) {
                0 => n.to_string(),
                1 => n.to_lowercase(),
                _ => n.replace('_', " ").to_lowercase(),
            })
            .collect();
        let rationale: String = random_text(&mut rng).chars().take(300).collect();
        let obj = serde_json::json!({"is_relevant": rel, "violations": written, "rationale": rationale});
        let pre = noise[rng.below(noise.len())];
        let raw = format!("{pre}{}{}", if rng.below(2) == 0 { serde_json::to_string(&obj).unwrap() } else { serde_json::to_string_pretty(&obj).unwrap() }, if pre.starts_with("```") { "\n```" } else { "" });
        let p = parse_output(&raw);
        assert!(p.parse_success, "case {case}: {raw}");
        assert_eq!(p.is_relevant, rel);
        v.sort();
        let mut got: Vec<&str> = VIOLATIONS.iter().copied().zip([p.ads, p.irrelevant, p.non_visit, p.spam]).filter(|(_, b)| *b).map(|(n, _)| n).collect();
        got.sort();
        assert_eq!(got, v, "case {case}: {raw}");
        assert_eq!(p.rationale, rationale.chars().take(MAX_RATIONALE_CHARS).collect::<String>());
    }
}
