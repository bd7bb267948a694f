//! RTP output (RFC 2250 / RFC 3550): version 2, payload type 33, sequence numbers by
//! one, a 90 kHz timestamp that follows the stream's clock, and the same clean TS inside.

mod common;

use common::{describe, wait_for_entry, Node};
use headend_actors::playout::capture::{ts_bytes, Capture};
use headend_actors::ts::analyzer::{analyze_bytes, AnalyzerConfig};
use std::net::Ipv4Addr;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtp_carries_the_stream_with_sequence_and_timestamps() {
    let mut spec = common::spec("rtp", 50, 5050, vec![common::items().audio_only.clone()]);
    spec.output.rtp = true;
    let capture = Capture::start(spec.output.group, spec.output.port, Ipv4Addr::LOCALHOST).unwrap();
    let node = Node::start(vec![spec.clone()]).await;
    wait_for_entry("rtp", 0, Duration::from_secs(1)).await;
    node.stop().await;
    let datagrams = capture.finish();
    assert!(datagrams.len() > 200);

    let mut prev: Option<(u16, u32, u32)> = None;
    for d in &datagrams {
        let b = &d.bytes;
        assert_eq!(b.len(), 12 + 7 * 188);
        assert_eq!(b[0], 0x80, "RTP version 2, no padding, extension or CSRC");
        assert_eq!(b[1], 33, "payload type MP2T, no marker");
        assert_eq!(b[12], 0x47, "TS follows the 12-byte header");
        let seq = u16::from_be_bytes([b[2], b[3]]);
        let ts = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        let ssrc = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
        if let Some((pseq, pts, pssrc)) = prev {
            assert_eq!(seq, pseq.wrapping_add(1), "sequence numbers by one");
            assert_eq!(ssrc, pssrc, "one SSRC");
            // 7 packets at 3 Mbit/s last 3.51 ms = 315.8 ticks of 90 kHz.
            let step = ts.wrapping_sub(pts);
            assert!((315..=317).contains(&step), "timestamp step {step}");
        }
        prev = Some((seq, ts, ssrc));
    }
    let r = analyze_bytes(&ts_bytes(&datagrams), AnalyzerConfig::default());
    assert!(r.is_clean(), "{}", describe(&r));
}
