//! Everything headend writes, read back by the independent parser: the writers and the
//! parser share only data types, so a field written wrong shows up here.

use super::id3::NowPlayingTag;
use super::packet::{packetize_section, Pid, EIT_PID, PAT_PID, SDT_PID};
use super::parser::{Eit, Id3Tag, PesHeader, Sdt, Section, SectionAssembler};
use super::pes::pes_with_pts;
use super::psi::{stream_type, Descriptor, Pat, Pmt, PmtStream};
use super::si::{self, EitEvent, EitPf, SdtService};
use super::Pts;

/// Writes a section into packets and reassembles it with the parser.
fn through_packets(pid: Pid, section: &[u8]) -> Section {
    let mut cc = 7;
    let mut asm = SectionAssembler::new(pid);
    for p in packetize_section(pid, section, &mut cc) {
        asm.push(&p);
    }
    let s = asm.next_section().unwrap().expect("a whole section");
    assert!(s.crc_ok());
    s
}

#[test]
fn pat_and_pmt() {
    let pat = Pat { transport_stream_id: 9, version: 4, programs: vec![(1, Pid::new(0x1000)), (2, Pid::new(0x1010))], network_pid: Some(Pid::new(0x10)) };
    assert_eq!(Pat::parse(&through_packets(PAT_PID, &pat.section())).unwrap(), pat);
    let pmt = Pmt {
        program_number: 2,
        version: 31,
        pcr_pid: Pid::new(0x1FF),
        program_descriptors: vec![Descriptor::id3_metadata_pointer(2)],
        streams: vec![
            PmtStream { stream_type: stream_type::MPEG2_VIDEO, pid: Pid::new(0x110), descriptors: vec![] },
            PmtStream { stream_type: stream_type::AC3_ATSC, pid: Pid::new(0x121), descriptors: vec![Descriptor::language(b"fra")] },
            PmtStream { stream_type: stream_type::METADATA_PES, pid: Pid::new(0x102), descriptors: vec![Descriptor::id3_metadata()] },
        ],
    };
    assert_eq!(Pmt::parse(&through_packets(Pid::new(0x1010), &pmt.section())).unwrap(), pmt);
}

#[test]
fn sdt_with_utf8_names() {
    let sdt = si::Sdt {
        transport_stream_id: 3,
        original_network_id: 0xFF01,
        version: 5,
        services: vec![SdtService {
            service_id: 7,
            eit_present_following: true,
            running_status: si::RUNNING,
            service_type: si::service_type::DIGITAL_RADIO,
            provider: "Höhenrausch Medien".into(),
            name: "Jazz à la carte".into(),
        }],
    };
    let got = Sdt::parse(&through_packets(SDT_PID, &sdt.section())).unwrap();
    assert_eq!((got.table_id, got.transport_stream_id, got.original_network_id, got.version), (0x42, 3, 0xFF01, 5));
    let s = &got.services[0];
    assert_eq!((s.service_id, s.eit_pf_flag, s.running_status, s.service_type), (7, true, 4, 2));
    assert_eq!((s.provider_name.as_str(), s.service_name.as_str()), ("Höhenrausch Medien", "Jazz à la carte"));
}

#[test]
fn eit_present_and_following() {
    let ev = |id, start, name: &str| EitEvent { event_id: id, start_unix: start, duration_secs: 245, running_status: si::RUNNING, name: name.into(), text: "Miles Davis - Kind of Blue".into() };
    let eit = EitPf { service_id: 7, transport_stream_id: 3, original_network_id: 1, version: 12, present: Some(ev(41, 1_795_000_000, "So What")), following: Some(ev(42, 1_795_000_245, "Freddie Freeloader")) };
    let [p, f] = eit.sections();
    for (n, section, name, start) in [(0, p, "So What", 1_795_000_000), (1, f, "Freddie Freeloader", 1_795_000_245)] {
        let got = Eit::parse(&through_packets(EIT_PID, &section)).unwrap();
        assert_eq!((got.table_id, got.service_id, got.version, got.section_number), (0x4E, 7, 12, n));
        let e = &got.events[0];
        assert_eq!((e.name.as_str(), e.text.as_str(), e.start_time_utc, e.duration_secs), (name, "Miles Davis - Kind of Blue", Some(start), 245));
        assert_eq!(e.language, "eng");
    }
    let empty = EitPf { following: None, ..eit };
    assert!(Eit::parse(&through_packets(EIT_PID, &empty.sections()[1])).unwrap().events.is_empty());
}

#[test]
fn id3_now_playing_in_a_pes() {
    let tag = NowPlayingTag { title: "Blue in Green".into(), artist: "Bill Evans".into(), album: "Kind of Blue".into(), genre: "Jazz".into(), media_id: "kob-03".into() };
    let pes = pes_with_pts(0xBD, Pts::new(8_589_934_000), &tag.to_id3());
    let h = PesHeader::parse(&pes).unwrap();
    assert_eq!((h.stream_id, h.pts, h.dts, h.data_alignment), (0xBD, Some(Pts::new(8_589_934_000)), None, true));
    let id3 = Id3Tag::parse(&pes[h.header_len..]).unwrap();
    assert_eq!((id3.title(), id3.artist(), id3.album(), id3.genre()), (Some("Blue in Green"), Some("Bill Evans"), Some("Kind of Blue"), Some("Jazz")));
    assert_eq!(id3.frame("TXXX:media_id"), Some("kob-03"));
}
