use super::testkit::*;
use super::*;
use crate::ts::packet::{packetize_pes, packetize_section, Pid, TsPacket};
use crate::ts::time::Pts;

fn null_stream(n: usize) -> Vec<TsPacket> {
    (0..n)
        .map(|i| {
            let mut p = TsPacket::null();
            p.0[4] = i as u8; // tell packets apart
            p
        })
        .collect()
}

/// Drains a reader: packets and errors in order.
fn drain(reader: &mut PacketReader) -> (Vec<TsPacket>, Vec<ParseError>) {
    let (mut packets, mut errors) = (Vec::new(), Vec::new());
    loop {
        match reader.next_packet() {
            Ok(Some(p)) => packets.push(p),
            Ok(None) => break,
            Err(e) => errors.push(e),
        }
    }
    (packets, errors)
}

fn read_all(bytes: &[u8]) -> (Vec<TsPacket>, Vec<ParseError>, ReaderStats) {
    let mut r = PacketReader::new();
    r.push(bytes);
    r.finish();
    let (p, e) = drain(&mut r);
    (p, e, r.stats())
}

#[test]
fn reader_yields_the_same_packets_for_any_chunking() {
    let packets = null_stream(40);
    let bytes = stream_bytes(&packets);
    let mut rng = TestRng::new(7);
    for round in 0..50 {
        let mut r = PacketReader::new();
        let (mut got, mut errors) = (Vec::new(), Vec::new());
        let mut at = 0;
        while at < bytes.len() {
            let n = if round == 0 {
                7 * 188
            } else {
                1 + rng.below(700)
            }
            .min(bytes.len() - at);
            r.push(&bytes[at..at + n]);
            at += n;
            let (p, e) = drain(&mut r);
            got.extend(p);
            errors.extend(e);
        }
        r.finish();
        let (p, e) = drain(&mut r);
        got.extend(p);
        errors.extend(e);
        assert_eq!(got, packets, "round {round}");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(r.stats().packets, 40);
        assert_eq!(r.stats().bytes_skipped, 0);
    }
}

#[test]
fn reader_waits_for_confirmation_then_finishes_short_input() {
    let bytes = stream_bytes(&null_stream(3));
    let mut r = PacketReader::new();
    r.push(&bytes);
    assert_eq!(
        r.next_packet(),
        Ok(None),
        "three packets do not confirm sync yet"
    );
    r.finish();
    let (p, e) = drain(&mut r);
    assert_eq!(p.len(), 3);
    assert!(e.is_empty());
}

#[test]
fn reader_skips_leading_garbage_and_reports_it() {
    let mut bytes = vec![0x47, 0x00, 0x47, 0x12, 0x34];
    bytes.extend(stream_bytes(&null_stream(10)));
    let (p, e, stats) = read_all(&bytes);
    assert_eq!(p.len(), 10);
    assert_eq!(
        e,
        vec![ParseError::LeadingGarbage {
            offset: 5,
            skipped: 5
        }]
    );
    assert_eq!(stats.bytes_skipped, 5);
    assert_eq!(stats.sync_losses, 0);
}

#[test]
fn reader_resyncs_after_garbage_in_the_middle() {
    let packets = null_stream(20);
    let mut bytes = stream_bytes(&packets[..10]);
    bytes.extend_from_slice(&[0u8; 100]);
    bytes.extend(stream_bytes(&packets[10..]));
    let (p, e, stats) = read_all(&bytes);
    assert_eq!(
        p, packets,
        "no packet lost: the garbage sat between packets"
    );
    assert_eq!(
        e,
        vec![ParseError::SyncLost {
            offset: 1880,
            skipped: 100
        }]
    );
    assert_eq!(stats.sync_losses, 1);
    assert_eq!(stats.sync_byte_errors, 0);
}

#[test]
fn reader_drops_a_packet_with_one_corrupted_sync_byte() {
    let packets = null_stream(12);
    let mut bytes = stream_bytes(&packets);
    bytes[5 * 188] = 0x46;
    let (p, e, stats) = read_all(&bytes);
    assert_eq!(p.len(), 11);
    assert_eq!(p[5], packets[6]);
    assert_eq!(
        e,
        vec![ParseError::SyncByte {
            offset: 940,
            found: 0x46
        }]
    );
    assert_eq!(stats.sync_byte_errors, 1);
    assert_eq!(stats.sync_losses, 0);
}

#[test]
fn reader_reports_trailing_bytes_and_loss_at_the_end() {
    let mut bytes = stream_bytes(&null_stream(6));
    bytes.extend_from_slice(&[0x47, 1, 2]);
    let (p, e, _) = read_all(&bytes);
    assert_eq!(p.len(), 6);
    assert_eq!(
        e,
        vec![ParseError::TrailingBytes {
            offset: 1128,
            len: 3
        }]
    );

    let mut bytes = stream_bytes(&null_stream(6));
    bytes.extend_from_slice(&[0u8; 400]);
    let (p, e, _) = read_all(&bytes);
    assert_eq!(p.len(), 6);
    assert_eq!(
        e,
        vec![ParseError::SyncLost {
            offset: 1128,
            skipped: 400
        }]
    );
}

fn sections_of(asm: &mut SectionAssembler) -> Vec<Result<Section, ParseError>> {
    let mut out = Vec::new();
    loop {
        match asm.next_section() {
            Ok(Some(s)) => out.push(Ok(s)),
            Ok(None) => return out,
            Err(e) => out.push(Err(e)),
        }
    }
}

fn big_sdt() -> Vec<u8> {
    let names: Vec<String> = (0..12)
        .map(|i| format!("Service number {i:02} with a long name"))
        .collect();
    let services: Vec<(u16, u8, &str, &str)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (i as u16 + 1, 2, "headend", n.as_str()))
        .collect();
    sdt_section(1, 2, 3, &services)
}

#[test]
fn section_spanning_packets() {
    let section = big_sdt();
    assert!(section.len() > 400);
    let mut cc = 0;
    let pkts = packetize_section(Pid::new(0x11), &section, &mut cc);
    assert!(pkts.len() >= 3);
    let mut asm = SectionAssembler::new(Pid::new(0x11));
    for p in &pkts {
        asm.push(p);
    }
    let got = sections_of(&mut asm);
    assert_eq!(got.len(), 1);
    let s = got[0].as_ref().unwrap();
    assert_eq!(s.bytes(), &section[..]);
    assert_eq!(s.crc_valid(), Some(true));
    assert_eq!(s.table_id(), 0x42);
    assert_eq!(s.version(), Some(3));
    let sdt = Sdt::parse(s).unwrap();
    assert_eq!(sdt.services.len(), 12);
    assert_eq!(
        sdt.services[11].service_name,
        "Service number 11 with a long name"
    );
}

#[test]
fn several_sections_in_one_packet_then_stuffing() {
    let a = pat_section(1, 0, &[(1, 0x100)]);
    let b = pat_section(1, 1, &[(1, 0x100), (2, 0x200)]);
    let mut payload = vec![0u8];
    payload.extend_from_slice(&a);
    payload.extend_from_slice(&b);
    let mut asm = SectionAssembler::new(Pid::new(0));
    asm.push(&raw_packet(0, true, 0, &payload));
    let got = sections_of(&mut asm);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].as_ref().unwrap().bytes(), &a[..]);
    assert_eq!(
        Pat::parse(got[1].as_ref().unwrap()).unwrap().programs,
        vec![(1, Pid::new(0x100)), (2, Pid::new(0x200))]
    );
}

#[test]
fn pointer_field_finishes_the_previous_section_and_headers_split_across_packets() {
    // Section 1 (17 bytes) starts with 180 bytes of a PMT-sized filler section, so that
    // its header is cut after two bytes.
    let filler_body = vec![0xAB; 169]; // 8 + 169 + 4 = 181 bytes
    let first = long_section(0x02, 1, 0, 0, 0, &filler_body);
    assert_eq!(first.len(), 181);
    let second = pat_section(7, 2, &[(1, 0x100)]);
    let third = pat_section(7, 3, &[(1, 0x101)]);
    // Packet 1: pointer 0, first (181 bytes), then 2 bytes of `second`.
    let mut p1 = vec![0u8];
    p1.extend_from_slice(&first);
    p1.extend_from_slice(&second[..2]);
    assert_eq!(p1.len(), 184);
    // Packet 2: PUSI, pointer = rest of `second`, then `third`.
    let rest = &second[2..];
    let mut p2 = vec![rest.len() as u8];
    p2.extend_from_slice(rest);
    p2.extend_from_slice(&third);
    let mut asm = SectionAssembler::new(Pid::new(0x30));
    asm.push(&raw_packet(0x30, true, 4, &p1));
    asm.push(&raw_packet(0x30, true, 5, &p2));
    let got: Vec<Section> = sections_of(&mut asm)
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].bytes(), &first[..]);
    assert_eq!(got[1].bytes(), &second[..]);
    assert_eq!(got[2].bytes(), &third[..]);
    assert!(got.iter().all(|s| s.crc_ok()));
}

#[test]
fn duplicates_are_ignored_and_gaps_drop_the_partial_section() {
    let section = big_sdt();
    let mut cc = 0;
    let pkts = packetize_section(Pid::new(0x11), &section, &mut cc);
    let mut asm = SectionAssembler::new(Pid::new(0x11));
    asm.push(&pkts[0]);
    asm.push(&pkts[0]); // duplicate: same CC, ignored
    for p in &pkts[1..] {
        asm.push(p);
    }
    assert_eq!(
        sections_of(&mut asm)
            .into_iter()
            .filter(|r| r.is_ok())
            .count(),
        1
    );

    let pkts = packetize_section(Pid::new(0x11), &section, &mut cc);
    asm.push(&pkts[0]);
    asm.push(&pkts[2]); // pkts[1] lost
    let got = sections_of(&mut asm);
    assert_eq!(
        got,
        vec![Err(ParseError::Discontinuity { what: "section" })]
    );
    // The assembler recovers with the next section.
    for p in packetize_section(Pid::new(0x11), &section, &mut cc) {
        asm.push(&p);
    }
    assert!(sections_of(&mut asm)[0].is_ok());
}

#[test]
fn crc_and_length_problems() {
    let mut bad = pat_section(1, 0, &[(1, 0x100)]);
    let n = bad.len();
    bad[n - 1] ^= 0x01;
    let mut asm = SectionAssembler::new(Pid::new(0));
    let mut cc = 0;
    for p in packetize_section(Pid::new(0), &bad, &mut cc) {
        asm.push(&p);
    }
    let s = asm.next_section().unwrap().unwrap();
    assert_eq!(s.crc_valid(), Some(false));
    assert!(!s.crc_ok());

    // A section_length over 4093.
    asm.push(&raw_packet(0, true, cc, &[0, 0x42, 0xFF, 0xFF, 1, 2, 3]));
    assert_eq!(asm.next_section(), Err(ParseError::SectionTooLong(0xFFF)));
    // A pointer_field beyond the payload.
    asm.push(&raw_packet(0, true, (cc + 1) & 0xF, &[200]));
    assert!(matches!(
        asm.next_section(),
        Err(ParseError::BadPointer { pointer: 200, .. })
    ));
    // A short section without CRC (TDT).
    let tdt = vec![0x70, 0x70, 0x05, 0xC0, 0x79, 0x12, 0x45, 0x00];
    let s = Section::new(Pid::new(0x14), tdt).unwrap();
    assert_eq!(s.crc_valid(), None);
    assert!(s.crc_ok());
    assert_eq!(s.body(), &[0xC0, 0x79, 0x12, 0x45, 0x00]);
}

#[test]
fn section_cut_by_the_next_section_start() {
    let section = big_sdt();
    let mut cc = 0;
    let pkts = packetize_section(Pid::new(0x11), &section, &mut cc);
    let next = packetize_section(Pid::new(0x11), &pat_section(1, 0, &[]), &mut cc.clone());
    let mut asm = SectionAssembler::new(Pid::new(0x11));
    asm.push(&pkts[0]);
    let mut cut = next[0].clone();
    cut.set_cc(pkts[1].cc());
    asm.push(&cut);
    let got = sections_of(&mut asm);
    assert!(
        matches!(got[0], Err(ParseError::SectionIncomplete { have: 183, .. })),
        "{got:?}"
    );
    assert!(got[1].is_ok());
}

fn one_section(bytes: Vec<u8>) -> Section {
    Section::new(Pid::new(0x20), bytes).unwrap()
}

#[test]
fn pat_and_pmt_tables() {
    let pat = Pat::parse(&one_section(pat_section(
        0x1234,
        5,
        &[(0, 0x10), (1, 0x1000), (2, 0x1001)],
    )))
    .unwrap();
    assert_eq!(pat.transport_stream_id, 0x1234);
    assert_eq!(pat.version, 5);
    assert_eq!(pat.network_pid, Some(Pid::new(0x10)));
    assert_eq!(
        pat.programs,
        vec![(1, Pid::new(0x1000)), (2, Pid::new(0x1001))]
    );

    let mut body = vec![0xE1, 0x00, 0xF0, 0x03, 0x25, 0x01, 0xAA];
    body.extend_from_slice(&[0x1B, 0xE1, 0x00, 0xF0, 0x00]);
    body.extend_from_slice(&[0x15, 0xE1, 0x02, 0xF0, 0x04, 0x26, 0x02, 0x01, 0x02]);
    let pmt = Pmt::parse(&one_section(long_section(0x02, 9, 1, 0, 0, &body))).unwrap();
    assert_eq!(pmt.program_number, 9);
    assert_eq!(pmt.version, 1);
    assert_eq!(pmt.pcr_pid, Pid::new(0x100));
    assert_eq!(
        pmt.program_descriptors,
        vec![Descriptor {
            tag: 0x25,
            data: vec![0xAA]
        }]
    );
    assert_eq!(pmt.streams.len(), 2);
    assert_eq!(pmt.streams[1].stream_type, 0x15);
    assert_eq!(pmt.streams[1].pid, Pid::new(0x102));
    assert_eq!(
        pmt.streams[1].descriptors,
        vec![Descriptor {
            tag: 0x26,
            data: vec![1, 2]
        }]
    );
    assert_eq!(
        pmt.referenced_pids().collect::<Vec<_>>(),
        vec![Pid::new(0x100), Pid::new(0x102), Pid::new(0x100)]
    );

    // Wrong table, truncated loops.
    assert!(matches!(
        Pmt::parse(&one_section(pat_section(1, 0, &[]))),
        Err(ParseError::WrongTable { found: 0, .. })
    ));
    let broken = long_section(0x02, 9, 1, 0, 0, &[0xE1, 0x00, 0xF0, 0x09, 0x25]);
    assert!(matches!(
        Pmt::parse(&one_section(broken)),
        Err(ParseError::Truncated { .. })
    ));
    let broken = long_section(0x00, 1, 0, 0, 0, &[0, 1, 0xE1]);
    assert!(matches!(
        Pat::parse(&one_section(broken)),
        Err(ParseError::Malformed { .. })
    ));
}

#[test]
fn sdt_and_eit_tables() {
    let sdt = Sdt::parse(&one_section(sdt_section(
        1,
        0x22,
        4,
        &[(7, 0x02, "Prövider", "Radio Ä")],
    )))
    .unwrap();
    assert_eq!(
        (
            sdt.transport_stream_id,
            sdt.original_network_id,
            sdt.version
        ),
        (1, 0x22, 4)
    );
    let s = &sdt.services[0];
    assert_eq!(s.service_id, 7);
    assert!(s.eit_pf_flag && !s.eit_schedule_flag);
    assert_eq!(s.running_status, 4);
    assert_eq!(s.service_type, 2);
    assert_eq!(s.provider_name, "Prövider");
    assert_eq!(s.service_name, "Radio Ä");

    let start = [0xC0, 0x79, 0x12, 0x45, 0x00];
    let eit = Eit::parse(&one_section(eit_pf_section(
        7,
        3,
        1,
        Some((0x55, start, [0x00, 0x03, 0x30], "Song", "by Artist")),
    )))
    .unwrap();
    assert!(eit.is_present_following());
    assert_eq!((eit.service_id, eit.version, eit.section_number), (7, 3, 1));
    assert_eq!((eit.transport_stream_id, eit.original_network_id), (1, 2));
    let e = &eit.events[0];
    assert_eq!(e.event_id, 0x55);
    assert_eq!(e.start_time_utc, Some(750_516_300));
    assert_eq!(e.duration_secs, 210);
    assert_eq!(e.running_status, 4);
    assert_eq!(
        (e.language.as_str(), e.name.as_str(), e.text.as_str()),
        ("eng", "Song", "by Artist")
    );
    let empty = Eit::parse(&one_section(eit_pf_section(7, 3, 0, None))).unwrap();
    assert!(empty.events.is_empty());
}

#[test]
fn pes_headers() {
    let pes = pes_packet(0xE0, Some(0x1_2345_6789), Some(0x1_2345_0000), b"data");
    let h = PesHeader::parse(&pes).unwrap();
    assert_eq!(h.stream_id, 0xE0);
    assert_eq!(h.pts, Some(Pts::new(0x1_2345_6789)));
    assert_eq!(h.dts, Some(Pts::new(0x1_2345_0000)));
    assert!(h.data_alignment);
    assert_eq!(h.header_len, 19);
    assert_eq!(&pes[h.header_len..], b"data");
    assert_eq!(h.packet_length as usize, pes.len() - 6);

    let h = PesHeader::parse(&pes_packet(0xC0, None, None, b"")).unwrap();
    assert_eq!((h.pts, h.header_len), (None, 9));
    let padding = [0, 0, 1, 0xBE, 0, 2, 0xFF, 0xFF];
    assert_eq!(PesHeader::parse(&padding).unwrap().header_len, 6);
    assert_eq!(
        PesHeader::parse(&[0, 0, 2, 0xE0, 0, 0, 0x80, 0, 0]),
        Err(ParseError::NoPesStartCode)
    );
    assert!(matches!(
        PesHeader::parse(&pes[..12]),
        Err(ParseError::Truncated { .. })
    ));
    let mut forbidden = pes.clone();
    forbidden[7] = 0x40;
    assert!(matches!(
        PesHeader::parse(&forbidden),
        Err(ParseError::Malformed { .. })
    ));
}

#[test]
fn pes_reassembly() {
    let pid = Pid::new(0x102);
    let long = pes_packet(0xBD, Some(900_000), None, &[0x5A; 400]);
    let mut cc = 0;
    let mut asm = PesAssembler::new(pid, 1 << 16);
    let pkts = packetize_pes(pid, &long, &mut cc);
    for (i, p) in pkts.iter().enumerate() {
        asm.push(p);
        if i + 1 < pkts.len() {
            assert_eq!(
                asm.next_pes(),
                Ok(None),
                "bounded PES returned only once complete"
            );
        }
    }
    let got = asm.next_pes().unwrap().unwrap();
    assert!(got.complete);
    assert_eq!(got.bytes, long);
    assert_eq!(got.payload(), &[0x5A; 400]);
    assert_eq!(got.header.pts, Some(Pts::new(900_000)));

    // Unbounded (length 0) video PES: returned when the next one starts.
    let mut video = pes_packet(0xE0, Some(1), None, &[1; 300]);
    video[4] = 0;
    video[5] = 0;
    for p in packetize_pes(pid, &video, &mut cc) {
        asm.push(&p);
    }
    assert_eq!(asm.next_pes(), Ok(None));
    for p in packetize_pes(pid, &video, &mut cc) {
        asm.push(&p);
    }
    assert_eq!(asm.next_pes().unwrap().unwrap().bytes, video);
    asm.flush();
    assert_eq!(asm.next_pes().unwrap().unwrap().bytes, video);

    // A lost packet abandons the PES in progress.
    let pkts = packetize_pes(pid, &long, &mut cc);
    asm.push(&pkts[0]);
    asm.push(&pkts[2]);
    assert_eq!(
        asm.next_pes(),
        Err(ParseError::Discontinuity { what: "PES packet" })
    );
    // A size limit cuts the packet and marks it incomplete.
    let mut small = PesAssembler::new(pid, 100);
    for p in packetize_pes(pid, &long, &mut cc) {
        small.push(&p);
    }
    let cut = small.next_pes().unwrap().unwrap();
    assert!(!cut.complete);
    assert_eq!(cut.bytes.len(), 100);
}

#[test]
fn id3_v24_utf8() {
    let tag = Id3Tag::parse(&id3_v24(&[
        ("TIT2", "Sóng"),
        ("TPE1", "Ärtist"),
        ("TXXX", "media_id\0abc-1"),
    ]))
    .unwrap();
    assert_eq!(tag.major_version, 4);
    assert_eq!(tag.title(), Some("Sóng"));
    assert_eq!(tag.artist(), Some("Ärtist"));
    assert_eq!(tag.frame("TXXX:media_id"), Some("abc-1"));
    assert_eq!(tag.album(), None);
}

fn v23_frame(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut f = id.to_vec();
    f.extend_from_slice(&(body.len() as u32).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(body);
    f
}

#[test]
fn id3_v23_plain_sizes_latin1_and_utf16() {
    let mut frames = v23_frame(b"TIT2", &[0, b'C', 0xE9, b'l', b'i', b'n', b'e', 0]);
    // UTF-16 little-endian with BOM: "Ab♪".
    frames.extend(v23_frame(
        b"TPE1",
        &[1, 0xFF, 0xFE, b'A', 0, b'b', 0, 0x6A, 0x26],
    ));
    // UTF-16 big-endian with BOM.
    frames.extend(v23_frame(b"TALB", &[1, 0xFE, 0xFF, 0, b'X']));
    // A non-text frame is skipped; a frame bigger than 127 bytes proves sizes are plain.
    frames.extend(v23_frame(b"PRIV", &[7u8; 200]));
    frames.extend(v23_frame(b"TCON", &[0, b'J', b'a', b'z', b'z']));
    frames.extend_from_slice(&[0u8; 20]); // padding
    let mut tag = b"ID3\x03\x00\x00".to_vec();
    let n = frames.len();
    tag.extend_from_slice(&[
        (n >> 21) as u8 & 0x7F,
        (n >> 14) as u8 & 0x7F,
        (n >> 7) as u8 & 0x7F,
        n as u8 & 0x7F,
    ]);
    tag.extend_from_slice(&frames);
    let t = Id3Tag::parse(&tag).unwrap();
    assert_eq!(t.major_version, 3);
    assert_eq!(t.title(), Some("Céline"));
    assert_eq!(t.artist(), Some("Ab♪"));
    assert_eq!(t.album(), Some("X"));
    assert_eq!(t.genre(), Some("Jazz"));
    assert_eq!(t.text_frames.len(), 4);
}

#[test]
fn id3_rejects_what_it_cannot_read() {
    assert_eq!(Id3Tag::parse(b"ID"), Err(ParseError::NotId3));
    assert_eq!(
        Id3Tag::parse(b"XYZ\x04\x00\x00\x00\x00\x00\x00"),
        Err(ParseError::NotId3)
    );
    assert_eq!(
        Id3Tag::parse(b"ID3\x02\x00\x00\x00\x00\x00\x00"),
        Err(ParseError::UnsupportedId3Version(2))
    );
    let mut tag = id3_v24(&[("TIT2", "x")]);
    tag.truncate(tag.len() - 1);
    assert!(matches!(
        Id3Tag::parse(&tag),
        Err(ParseError::Truncated { .. })
    ));
}

#[test]
fn parsers_survive_random_input() {
    let mut rng = TestRng::new(42);
    for _ in 0..3000 {
        let n = rng.below(300);
        let mut b = rng.bytes(n);
        if rng.below(2) == 0 && b.len() > 3 {
            b[0] = [0x00, 0x02, 0x42, 0x4E][rng.below(4)];
            b[1] |= 0x80;
            let len = b.len() - 3;
            b[1] = (b[1] & 0xF0) | ((len >> 8) as u8 & 0x0F);
            b[2] = len as u8;
        }
        if let Ok(s) = Section::new(Pid::new(0x20), b.clone()) {
            let _ = (
                Pat::parse(&s),
                Pmt::parse(&s),
                Sdt::parse(&s),
                Eit::parse(&s),
                s.body(),
            );
        }
        let _ = PesHeader::parse(&b);
        let mut id3 = b"ID3\x04".to_vec();
        id3.extend_from_slice(&b);
        let _ = Id3Tag::parse(&id3);
        let _ = decode_dvb_text(&b);
        let mut asm = SectionAssembler::new(Pid::new(0));
        let mut pes = PesAssembler::new(Pid::new(0), 4096);
        let mut reader = PacketReader::new();
        reader.push(&b);
        for chunk in b.chunks(4) {
            let mut p = TsPacket::null();
            p.0[1] = chunk[0] & 0xE0;
            p.0[2] = 0;
            p.0[3] = chunk.get(1).copied().unwrap_or(0x10);
            p.0[4..4 + chunk.len()].copy_from_slice(chunk);
            p.0[4] = chunk.get(2).copied().unwrap_or(0);
            asm.push(&p);
            pes.push(&p);
            while let Ok(Some(_)) | Err(_) = asm.next_section() {}
            while let Ok(Some(_)) | Err(_) = pes.next_pes() {}
        }
        reader.finish();
        let _ = drain(&mut reader);
    }
}
