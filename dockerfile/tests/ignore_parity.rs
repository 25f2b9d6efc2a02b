//! Parity with moby/patternmatcher: the cases of its `TestMatches`
//! (`tests/corpus/patternmatcher/matches.tsv`), each pattern list written as
//! a `.dockerignore` and asked about one path.

use std::fs;
use std::path::Path;

use bramble_dockerfile::ignore::Ignore;

#[test]
fn matches_like_moby_patternmatcher() {
    let text = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/patternmatcher/matches.tsv"),
    )
    .unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 3, "{line}");
        let file = cols[0].split(" && ").collect::<Vec<_>>().join("\n");
        let ignore = Ignore::parse(&file).unwrap_or_else(|e| panic!("{line}: {e}"));
        let want = cols[2] == "true";
        if ignore.is_ignored(cols[1]) != want {
            failures.push(format!(
                "patterns {:?}, path {:?}: want {want}",
                cols[0], cols[1]
            ));
        }
        checked += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(checked, 71);
}
