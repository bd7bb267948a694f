//! `headend check-config` beyond syntax: probes every item of every channel at the
//! channel's mux rate, so an operator learns before going on air which items cannot be
//! played and which need a higher `mux_rate`.

use crate::config::Config;
use crate::spec::channel_spec;
use headend_actors::playout::probe::probe;

/// One problem item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemProblem {
    pub channel: String,
    /// Machine-friendly reason (`peak_rate`, `corrupt`, ...).
    pub kind: &'static str,
    pub message: String,
}

/// Probes every playlist item and fallback. Blocking (reads every item once).
pub fn probe_items(config: &Config) -> (usize, Vec<ItemProblem>) {
    let mut checked = 0;
    let mut problems = Vec::new();
    let cache_root = crate::sync::cache_root(config);
    for c in &config.channels {
        let spec = channel_spec(c, &config.node.data_dir, &cache_root);
        if c.render.is_some() && !crate::spec::items_dir(&config.node.data_dir, &c.id).is_dir() {
            continue; // nothing encoded yet: the node makes the items from the media
        }
        let cache_only = c.sync.is_some() && c.playlist.source.folder.is_none() && c.playlist.source.items.is_none();
        if cache_only && !crate::sync::cache_folder(c, &cache_root).is_some_and(|d| d.is_dir()) {
            continue; // nothing synced yet: the node fills the cache from the source
        }
        let items = match spec.playlist.list() {
            Ok(items) => items,
            Err(e) => {
                problems.push(ItemProblem { channel: c.id.clone(), kind: "playlist", message: e.to_string() });
                continue;
            }
        };
        for item in items.iter().chain(spec.fallback.iter()) {
            checked += 1;
            if let Err(e) = probe(item, spec.mux_rate) {
                let message = match e.kind() {
                    "peak_rate" => format!("channels[{:?}].mux_rate is too low for this item: {e}", c.id),
                    _ => e.to_string(),
                };
                problems.push(ItemProblem { channel: c.id.clone(), kind: e.kind(), message });
            }
        }
    }
    (checked, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use headend_actors::encode::testcard::{generate_test_item, AudioCodec, AudioSpec, TestItemSpec};
    use std::time::Duration;

    #[test]
    fn reports_unplayable_items_and_passes_good_ones() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.ts");
        let spec = TestItemSpec {
            title: "t".into(),
            artist: "a".into(),
            duration: Duration::from_secs(1),
            video: None,
            audio: Some(AudioSpec { codec: AudioCodec::Mp2, sample_rate: 48_000, channels: 2, bitrate: 192_000, tone_hz: 440 }),
        };
        generate_test_item(&spec, &good).unwrap();
        let text = dir.path().join("notes.ts");
        std::fs::write(&text, "not a transport stream").unwrap();
        let mut config = Config::demo(dir.path());
        config.channels.truncate(1);
        // A plain (not rendered) channel with an item list.
        (config.channels[0].render, config.channels[0].encode, config.channels[0].sync) = (None, None, None);
        config.channels[0].playlist.source.items = Some(vec![good, text.clone()]);
        config.channels[0].playlist.fallback = None;
        let (checked, problems) = probe_items(&config);
        assert_eq!(checked, 2);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].kind, "not_ts");
        assert!(problems[0].message.contains("notes.ts"));
    }
}
