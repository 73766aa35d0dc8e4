//! `spanlab html`'s page in a real browser: headless Chromium through chromedriver
//! (scripts/test-all.sh installs Debian's `chromium` and `chromium-driver`).
//!
//! Checks what a person would: the page runs without a JavaScript error, shows every
//! path, reorders its rows when a column header is clicked, and can be photographed —
//! the screenshot is kept under `target/` as an artifact, not in git.

mod webdriver;

use std::time::{Duration, Instant};

use spanlab_cli::synthetic::{around, Synthetic};

#[test]
fn the_html_page_works_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let report = Synthetic::new()
        .path("epoch", around(90_000_000, 0.1, 100))
        .path("epoch > forward", around(30_000_000, 0.2, 100))
        .path("epoch > loss", around(1_000_000, 0.3, 100))
        .path("epoch > backward", around(50_000_000, 0.4, 100))
        .path(
            "epoch > backward > <allreduce & \"sync\"",
            around(5_000_000, 0.9, 100),
        )
        .path("eval", around(2_000_000, 0.1, 10))
        .rank(0, 1);
    let json = dir.path().join("run.json");
    std::fs::write(&json, report.to_json()).unwrap();
    let page = dir.path().join("run.html");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_spanlab"))
        .args(["html", json.to_str().unwrap(), "-o", page.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());

    let browser = webdriver::Browser::start();
    browser.open(&page);
    let deadline = Instant::now() + Duration::from_secs(20);
    while browser.script("return document.body && document.body.getAttribute('data-ready')") != "1"
    {
        assert!(
            Instant::now() < deadline,
            "the page's script never finished: {:?}",
            browser.script("return window.__spanlabErrors")
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // No JavaScript error: none caught by the page's own handler, none in the console.
    assert_eq!(
        browser.script("return window.__spanlabErrors"),
        serde_json::json!([])
    );
    assert_eq!(browser.severe_log(), Vec::<String>::new());

    // Every path is in the table.
    let order = || -> Vec<String> {
        let rows = browser.script(
            "return Array.from(document.querySelectorAll('#paths tbody tr')).map(r => r.getAttribute('data-path'))",
        );
        rows.as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let tree = order();
    let want = [
        "epoch",
        "epoch > forward",
        "epoch > loss",
        "epoch > backward",
        "epoch > backward > <allreduce & \"sync\"",
        "eval",
    ];
    assert_eq!(tree, want);
    // The odd name is text, not markup.
    let cell = browser
        .script("return document.querySelector('#paths tbody tr:nth-child(5) td').textContent");
    assert_eq!(cell, "<allreduce & \"sync\"");

    // A real click on the "mean" header sorts by mean, largest first; another reverses.
    browser.click("#paths th[data-key='mean']");
    let by_mean = order();
    assert_ne!(by_mean, tree);
    assert_eq!(
        by_mean[..3],
        ["epoch", "epoch > backward", "epoch > forward"]
    );
    browser.click("#paths th[data-key='mean']");
    assert_eq!(order().first().map(String::as_str), Some("epoch > loss"));
    browser.click("#paths th[data-key='path']");
    assert_eq!(order(), tree);

    // A click on a row draws its histogram; the flame graph is inline.
    browser.click("#paths tbody tr[data-path='epoch > forward']");
    let histogram = browser.script("return document.querySelectorAll('#histogram rect').length");
    assert!(histogram.as_u64().unwrap() > 3, "{histogram}");
    assert_eq!(
        browser.script("return document.querySelectorAll('.flame > svg').length"),
        1
    );
    assert_eq!(
        browser.script("return window.__spanlabErrors"),
        serde_json::json!([])
    );

    // A screenshot, kept as an artifact.
    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("spanlab-html-screenshot.png"), &png).unwrap();
}
