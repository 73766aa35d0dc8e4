//! `spanlab show`: the text report of a JSON report, re-rendered with the library's
//! [`Report::to_text_with`](spanlab::Report::to_text_with) — sorted, cut to the top
//! rows, filtered by share or by path.

use spanlab::report::TextOptions;

use crate::input::Loaded;

/// The text `show` prints for `loaded`.
pub fn text(loaded: &Loaded, options: &TextOptions) -> String {
    let mut out = String::new();
    if let Some(note) = loaded.snapshot_note() {
        out.push_str(&note);
        out.push('\n');
    }
    out.push_str(&loaded.report.to_text_with(options));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::Synthetic;
    use spanlab::report::SortBy;

    #[test]
    fn a_snapshot_says_so_and_options_apply() {
        let json = Synthetic::new()
            .path("epoch", vec![100; 10])
            .path("epoch > a", vec![10; 10])
            .path("epoch > b", vec![50; 10])
            .key("final", serde_json::json!(false))
            .to_json();
        let loaded = crate::input::parse(std::path::Path::new("snap.json"), &json).unwrap();
        let options = TextOptions {
            sort: SortBy::Total,
            top: Some(2),
            ..TextOptions::default()
        };
        let text = text(&loaded, &options);
        assert!(text.starts_with("note: snap.json is a snapshot"), "{text}");
        assert!(
            text.contains("(showing 2 of 3 paths: sorted by total, top 2)"),
            "{text}"
        );
        assert!(!text.contains("epoch > a "), "{text}");
    }
}
