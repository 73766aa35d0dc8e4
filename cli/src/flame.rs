//! `spanlab flame`: a flame graph of a report, one frame per path, weighted by self
//! time, drawn by `inferno`.
//!
//! The input is a JSON report or folded stacks (`epoch;forward 1012345678` lines, as
//! [`Report::to_folded`] and `SPANLAB_REPORT_FOLDED` write them): a file whose first
//! character is `{` is read as a report, anything else as folded stacks.

use std::path::Path;

use inferno::flamegraph::{self, Direction, Options};
use spanlab::Report;

use crate::Failure;

/// How to draw.
#[derive(Clone, Debug, Default)]
pub struct FlameOptions {
    /// Roots at the top, children below (an icicle graph).
    pub icicle: bool,
    /// The title; `None`: "spanlab: self time per span path".
    pub title: Option<String>,
    /// Without inferno's script (search, zoom): for an SVG put inside a page.
    pub no_javascript: bool,
}

/// The folded stacks of the input `file`: a report's (through [`crate::input::load`]'s
/// checks) or the file's own lines, checked.
pub fn folded_of_file(file: &Path) -> Result<String, Failure> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Failure::input(format!(
            "cannot read {}: {}",
            file.display(),
            if e.kind() == std::io::ErrorKind::NotFound {
                "no such file".into()
            } else {
                e.to_string()
            }
        ))
    })?;
    if text.trim_start().starts_with('{') || text.trim().is_empty() {
        let loaded = crate::input::parse(file, &text)?;
        return Ok(loaded.report.to_folded());
    }
    check_folded(&text).map_err(|line| {
        Failure::input(format!(
            "{}: not JSON, nor folded stacks (line {line} is not \
             \"frame;frame;... <count>\")",
            file.display()
        ))
    })?;
    Ok(text)
}

/// `Err(line number)` of the first line that is not `frames count`.
fn check_folded(text: &str) -> Result<(), usize> {
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let ok = line.rsplit_once(' ').is_some_and(|(frames, count)| {
            !frames.trim().is_empty() && count.trim().parse::<u64>().is_ok()
        });
        if !ok {
            return Err(i + 1);
        }
    }
    Ok(())
}

/// The flame graph SVG of folded stacks.
pub fn svg(folded: &str, options: &FlameOptions) -> Result<String, Failure> {
    let mut opts = Options::default();
    opts.title = options
        .title
        .clone()
        .unwrap_or_else(|| "spanlab: self time per span path".into());
    opts.count_name = "ns".into();
    opts.name_type = "Span:".into();
    opts.no_javascript = options.no_javascript;
    opts.deterministic = true;
    if options.icicle {
        opts.direction = Direction::Inverted;
    }
    let mut out = Vec::new();
    if folded.trim().is_empty() {
        // inferno refuses an empty input; a report whose spans have no self time
        // (every one only waits on children) still gets a picture that says so.
        return Ok(empty_svg(&opts.title));
    }
    flamegraph::from_lines(&mut opts, folded.lines(), &mut out)
        .map_err(|e| Failure::input(format!("cannot draw the flame graph: {e}")))?;
    String::from_utf8(out).map_err(|e| Failure::input(format!("cannot draw the flame graph: {e}")))
}

/// The SVG of a report.
pub fn report_svg(report: &Report, options: &FlameOptions) -> Result<String, Failure> {
    svg(&report.to_folded(), options)
}

fn empty_svg(title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"60\">\
         <text x=\"10\" y=\"35\">{}: no span has self time</text></svg>",
        crate::html::escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_lines_are_checked_and_drawn() {
        assert_eq!(check_folded("a;b 10\n\na 5\n"), Ok(()));
        assert_eq!(check_folded("a;b 10\nnot folded\n"), Err(2));
        assert_eq!(check_folded("a;b ten\n"), Err(1));
        let svg = svg("epoch;forward 700\nepoch 100\n", &FlameOptions::default()).unwrap();
        assert!(svg.contains("<svg") && svg.contains("forward"), "{svg}");
        let icicle = svg_of("epoch;forward 700\n", true);
        assert_ne!(icicle, svg_of("epoch;forward 700\n", false));
    }

    fn svg_of(folded: &str, icicle: bool) -> String {
        svg(
            folded,
            &FlameOptions {
                icicle,
                ..FlameOptions::default()
            },
        )
        .unwrap()
    }
}
