//! The script injected into every document of a job's page (`shim.js`), with the job's
//! data inserted as a JSON literal (serde_json output is a valid JavaScript expression).

use super::page_data::PageData;
use serde::Serialize;

const SHIM: &str = include_str!("shim.js");
const PLACEHOLDER: &str = "__HEADEND_JOB__";

#[derive(Serialize)]
struct ShimJob<'a> {
    item: &'a PageData,
    fps: u32,
    clock_origin_ms: u64,
}

/// The page script for a job.
pub(crate) fn page_script(item: &PageData, fps: u32, clock_origin_ms: u64) -> String {
    let json = serde_json::to_string(&ShimJob { item, fps, clock_origin_ms }).expect("plain data always serialises");
    SHIM.replacen(PLACEHOLDER, &json, 1)
}

/// Expression run once the page has loaded: starts the clock, resolves when frame 0 may be
/// drawn, to `{videos: bool}` (whether frames need [`prepare_expression`]).
pub(crate) const START_EXPRESSION: &str = "window.headend.__start()";

/// Expression run before frame `k` of a page with videos: seeks them, resolves when done.
pub(crate) fn prepare_expression(k: u64) -> String {
    format!("window.headend.__prepare({k})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_a_literal() {
        let item = PageData { title: "</script><img src=x onerror=alert(1)>\u{2028}\"'`${x}".into(), ..Default::default() };
        let s = page_script(&item, 25, 1_700_000_000_000);
        assert!(!s.contains(PLACEHOLDER));
        assert!(s.contains(r#""title":"</script><img src=x onerror=alert(1)>"#));
        assert!(s.contains(r#"\"'`${x}"#));
        assert!(s.contains(r#""fps":25"#));
    }
}
